//! The release side, against the real server: a message submitted over STARTTLS + AUTH is
//! released to a scripted relay. A relay that hangs up after every final dot gets at most two
//! copies (then the sender is told); a released message goes only to its recorded envelope
//! recipients (never to addresses in its header); a relay presenting the wrong certificate,
//! or the pinned one for another name, gets nothing.

use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gatepost::clock::ManualClock;
use gatepost::store::{Origin, QueueRecord, QueueState};
use jiff::SignedDuration;

#[path = "../relay/support.rs"]
mod fake;

use crate::support::{Client, EMAIL, TestServer, config_text, queue_id};

/// The server relaying to `url`; `extra` adds `[relay]` keys.
async fn server_relaying_to(url: &str, extra: &str, clock: Arc<ManualClock>) -> TestServer {
    let relay = format!("[relay]\nurl = \"{url}\"\nfrom_address = \"relay@thirdparty.example\"\n{extra}\n[submission]");
    TestServer::start_with(|t| t.replace("[submission]", &relay), clock).await
}

/// Submit over STARTTLS + AUTH as alice; the queue id.
async fn submit(server: &TestServer, rcpts: &[&str], message: &str) -> String {
    let (c, greeting) = Client::plain(server.submission).await;
    assert!(greeting.starts_with("220"), "{greeting}");
    let mut c = c.starttls().await;
    c.login().await;
    let reply = c.submit(EMAIL, rcpts, message.as_bytes()).await;
    assert!(reply.starts_with("250"), "{reply}");
    queue_id(&reply)
}

async fn wait_for<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    for _ in 0..1000 {
        if let Some(v) = probe() {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting for {what}");
}

fn record(server: &TestServer, id: &str) -> QueueRecord {
    server.store().get_message(id.parse().unwrap()).unwrap().unwrap()
}

/// `gatepost --config … ARGS` against the server's data directory; its stdout.
fn gatepost(dir: &Path, args: &[&str]) -> String {
    let config = dir.join("cli.toml");
    std::fs::write(&config, config_text(dir, "")).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_gatepost")).arg("--config").arg(&config).args(args).output().unwrap();
    assert!(out.status.success(), "gatepost {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_dropping_after_every_dot_gets_two_copies_at_most_and_only_the_envelope_recipient() {
    // Every connection: take the whole message, then hang up instead of answering the dot.
    let envelopes = Arc::new(Mutex::new(Vec::new()));
    let seen = envelopes.clone();
    let relay = fake::Fake::start(move |mut c| {
        let envelopes = seen.clone();
        async move {
            c.hello(&["8BITMIME"]).await;
            let mut lines = vec![c.expect("MAIL FROM:").await];
            c.say("250 2.1.0 Ok").await;
            loop {
                let line = c.line().await;
                if !line.to_ascii_uppercase().starts_with("RCPT TO:") {
                    assert_eq!(line, "DATA");
                    break;
                }
                lines.push(line);
                c.say("250 2.1.5 Ok").await;
            }
            c.say("354 go ahead").await;
            c.data().await;
            envelopes.lock().unwrap().push(lines);
        }
    })
    .await;
    let clock = Arc::new(ManualClock::new("2026-11-23T10:00:00Z".parse().unwrap()));
    let server = server_relaying_to(&relay.url("smtp"), "", clock.clone()).await;
    let message = "From: Alice <alice@example.com>\r\nTo: Bob <bob@example.net>, mallory@evil.example\r\n\
                   Cc: victim@elsewhere.example\r\nBcc: hidden@evil.example\r\nReply-To: victim@elsewhere.example\r\n\
                   Subject: once\r\n\r\nhello\r\n";
    let id = submit(&server, &["bob@example.net"], message).await;
    let copies = |who: &str| envelopes.lock().unwrap().iter().filter(|e| e.iter().any(|l| l.contains(who))).count();

    wait_for("the first copy", || (copies("<bob@example.net>") == 1).then_some(())).await;
    wait_for("the retry to be scheduled", || {
        let r = record(&server, &id);
        (r.recipients[0].possibly_delivered == 1 && r.state == QueueState::Due).then_some(())
    })
    .await;
    for _ in 0..8 {
        clock.advance(SignedDuration::from_hours(6));
        server.running.as_ref().unwrap().dispatcher_wake.notify_one();
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let rec =
        wait_for("the original to fail", || Some(record(&server, &id)).filter(|r| r.state == QueueState::Failed)).await;
    assert_eq!(copies("<bob@example.net>"), 2, "{:?}", envelopes.lock().unwrap());
    assert!(rec.recipients[0].last_error.as_deref().unwrap().starts_with("possibly delivered twice; not retried"));

    // Only the recorded envelope recipient, from the relay's address; the notice from <> to
    // the envelope sender only. No header address ever became a recipient.
    for envelope in envelopes.lock().unwrap().iter() {
        match envelope.as_slice() {
            [mail, rcpt] if mail == "MAIL FROM:<relay@thirdparty.example>" => {
                assert_eq!(rcpt, "RCPT TO:<bob@example.net>")
            }
            [mail, rcpt] if mail.starts_with("MAIL FROM:<>") => assert_eq!(rcpt, "RCPT TO:<alice@example.com>"),
            other => panic!("unexpected envelope {other:?}"),
        }
    }

    // The notice says so, and its record is gatepost's own, not the client's.
    let notice = wait_for("the notice", || {
        server
            .store()
            .list_messages(None, None, 10)
            .unwrap()
            .into_iter()
            .find(|r| r.notice_of.is_some_and(|n| n.to_string() == id))
    })
    .await;
    let body = String::from_utf8(server.store().bodies().read(notice.id).unwrap()).unwrap();
    assert!(body.contains("<bob@example.net>: possibly delivered twice; not retried"), "{body}");
    assert_eq!((notice.origin, notice.client_ip(), notice.tls.as_deref()), (Origin::Internal, None, None));

    // The operator sees it: the notice as internal, the original found by its uncertainty.
    let dir = server.dir.path().to_path_buf();
    let shown = gatepost(&dir, &["queue", "show", &notice.id.to_string()]);
    assert!(shown.contains("client:       internal (gatepost)") && !shown.contains("plaintext"), "{shown}");
    let shown = gatepost(&dir, &["queue", "show", &id]);
    assert!(shown.contains("possibly delivered to: bob@example.net"), "{shown}");
    wait_for("the trace index to find it by its uncertainty", || {
        let out = gatepost(&dir, &["trace", "--state", "possibly-delivered", "--json"]);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        v["records"].as_array().unwrap().iter().any(|r| r["id"] == id.as_str()).then_some(())
    })
    .await;
    server.stop().await;
}

/// Submit one message to a server whose relay is `smtps://localhost:PORT` with `ca_file`;
/// the record once its first attempt has an outcome.
async fn first_attempt_through(relay: &fake::Fake, ca_file: &Path) -> QueueRecord {
    let clock = Arc::new(ManualClock::new("2026-11-23T10:00:00Z".parse().unwrap()));
    let url = format!("smtps://localhost:{}", relay.addr.port());
    let server = server_relaying_to(&url, &format!("ca_file = {:?}", ca_file.display().to_string()), clock).await;
    let id = submit(&server, &["bob@example.net"], "From: alice@example.com\r\nSubject: t\r\n\r\nx\r\n").await;
    let rec = wait_for("the attempt's outcome", || {
        Some(record(&server, &id)).filter(|r| r.attempts.first().is_some_and(|a| a.finished_at.is_some()))
    })
    .await;
    server.stop().await;
    rec
}

fn accepting_relay(pair: &fake::CertFiles) -> impl std::future::Future<Output = fake::Fake> {
    fake::Fake::start_tls_with(&pair.cert, &pair.key, |mut c| async move {
        c.hello(&[]).await;
        fake::transaction(&mut c, &["250 Ok"], "250 2.0.0 Ok: queued as PINNED").await;
        fake::quit(&mut c).await;
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_pinned_certificate_for_the_right_name_gets_the_message() {
    let dir = tempfile::tempdir().unwrap();
    let own = fake::self_signed_ca(dir.path(), "own", &["localhost"]);
    let impostor = fake::self_signed_ca(dir.path(), "impostor", &["localhost"]);
    let elsewhere = fake::self_signed_ca(dir.path(), "elsewhere", &["relay.example.net"]);

    // The relay's own self-signed CA:TRUE certificate in relay.ca_file: delivered.
    let relay = accepting_relay(&own).await;
    let rec = first_attempt_through(&relay, &own.cert).await;
    assert_eq!(rec.state, QueueState::Sent, "{:?}", rec.attempts);

    // Another self-signed certificate for the same name: nothing leaves gatepost.
    let relay = accepting_relay(&impostor).await;
    let rec = first_attempt_through(&relay, &own.cert).await;
    let reply = rec.attempts[0].reply.clone().unwrap_or_default();
    assert!(rec.state == QueueState::Due && reply.contains("invalid peer certificate"), "{reply}");
    assert!(relay.log().iter().all(|l| l.contains("TLS handshake failed")), "{:?}", relay.log());

    // The pinned certificate, but it names another host: refused too.
    let relay = accepting_relay(&elsewhere).await;
    let rec = first_attempt_through(&relay, &elsewhere.cert).await;
    let reply = rec.attempts[0].reply.clone().unwrap_or_default();
    assert!(rec.state == QueueState::Due && reply.contains("not valid for name"), "{reply}");
    assert!(relay.log().iter().all(|l| l.contains("TLS handshake failed")), "{:?}", relay.log());
}
