//! A message's MIME structure, computed once when its blob is first stored and kept beside it
//! (docs/mailstore.md), so FETCH BODYSTRUCTURE, BODY[section] and ENVELOPE read byte ranges
//! instead of parsing the whole message again. Offsets are into the raw blob; line counts and
//! part numbers follow IMAP (RFC 3501 §6.4.5, §7.4.2): a multipart's children are numbered
//! from 1, and the CRLF before a boundary belongs to the boundary, not to the part.

use mail_parser::{MessageParser, MessagePart, MimeHeaders, PartType};
use serde::{Deserialize, Serialize};

/// Deeper nesting than this is stored as an opaque leaf (a hostile message cannot make the
/// stored structure, or its rendering, recurse without bound).
pub const MAX_DEPTH: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Structure {
    pub size: u32,
    pub root: Part,
}

/// One MIME entity: where its header and body are, and what it says it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Part {
    /// `[start, end)` of the header, the blank line included.
    pub header: (u32, u32),
    /// `[start, end)` of the body.
    pub body: (u32, u32),
    /// Lines of the body (CRLF-terminated, a final partial line counts).
    pub lines: u32,
    /// Lower case; `text`/`plain` when the part does not say (RFC 2045 §5.2).
    pub media_type: String,
    pub subtype: String,
    /// Content-Type parameters as given (names lower case).
    pub params: Vec<(String, String)>,
    pub encoding: Option<String>,
    pub id: Option<String>,
    pub description: Option<String>,
    pub disposition: Option<(String, Vec<(String, String)>)>,
    pub kind: Kind,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Kind {
    Leaf,
    Multipart(Vec<Part>),
    /// `message/rfc822`: the enclosed message's own top-level part.
    Message(Box<Part>),
}

impl Structure {
    /// Parse `raw` once. Never fails: what mail-parser cannot read is one `text/plain` leaf
    /// over the whole message, as IMAP servers show unparseable mail.
    pub fn of(raw: &[u8]) -> Structure {
        let size = raw.len().min(u32::MAX as usize) as u32;
        let root = MessageParser::default()
            .parse(raw)
            .and_then(|m| {
                let mut walk = Walk { raw, budget: MAX_PARTS, seen: vec![false; m.parts.len()] };
                m.parts.first().map(|_| walk.part(&m.parts, 0, (0, size), 0))
            })
            .map(|root| to_the_end(root, raw, size))
            .unwrap_or_else(|| opaque(raw));
        Structure { size, root }
    }

    /// The stored form (kept beside the blob).
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a structure always serialises")
    }

    /// Read a stored structure; damage is an error, never a panic.
    pub fn decode(stored: &[u8]) -> Result<Structure, String> {
        serde_json::from_slice(stored).map_err(|e| format!("stored structure does not decode: {e}"))
    }

    /// The part named by an IMAP section number (`[]` is the whole message's top part;
    /// `[1, 2]` is "1.2"). RFC 3501 §6.4.5: numbers index a multipart's children; a message
    /// that is not multipart has only part 1, itself (even when it is a message/rfc822: its
    /// part 1 is the whole encapsulated message); after a message/rfc822 part, numbers go on
    /// into the encapsulated message by the same rule.
    pub fn section(&self, path: &[u32]) -> Option<&Part> {
        let Some((&first, rest)) = path.split_first() else { return Some(&self.root) };
        let mut p = top_level(&self.root, first)?;
        for &n in rest {
            p = match &p.kind {
                Kind::Multipart(children) => children.get((n as usize).checked_sub(1)?)?,
                Kind::Message(inner) => top_level(inner, n)?,
                Kind::Leaf => return None,
            };
        }
        Some(p)
    }
}

/// Part `n` of a message whose top part is `root`.
fn top_level(root: &Part, n: u32) -> Option<&Part> {
    match &root.kind {
        Kind::Multipart(children) => children.get((n as usize).checked_sub(1)?),
        _ if n == 1 => Some(root),
        _ => None,
    }
}

/// Most parts one message's structure holds; those beyond are left out (a leaf stays a leaf).
pub const MAX_PARTS: usize = 5_000;

/// One pass over mail-parser's flat part list. A malformed message can make children lists
/// share parts (a boundary reused inside itself): followed as a tree, that is exponential in
/// the depth (found by fuzzing `structure`: 2 GiB from an 11 KB message). So each part of a
/// list is placed once, and the whole structure has at most [`MAX_PARTS`] parts.
struct Walk<'r> {
    raw: &'r [u8],
    budget: usize,
    /// The parts of the current list already placed.
    seen: Vec<bool>,
}

impl Walk<'_> {
    /// `within`: the parent's body (the whole message for the top part). mail-parser can put
    /// a malformed child's end past its parent's (a part cut short by the parent's boundary):
    /// ranges are clamped into the parent, so every range nests (found by fuzzing `structure`).
    fn part(&mut self, parts: &[MessagePart<'_>], id: usize, within: (u32, u32), depth: usize) -> Part {
        self.budget = self.budget.saturating_sub(1);
        if let Some(s) = self.seen.get_mut(id) {
            *s = true;
        }
        part(self, parts, id, within, depth)
    }

    /// The children of a multipart not placed yet, while the budget lasts.
    fn children(&mut self, parts: &[MessagePart<'_>], ids: &[u32]) -> Vec<usize> {
        let mut out = Vec::new();
        for id in ids.iter().map(|&c| c as usize) {
            if id < parts.len() && !self.seen[id] && self.budget > out.len() {
                self.seen[id] = true;
                out.push(id);
            }
        }
        out
    }
}

fn part(walk: &mut Walk<'_>, parts: &[MessagePart<'_>], id: usize, within: (u32, u32), depth: usize) -> Part {
    let raw = walk.raw;
    let p = &parts[id];
    let clamp = |n: u32| n.clamp(within.0, within.1);
    let (h0, b0, end) = (clamp(p.offset_header), clamp(p.offset_body), clamp(p.offset_end));
    let (h0, b0) = (h0.min(b0), b0.min(end));
    let ct = p.content_type();
    let (media_type, subtype) = match ct {
        Some(ct) => (
            ct.ctype().to_ascii_lowercase(),
            ct.subtype().map(str::to_ascii_lowercase).unwrap_or_else(|| default_subtype(ct.ctype())),
        ),
        None => ("text".into(), "plain".into()),
    };
    let params = ct
        .and_then(|c| c.attributes())
        .map(|a| a.iter().map(|a| (a.name.to_ascii_lowercase(), a.value.to_string())).collect())
        .unwrap_or_default();
    let disposition = p.content_disposition().map(|d| {
        let params = d
            .attributes()
            .map(|a| a.iter().map(|a| (a.name.to_ascii_lowercase(), a.value.to_string())).collect())
            .unwrap_or_default();
        (d.ctype().to_ascii_lowercase(), params)
    });
    let kind = match &p.body {
        _ if depth >= MAX_DEPTH || walk.budget == 0 => Kind::Leaf,
        PartType::Multipart(children) => {
            let ids = walk.children(parts, children);
            Kind::Multipart(ids.into_iter().map(|c| walk.part(parts, c, (b0, end), depth + 1)).collect())
        }
        PartType::Message(inner) => match inner.parts.first() {
            Some(_) => {
                // The encapsulated message's own list: its parts are placed once each too.
                let outer = std::mem::replace(&mut walk.seen, vec![false; inner.parts.len()]);
                let top = walk.part(&inner.parts, 0, (b0, end), depth + 1);
                walk.seen = outer;
                Kind::Message(Box::new(to_the_end(top, raw, end)))
            }
            None => Kind::Leaf,
        },
        _ => Kind::Leaf,
    };
    let body = &raw[b0 as usize..end as usize];
    Part {
        header: (h0, b0),
        body: (b0, end),
        lines: lines(body),
        media_type,
        subtype,
        params,
        encoding: p.content_transfer_encoding().map(str::to_ascii_lowercase),
        id: p.content_id().map(str::to_string),
        description: p.content_description().map(str::to_string),
        disposition,
        kind,
    }
}

/// A message's text runs to the end of the message: mail-parser ends a multipart at its
/// closing boundary, but the epilogue after it is still the message's body (RFC 3501
/// BODY[TEXT], as Dovecot serves it).
fn to_the_end(mut root: Part, raw: &[u8], end: u32) -> Part {
    if end > root.body.1 {
        root.body.1 = end;
        root.lines = lines(&raw[root.body.0 as usize..end as usize]);
    }
    root
}

fn default_subtype(media_type: &str) -> String {
    if media_type.eq_ignore_ascii_case("text") { "plain".into() } else { "octet-stream".into() }
}

/// The whole message as one plain-text leaf.
fn opaque(raw: &[u8]) -> Part {
    let end = raw.len().min(u32::MAX as usize) as u32;
    Part {
        header: (0, 0),
        body: (0, end),
        lines: lines(raw),
        media_type: "text".into(),
        subtype: "plain".into(),
        params: vec![],
        encoding: None,
        id: None,
        description: None,
        disposition: None,
        kind: Kind::Leaf,
    }
}

fn lines(body: &[u8]) -> u32 {
    let n = body.iter().filter(|&&b| b == b'\n').count() + usize::from(body.last().is_some_and(|&b| b != b'\n'));
    n.min(u32::MAX as usize) as u32
}

#[cfg(test)]
mod tests;
