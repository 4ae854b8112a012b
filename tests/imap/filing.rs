//! gatepost's own filings: a copy of what the user sent lands in `Sent` once its first
//! recipient is delivered, unless the client already put its own copy there.

use std::time::Duration;

use crate::client::{Imap, tagged};
use crate::support::{Client, TestServer};

async fn wait_until(what: &str, mut probe: impl AsyncFnMut() -> bool) {
    for _ in 0..250 {
        if probe().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting for {what}");
}

async fn submit(server: &TestServer, message: &[u8]) {
    let (mut smtp, _) = Client::implicit_tls(server.submissions).await;
    smtp.login().await;
    let r = smtp.submit("alice@example.com", &["bob@example.net"], message).await;
    assert!(r.starts_with("250"), "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivered_message_is_filed_in_sent_once_with_seen() {
    let server = TestServer::start().await;
    let addr = server.running.as_ref().unwrap().imaps_addrs[0];
    let msg = b"From: alice@example.com\r\nTo: bob@example.net\r\nBcc: carol@example.org\r\nSubject: filed\r\nMessage-ID: <f1@example.com>\r\n\r\nsent body\r\n";
    submit(&server, msg).await;
    let mut c = Imap::login(addr).await;
    wait_until("the Sent copy", async || c.cmd("STATUS Sent (MESSAGES)").await[0].contains("MESSAGES 1")).await;
    c.cmd("SELECT Sent").await;
    let r = c.cmd("FETCH 1 (FLAGS BODY.PEEK[])").await;
    assert!(r[0].contains("\\Seen"), "{r:?}");
    assert!(r[0].contains("Bcc: carol@example.org") && r[0].contains("sent body"), "as submitted, Bcc kept: {r:?}");
    // The feed is cleared: a restart files nothing more.
    assert!(server.store().sent_pending(10).unwrap().is_empty());
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let r = c.cmd("STATUS Sent (MESSAGES)").await;
    assert!(r[0].contains("MESSAGES 1"), "exactly once: {r:?}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_clients_own_copy_wins() {
    let server = TestServer::start().await;
    let addr = server.running.as_ref().unwrap().imaps_addrs[0];
    let msg = b"From: alice@example.com\r\nTo: bob@example.net\r\nSubject: own copy\r\nMessage-ID: <own@example.com>\r\n\r\nbody\r\n";
    let mut c = Imap::login(addr).await;
    let r = c.append("Sent", "\\Seen", msg).await;
    assert!(tagged(&r).contains("OK"), "{r:?}");
    submit(&server, msg).await;
    wait_until("the delivery and the filer's pass", async || {
        let sent = server.store().list_messages(None, Some(gatepost::store::QueueState::Sent), 10);
        let delivered = !sent.unwrap_or_default().is_empty();
        delivered && server.store().sent_pending(10).unwrap().is_empty()
    })
    .await;
    let r = c.cmd("STATUS Sent (MESSAGES)").await;
    assert!(r[0].contains("MESSAGES 1"), "no second copy: {r:?}");
    server.stop().await;
}
