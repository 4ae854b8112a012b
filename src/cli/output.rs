//! Everything the CLI prints goes through here, for two reasons.
//!
//! - **Terminal escapes.** Subjects, display names, Message-IDs, HELO names and addresses come
//!   from mail clients. Printed raw, an ESC or BEL in them drives the operator's terminal (change
//!   the title, hide text, ring, on some terminals worse), and a bidi control reorders what the
//!   operator reads. [`is_unsafe`] names the characters that never reach the terminal as they
//!   are: C0 controls, DEL, C1 controls (U+0080–U+009F) and the bidi embedding, override and
//!   isolate controls (U+202A–U+202E, U+2066–U+2069). Tables and timelines show them as
//!   `\u{1b}` (`\n`, `\r`, `\t` for the common three); `--json` as JSON's own `\u001b`, so a
//!   script that parses the JSON gets the exact text back.
//! - **Closed pipes.** `gatepost queue list | head -3` closes stdout early; `println!` would
//!   panic. [`print`] returns the error, and `main` ends quietly on a broken pipe.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::io::{self, Write};

/// Characters that must not reach a terminal unescaped. One rule for every operator output.
pub fn is_unsafe(c: char) -> bool {
    matches!(c, '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

fn escape_into(out: &mut String, c: char) {
    match c {
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        c => {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        }
    }
}

fn escape_where(text: &str, unsafe_here: impl Fn(char) -> bool) -> Cow<'_, str> {
    if !text.chars().any(&unsafe_here) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if unsafe_here(c) {
            escape_into(&mut out, c);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// One value from a message (subject, name, address, id), safe on one line of a table:
/// every unsafe character escaped, line ends included.
pub fn value(text: &str) -> Cow<'_, str> {
    escape_where(text, is_unsafe)
}

/// A whole text laid out by us: every unsafe character escaped except our own line ends.
/// Values should already have gone through [`value`]; this is the net under them.
pub fn text(text: &str) -> Cow<'_, str> {
    escape_where(text, |c| c != '\n' && is_unsafe(c))
}

/// JSON for the terminal. serde_json already writes C0 controls as `\u00XX`; DEL, C1 and bidi
/// controls are valid raw in JSON, so they are rewritten as `\uXXXX` here. They can only occur
/// inside strings (JSON's own syntax is ASCII), so the result is the same JSON value.
pub fn json<T: serde::Serialize + ?Sized>(v: &T) -> serde_json::Result<String> {
    let raw = serde_json::to_string_pretty(v)?;
    if !raw.chars().any(is_unsafe) {
        return Ok(raw);
    }
    let mut out = String::with_capacity(raw.len() + 16);
    for c in raw.chars() {
        // Raw C0 controls cannot occur (serde_json escapes them, and its own layout uses
        // only '\n' and spaces); everything else unsafe is escaped the JSON way.
        if is_unsafe(c) && c != '\n' {
            let _ = write!(out, "\\u{:04x}", c as u32);
        } else {
            out.push(c);
        }
    }
    Ok(out)
}

/// Print to stdout through [`text`]. A closed pipe comes back as `ErrorKind::BrokenPipe`.
pub fn print(s: &str) -> io::Result<()> {
    let mut out = io::stdout().lock();
    out.write_all(text(s).as_bytes())?;
    out.flush()
}

/// `print` plus a line end.
pub fn println(s: &str) -> io::Result<()> {
    print(&format!("{s}\n"))
}

/// Print to stderr through [`text`]; an error there has nowhere to be reported, so it is dropped.
pub fn eprintln(s: &str) {
    let mut err = io::stderr().lock();
    let _ = err.write_all(text(&format!("{s}\n")).as_bytes());
}

/// Whether an error (anywhere in its chain) is a closed stdout: the reader went away, which is
/// not a failure of the command.
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.downcast_ref::<io::Error>().is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NASTY: &str = "a\u{1b}]0;owned\u{7}b\u{7f}c\u{85}d\u{9b}e\u{202e}f\u{2066}g\u{2069}h\r\n\ti";

    #[test]
    fn every_unsafe_class_is_named() {
        for c in
            ['\u{0}', '\u{7}', '\u{1b}', '\u{1f}', '\u{7f}', '\u{80}', '\u{9f}', '\u{202a}', '\u{202e}', '\u{2066}']
        {
            assert!(is_unsafe(c), "{c:?}");
        }
        for c in [' ', '~', 'é', '\u{a0}', '\u{200e}', '\u{2029}', '\u{2070}', '日'] {
            assert!(!is_unsafe(c), "{c:?}");
        }
    }

    #[test]
    fn values_and_texts_never_carry_unsafe_characters() {
        let v = value(NASTY);
        assert!(!v.chars().any(is_unsafe), "{v}");
        assert_eq!(v, "a\\u{1b}]0;owned\\u{7}b\\u{7f}c\\u{85}d\\u{9b}e\\u{202e}f\\u{2066}g\\u{2069}h\\r\\n\\ti");
        let t = text(NASTY);
        assert!(!t.chars().any(|c| c != '\n' && is_unsafe(c)), "{t}");
        assert!(t.contains("h\\r\n\\ti"), "our own line ends stay: {t}");
        assert!(matches!(value("plain Grüße 日本"), Cow::Borrowed(_)));
    }

    #[test]
    fn json_escapes_everything_and_still_means_the_same() {
        let v = serde_json::json!({ "subject": NASTY, "plain": "ok" });
        let out = json(&v).unwrap();
        assert!(!out.chars().any(|c| c != '\n' && is_unsafe(c)), "{out}");
        for want in ["\\u001b", "\\u0007", "\\u007f", "\\u0085", "\\u009b", "\\u202e", "\\u2066", "\\u2069"] {
            assert!(out.contains(want), "{want} missing in {out}");
        }
        let back: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(back, v);
    }
}
