//! Attacks on submission content, over real sockets and TLS against the real server; where
//! what reaches recipients matters, the `file://` relay's `.eml` output (the default test
//! config relays immediate mail to `<data>/outbox/`) is read back. Some of these held before
//! issue 8 and are kept as the record of what is defended: duplicate RFC 4865 parameters, bare
//! CR header smuggling (From, Bcc, Deliver-On), two From fields, foreign Sender/Resent-*, 8-bit
//! addresses without SMTPUTF8, SMTP smuggling in DATA, header injection through encoded words,
//! control characters in addresses.

use std::sync::Arc;
use std::time::Duration;

use gatepost::clock::{ManualClock, SystemClock};

use crate::support::*;

/// A TLS session logged in as alice.
async fn logged_in(server: &TestServer) -> Client {
    let (c, _) = Client::plain(server.submission).await;
    let mut c = c.starttls().await;
    c.login().await;
    c
}

/// The `.eml` the file relay wrote for `id`, once it is there (immediate mail is relayed at
/// once by the dispatcher).
async fn relayed(server: &TestServer, id: &str) -> String {
    let path = server.dir.path().join("outbox").join(format!("{id}.eml"));
    for _ in 0..500 {
        if let Ok(bytes) = std::fs::read(&path) {
            return String::from_utf8(bytes).expect("UTF-8 test message");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{} was never written", path.display());
}

/// The header lines of a relayed file (the relay's envelope lines included), one per line.
fn header_lines(eml: &str) -> Vec<&str> {
    eml.split("\r\n\r\n").next().unwrap_or("").split("\r\n").collect()
}

async fn data(c: &mut Client, rcpt: &str, message: &[u8]) -> String {
    c.submit(EMAIL, &[rcpt], message).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_hold_parameters_are_refused() {
    let server = TestServer::start().await;
    let mut c = logged_in(&server).await;
    for (line, name) in [
        ("MAIL FROM:<alice@example.com> HOLDFOR=3600 HOLDFOR=5", "HOLDFOR"),
        ("MAIL FROM:<alice@example.com> HOLDUNTIL=2099-01-15T10:00:00Z HOLDUNTIL=2000-01-01T00:00:00Z", "HOLDUNTIL"),
        ("MAIL FROM:<alice@example.com> holdfor=3600 HoldFor=5", "HOLDFOR"),
    ] {
        let r = c.cmd(line).await;
        assert!(r.starts_with("501 5.5.4") && r.contains(&format!("parameter {name} is given twice")), "{line}: {r}");
        let r = c.cmd("RCPT TO:<bob@example.net>").await;
        assert!(r.starts_with("503 5.5.1"), "a refused MAIL opened a transaction: {r}");
    }
    assert_eq!(server.store().message_count().unwrap(), 0);
    server.stop().await;
}

/// RFC 4865 HOLDUNTIL is read as sent: a fraction never releases early, an impossible date
/// is refused (it was moved to 2 March), and replies quote the value as sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn holduntil_never_early_and_never_guessed() {
    let clock = Arc::new(ManualClock::new("2026-11-23T10:00:00Z".parse().unwrap()));
    let server = TestServer::start_with(|t| t, clock).await;
    let mut c = logged_in(&server).await;
    let r = c.cmd("MAIL FROM:<alice@example.com> HOLDUNTIL=2027-02-30T10:00:00Z").await;
    assert!(r.starts_with("501 5.5.4 HOLDUNTIL=2027-02-30T10:00:00Z names a day that does not exist"), "{r}");
    let r = c.cmd("MAIL FROM:<alice@example.com> HOLDUNTIL=2026-11-23T10:00:00+01:00").await;
    assert!(r.starts_with("501 5.5.4 HOLDUNTIL=2026-11-23T10:00:00+01:00 is in the past"), "{r}");
    let r = c.cmd("MAIL FROM:<alice@example.com> HOLDFOR=99999999999999999999999").await;
    assert!(r.contains("further ahead than this server's maximum hold"), "{r}");
    let r = c.cmd("MAIL FROM:<alice@example.com> HOLDUNTIL=2026-11-24T10:00:00.512Z").await;
    assert!(r.starts_with("250"), "{r}");
    for line in ["RCPT TO:<bob@example.net>", "DATA"] {
        c.cmd(line).await;
    }
    c.send(b"From: alice@example.com\r\n\r\nx\r\n.\r\n").await;
    let r = c.read_reply().await;
    let rec = server.store().get_message(queue_id(&r).parse().unwrap()).unwrap().expect("record");
    assert_eq!(rec.recipients[0].release_at, "2026-11-24T10:00:01Z".parse().unwrap(), "rounded up, never down");
    server.stop().await;
}

/// A bare CR was a line end to the relay and text to the checks: it smuggled a second From,
/// a Bcc past its removal and a Deliver-On past the schedule rules.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bare_cr_header_smuggling_is_refused() {
    let server = TestServer::start().await;
    let mut c = logged_in(&server).await;
    for smuggled in [
        &b"From: alice@example.com\r\nX-Foo: a\rFrom: ceo@bank.example\r\n\r\nwire the money\r\n"[..],
        b"From: alice@example.com\r\nTo: bob@example.net\r\n\rBcc: eve@evil.example\r\n\r\nx\r\n",
        b"From: alice@example.com\r\nSubject: hi\rDeliver-On: 2026-01-01\r\n\r\nx\r\n",
        b"X-Foo: a\rFrom: alice@example.com\r\nFrom: ceo@bank.example\r\n\r\nx\r\n",
    ] {
        let r = data(&mut c, "bob@example.net", smuggled).await;
        assert!(r.starts_with("554 5.6.0") && r.contains("send CRLF line ends"), "{r}");
    }
    assert_eq!(server.store().message_count().unwrap(), 0);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_from_field_is_refused() {
    let server =
        TestServer::start_with(|t| format!("{t}[rewrite]\nrewrite_from = false\n"), Arc::new(SystemClock)).await;
    let mut c = logged_in(&server).await;
    for two in [
        &b"From: ceo@bank.example\r\nFrom: alice@example.com\r\n\r\nx\r\n"[..],
        b"From: alice@example.com\r\nfrom: ceo@bank.example\r\n\r\nx\r\n",
        b"From: alice@example.com\r\nFrom : ceo@bank.example\r\n\r\nx\r\n",
    ] {
        let r = data(&mut c, "bob@example.net", two).await;
        assert!(r.starts_with("554 5.6.0 message has 2 From fields"), "{r}");
    }
    assert_eq!(server.store().message_count().unwrap(), 0);
    server.stop().await;
}

/// Sender:, Resent-From: and Resent-Sender: with foreign addresses: removed when From is
/// rewritten, refused when it is not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_sender_and_resent_fields() {
    let message = b"From: alice@example.com\r\nSender: ceo@bank.example\r\nResent-From: ceo@bank.example\r\nResent-Sender: ceo@bank.example\r\nSubject: s\r\n\r\nx\r\n";
    let server = TestServer::start().await;
    let mut c = logged_in(&server).await;
    let r = data(&mut c, "bob@example.net", message).await;
    assert!(r.starts_with("250 2.0.0 queued as"), "{r}");
    let eml = relayed(&server, &queue_id(&r)).await;
    assert!(!eml.contains("ceo@bank.example"), "a foreign sender field reached the relay:\n{eml}");
    server.stop().await;

    let server =
        TestServer::start_with(|t| format!("{t}[rewrite]\nrewrite_from = false\n"), Arc::new(SystemClock)).await;
    let mut c = logged_in(&server).await;
    let r = data(&mut c, "bob@example.net", message).await;
    assert!(r.starts_with("550 5.7.1 Sender <ceo@bank.example> is not yours"), "{r}");
    let r =
        data(&mut c, "bob@example.net", b"From: alice@example.com\r\nResent-From: ceo@bank.example\r\n\r\nx\r\n").await;
    assert!(r.starts_with("550 5.7.1 Resent-From <ceo@bank.example> is not yours"), "{r}");
    assert_eq!(server.store().message_count().unwrap(), 0);
    server.stop().await;
}

/// 8-bit addresses without SMTPUTF8 were relayed with U+FFFD, i.e. to another mailbox.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_bit_addresses_without_smtputf8_are_refused() {
    let server = TestServer::start().await;
    let mut c = logged_in(&server).await;
    c.send("MAIL FROM:<älice@example.com>\r\n".as_bytes()).await;
    let r = c.read_reply().await;
    assert!(r.starts_with("550 5.6.7"), "{r}");
    assert!(c.cmd("MAIL FROM:<alice@example.com>").await.starts_with("250"));
    c.send(b"RCPT TO:<b\xf6b@example.net>\r\n").await;
    let r = c.read_reply().await;
    assert!(r.starts_with("553 5.6.7"), "Latin-1 byte: {r}");
    c.send("RCPT TO:<bøb@example.net>\r\n".as_bytes()).await;
    let r = c.read_reply().await;
    assert!(r.starts_with("553 5.6.7"), "UTF-8 without SMTPUTF8: {r}");
    assert!(c.cmd("RSET").await.starts_with("250"));
    // With SMTPUTF8 the address is kept and relayed byte for byte; non-UTF-8 is a syntax error.
    assert!(c.cmd("MAIL FROM:<alice@example.com> SMTPUTF8").await.starts_with("250"));
    c.send(b"RCPT TO:<b\xf6b@example.net>\r\n").await;
    assert!(c.read_reply().await.starts_with("501 5.1.3"));
    let r = c.cmd("RCPT TO:<bøb@bücher.example>").await;
    assert!(r.starts_with("250"), "{r}");
    c.cmd("DATA").await;
    c.send(b"From: alice@example.com\r\n\r\nx\r\n.\r\n").await;
    let r = c.read_reply().await;
    let eml = relayed(&server, &queue_id(&r)).await;
    assert!(eml.contains("X-Gatepost-Recipient: <bøb@bücher.example>\r\n"), "{eml}");
    assert!(!eml.contains('\u{fffd}'), "{eml}");
    server.stop().await;
}

/// `\n.\r\n` and `\r.\r\n` never end DATA: one message, to its one recipient, with the rest
/// as its text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_smuggling_in_data_stays_in_the_body() {
    let server = TestServer::start().await;
    let mut c = logged_in(&server).await;
    for end in ["\n.\r\n", "\r.\r\n", "\r\n.\n", "\n.\n"] {
        assert!(c.cmd("MAIL FROM:<alice@example.com>").await.starts_with("250"));
        assert!(c.cmd("RCPT TO:<bob@example.net>").await.starts_with("250"));
        assert!(c.cmd("DATA").await.starts_with("354"));
        let wire = format!(
            "From: alice@example.com\r\nSubject: smuggle\r\n\r\nfirst{end}MAIL FROM:<alice@example.com>\r\n\
             RCPT TO:<eve@evil.example>\r\nDATA\r\nFrom: alice@example.com\r\n\r\nsmuggled\r\n.\r\n"
        );
        c.send(wire.as_bytes()).await;
        let r = c.read_reply().await;
        assert!(r.starts_with("250 2.0.0 queued as"), "{end:?}: {r}");
        let eml = relayed(&server, &queue_id(&r)).await;
        assert!(eml.contains("RCPT TO:<eve@evil.example>") && eml.contains("smuggled"), "{eml}");
        assert!(!eml.contains("X-Gatepost-Recipient: <eve@evil.example>"), "{eml}");
        // Nothing else was pending: the next command gets its own reply.
        assert!(c.cmd("NOOP").await.starts_with("250 2.0.0 OK"));
    }
    assert_eq!(server.store().message_count().unwrap(), 4);
    server.stop().await;
}

/// An encoded word that decodes to CRLF + a field stays one encoded Subject at the relay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_injection_through_encoded_words() {
    let server = TestServer::start().await;
    let mut c = logged_in(&server).await;
    let message = b"From: alice@example.com\r\nSubject: =?utf-8?q?hi=0D=0AFrom:_ceo@bank.example=0D=0ABcc:_eve@evil.example?=\r\n\r\nx\r\n";
    let r = data(&mut c, "bob@example.net", message).await;
    assert!(r.starts_with("250 2.0.0 queued as"), "{r}");
    let eml = relayed(&server, &queue_id(&r)).await;
    let lines = header_lines(&eml);
    let froms: Vec<&&str> = lines.iter().filter(|l| l.to_ascii_lowercase().starts_with("from:")).collect();
    assert_eq!(froms.len(), 1, "{eml}");
    assert!(froms[0].contains("<gatepost@localhost>"), "{eml}");
    assert!(!lines.iter().any(|l| l.to_ascii_lowercase().starts_with("bcc:")), "{eml}");
    assert!(lines.iter().any(|l| l.starts_with("Subject: =?utf-8?q?hi=0D=0AFrom:")), "kept encoded:\n{eml}");
    server.stop().await;
}

/// Control characters in addresses (terminal escapes, NUL, a CR that could start a second
/// command at a lenient relay) are refused at MAIL and RCPT.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_characters_in_addresses_are_refused() {
    let server = TestServer::start().await;
    let mut c = logged_in(&server).await;
    c.send(b"MAIL FROM:<alice@example.com\x00>\r\n").await;
    assert!(c.read_reply().await.starts_with("501 5.1.7"));
    assert!(c.cmd("MAIL FROM:<alice@example.com>").await.starts_with("250"));
    for rcpt in [
        &b"<bob\x1b[31m@example.net>"[..],
        b"<bob@example.net\rRCPT TO:<eve@evil.example>",
        b"<\"a\x07b\"@example.net>",
    ] {
        c.send(&[b"RCPT TO:", rcpt, b"\r\n"].concat()).await;
        let r = c.read_reply().await;
        assert!(r.starts_with("501 5.1.3") && r.contains("control character"), "{r}");
        assert!(!r.bytes().any(|b| b.is_ascii_control() && b != b'\r' && b != b'\n'), "echoed: {r:?}");
    }
    server.stop().await;
}

/// Quoted local parts reach the relay exactly as accepted, and a quoted plus-date is no
/// schedule.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quoted_local_parts_reach_the_relay_exactly() {
    let server = TestServer::start().await;
    let mut c = logged_in(&server).await;
    let r = c
        .submit(
            EMAIL,
            &["\"a b\"@example.net", "\"bob+2026-12-25\"@example.net"],
            b"From: alice@example.com\r\n\r\nx\r\n",
        )
        .await;
    assert!(r.contains("will be delivered now"), "{r}");
    let eml = relayed(&server, &queue_id(&r)).await;
    assert!(eml.contains("X-Gatepost-Recipient: <\"a b\"@example.net>\r\n"), "{eml}");
    assert!(eml.contains("X-Gatepost-Recipient: <\"bob+2026-12-25\"@example.net>\r\n"), "{eml}");
    server.stop().await;
}
