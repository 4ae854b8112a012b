//! Attacks on submission content, over real sockets and TLS against the real server; where
//! what reaches recipients matters, the `file://` relay's `.eml` output (the default test
//! config relays immediate mail to `<data>/outbox/`) is read back. Some of these held before
//! issue 8 and are kept as the record of what is defended: bare CR header smuggling (From,
//! Bcc, Deliver-On), two From fields, foreign Sender/Resent-*, SMTP smuggling in DATA, header
//! injection through encoded words.

use std::sync::Arc;
use std::time::Duration;

use gatepost::clock::SystemClock;

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
