//! End to end through the real server: submit a scheduled message, move the (manual) clock
//! to its release time, and see the dispatcher hand it to the `file://` relay, with the
//! record showing the attempt and its outcome.

use std::sync::Arc;
use std::time::Duration;

use gatepost::clock::ManualClock;
use gatepost::store::QueueState;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn held_message_is_relayed_at_the_daily_hour() {
    let clock = Arc::new(ManualClock::new("2026-11-23T10:00:00Z".parse().unwrap()));
    let server = TestServer::start_with(|t| t, clock.clone()).await;
    let (c, _) = Client::plain(server.submission).await;
    let mut c = c.starttls().await;
    c.login().await;
    let msg =
        b"From: Alice <alice@example.com>\r\nTo: Bob <bob+2026-12-25@example.net>\r\nSubject: xmas\r\n\r\nho ho\r\n";
    let r = c.submit(EMAIL, &["bob+2026-12-25@example.net"], msg).await;
    assert!(r.contains("will be delivered 2026-12-25 08:00 UTC"), "{r}");
    let id = queue_id(&r);
    let outbox = server.dir.path().join("outbox").join(format!("{id}.eml"));
    let running = server.running.as_ref().unwrap();

    clock.set("2026-12-25T07:59:59Z".parse().unwrap());
    running.dispatcher_wake.notify_one();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!outbox.exists(), "released a second early");
    assert_eq!(server.store().get_message(id.parse().unwrap()).unwrap().unwrap().state, QueueState::Held);

    clock.set("2026-12-25T08:00:00Z".parse().unwrap());
    running.dispatcher_wake.notify_one();
    for _ in 0..300 {
        if server.store().get_message(id.parse().unwrap()).unwrap().unwrap().state == QueueState::Sent {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let rec = server.store().get_message(id.parse().unwrap()).unwrap().unwrap();
    assert_eq!(rec.state, QueueState::Sent);
    assert_eq!(rec.attempts.len(), 1);
    let attempt = &rec.attempts[0];
    assert_eq!(attempt.started_at, "2026-12-25T08:00:00Z".parse().unwrap());
    assert!(attempt.reply.as_deref().unwrap_or("").starts_with("written to"), "{attempt:?}");
    let kinds: Vec<&str> = rec.events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["submitted", "held", "released", "attempt", "delivered"]);
    let written = std::fs::read_to_string(&outbox).unwrap();
    assert!(
        written.contains("X-Gatepost-Recipient: <bob@example.net>"),
        "date tag removed from the envelope:\n{written}"
    );
    assert!(written.contains("ho ho"));
    // the rewrite of docs/rewrite.md happened on the way out
    assert!(written.contains("From: \"Alice via gatepost\" <gatepost@localhost>"), "{written}");
    assert!(written.contains("Reply-To: alice@example.com"), "{written}");
    assert!(written.contains("To: Bob <bob@example.net>"), "plus tag removed from To:\n{written}");
    assert!(written.contains("Sent by alice@example.com through gatepost."), "footer:\n{written}");
    assert!(
        written.contains("with ESMTPSA\r\n id ") && written.contains(&format!("id {id};")),
        "Received header:\n{written}"
    );
    assert!(written.contains("X-Gatepost-Sender: <gatepost@localhost>"), "{written}");
    // the operator sees the attempt and its outcome in `queue show`
    let config = server.dir.path().join("g.toml");
    std::fs::write(&config, config_text(server.dir.path(), "")).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_gatepost"))
        .args(["--config", config.to_str().unwrap(), "queue", "show", &id])
        .output()
        .unwrap();
    let show = String::from_utf8_lossy(&out.stdout);
    assert!(
        show.contains(
            "attempts:\n  1. 2026-12-25 08:00:00 UTC -> 2026-12-25 08:00:00 UTC  no connection  to bob@example.net"
        ),
        "{show}"
    );
    assert!(show.contains("     reply: written to"), "{show}");
    server.stop().await;
}
