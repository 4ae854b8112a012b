//! Never an open relay, and nothing said in plaintext survives STARTTLS. These held before
//! issue 8; they stay here as the record of what is defended:
//! - the open-relay matrix: no transaction without AUTH (plaintext or TLS, any sender, any
//!   recipient domain), no AUTH without TLS, no foreign envelope sender or header From after
//!   AUTH, no null sender, and a trusted network only as its named user;
//! - STARTTLS injection (CVE-2011-0411 class): commands pipelined after STARTTLS in the same
//!   packet are dropped, and the upgraded session starts with no HELO, AUTH or transaction.

use crate::support::*;

fn plain_message(from: &str) -> Vec<u8> {
    format!("From: {from}\r\nTo: bob@example.net\r\nSubject: relay test\r\n\r\nhello\r\n").into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_transaction_without_authentication() {
    let server = TestServer::start().await;
    // Every way a stranger could try: plaintext or TLS, own or foreign sender, local or remote
    // recipient, the null sender.
    for tls in [false, true] {
        for sender in ["alice@example.com", "ceo@bank.example", ""] {
            for rcpt in ["bob@example.net", "alice@example.com", "postmaster@localhost"] {
                let (c, greeting) = Client::plain(server.submission).await;
                assert!(greeting.starts_with("220"), "{greeting}");
                let mut c = if tls { c.starttls().await } else { c };
                let r = c.cmd("EHLO stranger.example").await;
                assert!(r.starts_with("250"), "{r}");
                let r = c.cmd(&format!("MAIL FROM:<{sender}>")).await;
                assert!(r.starts_with("530 5.7.0"), "tls={tls} MAIL FROM:<{sender}> without AUTH: {r}");
                let r = c.cmd(&format!("RCPT TO:<{rcpt}>")).await;
                assert!(r.starts_with("503"), "RCPT without a transaction: {r}");
                let r = c.cmd("DATA").await;
                assert!(r.starts_with("503"), "DATA without a transaction: {r}");
            }
        }
    }
    assert_eq!(server.store().message_count().unwrap(), 0, "nothing may be queued");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_auth_in_plaintext_and_no_foreign_sender_after_auth() {
    let server = TestServer::start().await;
    let (mut c, _) = Client::plain(server.submission).await;
    let ehlo = c.cmd("EHLO stranger.example").await;
    assert!(!ehlo.contains("AUTH"), "AUTH offered before TLS: {ehlo}");
    let r = c.cmd("AUTH PLAIN AGFsaWNlAGNvcnJlY3QgaG9yc2U=").await;
    assert!(r.starts_with("538 5.7.11"), "AUTH accepted in plaintext: {r}");

    let mut c = c.starttls().await;
    c.login().await;
    for sender in ["ceo@bank.example", "alice@example.com.evil.example", "alice@EXAMPLE.com.", ""] {
        let r = c.cmd(&format!("MAIL FROM:<{sender}>")).await;
        assert!(r.starts_with("550 5.7.1") || r.starts_with("501"), "foreign MAIL FROM:<{sender}>: {r}");
    }
    // The envelope is the user's, the header From is not: refused whole.
    for from in ["ceo@bank.example", "\"alice@example.com\" <ceo@bank.example>", "alice@example.com, ceo@bank.example"]
    {
        let r = c.submit(EMAIL, &["bob@example.net"], &plain_message(from)).await;
        assert!(r.starts_with("550 5.7.1"), "header From {from:?}: {r}");
    }
    // And the user's own address goes through (the matrix is not refusing everything).
    let r = c.submit(EMAIL, &["bob@example.net"], &plain_message(EMAIL)).await;
    assert!(r.starts_with("250 2.0.0"), "{r}");
    assert_eq!(server.store().message_count().unwrap(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trusted_network_submits_only_as_its_user() {
    let server = TestServer::start_with(
        |t| {
            t.replace(
                "[submission]\n",
                "[submission]\ntrusted_networks = [{ network = \"127.0.0.1/32\", user = \"alice\" }]\n",
            )
        },
        std::sync::Arc::new(gatepost::clock::SystemClock),
    )
    .await;
    let (mut c, _) = Client::plain(server.submission).await;
    assert!(c.cmd("EHLO script.local").await.starts_with("250"));
    let r = c.cmd("MAIL FROM:<ceo@bank.example>").await;
    assert!(r.starts_with("550 5.7.1"), "a trusted network sent as someone else: {r}");
    let r = c.submit(EMAIL, &["bob@example.net"], &plain_message("ceo@bank.example")).await;
    assert!(r.starts_with("550 5.7.1"), "a trusted network forged the header From: {r}");
    let r = c.submit(EMAIL, &["bob@example.net"], &plain_message(EMAIL)).await;
    assert!(r.starts_with("250 2.0.0"), "{r}");
    assert_eq!(server.store().message_count().unwrap(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_pipelined_after_starttls_are_dropped() {
    let server = TestServer::start().await;
    let (mut c, _) = Client::plain(server.submission).await;
    assert!(c.cmd("EHLO attacker.example").await.starts_with("250"));
    // STARTTLS and a whole plaintext transaction in one packet: an injection that a server
    // reading its buffer after the handshake would execute as if sent over TLS.
    c.send(b"STARTTLS\r\nMAIL FROM:<alice@example.com>\r\nRCPT TO:<bob@example.net>\r\n").await;
    let r = c.read_reply().await;
    assert!(r.starts_with("220"), "{r}");
    let mut c = c.into_tls().await;
    // The upgraded session starts over: no HELO, no transaction from the plaintext bytes.
    let r = c.cmd("RCPT TO:<bob@example.net>").await;
    assert!(r.starts_with("503"), "a pipelined plaintext command survived STARTTLS: {r}");
    let r = c.cmd("MAIL FROM:<alice@example.com>").await;
    assert!(r.starts_with("503"), "HELO from before STARTTLS survived: {r}");
    c.login().await;
    let r = c.cmd("RCPT TO:<bob@example.net>").await;
    assert!(r.starts_with("503"), "{r}");
    assert_eq!(server.store().message_count().unwrap(), 0);
}

/// A connected account of `user` (sealed credential: any bytes, submission never opens it).
fn account(user: &str, name: &str, address: &str, route_accepted: bool) -> gatepost::store::ConnectedAccount {
    let now = jiff::Timestamp::now();
    gatepost::store::ConnectedAccount {
        user: user.into(),
        name: name.into(),
        address: address.into(),
        incoming: "imaps://imap.corp.example:993".into(),
        smtp: Some("smtps://smtp.corp.example:465".into()),
        login: address.into(),
        credential: gatepost::secrets::Sealed { kind: "password".into(), key: "0".repeat(16), data: String::new() },
        ca_pem: None,
        connections: 2,
        sent_copy: gatepost::store::SentCopy::Auto,
        pop3_delete_after_days: None,
        paused: false,
        removed: false,
        incoming_checked_at: Some(now),
        smtp_checked_at: route_accepted.then_some(now),
        created_at: now,
    }
}

/// Connected accounts add senders only for their own user, only while their SMTP route is
/// accepted, and a message takes one route: never another user's account, never an address
/// whose route was not checked, never half the user's and half an account's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connected_accounts_send_only_for_their_user_and_by_one_route() {
    let server = TestServer::start().await;
    server.add_user("bob", "bob's password");
    let store = server.store();
    for a in [
        account("bob", "Work", "bob@corp.example", true),
        account(USER, "Old", "old@corp.example", false),
        account(USER, "Mine", "mine@corp.example", true),
    ] {
        assert!(store.insert_connected(&a).unwrap());
    }
    let (c, _) = Client::plain(server.submission).await;
    let mut c = c.starttls().await;
    c.login().await;
    for sender in ["bob@corp.example", "old@corp.example"] {
        let r = c.submit(sender, &["x@example.net"], &plain_message(sender)).await;
        assert!(r.starts_with("550 5.7.1") && r.contains("is not yours"), "{sender}: {r}");
    }
    let r = c.submit(EMAIL, &["x@example.net"], &plain_message("mine@corp.example")).await;
    assert!(r.starts_with("550 5.7.1") && r.contains("one route"), "{r}");
    // Mail sent as an account goes out as written (no rewrite), so a foreign Sender would too.
    let forged = b"From: mine@corp.example\r\nSender: ceo@bank.example\r\nSubject: s\r\n\r\nx\r\n";
    let r = c.submit("mine@corp.example", &["x@example.net"], forged).await;
    assert!(r.starts_with("550 5.7.1") && r.contains("Sender <ceo@bank.example> is not yours"), "{r}");
    let r = c.submit("mine@corp.example", &["x@example.net"], &plain_message("mine@corp.example")).await;
    assert!(r.starts_with("250 2.0.0"), "{r}");
    let records = store.list_messages(None, None, 10).unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].route.as_deref(), Some("Mine"), "kept in the record");
}
