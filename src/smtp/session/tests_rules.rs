//! Dialogue tests of the submission rules hardened in issue 8: MAIL/RCPT parameters read from
//! the raw line, HOLDUNTIL as RFC 3339, SIZE, STARTTLS order, 8-bit and quoted addresses, the
//! one line-end rule, one From, sender fields, and a header the release can rewrite.

use std::sync::Arc;

use jiff::Timestamp;

use super::tests::{Harness, MSG, NOW, check, settings};
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

#[test]
fn a_parameter_given_twice_is_refused_naming_it() {
    let h = check(
        logged_in(),
        &[
            (
                "MAIL FROM:<alice@example.com> HOLDFOR=3600 HOLDFOR=5\r\n",
                "501 5.5.4",
                "parameter HOLDFOR is given twice",
            ),
            ("RCPT TO:<bob@example.net>\r\n", "503 5.5.1", "MAIL first"),
            (
                "MAIL FROM:<alice@example.com> HOLDUNTIL=2026-12-01T10:00:00Z holduntil=2026-11-23T10:00:05Z\r\n",
                "501 5.5.4",
                "parameter HOLDUNTIL is given twice",
            ),
            ("MAIL FROM:<alice@example.com> SIZE=10 size=20\r\n", "501 5.5.4", "parameter SIZE is given twice"),
            ("MAIL FROM:<alice@example.com> BODY=8BITMIME\r\n", "250 2.1.0", ""),
            ("RCPT TO:<bob@example.net> NOTIFY=NEVER NOTIFY=SUCCESS\r\n", "501 5.5.4", "NOTIFY is given twice"),
            ("RCPT TO:<bob@example.net> NOTIFY=NEVER ORCPT=rfc822;bob@example.net\r\n", "250 2.1.5", ""),
            ("RCPT TO:<carol@example.net> XFOO=1\r\n", "555 5.5.4", "XFOO is not supported"),
        ],
    );
    assert!(h.delivered.is_empty());
}

#[test]
fn holduntil_is_rfc3339_rounded_up_and_quoted_as_sent() {
    let mut h = check(
        logged_in(),
        &[
            (
                "MAIL FROM:<alice@example.com> HOLDUNTIL=2027-02-30T10:00:00Z\r\n",
                "501 5.5.4",
                "HOLDUNTIL=2027-02-30T10:00:00Z names a day that does not exist in the calendar",
            ),
            ("MAIL FROM:<alice@example.com> HOLDUNTIL=2026-12-01T24:00:00Z\r\n", "501 5.5.4", "RFC 3339"),
            (
                "MAIL FROM:<alice@example.com> HOLDUNTIL=1795424400\r\n",
                "501 5.5.4",
                "HOLDUNTIL=1795424400 is not an RFC 3339",
            ),
            (
                "MAIL FROM:<alice@example.com> HOLDUNTIL=2026-11-23T10:30:00+01:00\r\n",
                "501 5.5.4",
                "HOLDUNTIL=2026-11-23T10:30:00+01:00 is in the past",
            ),
            (
                "MAIL FROM:<alice@example.com> HOLDFOR=99999999999999999999999\r\n",
                "501 5.5.4",
                "HOLDFOR=99999999999999999999999 seconds is further ahead than this server's maximum hold",
            ),
            ("MAIL FROM:<alice@example.com> HOLDFOR=-5\r\n", "501 5.5.4", "HOLDFOR=-5 is not a number of seconds"),
            ("MAIL FROM:<alice@example.com> HOLDFOR=5 HOLDUNTIL=2026-12-01T10:00:00Z\r\n", "501 5.5.4", "not both"),
        ],
    );
    // A fraction never sends early: .512 is the next whole second.
    let r = h.run(b"MAIL FROM:<alice@example.com> HOLDUNTIL=2026-12-01T10:00:00.512Z\r\n");
    assert!(r.starts_with("250 2.1.0"), "{r}");
    let r = h.run(format!("RCPT TO:<bob@example.net>\r\nDATA\r\n{MSG}").as_bytes());
    assert!(
        r.contains("250 2.0.0 queued as 01JDTEST000000000000000000; will be delivered 2026-12-01 10:00 UTC"),
        "{r}"
    );
    assert_eq!(h.delivered[0].recipients[0].release_at, "2026-12-01T10:00:01Z".parse::<Timestamp>().unwrap());
    // A Deliver-On that disagrees is refused at DATA; the hold is quoted as sent there too.
    h.run(
        b"MAIL FROM:<alice@example.com> HOLDUNTIL=2026-12-01T11:00:00+01:00\r\nRCPT TO:<bob@example.net>\r\nDATA\r\n",
    );
    let r = h.run(b"From: alice@example.com\r\nDeliver-On: 2026-12-02\r\n\r\nx\r\n.\r\n");
    assert!(r.starts_with("554 5.6.0 Deliver-On value \"2026-12-02\" disagrees"), "{r}");
}

#[test]
fn size_parameter() {
    check(
        logged_in(),
        &[
            ("MAIL FROM:<alice@example.com> SIZE=123456789012345678901\r\n", "501 5.5.4", "at most 20 digits"),
            ("MAIL FROM:<alice@example.com> SIZE=12a\r\n", "501 5.5.4", "not a size"),
            ("MAIL FROM:<alice@example.com> SIZE=\r\n", "501 5.5.4", "SIZE"),
            ("MAIL FROM:<alice@example.com> SIZE=99999999999999999999\r\n", "552 5.3.4", "limit of 2000"),
            ("MAIL FROM:<alice@example.com> SIZE=2001\r\n", "552 5.3.4", "limit of 2000"),
            ("MAIL FROM:<alice@example.com> SIZE=2000\r\n", "250 2.1.0", ""),
        ],
    );
}

#[test]
fn starttls_after_ehlo_and_without_parameters() {
    check(
        Harness::new(false),
        &[
            ("STARTTLS\r\n", "503 5.5.1", "EHLO first"),
            ("HELO c\r\n", "250 gp.test", ""),
            ("STARTTLS\r\n", "503 5.5.1", "EHLO first"),
            ("EHLO c\r\n", "250-gp.test", "STARTTLS"),
            ("STARTTLS now\r\n", "501 5.5.4", "no parameters"),
            ("STARTTLS \r\n", "220 2.0.0", "ready to start TLS"),
        ],
    );
}

/// RFC 6531 §3.5: 8-bit addresses only in a transaction that asked for SMTPUTF8, and then
/// only as UTF-8; what is accepted is what is queued, byte for byte.
#[test]
fn eight_bit_addresses_need_smtputf8() {
    let mut h = check(
        logged_in(),
        &[
            ("MAIL FROM:<j\u{f6}rg@example.com>\r\n", "550 5.6.7", "SMTPUTF8"),
            ("MAIL FROM:<alice@example.com>\r\n", "250 2.1.0", ""),
            ("RCPT TO:<b\u{f6}b@example.net>\r\n", "553 5.6.7", "SMTPUTF8"),
            ("RCPT TO:<bob@b\u{fc}cher.example>\r\n", "553 5.6.7", ""),
            ("RSET\r\n", "250 2.0.0", ""),
            ("MAIL FROM:<alice@example.com> SMTPUTF8\r\n", "250 2.1.0", ""),
            ("RCPT TO:<b\u{f6}b@b\u{fc}cher.example>\r\n", "250 2.1.5", ""),
        ],
    );
    let r = h.run(b"RCPT TO:<b\xf6b@example.net>\r\n");
    assert!(r.starts_with("501 5.1.3") && r.contains("not valid UTF-8"), "{r}");
    let r = h.run(format!("DATA\r\n{MSG}").as_bytes());
    assert!(r.contains("250 2.0.0 queued as"), "{r}");
    assert_eq!(h.delivered[0].recipients[0].address, "b\u{f6}b@b\u{fc}cher.example");
    let r = h.run(b"MAIL FROM:<alice@example.com>\r\nRCPT TO:<\"\xc3\xa9\"@example.net>\r\n");
    assert!(r.contains("553 5.6.7"), "{r}");
}

#[test]
fn quoted_local_parts_are_kept_and_never_a_schedule() {
    let mut h = logged_in();
    let script = "MAIL FROM:<alice@example.com>\r\nRCPT TO:<\"a b\"@example.net>\r\n\
                  RCPT TO:<\"bob+2026-12-25\"@example.net>\r\nRCPT TO:<bob+2026-12-24@example.net>\r\nDATA\r\n";
    let r = h.run(script.as_bytes());
    assert_eq!(r.matches("250 2.1.5").count(), 3, "{r}");
    let r = h.run(MSG.as_bytes());
    assert!(r.contains("will be delivered now and 2026-12-24 08:00 UTC"), "{r}");
    let got: Vec<(&str, &str)> =
        h.delivered[0].recipients.iter().map(|r| (r.original.as_str(), r.address.as_str())).collect();
    assert_eq!(
        got,
        [
            ("\"a b\"@example.net", "\"a b\"@example.net"),
            ("\"bob+2026-12-25\"@example.net", "\"bob+2026-12-25\"@example.net"),
            ("bob+2026-12-24@example.net", "bob@example.net"),
        ]
    );
    assert_eq!(h.delivered[0].recipients[1].release_at, NOW.parse::<Timestamp>().unwrap());
    check(
        h,
        &[
            ("MAIL FROM:<alice@example.com>\r\n", "250 2.1.0", ""),
            ("RCPT TO:<\"a\x1b[2Jb\"@example.net>\r\n", "501 5.1.3", "control character"),
        ],
    );
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

#[test]
fn low_storage_refuses_new_transactions_only() {
    let mut h = logged_in();
    h.s.set_storage_low(true);
    let r = h.run(b"MAIL FROM:<alice@example.com>\r\n");
    assert!(r.starts_with("452 4.3.1 insufficient system storage"), "{r}");
    h.s.set_storage_low(false);
    let r = h.run(b"MAIL FROM:<alice@example.com>\r\n");
    assert!(r.starts_with("250 2.1.0"), "{r}");
    // An open transaction is not cut: the message is already on its way.
    h.s.set_storage_low(true);
    assert!(h.run(b"RCPT TO:<bob@example.net>\r\n").starts_with("250"));
}
