//! Delivery status notifications (RFC 3464): when recipients fail for good or their
//! lifetime runs out, the sender gets a `multipart/report` naming each recipient, the
//! relay's answer, and the original header. Pure: bytes in, bytes out.

use jiff::Timestamp;

use crate::store::QueueRecord;

/// One recipient the notice reports on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedRecipient {
    pub address: String,
    /// The relay's reply or our error text.
    pub reason: String,
    /// The RFC 3463 status the relay gave with its refusal (`5.1.1`), if it gave one.
    pub status: Option<String>,
    /// Gave up after retrying (lifetime), rather than a permanent refusal.
    pub expired: bool,
    /// Attempts that sent the whole message and got no reply: each may have delivered it.
    pub possibly_delivered: u32,
}

/// Why a recipient is not tried again after its second possibly-delivered attempt.
pub const POSSIBLY_DELIVERED_TWICE: &str = "possibly delivered twice; not retried";

impl FailedRecipient {
    /// Not tried again because two attempts may each have delivered it.
    fn twice(&self) -> bool {
        self.possibly_delivered >= 2
    }

    /// It may have arrived after all.
    fn maybe_arrived(&self) -> bool {
        self.possibly_delivered > 0
    }
}

/// The RFC 3463 status to report: the enhanced code in the relay's reply when it has one
/// (`550 5.1.1 …` → `5.1.1`), else 4.4.2 ("bad connection") when two connections were lost
/// after the whole message, 4.4.7 for expiry ("delivery time expired") and 5.0.0 otherwise.
pub fn status_of(f: &FailedRecipient) -> String {
    match f.status.as_deref().filter(|s| s.starts_with('4') || s.starts_with('5')) {
        Some(code) if !f.expired || code.starts_with('4') => code.to_string(),
        _ if f.twice() => "4.4.2".into(),
        _ if f.expired => "4.4.7".into(),
        _ => "5.0.0".into(),
    }
}

/// The header block of a stored message (up to the blank line), for `text/rfc822-headers`.
fn header_block(body: &[u8]) -> &[u8] {
    match body.windows(4).position(|w| w == b"\r\n\r\n") {
        Some(p) => &body[..p + 2],
        None => body,
    }
}

/// Build the notice (mail-builder assembles the `multipart/report`; the report's parts are
/// written as they are, 8bit: RFC 3464 wants `message/delivery-status` unencoded).
pub fn build(
    rec: &QueueRecord,
    original: &[u8],
    failed: &[FailedRecipient],
    now: Timestamp,
    hostname: &str,
) -> Vec<u8> {
    use mail_builder::MessageBuilder;
    use mail_builder::headers::content_type::ContentType;
    use mail_builder::headers::raw::Raw;
    use mail_builder::mime::{BodyPart, MimePart};

    let date = rfc5322(now);
    let subject = rec.subject.as_deref().unwrap_or("(no subject)");
    let mut human = format!(
        "gatepost could not deliver your message \"{}\"\r\n(queue id {}, submitted {}) to:\r\n\r\n",
        clean(subject),
        rec.id,
        rec.submitted_at
    );
    for f in failed {
        human.push_str(&recipient_text(f));
    }
    human.push_str("\r\nOther recipients, if any, are not affected. The original header is attached.\r\n");

    let mut status = format!(
        "Reporting-MTA: dns; {hostname}\r\nX-Gatepost-Queue-ID: {}\r\nArrival-Date: {}\r\n",
        rec.id,
        rfc5322(rec.submitted_at)
    );
    for f in failed {
        status.push_str(&format!(
            "\r\nFinal-Recipient: rfc822; {}\r\nAction: failed\r\nStatus: {}\r\nDiagnostic-Code: smtp; {}\r\nLast-Attempt-Date: {date}\r\n",
            f.address,
            status_of(f),
            clean(&f.reason)
        ));
        if f.maybe_arrived() {
            // An RFC 3464 extension field, for programs reading the report.
            status.push_str("X-Gatepost-Possibly-Delivered: yes\r\n");
        }
    }
    let report = ContentType::new("multipart/report").attribute("report-type", "delivery-status");
    let parts = vec![
        MimePart::new("text/plain", human).transfer_encoding("8bit"),
        MimePart::new(ContentType::new("message/delivery-status"), BodyPart::Binary(status.into_bytes().into()))
            .transfer_encoding("8bit"),
        MimePart::new(ContentType::new("text/rfc822-headers"), BodyPart::Binary(header_block(original).into()))
            .transfer_encoding("8bit"),
    ];
    let daemon = format!("MAILER-DAEMON@{hostname}");
    MessageBuilder::new()
        .from(("Mail Delivery System", daemon.as_str()))
        .to(rec.sender.as_str())
        .subject("Undelivered Mail Returned to Sender")
        .date(now.as_second())
        .message_id(format!("{}.dsn@{hostname}", rec.id))
        .header("Auto-Submitted", Raw::new("auto-replied"))
        .body(MimePart::new(report, BodyPart::Multipart(parts)))
        .write_to_vec()
        .unwrap_or_default()
}

/// The human part's lines about one recipient.
fn recipient_text(f: &FailedRecipient) -> String {
    // The twice case's reason already says what happened ("possibly delivered twice; …").
    let why = match (f.twice(), f.expired) {
        (true, _) => "",
        (false, true) => "gave up after retrying: ",
        (false, false) => "refused: ",
    };
    let mut text = format!("  <{}>: {why}{}\r\n", f.address, clean(&f.reason));
    if f.twice() {
        text.push_str(
            "    Twice the relay took the whole message and then never confirmed it, so this\r\n    \
             recipient may have it once or twice; gatepost stopped rather than send more copies.\r\n",
        );
    } else if f.maybe_arrived() {
        text.push_str(
            "    An earlier attempt may have delivered it: the relay took the whole message\r\n    \
             then but never confirmed it.\r\n",
        );
    }
    text
}

fn rfc5322(t: Timestamp) -> String {
    t.to_zoned(jiff::tz::TimeZone::UTC).strftime("%a, %d %b %Y %H:%M:%S +0000").to_string()
}

/// One line of printable text: replies and subjects come from outside.
fn clean(s: &str) -> String {
    s.chars().map(|c| if c.is_control() { ' ' } else { c }).take(500).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use mail_parser::MimeHeaders;

    use crate::store::QueueState;

    #[test]
    fn status_codes() {
        let f = |status: Option<&str>, expired| FailedRecipient {
            address: "a@x".into(),
            reason: "the words never matter".into(),
            status: status.map(str::to_string),
            expired,
            possibly_delivered: 0,
        };
        assert_eq!(status_of(&f(Some("5.1.1"), false)), "5.1.1");
        assert_eq!(status_of(&f(None, false)), "5.0.0", "a refusal without an enhanced code");
        assert_eq!(status_of(&f(Some("4.3.2"), true)), "4.3.2");
        assert_eq!(status_of(&f(None, true)), "4.4.7");
        assert_eq!(status_of(&f(Some("5.7.1"), true)), "4.4.7", "expired: the last refusal was not final");
        assert_eq!(status_of(&f(Some("2.0.0"), false)), "5.0.0", "never a success status in a failure report");
    }

    #[test]
    fn possibly_delivered_twice_is_said_in_words_and_in_the_report() {
        let rec = crate::store::tests::sample_record(
            "01JF0000000000000000000000",
            "alice",
            "2026-12-25T08:00:00Z".parse().unwrap(),
            QueueState::Failed,
        );
        let failed = [
            FailedRecipient {
                address: "bob@example.net".into(),
                reason: format!("{POSSIBLY_DELIVERED_TWICE}: connection lost during the end of DATA"),
                status: None,
                expired: false,
                possibly_delivered: 2,
            },
            FailedRecipient {
                address: "carol@example.net".into(),
                reason: "550 5.1.1 no such user".into(),
                status: Some("5.1.1".into()),
                expired: false,
                possibly_delivered: 1,
            },
        ];
        let dsn = build(&rec, b"Subject: hi\r\n\r\nx\r\n", &failed, "2026-12-25T08:00:05Z".parse().unwrap(), "gp");
        let text = String::from_utf8(dsn).unwrap();
        assert!(text.contains("<bob@example.net>: possibly delivered twice; not retried: connection lost"), "{text}");
        assert!(text.contains("may have it once or twice"), "{text}");
        assert!(text.contains("<carol@example.net>: refused: 550 5.1.1"), "{text}");
        assert!(text.contains("An earlier attempt may have delivered it"), "{text}");
        assert!(
            text.contains(
                "Final-Recipient: rfc822; bob@example.net\r\nAction: failed\r\nStatus: 4.4.2\r\n\
                 Diagnostic-Code: smtp; possibly delivered twice; not retried"
            ),
            "{text}"
        );
        assert_eq!(text.matches("X-Gatepost-Possibly-Delivered: yes\r\n").count(), 2, "{text}");
    }

    #[test]
    fn notice_is_a_parseable_report() {
        let rec = crate::store::tests::sample_record(
            "01JF0000000000000000000000",
            "alice",
            "2026-12-25T08:00:00Z".parse().unwrap(),
            QueueState::Failed,
        );
        let original = b"From: alice@example.com\r\nSubject: hi\r\n\r\nsecret body\r\n";
        let failed = [FailedRecipient {
            address: "bob@example.net".into(),
            reason: "550 5.1.1 <bob@example.net>: no such user\r\n".into(),
            status: Some("5.1.1".into()),
            expired: false,
            possibly_delivered: 0,
        }];
        let dsn = build(&rec, original, &failed, "2026-12-25T08:00:05Z".parse().unwrap(), "gp.example");
        let text = String::from_utf8(dsn.clone()).unwrap();
        assert!(
            text.contains("Final-Recipient: rfc822; bob@example.net\r\nAction: failed\r\nStatus: 5.1.1\r\n"),
            "{text}"
        );
        assert!(text.contains("Subject: hi") && !text.contains("secret body"), "headers only, never the body");
        let msg = mail_parser::MessageParser::default().parse(&dsn).unwrap();
        assert_eq!(msg.content_type().unwrap().subtype(), Some("report"));
        assert_eq!(msg.parts.len(), 4, "container + 3 parts");
        assert_eq!(msg.to().unwrap().first().unwrap().address(), Some("alice@example.com"));
    }
}
