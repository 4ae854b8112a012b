//! What gatepost needs to know about a submitted message's header: who it claims to be
//! from, its subject and id, and any `Deliver-On` values. Pure; the body is never altered here.
//!
//! Fields are found by the one header reader ([`header`]) that the rewrite also uses, so the
//! submission checks see exactly the fields that will be relayed; mail-parser only decodes
//! the values (address lists, encoded words). Messages reach [`summarize`] with canonical
//! line ends ([`lines`]), so a bare CR or LF cannot make the two disagree either.

pub mod header;
pub mod lines;

use mail_parser::HeaderValue;
use mail_parser::parsers::MessageStream;

pub use lines::{BareCrInHeader, canonical_line_ends};

/// The time in a message's Date field, if it has a readable one (INTERNALDATE of imported
/// mail that carries none of its own: POP3, .eml and Maildir files).
pub fn date_header(raw: &[u8]) -> Option<jiff::Timestamp> {
    let parsed = mail_parser::MessageParser::default().parse_headers(raw)?;
    jiff::Timestamp::from_second(parsed.date()?.to_timestamp()).ok()
}

/// Fields that name who sends the message besides From (RFC 5322 §3.6.2, §3.6.6). When From is
/// not rewritten they reach recipients as written, so they must name the user too.
pub const SENDER_FIELDS: [&str; 3] = ["Sender", "Resent-From", "Resent-Sender"];

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
    /// Every `Sender`, `Resent-From` and `Resent-Sender` field in order: its name as in
    /// [`SENDER_FIELDS`] and its addresses, lower-cased (empty when none could be read).
    pub sender_fields: Vec<(&'static str, Vec<String>)>,
}

/// Summarise the header block of `raw`. Never fails: a message with a broken header simply
/// yields fewer facts, and the submission rules decide what that means.
pub fn summarize(raw: &[u8]) -> HeaderSummary {
    let mut out = HeaderSummary::default();
    let block = header::parse_block(raw, 0, raw.len());
    for field in &block.fields {
        let value = &raw[field.value_start..field.end];
        if field.is(raw, "from") {
            out.from_fields += 1;
            let addresses = parse_addresses(value);
            if out.from_fields == 1 {
                out.from_name = addresses.first().and_then(|(name, _)| name.clone());
            }
            out.from_addresses.extend(addresses.into_iter().map(|(_, a)| a));
        } else if let Some(&name) = SENDER_FIELDS.iter().find(|n| field.is(raw, n)) {
            out.sender_fields.push((name, parse_addresses(value).into_iter().map(|(_, a)| a).collect()));
        } else if field.is(raw, "deliver-on") {
            out.deliver_on.push(unfold(&raw[field.value(raw)]));
        } else if field.is(raw, "subject") && out.subject.is_none() {
            out.subject = match MessageStream::new(value).parse_unstructured() {
                HeaderValue::Text(t) => Some(t.into_owned()),
                _ => None,
            };
        } else if field.is(raw, "message-id") && out.message_id.is_none() {
            out.message_id = match MessageStream::new(value).parse_id() {
                HeaderValue::Text(t) => Some(t.into_owned()),
                HeaderValue::TextList(l) => l.into_iter().next().map(|t| t.into_owned()),
                _ => None,
            };
        }
    }
    out
}

/// Every address in the To, Cc and Bcc fields, as written (a dated plus-address keeps its
/// tag and case), each once: the recipients of a message dropped into the IMAP `Scheduled`
/// view, which has no envelope of its own.
pub fn recipients_of(raw: &[u8]) -> Vec<String> {
    let block = header::parse_block(raw, 0, raw.len());
    let mut out: Vec<String> = Vec::new();
    for field in block.fields.iter().filter(|f| ["to", "cc", "bcc"].iter().any(|n| f.is(raw, n))) {
        let HeaderValue::Address(list) = MessageStream::new(&raw[field.value_start..field.end]).parse_address() else {
            continue;
        };
        for a in list.iter().filter_map(|a| a.address()) {
            let a = a.trim().to_string();
            if !a.is_empty() && !out.iter().any(|o| o.eq_ignore_ascii_case(&a)) {
                out.push(a);
            }
        }
    }
    out
}

/// The (display name, lower-cased address) pairs of an address-list field value, groups
/// included; mail-parser reads the RFC 5322 syntax and decodes encoded words.
fn parse_addresses(value: &[u8]) -> Vec<(Option<String>, String)> {
    let HeaderValue::Address(list) = MessageStream::new(value).parse_address() else {
        return Vec::new();
    };
    list.iter()
        .filter_map(|a| {
            let address = a.address()?.trim().to_lowercase();
            Some((a.name().map(str::to_string), address))
        })
        .collect()
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
        assert!(s.sender_fields.is_empty());
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
    fn several_deliver_on_headers_are_all_kept() {
        let s = summarize(b"From: a@x\r\ndeliver-on: tomorrow\r\nDELIVER-ON: +2h\r\n\r\n");
        assert_eq!(s.deliver_on, vec!["tomorrow", "+2h"]);
    }

    /// Every spelling of From the rewrite reads as a From field is counted, so a second one
    /// cannot hide from the sender check (issue 8 item 3).
    #[test]
    fn every_from_spelling_is_counted() {
        let cases: &[(&[u8], usize, &[&str])] = &[
            (b"From: a@x\r\nfrom: b@y\r\n\r\n", 2, &["a@x", "b@y"]),
            (b"From: a@x\r\nFrom : b@y\r\n\r\n", 2, &["a@x", "b@y"]),
            (b"FROM\t: a@x\r\n\r\n", 1, &["a@x"]),
            (b"From: Team: a@x, \"B\" <b@y>;\r\n\r\n", 1, &["a@x", "b@y"]),
            // A From line after the header's end is body text, for the checks as for the rewrite.
            (b"From: a@x\r\n\r\nFrom: b@y\r\n", 1, &["a@x"]),
            (b"From: a@x\r\nnot a field\r\nFrom: b@y\r\n\r\n", 1, &["a@x"]),
        ];
        for (raw, fields, addresses) in cases {
            let s = summarize(raw);
            assert_eq!(s.from_fields, *fields, "{:?}", String::from_utf8_lossy(raw));
            assert_eq!(s.from_addresses, *addresses, "{:?}", String::from_utf8_lossy(raw));
        }
    }

    #[test]
    fn sender_and_resent_fields_are_listed() {
        let raw = b"From: a@x\r\nSender: S <S@Y>\r\nresent-from: r@z, q@z\r\nResent-Sender :\r\n  <t@w>\r\nResent-Date: x\r\n\r\n";
        let s = summarize(raw);
        assert_eq!(
            s.sender_fields,
            vec![
                ("Sender", vec!["s@y".to_string()]),
                ("Resent-From", vec!["r@z".to_string(), "q@z".to_string()]),
                ("Resent-Sender", vec!["t@w".to_string()]),
            ]
        );
        let s = summarize(b"From: a@x\r\nSender: no address here\r\n\r\n");
        assert_eq!(s.sender_fields, vec![("Sender", vec![])]);
    }
}
