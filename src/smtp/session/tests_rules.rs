//! Dialogue tests of the submission rules hardened in issue 8: the one line-end rule, one
//! From, sender fields, and a header the release can rewrite.

use std::sync::Arc;

use super::tests::{Harness, settings};
use super::*;

fn logged_in() -> Harness {
    let mut h = Harness::new(true);
    h.login();
    h
}

/// MAIL, one RCPT, DATA and `message` (ending in CRLF); the reply to the message.
fn submit(h: &mut Harness, rcpt: &str, message: &str) -> String {
    let r = h.run(format!("MAIL FROM:<alice@example.com>\r\nRCPT TO:<{rcpt}>\r\nDATA\r\n").as_bytes());
    assert!(r.ends_with("354 end data with <CR><LF>.<CR><LF>\r\n"), "{r}");
    h.run(format!("{message}.\r\n").as_bytes())
}

/// One line-end rule: a bare CR in the header is refused (it hid From, Bcc and Deliver-On
/// from the checks while the relay made it a line end); bare LFs and body CRs become CRLF.
#[test]
fn bare_cr_in_the_header_is_refused_and_line_ends_are_made_canonical() {
    let mut h = logged_in();
    for smuggled in [
        "From: alice@example.com\r\nX-Foo: a\rFrom: ceo@bank.example\r\n\r\nx\r\n",
        "From: alice@example.com\r\nTo: bob@example.net\r\n\rBcc: eve@example.org\r\n\r\nx\r\n",
        "From: alice@example.com\r\nSubject: s\rDeliver-On: 2026-11-23\r\n\r\nx\r\n",
    ] {
        let r = submit(&mut h, "bob@example.net", smuggled);
        assert!(r.starts_with("554 5.6.0 the header has a bare CR") && r.contains("send CRLF line ends"), "{r}");
    }
    assert!(h.delivered.is_empty());
    let r = submit(&mut h, "bob@example.net", "From: alice@example.com\nSubject: lf\n\nline\nbody\rCR\r\n");
    assert!(r.contains("250 2.0.0 queued as"), "{r}");
    assert_eq!(h.delivered[0].body, b"From: alice@example.com\r\nSubject: lf\r\n\r\nline\r\nbody\r\nCR\r\n");
    assert_eq!(h.delivered[0].subject.as_deref(), Some("lf"));
    // A blank bare-LF line ends the header for every reader: a Deliver-On after it is body text.
    let r = submit(&mut h, "bob@example.net", "From: alice@example.com\r\nX: y\n\nDeliver-On: 2027-01-15\r\n\r\nx\r\n");
    assert!(r.contains("will be delivered now"), "{r}");
    assert!(h.delivered[1].body.starts_with(b"From: alice@example.com\r\nX: y\r\n\r\nDeliver-On:"));
}

#[test]
fn exactly_one_from_field() {
    let mut h = logged_in();
    for two in [
        "From: ceo@bank.example\r\nFrom: alice@example.com\r\n\r\nx\r\n",
        "From: alice@example.com\r\nfrom: alice@example.com\r\n\r\nx\r\n",
        "From: alice@example.com\r\nFrom : ceo@bank.example\r\n\r\nx\r\n",
        "FROM\t: ceo@bank.example\r\nFrom: alice@example.com\r\n\r\nx\r\n",
    ] {
        let r = submit(&mut h, "bob@example.net", two);
        assert!(r.starts_with("554 5.6.0 message has 2 From fields; RFC 5322 allows exactly one"), "{two:?}: {r}");
    }
    let r = submit(&mut h, "bob@example.net", "From : alice@example.com\r\n\r\nx\r\n");
    assert!(r.contains("250 2.0.0 queued as"), "obsolete `From :` alone is one From: {r}");
}

#[test]
fn sender_fields_must_be_the_users_when_from_is_not_rewritten() {
    let foreign = [
        ("Sender: ceo@bank.example\r\n", "Sender <ceo@bank.example> is not yours"),
        ("Resent-From: CEO <ceo@bank.example>\r\n", "Resent-From <ceo@bank.example> is not yours"),
        ("resent-sender : ceo@bank.example\r\n", "Resent-Sender <ceo@bank.example> is not yours"),
        ("Sender: undisclosed-recipients:;\r\n", "Sender field has no address"),
    ];
    let unrewritten = Arc::new(SessionSettings { rewrite_from: false, ..(*settings()).clone() });
    let mut h = Harness::with_settings(true, unrewritten);
    h.login();
    for (field, why) in foreign {
        let r = submit(&mut h, "bob@example.net", &format!("From: alice@example.com\r\n{field}\r\nx\r\n"));
        assert!(r.starts_with("550 5.7.1") && r.contains(why), "{field:?}: {r}");
    }
    let own =
        "From: alice@example.com\r\nSender: Alice <ALICE@example.com>\r\nResent-From: alice@example.com\r\n\r\nx\r\n";
    assert!(submit(&mut h, "bob@example.net", own).contains("250 2.0.0 queued as"));
    // With From rewritten (the default) the rewrite removes them, so they are not refused.
    let mut h = logged_in();
    for (field, _) in foreign {
        let r = submit(&mut h, "bob@example.net", &format!("From: alice@example.com\r\n{field}\r\nx\r\n"));
        assert!(r.contains("250 2.0.0 queued as"), "{field:?}: {r}");
    }
}

/// What the release's rewrite would refuse is refused at DATA, with the rewrite's own check.
#[test]
fn a_message_the_rewrite_cannot_take_is_refused_at_data() {
    let mut h = logged_in();
    for bad in [
        "From alice@example.com Mon Nov 23 10:00:00 2026\r\nFrom: alice@example.com\r\n\r\nx\r\n",
        "\r\nFrom: alice@example.com\r\n\r\nx\r\n",
    ] {
        let r = submit(&mut h, "bob@example.net", bad);
        assert!(r.starts_with("554 5.6.0 the message does not start with a header field"), "{bad:?}: {r}");
    }
    assert!(h.delivered.is_empty());
}
