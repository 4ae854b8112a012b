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
    assert!(server.store().filing_pending(10).unwrap().is_empty());
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
        delivered && server.store().filing_pending(10).unwrap().is_empty()
    })
    .await;
    let r = c.cmd("STATUS Sent (MESSAGES)").await;
    assert!(r[0].contains("MESSAGES 1"), "no second copy: {r:?}");
    server.stop().await;
}

/// A relay that refuses every recipient permanently (a scripted fake: the refusal is the
/// point, and smtp-sink cannot refuse).
async fn refusing_relay() -> u16 {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else { return };
            tokio::spawn(async move {
                let (r, mut w) = tcp.into_split();
                let mut r = BufReader::new(r);
                let _ = w.write_all(b"220 refuser ESMTP\r\n").await;
                let mut line = String::new();
                loop {
                    line.clear();
                    if r.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
                    let reply: &[u8] = match verb.as_str() {
                        "EHLO" | "HELO" => b"250 refuser\r\n",
                        "RCPT" => b"550 5.1.1 no such mailbox\r\n",
                        "QUIT" => {
                            let _ = w.write_all(b"221 bye\r\n").await;
                            return;
                        }
                        "DATA" => b"554 5.5.1 no valid recipients\r\n",
                        _ => b"250 ok\r\n",
                    };
                    let _ = w.write_all(reply).await;
                }
            });
        }
    });
    port
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dsn_for_the_user_is_also_filed_in_inbox() {
    let relay = refusing_relay().await;
    let server = TestServer::start_with(
        move |t| t + &format!("[relay]\nurl = \"smtp://127.0.0.1:{relay}\"\nfrom_address = \"gatepost@example.org\"\n"),
        std::sync::Arc::new(gatepost::clock::SystemClock),
    )
    .await;
    let addr = server.running.as_ref().unwrap().imaps_addrs[0];
    submit(&server, b"From: alice@example.com\r\nTo: bob@example.net\r\nSubject: doomed\r\n\r\nbody\r\n").await;
    let mut c = Imap::login(addr).await;
    c.cmd("SELECT INBOX").await;
    wait_until("the DSN in INBOX", async || {
        let r = c.cmd("UID SEARCH SUBJECT \"Undelivered Mail\"").await;
        r.iter().any(|l| l.starts_with("* SEARCH ") && l.trim_end() != "* SEARCH")
    })
    .await;
    let r = c.cmd("FETCH 1 (FLAGS BODY.PEEK[HEADER.FIELDS (MESSAGE-ID SUBJECT)])").await;
    assert!(!r[0].contains("\\Seen") && r[0].contains("Message-ID:"), "unseen, with its Message-ID: {r:?}");
    let r = c.cmd("STATUS Sent (MESSAGES)").await;
    assert!(r[0].contains("MESSAGES 0"), "nothing delivered, nothing in Sent: {r:?}");
    server.stop().await;
}
