//! What gatepost needs to know about a submitted message's header: who it claims to be
//! from, its subject and id, and any `Deliver-On` values. Pure; the body is never altered here.

use mail_parser::{HeaderName, MessageParser};

/// The header facts the submission rules and the queue record need.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeaderSummary {
    /// Every address in every From header, lower-cased for comparison.
    pub from_addresses: Vec<String>,
    /// Display name of the first From address, for the record and the relay's "via" name.
    pub from_name: Option<String>,
    pub subject: Option<String>,
    pub message_id: Option<String>,
    /// Raw, unfolded values of every `Deliver-On` header (there should be at most one).
    pub deliver_on: Vec<String>,
    /// Number of From header fields (RFC 5322 requires exactly one).
    pub from_fields: usize,
    /// A `Deliver-On:` line stands in the header block as CRLF rules read it, but the parser
    /// saw the header end earlier (a bare-LF blank line). Honouring either reading could send
    /// early or late, so the message must be refused.
    pub hidden_deliver_on: bool,
}

/// Summarise the header block of `raw`. Never fails: a message with a broken header simply
/// yields fewer facts, and the submission rules decide what that means.
pub fn summarize(raw: &[u8]) -> HeaderSummary {
    let mut out = HeaderSummary::default();
    let Some(msg) = MessageParser::default().parse_headers(raw) else {
        return out;
    };
    for header in msg.headers() {
        match &header.name {
            HeaderName::From => out.from_fields += 1,
            HeaderName::Other(name) if name.eq_ignore_ascii_case("deliver-on") => {
                let start = header.offset_start as usize;
                let end = (header.offset_end as usize).min(raw.len());
                if start <= end {
                    out.deliver_on.push(unfold(&raw[start..end]));
                }
            }
            _ => {}
        }
    }
    if let Some(from) = msg.from() {
        for addr in from.iter() {
            if let Some(a) = addr.address() {
                out.from_addresses.push(a.trim().to_lowercase());
            }
        }
        out.from_name = from.first().and_then(|a| a.name()).map(str::to_string);
    }
    out.subject = msg.subject().map(str::to_string);
    out.message_id = msg.message_id().map(str::to_string);
    out.hidden_deliver_on = strict_deliver_on_lines(raw) > out.deliver_on.len();
    out
}

/// Count `Deliver-On:` lines in the header block as it ends under strict CRLF rules (at the
/// first empty CRLF line), whatever bare LFs stand before it.
fn strict_deliver_on_lines(raw: &[u8]) -> usize {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n").map_or(raw.len(), |p| p + 2);
    let starts_line = |i: usize| i == 0 || raw[i - 1] == b'\n';
    (0..end)
        .filter(|&i| starts_line(i) && raw.len() >= i + 11 && raw[i..i + 11].eq_ignore_ascii_case(b"deliver-on:"))
        .count()
}

/// RFC 5322 §2.2.3 unfolding: CRLF followed by white space is just white space.
fn unfold(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    text.replace("\r\n", "").replace('\n', "").trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_of_typical_header() {
        let raw = b"From: \"Alice A\" <Alice@Example.com>\r\nTo: bob@example.net\r\nSubject: =?utf-8?q?caf=C3=A9?=\r\nMessage-ID: <x1@example.com>\r\nDeliver-On: 2026-12-25\r\n 09:30\r\n\r\nbody\r\n";
        let s = summarize(raw);
        assert_eq!(s.from_addresses, vec!["alice@example.com"]);
        assert_eq!(s.from_name.as_deref(), Some("Alice A"));
        assert_eq!(s.subject.as_deref(), Some("café"));
        assert_eq!(s.message_id.as_deref(), Some("x1@example.com"));
        assert_eq!(s.deliver_on, vec!["2026-12-25 09:30"]);
        assert_eq!(s.from_fields, 1);
    }

    #[test]
    fn missing_from_and_garbage() {
        let s = summarize(b"Subject: hi\r\n\r\nx");
        assert!(s.from_addresses.is_empty());
        assert_eq!(s.from_fields, 0);
        let s = summarize(b"\xff\xfe\x00garbage");
        assert!(s.from_addresses.is_empty());
    }

    #[test]
    fn deliver_on_behind_a_bare_lf_header_end_is_flagged() {
        let s = summarize(b"From: a@x\r\nX: y\r\n\nDeliver-On: 2027-01-15\r\n\r\nbody\r\n");
        assert!(s.deliver_on.is_empty());
        assert!(s.hidden_deliver_on);
        let s = summarize(b"From: a@x\r\nDeliver-On: 2027-01-15\r\n\r\nDeliver-On: in the body\r\n");
        assert_eq!(s.deliver_on.len(), 1);
        assert!(!s.hidden_deliver_on, "a Deliver-On line in the body is just text");
    }

    #[test]
    fn several_deliver_on_headers_are_all_kept() {
        let s = summarize(b"From: a@x\r\ndeliver-on: tomorrow\r\nDELIVER-ON: +2h\r\n\r\n");
        assert_eq!(s.deliver_on, vec!["tomorrow", "+2h"]);
    }
}
