//! After the final dot: a relay that takes the whole message and then hangs up, stays
//! silent or babbles may have accepted it (RFC 1047). Such recipients are "possibly
//! delivered", retried once, then failed with "possibly delivered twice; not retried" and
//! reported; the relay never gets more than two copies. The relay level here, then the
//! whole release path (queue, dispatcher, this relay client, a scripted relay).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use gatepost::clock::{Clock, ManualClock};
use gatepost::queue::dispatch::{DispatchSettings, Dispatcher};
use gatepost::queue::{Queue, Submission};
use gatepost::relay::RecipientResult::{self, Delivered};
use gatepost::schedule::{RecipientRelease, ScheduleSource};
use gatepost::store::{EventKind, Origin, QueueState, Store};
use jiff::{SignedDuration, Timestamp};

use crate::support::*;

fn possibly_with(r: &RecipientResult, words: &str) -> bool {
    matches!(r, RecipientResult::PossiblyDelivered(t) if t.contains(words) && t.contains("may have been delivered"))
}

/// MAIL, RCPT(s) accepted, DATA, the body read whole: the relay now has the message.
async fn take_message(c: &mut Conn, rcpts: usize) -> Vec<u8> {
    c.expect("MAIL FROM:").await;
    c.say("250 2.1.0 Ok").await;
    for _ in 0..rcpts {
        c.expect("RCPT TO:").await;
        c.say("250 2.1.5 Ok").await;
    }
    c.expect("DATA").await;
    c.say("354 go ahead").await;
    c.data().await
}

#[tokio::test]
async fn a_drop_after_the_dot_is_possibly_delivered_not_deferred() {
    let fake = Fake::start(|mut c| async move {
        c.hello(&[]).await;
        if c.index == 1 {
            take_message(&mut c, 2).await;
            return; // hang up without a reply to the dot
        }
        transaction(&mut c, &["250 Ok"], "250 2.0.0 Ok: queued as NEXT").await;
        quit(&mut c).await;
    })
    .await;
    let msgs = [msg("1", "s@x.test", &["a@y.test", "b@y.test"], "one\r\n"), msg("2", "s@x.test", &["c@y.test"], "two")];
    let out = relay(&fake.url("smtp"), |_| {}).deliver_batch(&msgs).await;
    assert!(out[0].recipients.iter().all(|r| possibly_with(r, "connection lost during the end of DATA")), "{out:?}");
    assert!(out[0].reply.contains("may have been delivered"), "{:?}", out[0]);
    assert_eq!(out[1].recipients, [Delivered], "the rest of the batch gets a fresh connection");
}

#[tokio::test]
async fn silence_or_garbage_after_the_dot_is_possibly_delivered() {
    // No reply within the data timeout (RFC 5321 §4.5.3.2.6), then a reply that is no reply.
    let fake = Fake::start(|mut c| async move {
        c.hello(&[]).await;
        take_message(&mut c, 1).await;
        if c.index == 1 {
            c.line().await; // silent until the client gives up
        } else {
            c.say("this is not an SMTP reply").await;
            c.line().await;
        }
    })
    .await;
    let relay = relay(&fake.url("smtp"), |c| c.data_timeout = Duration::from_secs(1));
    let out = relay.deliver_batch(&[msg("1", "s@x.test", &["a@y.test"], "x")]).await;
    assert!(possibly_with(&one(&out).recipients[0], "timed out after 1s during the end of DATA"), "{out:?}");
    let out = relay.deliver_batch(&[msg("2", "s@x.test", &["a@y.test"], "x")]).await;
    assert!(possibly_with(&one(&out).recipients[0], "malformed reply during the end of DATA"), "{out:?}");
}

#[tokio::test]
async fn a_definite_reply_after_the_dot_is_never_uncertain() {
    // 421 after the dot is an answer: not accepted. A drop before the dot is not uncertain
    // either (the relay cannot have the end of the message).
    let fake = Fake::start(|mut c| async move {
        c.hello(&[]).await;
        if c.index == 1 {
            take_message(&mut c, 1).await;
            c.say("421 4.3.0 shutting down").await;
            return;
        }
        c.expect("MAIL").await;
        c.say("250 Ok").await;
        c.expect("RCPT").await;
        c.say("250 Ok").await;
        c.expect("DATA").await;
        c.say("354 go").await;
        c.line().await; // one line of a large body, then hang up
    })
    .await;
    let relay = relay(&fake.url("smtp"), |_| {});
    let out = relay.deliver_batch(&[msg("1", "s@x.test", &["a@y.test"], "x")]).await;
    assert!(deferred_with(&one(&out).recipients[0], "421 4.3.0"), "{out:?}");
    // Larger than the socket buffers (4 MiB here), so the hang-up is seen before the dot.
    let big = "Subject: big\r\n\r\n".to_string() + &"0123456789abcdef\r\n".repeat(700_000);
    let out = relay.deliver_batch(&[msg("2", "s@x.test", &["a@y.test"], &big)]).await;
    assert!(deferred_with(&one(&out).recipients[0], "connection lost during DATA"), "{out:?}");
}

/// A relay that takes every message whole and never answers the dot, counting the copies
/// it got per recipient.
async fn dropping_relay() -> (Fake, Arc<Mutex<Vec<String>>>) {
    let copies = Arc::new(Mutex::new(Vec::new()));
    let seen = copies.clone();
    let fake = Fake::start(move |mut c| {
        let copies = seen.clone();
        async move {
            c.hello(&[]).await;
            c.expect("MAIL FROM:").await;
            c.say("250 2.1.0 Ok").await;
            let rcpt = c.expect("RCPT TO:").await;
            c.say("250 2.1.5 Ok").await;
            c.expect("DATA").await;
            c.say("354 go ahead").await;
            c.data().await;
            copies.lock().unwrap().push(rcpt);
        }
    })
    .await;
    (fake, copies)
}

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

#[tokio::test]
async fn at_most_two_copies_then_failed_and_reported() {
    let (fake, copies) = dropping_relay().await;
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path()).unwrap());
    let queue = Arc::new(Queue::start(store.clone()));
    let clock = Arc::new(ManualClock::new(ts("2026-12-25T08:00:00Z")));
    let wake = queue.waker();
    let relay = Arc::new(relay(&fake.url("smtp"), |c| c.data_timeout = Duration::from_secs(2)));
    let settings = DispatchSettings { hostname: "gp.test".into(), ..Default::default() };
    let dispatcher =
        Dispatcher::new(queue.clone(), relay, clock.clone(), wake.clone(), settings, Arc::new(|_, b| Ok(b)));
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let run = tokio::spawn(dispatcher.run(stopped, Duration::from_secs(5)));

    let sub = Submission {
        session_id: "s1".into(),
        user: "alice".into(),
        sender: "alice@example.com".into(),
        sender_name: None,
        recipients: vec![RecipientRelease {
            original: "bob@example.net".into(),
            address: "bob@example.net".into(),
            release_at: clock.now(),
            source: ScheduleSource::Immediate,
        }],
        subject: Some("once, please".into()),
        message_id: None,
        client: "192.0.2.10:40000".parse().unwrap(),
        tls: Some("TLSv1.3".into()),
        helo: "client.test".into(),
        submitted_at: clock.now(),
        timezone: "UTC".into(),
        body: b"From: alice@example.com\r\nSubject: once, please\r\n\r\nhello\r\n".to_vec(),
        notice_of: None,
        route: None,
    };
    let id = queue.submit(sub).await.unwrap().id;
    let to_bob = || copies.lock().unwrap().iter().filter(|r| r.contains("bob@")).count();
    let record = || store.get_message(id).unwrap().unwrap();

    wait_until("the first copy", || to_bob() == 1 && record().recipients[0].state == QueueState::Due).await;
    let rec = record();
    assert_eq!(rec.recipients[0].possibly_delivered, 1);
    assert_eq!(rec.attempts[0].possibly_delivered, ["bob@example.net"]);
    assert!(rec.events.iter().any(|e| e.kind == EventKind::PossiblyDelivered), "{:?}", rec.events);

    // Days pass: only one more try ever reaches the relay.
    for _ in 0..6 {
        clock.advance(SignedDuration::from_hours(3));
        wake.notify_one();
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    wait_until("the recipient to fail", || record().state == QueueState::Failed).await;
    assert_eq!(to_bob(), 2, "exactly two copies reached the relay: {:?}", copies.lock().unwrap());
    let rec = record();
    assert_eq!(rec.recipients[0].possibly_delivered, 2);
    assert!(
        rec.recipients[0].last_error.as_deref().unwrap().starts_with("possibly delivered twice; not retried"),
        "{:?}",
        rec.recipients[0]
    );
    let marked: Vec<bool> = rec.attempts.iter().map(|a| !a.possibly_delivered.is_empty()).collect();
    assert_eq!(marked, [true, true]);

    // The sender is told, in words and in the report; the notice is gatepost's own.
    let notice = wait_some("the notice", || {
        store.list_messages(None, None, 10).unwrap().into_iter().find(|r| r.notice_of == Some(id))
    })
    .await;
    let body = String::from_utf8(store.bodies().read(notice.id).unwrap()).unwrap();
    assert!(body.contains("<bob@example.net>: possibly delivered twice; not retried"), "{body}");
    assert!(body.contains("Status: 4.4.2") && body.contains("X-Gatepost-Possibly-Delivered: yes"), "{body}");
    assert_eq!(notice.origin, Origin::Internal);
    assert_eq!(notice.client_ip(), None, "the notice claims no client");
    assert!(!notice.events[0].detail.contains("192.0.2.10"), "{:?}", notice.events[0]);
    let _ = stop.send(true);
    let _ = run.await;
}

async fn wait_until(what: &str, mut probe: impl FnMut() -> bool) {
    wait_some(what, || probe().then_some(())).await
}

async fn wait_some<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    for _ in 0..1000 {
        if let Some(v) = probe() {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting for {what}");
}
