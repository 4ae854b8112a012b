//! The main reply paths over real sockets and TLS (the sans-IO table test covers every path;
//! this proves the driver, TLS upgrade, limits and the store behave the same for real).

use crate::support::*;

const MSG: &[u8] = b"From: Alice <alice@example.com>\r\nTo: bob@example.net\r\nSubject: hello\r\nDeliver-On: 2099-12-25\r\n\r\n.leading dot\r\nbody\r\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starttls_auth_and_durable_queueing() {
    let server = TestServer::start_with(
        |t| t.replace("[submission]", "[schedule]\nmax_hold = \"100y\"\n[submission]"),
        std::sync::Arc::new(gatepost::clock::SystemClock),
    )
    .await;
    let (mut c, greeting) = Client::plain(server.submission).await;
    assert!(greeting.starts_with("220 "), "{greeting}");
    let ehlo = c.cmd("EHLO t").await;
    assert!(ehlo.contains("STARTTLS") && !ehlo.contains("AUTH"), "{ehlo}");
    let r = c.cmd("MAIL FROM:<alice@example.com>").await;
    assert!(r.starts_with("530 5.7.0") && r.contains("[session "), "{r}");
    let mut c = c.starttls().await;
    c.login().await;
    let r = c.submit(EMAIL, &["bob@example.net"], MSG).await;
    assert!(r.starts_with("250 2.0.0 queued as ") && r.contains("2099-12-25 08:00 UTC"), "{r}");
    let id = queue_id(&r);
    let rec = server.store().get_message(id.parse().unwrap()).unwrap().expect("record committed before 250");
    assert_eq!(rec.tls.as_deref(), Some("TLSv1.3"));
    assert_eq!(rec.user, USER);
    assert_eq!(rec.subject.as_deref(), Some("hello"));
    assert_eq!(
        server.store().bodies().read(id.parse().unwrap()).unwrap(),
        MSG,
        "body stored byte-exact, dot-unstuffed"
    );
    assert_eq!(c.cmd("QUIT").await.get(..3), Some("221"));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn implicit_tls_and_wrong_password() {
    let server = TestServer::start().await;
    let (mut c, greeting) = Client::implicit_tls(server.submissions).await;
    assert!(greeting.starts_with("220 "), "{greeting}");
    c.cmd("EHLO t").await;
    use base64::Engine;
    let bad = base64::engine::general_purpose::STANDARD.encode("\0alice\0wrong password");
    let r = c.cmd(&format!("AUTH PLAIN {bad}")).await;
    assert!(r.starts_with("535 5.7.8"), "{r}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_limit_per_ip() {
    let server = TestServer::start_with(
        |t| t.replace("[submission]\n", "[submission]\nmax_connections_per_ip = 2\n"),
        std::sync::Arc::new(gatepost::clock::SystemClock),
    )
    .await;
    let (_a, _) = Client::plain(server.submission).await;
    let (_b, _) = Client::plain(server.submission).await;
    let (_c, refused) = Client::plain(server.submission).await;
    assert!(refused.starts_with("421 4.7.0") && refused.contains("from your address"), "{refused}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn command_timeout_closes_with_421() {
    let server = TestServer::start_with(
        |t| t.replace("[submission]\n", "[submission]\ncommand_timeout = \"1s\"\n"),
        std::sync::Arc::new(gatepost::clock::SystemClock),
    )
    .await;
    let (mut c, _) = Client::plain(server.submission).await;
    let r = c.read_reply().await;
    assert!(r.starts_with("421 4.4.2"), "{r}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_a_transaction_finish() {
    let server = TestServer::start().await;
    let (c, _) = Client::plain(server.submission).await;
    let mut c = c.starttls().await;
    c.login().await;
    assert!(c.cmd("MAIL FROM:<alice@example.com>").await.starts_with("250"));
    assert!(c.cmd("RCPT TO:<bob@example.net>").await.starts_with("250"));
    let running = server.running.as_ref().unwrap();
    let _ = running;
    // Start the shutdown while the transaction is open, then finish it.
    let stopper = tokio::spawn(async move { server.stop().await });
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(c.cmd("DATA").await.starts_with("354"));
    c.send(b"From: alice@example.com\r\n\r\nlate\r\n.\r\n").await;
    let r = c.read_reply().await;
    assert!(r.starts_with("250 2.0.0 queued as"), "in-flight transaction must finish: {r}");
    let bye = c.read_reply().await;
    assert!(bye.starts_with("421 4.3.2"), "{bye}");
    let dir = stopper.await.unwrap();
    let store = gatepost::store::Store::open(dir.path()).unwrap();
    assert!(store.get_message(queue_id(&r).parse().unwrap()).unwrap().is_some());
}

/// One line-end rule for every reader (issue 8 item 2): an LF-only message with a bare CR in
/// its body is stored with CRLF line ends; the record's facts are what `message::summarize`
/// reads from those stored bytes; and what the relay gets is the rewrite of exactly those
/// bytes, not of the bytes as sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bytes_checked_are_the_bytes_relayed() {
    let server = TestServer::start().await;
    let (c, _) = Client::plain(server.submission).await;
    let mut c = c.starttls().await;
    c.login().await;
    let sent = b"From: Alice <alice@example.com>\nTo: bob@example.net\nSubject: lf only\n\nline one\nbare\rcr\r\n";
    let r = c.submit(EMAIL, &["bob@example.net"], sent).await;
    assert!(r.starts_with("250 2.0.0 queued as"), "LF-only messages keep working: {r}");
    let id = queue_id(&r);
    let stored = server.store().bodies().read(id.parse().unwrap()).unwrap();
    let canonical =
        b"From: Alice <alice@example.com>\r\nTo: bob@example.net\r\nSubject: lf only\r\n\r\nline one\r\nbare\r\ncr\r\n";
    assert_eq!(stored, canonical.to_vec(), "stored with canonical line ends");
    let rec = server.store().get_message(id.parse().unwrap()).unwrap().expect("record");
    let seen = gatepost::message::summarize(&stored);
    assert_eq!((rec.subject.clone(), rec.sender_name.clone()), (seen.subject, seen.from_name));
    assert_eq!(rec.size, stored.len() as u64);

    let path = server.dir.path().join("outbox").join(format!("{id}.eml"));
    let mut eml = Vec::new();
    for _ in 0..500 {
        if let Ok(bytes) = std::fs::read(&path) {
            eml = bytes;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(!eml.is_empty(), "never relayed");
    // The file relay puts the envelope in front as X-Gatepost-* lines; the rest is the message.
    let mut relayed = eml.as_slice();
    while relayed.starts_with(b"X-Gatepost-") {
        let end = relayed.windows(2).position(|w| w == b"\r\n").expect("line end") + 2;
        relayed = &relayed[end..];
    }
    let config = gatepost::config::Config::from_toml(&config_text(server.dir.path(), ""), &[]).unwrap();
    let policy = gatepost::app::settings::rewrite_policy(&config);
    let expected = gatepost::queue::prepare::rewrite_message(&policy, &rec, &stored).unwrap();
    assert_eq!(String::from_utf8_lossy(relayed), String::from_utf8_lossy(&expected));
    assert!(!relayed.windows(2).any(|w| w[1] == b'\n' && w[0] != b'\r'), "a bare LF reached the relay");
    server.stop().await;
}

/// RFC 3207 over the socket: STARTTLS before EHLO is 503, with a parameter 501; after EHLO the
/// upgrade works (issue 8 item 18).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starttls_needs_ehlo_and_no_parameters() {
    let server = TestServer::start().await;
    let (mut c, _) = Client::plain(server.submission).await;
    let r = c.cmd("STARTTLS").await;
    assert!(r.starts_with("503 5.5.1") && r.contains("EHLO first"), "{r}");
    assert!(c.cmd("EHLO t").await.starts_with("250"));
    let r = c.cmd("STARTTLS please").await;
    assert!(r.starts_with("501 5.5.4"), "{r}");
    let mut c = c.starttls().await;
    c.login().await;
    server.stop().await;
}

/// Below `store.min_free_disk` no new mail is taken: MAIL gets 452 4.3.1 (not counted as a
/// client error), and the same session may try again (here: still full).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_mail_with_452() {
    let server = TestServer::start_with(
        |t| format!("{t}\n[store]\nmin_free_disk = \"1000000TB\"\n"),
        std::sync::Arc::new(gatepost::clock::SystemClock),
    )
    .await;
    let (c, _) = Client::plain(server.submission).await;
    let mut c = c.starttls().await;
    c.login().await;
    for _ in 0..3 {
        let r = c.cmd("MAIL FROM:<alice@example.com>").await;
        assert!(r.starts_with("452 4.3.1") && r.contains("insufficient system storage"), "{r}");
    }
    assert!(c.cmd("NOOP").await.starts_with("250"), "the session goes on");
    assert_eq!(server.store().message_count().unwrap(), 0);
    server.stop().await;
}
