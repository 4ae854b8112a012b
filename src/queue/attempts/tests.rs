use std::time::Duration;

use jiff::Timestamp;

use super::*;
use crate::queue::dsn::FailedRecipient;
use crate::relay::{Delivery, RecipientResult, Refusal};
use crate::store::{QueueRecord, QueueState, RecipientRecord};

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn rcpt(addr: &str, release: &str, state: QueueState) -> RecipientRecord {
    RecipientRecord {
        original: addr.into(),
        address: addr.into(),
        release_at: ts(release),
        source: crate::schedule::ScheduleSource::DeliverOnHeader,
        state,
        next_attempt_at: None,
        attempts: 0,
        last_error: None,
        possibly_delivered: 0,
    }
}

fn record(rcpts: Vec<RecipientRecord>) -> QueueRecord {
    let mut r = crate::store::tests::sample_record(
        &ulid::Ulid::new().to_string(),
        "alice",
        ts("2026-12-25T08:00:00Z"),
        QueueState::Held,
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
        rcpt("a@x", "2026-12-24T08:00:00Z", QueueState::Held),
        rcpt("b@x", "2026-12-25T08:00:00Z", QueueState::Held),
        rcpt("c@x", "2026-12-01T08:00:00Z", QueueState::Cancelled),
    ]);
    assert_eq!(claim(&mut r, ts("2026-12-24T07:59:59Z")), None);
    let c = claim(&mut r, ts("2026-12-24T08:00:00Z")).unwrap();
    assert_eq!(c.recipients, vec![0]);
    assert_eq!(r.recipients[0].state, QueueState::Sending);
    assert_eq!(r.recipients[1].state, QueueState::Held);
    assert_eq!(r.attempts.len(), 1);
    assert_eq!(r.attempts[0].recipients, vec!["a@x"]);
    assert!(r.attempts[0].finished_at.is_none());
    assert!(r.events.iter().any(|e| e.kind == EventKind::Released));
    assert_eq!(r.state, QueueState::Held, "b is still held");
}

#[test]
fn outcomes_per_recipient() {
    let mut r = record(vec![
        rcpt("a@x", "2026-12-24T08:00:00Z", QueueState::Due),
        rcpt("b@x", "2026-12-24T08:00:00Z", QueueState::Due),
        rcpt("c@x", "2026-12-24T08:00:00Z", QueueState::Due),
    ]);
    let now = ts("2026-12-24T08:00:00Z");
    let c = claim(&mut r, now).unwrap();
    let d = delivery(vec![
        RecipientResult::Delivered,
        RecipientResult::Deferred(Refusal::reply_line("451 4.7.1 try later")),
        RecipientResult::Failed(Refusal::reply_line("550 5.1.1 no such user")),
    ]);
    apply_outcome(&mut r, &c, &d, now, &RetryPolicy::default());
    assert_eq!(r.recipients[0].state, QueueState::Sent);
    assert_eq!(r.recipients[1].state, QueueState::Due);
    assert_eq!(r.recipients[1].next_attempt_at, Some(ts("2026-12-24T08:01:00Z")));
    assert_eq!(r.recipients[2].state, QueueState::Failed);
    assert_eq!(r.recipients[2].last_error.as_deref(), Some("550 5.1.1 no such user"));
    let a = &r.attempts[0];
    assert_eq!((a.relay_ip, a.system_ip), (Some("192.0.2.1".parse().unwrap()), Some("192.0.2.9".parse().unwrap())));
    assert_eq!(a.reply.as_deref(), Some("250 2.0.0 Ok: queued as X1"));
    assert_eq!(r.state, QueueState::Due, "b is still to be retried");
    // second attempt: b delivered
    let later = ts("2026-12-24T08:01:00Z");
    let c2 = claim(&mut r, later).unwrap();
    assert_eq!(c2.recipients, vec![1]);
    apply_outcome(&mut r, &c2, &delivery(vec![RecipientResult::Delivered]), later, &RetryPolicy::default());
    assert_eq!(r.state, QueueState::Failed, "one recipient failed for good");
    assert_eq!(r.recipients[1].state, QueueState::Sent);
}

#[test]
fn deferred_past_lifetime_expires() {
    let policy = RetryPolicy {
        first: Duration::from_secs(3600),
        max_interval: Duration::from_secs(3600),
        lifetime: Duration::from_secs(2 * 3600),
    };
    let mut r = record(vec![rcpt("a@x", "2026-12-24T08:00:00Z", QueueState::Due)]);
    let mut now = ts("2026-12-24T08:00:00Z");
    let mut attempts = 0;
    while r.state == QueueState::Due {
        let c = claim(&mut r, now).unwrap();
        apply_outcome(
            &mut r,
            &c,
            &delivery(vec![RecipientResult::Deferred(Refusal::reply_line("421 4.3.2 down"))]),
            now,
            &policy,
        );
        now = r.recipients[0].next_attempt_at.unwrap_or(now);
        attempts += 1;
        assert!(attempts < 10);
    }
    assert_eq!(r.state, QueueState::Failed);
    assert_eq!(attempts, 2);
    assert!(r.events.iter().any(|e| e.kind == EventKind::Expired && e.detail.contains("421 4.3.2 down")));
}

#[test]
fn interrupted_attempt_is_retried_and_marked_uncertain() {
    let mut r = record(vec![rcpt("a@x", "2026-12-24T08:00:00Z", QueueState::Due)]);
    let now = ts("2026-12-24T08:00:00Z");
    claim(&mut r, now).unwrap();
    assert_eq!(mark_interrupted(&mut r, ts("2026-12-24T09:00:00Z")), 1);
    assert_eq!(r.recipients[0].state, QueueState::Due);
    assert_eq!(r.recipients[0].next_attempt(), ts("2026-12-24T09:00:00Z"));
    assert!(r.attempts[0].reply.as_deref().unwrap().contains("outcome unknown"));
    assert_eq!(mark_interrupted(&mut r, now), 0);
}

fn possibly(why: &str) -> RecipientResult {
    RecipientResult::PossiblyDelivered(why.into())
}

/// Claim at `now` and apply `results` (one per claimed recipient, in order).
fn attempt(r: &mut QueueRecord, now: &str, results: Vec<RecipientResult>) -> Vec<FailedRecipient> {
    let c = claim(r, ts(now)).expect("something is due");
    apply_outcome(r, &c, &delivery(results), ts(now), &RetryPolicy::default())
}

const DROPPED: &str = "connection lost during the end of DATA: the relay closed the connection";

#[test]
fn possibly_delivered_is_retried_once_then_failed_twice() {
    let mut r = record(vec![rcpt("a@x", "2026-12-24T08:00:00Z", QueueState::Due)]);
    let failed = attempt(&mut r, "2026-12-24T08:00:00Z", vec![possibly(DROPPED)]);
    assert!(failed.is_empty(), "the first uncertain attempt is retried");
    let a = &r.recipients[0];
    assert_eq!((a.state, a.possibly_delivered), (QueueState::Due, 1));
    assert_eq!(a.next_attempt_at, Some(ts("2026-12-24T08:01:00Z")));
    assert_eq!(r.attempts[0].possibly_delivered, ["a@x"]);
    assert!(r.events.iter().any(|e| e.kind == EventKind::PossiblyDelivered && e.detail.contains("tried once more")));

    let failed = attempt(&mut r, "2026-12-24T08:01:00Z", vec![possibly(DROPPED)]);
    let a = &r.recipients[0];
    assert_eq!((a.state, a.possibly_delivered), (QueueState::Failed, 2));
    assert!(a.last_error.as_deref().unwrap().starts_with(POSSIBLY_DELIVERED_TWICE));
    assert_eq!(r.state, QueueState::Failed);
    assert_eq!(r.attempts[1].possibly_delivered, ["a@x"]);
    assert_eq!(failed.len(), 1);
    assert!(failed[0].reason.starts_with("possibly delivered twice; not retried: connection lost"), "{failed:?}");
    assert!(failed[0].possibly_delivered == 2 && !failed[0].expired);
    assert_eq!(claim(&mut r, ts("2027-01-01T00:00:00Z")), None, "never tried a third time");
}

#[test]
fn after_a_possibly_delivered_attempt_each_outcome_has_its_rule() {
    // (later result, state after it, fails for good, event kind). Attempts that make no copy
    // (4xx, no connection) keep the one retry that may; a second uncertain one ends it.
    let table: Vec<(RecipientResult, QueueState, bool, &str)> = vec![
        (RecipientResult::Delivered, QueueState::Sent, false, "delivered"),
        (RecipientResult::Failed(Refusal::reply_line("550 5.1.1 gone")), QueueState::Failed, true, "failed"),
        (RecipientResult::Deferred(Refusal::reply_line("could not connect")), QueueState::Due, false, "deferred"),
        (possibly(DROPPED), QueueState::Failed, true, "failed"),
    ];
    for (later, state, gives_up, kind) in table {
        let mut r = record(vec![rcpt("a@x", "2026-12-24T08:00:00Z", QueueState::Due)]);
        attempt(&mut r, "2026-12-24T08:00:00Z", vec![possibly(DROPPED)]);
        let failed = attempt(&mut r, "2026-12-24T08:01:00Z", vec![later.clone()]);
        assert_eq!(r.recipients[0].state, state, "{later:?}");
        assert_eq!(failed.len(), usize::from(gives_up), "{later:?}");
        assert!(failed.iter().all(|f| f.possibly_delivered > 0), "the notice says it may have arrived: {later:?}");
        let last = r.events.last().unwrap();
        assert_eq!(last.kind.as_str(), kind, "{later:?}");
        if matches!(later, RecipientResult::Delivered) {
            assert!(last.detail.contains("earlier attempt may also have delivered it"), "{last:?}");
        }
    }
}

#[test]
fn a_deferral_after_possibly_delivered_keeps_the_single_retry() {
    let mut r = record(vec![rcpt("a@x", "2026-12-24T08:00:00Z", QueueState::Due)]);
    attempt(&mut r, "2026-12-24T08:00:00Z", vec![possibly(DROPPED)]);
    attempt(&mut r, "2026-12-24T08:01:00Z", vec![RecipientResult::Deferred(Refusal::reply_line("421 4.3.2 down"))]);
    attempt(&mut r, "2026-12-24T08:03:00Z", vec![RecipientResult::Deferred(Refusal::reply_line("421 4.3.2 down"))]);
    assert_eq!((r.recipients[0].state, r.recipients[0].possibly_delivered), (QueueState::Due, 1));
    let failed = attempt(&mut r, "2026-12-24T08:07:00Z", vec![possibly(DROPPED)]);
    assert_eq!(r.recipients[0].state, QueueState::Failed);
    assert_eq!(failed.len(), 1);
    let uncertain: Vec<usize> =
        r.attempts.iter().enumerate().filter(|(_, a)| !a.possibly_delivered.is_empty()).map(|(i, _)| i).collect();
    assert_eq!(uncertain, [0, 3], "exactly the two attempts that may have delivered are marked");
}

#[test]
fn only_the_recipients_concerned_are_marked() {
    let mut r = record(vec![
        rcpt("a@x", "2026-12-24T08:00:00Z", QueueState::Due),
        rcpt("b@x", "2026-12-24T08:00:00Z", QueueState::Due),
    ]);
    // b was refused at RCPT; the connection then dropped after the dot for a.
    let failed = attempt(
        &mut r,
        "2026-12-24T08:00:00Z",
        vec![possibly(DROPPED), RecipientResult::Failed(Refusal::reply_line("550 5.1.1 no such user"))],
    );
    assert_eq!(r.attempts[0].possibly_delivered, ["a@x"]);
    assert_eq!((r.recipients[0].possibly_delivered, r.recipients[1].possibly_delivered), (1, 0));
    assert_eq!(failed.len(), 1);
    assert!(failed[0].possibly_delivered == 0, "b was refused outright: {failed:?}");
}

#[test]
fn possibly_delivered_at_the_end_of_the_lifetime_is_not_retried() {
    let policy = RetryPolicy {
        first: Duration::from_secs(3600),
        max_interval: Duration::from_secs(3600),
        lifetime: Duration::from_secs(1800),
    };
    let mut r = record(vec![rcpt("a@x", "2026-12-24T08:00:00Z", QueueState::Due)]);
    let c = claim(&mut r, ts("2026-12-24T08:00:00Z")).unwrap();
    let failed = apply_outcome(&mut r, &c, &delivery(vec![possibly(DROPPED)]), ts("2026-12-24T08:00:00Z"), &policy);
    assert_eq!(r.recipients[0].state, QueueState::Failed);
    assert!(failed[0].expired && failed[0].possibly_delivered == 1, "{failed:?}");
    assert!(failed[0].reason.starts_with("possibly delivered; not retried"), "{failed:?}");
}
