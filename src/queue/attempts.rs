//! What a delivery attempt does to a record, as pure functions: claim the recipients that are
//! due (recorded *before* dialling), apply the relay's per-recipient results with retry and
//! expiry, and mark an attempt a crash interrupted. The dispatcher wraps these in store
//! transactions.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

use super::dsn::{FailedRecipient, POSSIBLY_DELIVERED_TWICE};
use crate::relay::{Delivery, RecipientResult, Refusal};
use crate::store::{Attempt, EventKind, QueueId, QueueRecord, QueueState, RecipientRecord};

/// When to try a deferred recipient again, and when to give up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Wait after the first failure; doubles each time.
    pub first: Duration,
    /// The longest wait between attempts.
    pub max_interval: Duration,
    /// Give up this long after the recipient's release time.
    pub lifetime: Duration,
}

impl Default for RetryPolicy {
    /// A minute, doubling to four hours, for five days (what Postfix users expect).
    fn default() -> Self {
        RetryPolicy {
            first: Duration::from_secs(60),
            max_interval: Duration::from_secs(4 * 3600),
            lifetime: Duration::from_secs(5 * 24 * 3600),
        }
    }
}

impl RetryPolicy {
    /// Wait before attempt `n + 1` after `n` failed attempts (n ≥ 1).
    pub fn backoff(&self, attempts: u32) -> Duration {
        let factor = 1u32.checked_shl(attempts.saturating_sub(1)).unwrap_or(u32::MAX);
        self.first.checked_mul(factor).unwrap_or(self.max_interval).min(self.max_interval)
    }
}

/// Which recipients one attempt covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub queue_id: QueueId,
    /// Index into `record.attempts`.
    pub attempt: usize,
    /// Indexes into `record.recipients`, in the order given to the relay.
    pub recipients: Vec<usize>,
}

fn signed(d: Duration) -> SignedDuration {
    SignedDuration::try_from(d).unwrap_or(SignedDuration::MAX)
}

/// Mark every pending recipient due at `now` as sending and record the attempt. `None` when
/// nothing is due (another worker took it, or it was cancelled).
pub fn claim(rec: &mut QueueRecord, now: Timestamp) -> Option<Claim> {
    if rec.paused {
        // Its due entries went with the pause; one read just before it is not acted on.
        return None;
    }
    let due: Vec<usize> = (0..rec.recipients.len())
        .filter(|&i| rec.recipients[i].state.is_pending() && rec.recipients[i].next_attempt() <= now)
        .collect();
    if due.is_empty() {
        return None;
    }
    let mut addresses = Vec::new();
    let mut released = Vec::new();
    for &i in &due {
        let r = &mut rec.recipients[i];
        if r.attempts == 0 {
            released.push(r.address.clone());
        }
        r.state = QueueState::Sending;
        r.attempts += 1;
        addresses.push(r.address.clone());
    }
    if !released.is_empty() {
        rec.push_event(now, EventKind::Released, released.join(", "));
    }
    rec.attempts.push(Attempt {
        started_at: now,
        recipients: addresses.clone(),
        finished_at: None,
        relay_ip: None,
        system_ip: None,
        reply: None,
        possibly_delivered: Vec::new(),
    });
    let attempt = rec.attempts.len() - 1;
    rec.push_event(now, EventKind::Attempt, format!("attempt {} to {}", attempt + 1, addresses.join(", ")));
    rec.state = rec.derive_state();
    Some(Claim { queue_id: rec.id, attempt, recipients: due })
}

/// Apply the relay's results. Deferred recipients are retried with backoff until their
/// lifetime (counted from their release time) runs out; then they fail. A recipient whose
/// message went out in full without a reply ("possibly delivered") is tried once more; a
/// second such attempt fails it, so the relay gets at most two copies. Attempts that fail
/// before the message is handed over (4xx, no connection) make no copy and do not count.
/// Returns the recipients that failed for good in this attempt (for the notification).
pub fn apply_outcome(
    rec: &mut QueueRecord,
    claim: &Claim,
    delivery: &Delivery,
    now: Timestamp,
    retry: &RetryPolicy,
) -> Vec<FailedRecipient> {
    let mut failed = Vec::new();
    let mut possibly = Vec::new();
    for (k, &i) in claim.recipients.iter().enumerate() {
        let result = delivery
            .recipients
            .get(k)
            .cloned()
            .unwrap_or(RecipientResult::Deferred(Refusal::why("relay gave no result")));
        let Some(r) = rec.recipients.get_mut(i) else { continue };
        if r.state != QueueState::Sending {
            continue;
        }
        if matches!(result, RecipientResult::PossiblyDelivered(_)) {
            possibly.push(r.address.clone());
        }
        let (kind, detail, gave_up) = settle(r, result, &delivery.reply, now, retry);
        failed.extend(gave_up);
        rec.push_event(now, kind, detail);
    }
    if let Some(a) = rec.attempts.get_mut(claim.attempt) {
        a.finished_at = Some(now);
        a.relay_ip = delivery.relay_ip;
        a.system_ip = delivery.system_ip;
        a.reply = Some(delivery.reply.clone());
        a.possibly_delivered = possibly;
    }
    rec.state = rec.derive_state();
    failed
}

/// One recipient's result: its new state, the event (kind, detail), and whether it failed
/// for good.
fn settle(
    r: &mut RecipientRecord,
    result: RecipientResult,
    reply: &str,
    now: Timestamp,
    retry: &RetryPolicy,
) -> (EventKind, String, Option<FailedRecipient>) {
    let address = r.address.clone();
    // Whether an earlier attempt may already have delivered it (said in the event and DSN).
    let earlier = r.possibly_delivered > 0;
    let give_up = |r: &mut RecipientRecord, reason: String, status: Option<&str>, expired: bool| {
        r.state = QueueState::Failed;
        r.last_error = Some(reason.clone());
        let status = status.map(str::to_string);
        Some(FailedRecipient {
            address: address.clone(),
            reason,
            status,
            expired,
            possibly_delivered: r.possibly_delivered,
        })
    };
    match result {
        RecipientResult::Delivered => {
            r.state = QueueState::Sent;
            r.last_error = None;
            r.next_attempt_at = None;
            let also = if earlier { "; an earlier attempt may also have delivered it" } else { "" };
            (EventKind::Delivered, format!("{address}: {reply}{also}"), None)
        }
        RecipientResult::Failed(why) => {
            let f = give_up(r, why.text.clone(), why.enhanced(), false);
            (EventKind::Failed, format!("{address}: {why}"), f)
        }
        RecipientResult::PossiblyDelivered(why) if earlier => {
            r.possibly_delivered += 1;
            let f = give_up(r, format!("{POSSIBLY_DELIVERED_TWICE}: {why}"), None, false);
            (EventKind::Failed, format!("{address}: {POSSIBLY_DELIVERED_TWICE}: {why}"), f)
        }
        RecipientResult::PossiblyDelivered(why) => {
            r.possibly_delivered += 1;
            match next_try(r, now, retry) {
                Some(next) => {
                    r.state = QueueState::Due;
                    r.next_attempt_at = Some(next);
                    r.last_error = Some(why.clone());
                    (EventKind::PossiblyDelivered, format!("{address}: {why}; will be tried once more at {next}"), None)
                }
                None => {
                    let reason = format!("possibly delivered; not retried (its lifetime ran out): {why}");
                    let f = give_up(r, reason.clone(), None, true);
                    (EventKind::Expired, format!("{address}: {reason}"), f)
                }
            }
        }
        RecipientResult::Deferred(why) => match next_try(r, now, retry) {
            Some(next) => {
                r.state = QueueState::Due;
                r.next_attempt_at = Some(next);
                r.last_error = Some(why.text.clone());
                (EventKind::Deferred, format!("{address}: {why}; next attempt {next}"), None)
            }
            None => {
                let n = r.attempts;
                let f = give_up(r, why.text.clone(), why.enhanced(), true);
                (EventKind::Expired, format!("{address}: gave up after {n} attempts; last error: {why}"), f)
            }
        },
    }
}

/// When to try again after a temporary failure, or `None` when that would fall past the
/// recipient's lifetime.
fn next_try(r: &RecipientRecord, now: Timestamp, retry: &RetryPolicy) -> Option<Timestamp> {
    let expires = r.release_at.saturating_add(signed(retry.lifetime)).unwrap_or(Timestamp::MAX);
    let next = now.saturating_add(signed(retry.backoff(r.attempts))).unwrap_or(Timestamp::MAX);
    (next < expires).then_some(next)
}

/// After a crash: recipients left in `sending` are due again now. Their attempt may or may
/// not have reached the relay (one of the two cases that can deliver twice, docs/queue.md).
pub fn mark_interrupted(rec: &mut QueueRecord, now: Timestamp) -> usize {
    let mut n = 0;
    for r in rec.recipients.iter_mut().filter(|r| r.state == QueueState::Sending) {
        r.state = QueueState::Due;
        r.next_attempt_at = Some(now);
        n += 1;
    }
    if n > 0 {
        if let Some(a) = rec.attempts.iter_mut().rev().find(|a| a.finished_at.is_none()) {
            a.reply = Some("interrupted: gatepost stopped during this attempt; outcome unknown".into());
        }
        rec.push_event(
            now,
            EventKind::Interrupted,
            format!("{n} recipient(s) will be tried again; the interrupted attempt may have delivered"),
        );
        rec.state = rec.derive_state();
    }
    n
}

#[cfg(test)]
mod tests;
