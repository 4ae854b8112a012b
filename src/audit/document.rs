//! The index schema and the document of one record. Addresses and IPs are exact terms
//! (lower-cased; an address also indexes `@domain`, so a search can name a whole domain);
//! subject and content are words; times are microseconds since the epoch (as exact as the
//! record), indexed for ranges; the submission time and the id are fast fields, so results are
//! ordered by (time, id) without reading a stored document.

use std::net::IpAddr;

use mail_parser::decoders::html::html_to_text;
use mail_parser::{MessageParser, PartType};
use tantivy::TantivyDocument;
use tantivy::schema::{
    FAST, Field, INDEXED, IndexRecordOption, STORED, STRING, Schema, TextFieldIndexing, TextOptions,
};

use crate::store::{EventKind, QueueRecord};

/// Bump when the schema or the document changes: the index is then rebuilt at start.
/// 3: times in microseconds, `id` a fast field (results ordered by full time, then id), and a
/// `possibly-delivered` state term. 4: subject and text words without frequencies or
/// positions (every filter is a set of words, never a phrase or a ranking). 5: the route
/// (`system`, or the connected account's name it was sent as).
pub const SCHEMA_VERSION: u32 = 5;
/// The route term of mail through the system relay (no account may be called this).
pub const SYSTEM_ROUTE: &str = "system";
/// An extra `state` term: some attempt may have delivered the message without a reply.
pub const POSSIBLY_DELIVERED: &str = "possibly-delivered";
/// Content beyond this many bytes of text is not indexed (a search still finds the record by
/// every other field).
const MAX_TEXT: usize = 256 * 1024;

#[derive(Clone)]
pub struct Fields {
    pub id: Field,
    pub user: Field,
    pub sender: Field,
    pub recipient: Field,
    pub client_ip: Field,
    pub relay_ip: Field,
    pub system_ip: Field,
    pub state: Field,
    pub route: Field,
    pub subject: Field,
    pub text: Field,
    pub submitted: Field,
    pub sent: Field,
}

/// Subject and content: tokenized words, indexed only as "this record has this word". Filters
/// ask for every word (`TermQuery`s with `IndexRecordOption::Basic`), never a phrase or a
/// score, so frequencies and positions were work for nothing: recording positions was most of
/// what indexing a message cost.
fn words() -> TextOptions {
    TextOptions::default().set_indexing_options(
        TextFieldIndexing::default().set_tokenizer("default").set_index_option(IndexRecordOption::Basic),
    )
}

pub fn schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let fields = Fields {
        id: b.add_text_field("id", STRING | STORED | FAST),
        user: b.add_text_field("user", STRING),
        sender: b.add_text_field("sender", STRING),
        recipient: b.add_text_field("recipient", STRING),
        client_ip: b.add_text_field("client_ip", STRING),
        relay_ip: b.add_text_field("relay_ip", STRING),
        system_ip: b.add_text_field("system_ip", STRING),
        state: b.add_text_field("state", STRING),
        route: b.add_text_field("route", STRING),
        subject: b.add_text_field("subject", words()),
        text: b.add_text_field("text", words()),
        submitted: b.add_i64_field("submitted", INDEXED | FAST),
        sent: b.add_i64_field("sent", INDEXED),
    };
    (b.build(), fields)
}

/// The terms an address is found by: itself and its `@domain`, lower-cased.
pub fn address_terms(address: &str) -> Vec<String> {
    let a = address.trim().trim_start_matches('<').trim_end_matches('>').to_lowercase();
    let mut out = vec![a.clone()];
    if let Some((_, domain)) = a.rsplit_once('@')
        && !domain.is_empty()
    {
        out.push(format!("@{domain}"));
    }
    out
}

/// An IP as indexed: parsed and printed canonically, so `::FFFF:1.2.3.4`, `[::1]` and the
/// like compare equal to what the record holds.
pub fn ip_term(ip: &str) -> String {
    let bare = ip.trim().trim_start_matches('[').trim_end_matches(']');
    match bare.parse::<IpAddr>() {
        Ok(IpAddr::V6(v6)) => v6.to_ipv4_mapped().map(|v4| v4.to_string()).unwrap_or_else(|| v6.to_string()),
        Ok(v4) => v4.to_string(),
        Err(_) => bare.to_lowercase(),
    }
}

/// The readable text of a message: its subject and every text part (HTML as text).
pub fn content_text(subject: Option<&str>, body: &[u8]) -> String {
    let mut text = subject.unwrap_or_default().to_string();
    text.push('\n');
    if let Some(msg) = MessageParser::default().parse(body) {
        // Every text part, both halves of an alternative (they may differ), HTML as text.
        for part in &msg.parts {
            match &part.body {
                PartType::Text(t) => text.push_str(t),
                PartType::Html(h) => text.push_str(&html_to_text(h)),
                _ => continue,
            }
            text.push('\n');
            if text.len() > MAX_TEXT {
                break;
            }
        }
    }
    if text.len() > MAX_TEXT {
        let mut cut = MAX_TEXT;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
    }
    text
}

/// The document of one record; `body` is its stored message (None: body unreadable).
pub fn document(f: &Fields, rec: &QueueRecord, body: Option<&[u8]>) -> TantivyDocument {
    let mut doc = TantivyDocument::default();
    doc.add_text(f.id, rec.id.to_string());
    doc.add_text(f.user, rec.user.to_lowercase());
    for t in address_terms(&rec.sender) {
        doc.add_text(f.sender, t);
    }
    let mut rcpt_terms: Vec<String> = rec
        .recipients
        .iter()
        .flat_map(|r| address_terms(&r.original).into_iter().chain(address_terms(&r.address)))
        .collect();
    rcpt_terms.sort();
    rcpt_terms.dedup();
    for t in rcpt_terms {
        doc.add_text(f.recipient, t);
    }
    if let Some(ip) = rec.client_ip() {
        doc.add_text(f.client_ip, ip_term(&ip.to_string())); // none for gatepost's own notices
    }
    let mut relay: Vec<String> =
        rec.attempts.iter().filter_map(|a| a.relay_ip).map(|ip| ip_term(&ip.to_string())).collect();
    relay.sort();
    relay.dedup();
    for ip in relay {
        doc.add_text(f.relay_ip, ip);
    }
    let mut system: Vec<String> =
        rec.attempts.iter().filter_map(|a| a.system_ip).map(|ip| ip_term(&ip.to_string())).collect();
    system.sort();
    system.dedup();
    for ip in system {
        doc.add_text(f.system_ip, ip);
    }
    doc.add_text(f.state, rec.state.as_str());
    if rec.recipients.iter().any(|r| r.possibly_delivered > 0) {
        doc.add_text(f.state, POSSIBLY_DELIVERED); // `trace --state possibly-delivered`
    }
    doc.add_text(f.route, rec.route.as_deref().unwrap_or(SYSTEM_ROUTE));
    if let Some(s) = &rec.subject {
        doc.add_text(f.subject, s);
    }
    doc.add_text(f.text, content_text(rec.subject.as_deref(), body.unwrap_or_default()));
    doc.add_i64(f.submitted, rec.submitted_at.as_microsecond());
    for e in rec.events.iter().filter(|e| e.kind == EventKind::Delivered) {
        doc.add_i64(f.sent, e.at.as_microsecond());
    }
    doc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_found_by_themselves_and_their_domain() {
        assert_eq!(address_terms("Bob@Example.NET"), vec!["bob@example.net", "@example.net"]);
        assert_eq!(address_terms("<a@b>"), vec!["a@b", "@b"]);
        assert_eq!(address_terms("postmaster"), vec!["postmaster"]);
    }

    #[test]
    fn ips_are_canonical() {
        for (input, want) in [
            ("127.0.0.1", "127.0.0.1"),
            ("::ffff:10.0.0.1", "10.0.0.1"),
            ("[2001:DB8::1]", "2001:db8::1"),
            ("2001:0db8:0000::0001", "2001:db8::1"),
            ("not-an-ip", "not-an-ip"),
        ] {
            assert_eq!(ip_term(input), want, "{input}");
        }
    }

    #[test]
    fn content_is_subject_and_every_text_part() {
        let body = b"Subject: x\r\nContent-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nplain words\r\n--b\r\nContent-Type: text/html\r\n\r\n<p>html <b>bold</b></p>\r\n--b--\r\n";
        let text = content_text(Some("Quarterly figures"), body);
        assert!(text.starts_with("Quarterly figures"));
        assert!(text.contains("plain words"));
        assert!(text.contains("bold"), "{text}");
    }
}
