use std::time::Duration;

use jiff::Timestamp;

use super::*;
use crate::relay::{Delivery, RecipientResult};
use crate::store::{MessageRecord, MessageState, RecipientRecord};

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn rcpt(addr: &str, release: &str, state: MessageState) -> RecipientRecord {
    RecipientRecord {
        original: addr.into(),
        address: addr.into(),
        release_at: ts(release),
        source: "deliver-on".into(),
        state,
        next_attempt_at: None,
        attempts: 0,
        last_error: None,
    }
}

fn record(rcpts: Vec<RecipientRecord>) -> MessageRecord {
    let mut r = crate::store::tests::sample_record(
        &ulid::Ulid::new().to_string(),
        "alice",
        ts("2026-12-25T08:00:00Z"),
        MessageState::Held,
    );
    r.recipients = rcpts;
    r.state = r.derive_state();
    r
}

fn delivery(results: Vec<RecipientResult>) -> Delivery {
    Delivery {
        recipients: results,
        relay_ip: Some("192.0.2.1".parse().unwrap()),
        system_ip: Some("192.0.2.9".parse().unwrap()),
        reply: "250 2.0.0 Ok: queued as X1".into(),
    }
}

#[test]
fn backoff_doubles_to_the_cap() {
    let p = RetryPolicy::default();
    let mins: Vec<u64> = (1..=10).map(|n| p.backoff(n).as_secs() / 60).collect();
    assert_eq!(mins, vec![1, 2, 4, 8, 16, 32, 64, 128, 240, 240]);
    assert_eq!(p.backoff(200), p.max_interval);
}

#[test]
fn claim_takes_only_due_recipients_and_records_the_attempt_first() {
    let mut r = record(vec![
        rcpt("a@x", "2026-12-24T08:00:00Z", MessageState::Held),
        rcpt("b@x", "2026-12-25T08:00:00Z", MessageState::Held),
        rcpt("c@x", "2026-12-01T08:00:00Z", MessageState::Cancelled),
    ]);
    assert_eq!(claim(&mut r, ts("2026-12-24T07:59:59Z")), None);
    let c = claim(&mut r, ts("2026-12-24T08:00:00Z")).unwrap();
    assert_eq!(c.recipients, vec![0]);
    assert_eq!(r.recipients[0].state, MessageState::Sending);
    assert_eq!(r.recipients[1].state, MessageState::Held);
    assert_eq!(r.attempts.len(), 1);
    assert_eq!(r.attempts[0].recipients, vec!["a@x"]);
    assert!(r.attempts[0].finished_at.is_none());
    assert!(r.events.iter().any(|e| e.kind == "released"));
    assert_eq!(r.state, MessageState::Held, "b is still held");
}

#[test]
fn outcomes_per_recipient() {
    let mut r = record(vec![
        rcpt("a@x", "2026-12-24T08:00:00Z", MessageState::Due),
        rcpt("b@x", "2026-12-24T08:00:00Z", MessageState::Due),
        rcpt("c@x", "2026-12-24T08:00:00Z", MessageState::Due),
    ]);
    let now = ts("2026-12-24T08:00:00Z");
    let c = claim(&mut r, now).unwrap();
    let d = delivery(vec![
        RecipientResult::Delivered,
        RecipientResult::Deferred("451 4.7.1 try later".into()),
        RecipientResult::Failed("550 5.1.1 no such user".into()),
    ]);
    apply_outcome(&mut r, &c, &d, now, &RetryPolicy::default());
    assert_eq!(r.recipients[0].state, MessageState::Sent);
    assert_eq!(r.recipients[1].state, MessageState::Due);
    assert_eq!(r.recipients[1].next_attempt_at, Some(ts("2026-12-24T08:01:00Z")));
    assert_eq!(r.recipients[2].state, MessageState::Failed);
    assert_eq!(r.recipients[2].last_error.as_deref(), Some("550 5.1.1 no such user"));
    let a = &r.attempts[0];
    assert_eq!((a.relay_ip.as_deref(), a.system_ip.as_deref()), (Some("192.0.2.1"), Some("192.0.2.9")));
    assert_eq!(a.reply.as_deref(), Some("250 2.0.0 Ok: queued as X1"));
    assert_eq!(r.state, MessageState::Due, "b is still to be retried");
    // second attempt: b delivered
    let later = ts("2026-12-24T08:01:00Z");
    let c2 = claim(&mut r, later).unwrap();
    assert_eq!(c2.recipients, vec![1]);
    apply_outcome(&mut r, &c2, &delivery(vec![RecipientResult::Delivered]), later, &RetryPolicy::default());
    assert_eq!(r.state, MessageState::Failed, "one recipient failed for good");
    assert_eq!(r.recipients[1].state, MessageState::Sent);
}

#[test]
fn deferred_past_lifetime_expires() {
    let policy = RetryPolicy {
        first: Duration::from_secs(3600),
        max_interval: Duration::from_secs(3600),
        lifetime: Duration::from_secs(2 * 3600),
    };
    let mut r = record(vec![rcpt("a@x", "2026-12-24T08:00:00Z", MessageState::Due)]);
    let mut now = ts("2026-12-24T08:00:00Z");
    let mut attempts = 0;
    while r.state == MessageState::Due {
        let c = claim(&mut r, now).unwrap();
        apply_outcome(&mut r, &c, &delivery(vec![RecipientResult::Deferred("421 4.3.2 down".into())]), now, &policy);
        now = r.recipients[0].next_attempt_at.unwrap_or(now);
        attempts += 1;
        assert!(attempts < 10);
    }
    assert_eq!(r.state, MessageState::Failed);
    assert_eq!(attempts, 2);
    assert!(r.events.iter().any(|e| e.kind == "expired" && e.detail.contains("421 4.3.2 down")));
}

#[test]
fn interrupted_attempt_is_retried_and_marked_uncertain() {
    let mut r = record(vec![rcpt("a@x", "2026-12-24T08:00:00Z", MessageState::Due)]);
    let now = ts("2026-12-24T08:00:00Z");
    claim(&mut r, now).unwrap();
    assert_eq!(mark_interrupted(&mut r, ts("2026-12-24T09:00:00Z")), 1);
    assert_eq!(r.recipients[0].state, MessageState::Due);
    assert_eq!(r.recipients[0].next_attempt(), ts("2026-12-24T09:00:00Z"));
    assert!(r.attempts[0].reply.as_deref().unwrap().contains("outcome unknown"));
    assert_eq!(mark_interrupted(&mut r, now), 0);
}
