//! The footer: rendered once from the operator's template, then written as plain text (with
//! RFC 3676 care for format=flowed) or as an HTML paragraph.

use super::address::one_line;
use super::{Envelope, RewritePolicy};

/// Replaces `{key}` placeholders in one pass (a value that itself contains `{address}` is not
/// expanded again); unknown placeholders stay as written, so a typo shows instead of vanishing.
pub(super) fn render(template: &str, vars: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len() + 64);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let value =
            after.find('}').and_then(|close| vars.iter().find(|(k, _)| *k == &after[..close]).map(|v| (close, v.1)));
        match value {
            Some((close, v)) => {
                out.push_str(v);
                rest = &after[close + 1..];
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The template values: `{name}` (the sender's display name, else the user's address),
/// `{address}` (the user's address) and `{intro}` (the operator's introduction), each on one line.
pub(super) fn vars<'a>(env: &Envelope<'a>, policy: &'a RewritePolicy) -> [(&'static str, String); 3] {
    let address = one_line(env.user_address);
    let name = env.sender_name.map(one_line).filter(|n| !n.is_empty()).unwrap_or_else(|| address.clone());
    [("name", name), ("address", address), ("intro", one_line(&policy.system_intro))]
}

/// Width of the flowed lines the footer is wrapped into (RFC 3676 §4.2 recommends 78 or less).
const FLOWED_WIDTH: usize = 72;

/// The footer's lines, without line ends.
#[derive(Debug, Clone)]
pub(super) struct Footer {
    lines: Vec<String>,
}

impl Footer {
    pub fn new(env: &Envelope, policy: &RewritePolicy) -> Footer {
        let vars = vars(env, policy);
        let refs: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let text = render(&policy.footer_template, &refs).replace("\r\n", "\n").replace('\r', "\n");
        let lines = text
            .trim_end_matches('\n')
            .split('\n')
            .map(|l| l.chars().filter(|c| !c.is_control() || *c == '\t').collect::<String>().trim_end().to_string())
            .collect();
        Footer { lines }
    }

    /// The plain-text footer, lines joined with `eol` and no final line end. In format=flowed
    /// text (RFC 3676) long lines are wrapped at spaces into flowed lines (ending in a space),
    /// every footer line ends as a hard break, and lines starting with a space, `>` or `From `
    /// are space-stuffed (§4.4).
    pub fn plain(&self, flowed: bool, eol: &str) -> String {
        if !flowed {
            return self.lines.join(eol);
        }
        let stuff = |l: &str| {
            if l.starts_with(' ') || l.starts_with('>') || l.starts_with("From ") {
                format!(" {l}")
            } else {
                l.to_string()
            }
        };
        let mut out: Vec<String> = Vec::new();
        for line in &self.lines {
            let mut current = String::new();
            for piece in line.split_inclusive(' ') {
                if !current.trim().is_empty() && current.len() + piece.trim_end().len() > FLOWED_WIDTH {
                    out.push(stuff(&current)); // ends in a space: a flowed line
                    current.clear();
                }
                current.push_str(piece);
            }
            out.push(stuff(&current));
        }
        out.join(eol)
    }

    /// The HTML footer: one paragraph, lines separated by `<br>`, HTML-escaped. With
    /// `ascii_only`, characters beyond ASCII become numeric references, which every
    /// ASCII-compatible charset carries, so the part's charset never has to change.
    pub fn html(&self, ascii_only: bool) -> String {
        let escape = |line: &String| {
            line.chars()
                .map(|c| match c {
                    '&' => "&amp;".to_string(),
                    '<' => "&lt;".to_string(),
                    '>' => "&gt;".to_string(),
                    '"' => "&quot;".to_string(),
                    '\'' => "&#39;".to_string(),
                    c if ascii_only && !c.is_ascii() => format!("&#{};", c as u32),
                    c => c.to_string(),
                })
                .collect::<String>()
        };
        let body = self.lines.iter().map(escape).collect::<Vec<_>>().join("<br>");
        format!("<p class=\"gatepost-footer\">{body}</p>")
    }
}

/// What to insert after plain text `text` (the decoded part): a blank line, then the footer
/// (already in the part's charset). The footer ends with a line end only when the text did (or
/// was empty), so a part that stopped right before its boundary line still does.
pub(super) fn plain_insertion(text: &[u8], footer: &[u8], eol: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(footer.len() + 3 * eol.len());
    let ends_with_line = text.last() == Some(&b'\n');
    if !text.is_empty() {
        if !ends_with_line {
            out.extend_from_slice(eol);
        }
        out.extend_from_slice(eol);
    }
    out.extend_from_slice(footer);
    if text.is_empty() || ends_with_line {
        out.extend_from_slice(eol);
    }
    out
}

/// Where the HTML footer goes in `html`: before the last `</body>` (any case, white space
/// allowed before `>`), or None to append it.
pub(super) fn body_close(html: &[u8]) -> Option<usize> {
    let mut at = html.len();
    while let Some(i) = html[..at].windows(6).rposition(|w| w.eq_ignore_ascii_case(b"</body")) {
        let rest = &html[i + 6..];
        let ws = rest.iter().take_while(|b| b.is_ascii_whitespace()).count();
        if rest.get(ws) == Some(&b'>') {
            return Some(i);
        }
        at = i + 5;
    }
    None
}

/// What to insert into HTML `html` for `snippet`: before `</body>` (at `close`) the snippet and
/// a line end; appended, on a line of its own, ending like the HTML did (see [`plain_insertion`]).
pub(super) fn html_insertion(html: &[u8], close: Option<usize>, snippet: &[u8], eol: &[u8]) -> Vec<u8> {
    let open_line = close.is_none() && !html.is_empty() && html.last() != Some(&b'\n');
    let mut out = Vec::with_capacity(snippet.len() + 2 * eol.len());
    if open_line {
        out.extend_from_slice(eol);
    }
    out.extend_from_slice(snippet);
    if !open_line {
        out.extend_from_slice(eol);
    }
    out
}
