//! What a delivery attempt does to a record, as pure functions: claim the recipients that are
//! due (recorded *before* dialling), apply the relay's per-recipient results with retry and
//! expiry, and mark an attempt a crash interrupted. The dispatcher wraps these in store
//! transactions.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

use super::dsn::FailedRecipient;
use crate::relay::{Delivery, RecipientResult};
use crate::store::{Attempt, MessageRecord, MessageState};

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
    pub queue_id: String,
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
pub fn claim(rec: &mut MessageRecord, now: Timestamp) -> Option<Claim> {
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
        r.state = MessageState::Sending;
        r.attempts += 1;
        addresses.push(r.address.clone());
    }
    if !released.is_empty() {
        rec.push_event(now, "released", released.join(", "));
    }
    rec.attempts.push(Attempt {
        started_at: now,
        recipients: addresses.clone(),
        finished_at: None,
        relay_ip: None,
        system_ip: None,
        reply: None,
    });
    let attempt = rec.attempts.len() - 1;
    rec.push_event(now, "attempt", format!("attempt {} to {}", attempt + 1, addresses.join(", ")));
    rec.state = rec.derive_state();
    Some(Claim { queue_id: rec.id.clone(), attempt, recipients: due })
}

/// Apply the relay's results. Deferred recipients are retried with backoff until their
/// lifetime (counted from their release time) runs out; then they fail. Returns the
/// recipients that failed for good in this attempt (for the delivery status notification).
pub fn apply_outcome(
    rec: &mut MessageRecord,
    claim: &Claim,
    delivery: &Delivery,
    now: Timestamp,
    retry: &RetryPolicy,
) -> Vec<FailedRecipient> {
    let mut failed = Vec::new();
    if let Some(a) = rec.attempts.get_mut(claim.attempt) {
        a.finished_at = Some(now);
        a.relay_ip = delivery.relay_ip.map(|ip| ip.to_string());
        a.system_ip = delivery.system_ip.map(|ip| ip.to_string());
        a.reply = Some(delivery.reply.clone());
    }
    for (k, &i) in claim.recipients.iter().enumerate() {
        let result =
            delivery.recipients.get(k).cloned().unwrap_or(RecipientResult::Deferred("relay gave no result".into()));
        let Some(r) = rec.recipients.get_mut(i) else { continue };
        if r.state != MessageState::Sending {
            continue;
        }
        let address = r.address.clone();
        let (kind, detail) = match result {
            RecipientResult::Delivered => {
                r.state = MessageState::Sent;
                r.last_error = None;
                r.next_attempt_at = None;
                ("delivered", format!("{address}: {}", delivery.reply))
            }
            RecipientResult::Failed(why) => {
                r.state = MessageState::Failed;
                r.last_error = Some(why.clone());
                failed.push(FailedRecipient { address: address.clone(), reason: why.clone(), expired: false });
                ("failed", format!("{address}: {why}"))
            }
            RecipientResult::Deferred(why) => {
                let expires = r.release_at.saturating_add(signed(retry.lifetime)).unwrap_or(Timestamp::MAX);
                let next = now.saturating_add(signed(retry.backoff(r.attempts))).unwrap_or(Timestamp::MAX);
                r.last_error = Some(why.clone());
                if next >= expires {
                    r.state = MessageState::Failed;
                    failed.push(FailedRecipient { address: address.clone(), reason: why.clone(), expired: true });
                    ("expired", format!("{address}: gave up after {} attempts; last error: {why}", r.attempts))
                } else {
                    r.state = MessageState::Due;
                    r.next_attempt_at = Some(next);
                    ("deferred", format!("{address}: {why}; next attempt {next}"))
                }
            }
        };
        rec.push_event(now, kind, detail);
    }
    rec.state = rec.derive_state();
    failed
}

/// After a crash: recipients left in `sending` are due again now. Their attempt may or may
/// not have reached the relay (the one case that can deliver twice, docs/queue.md).
pub fn mark_interrupted(rec: &mut MessageRecord, now: Timestamp) -> usize {
    let mut n = 0;
    for r in rec.recipients.iter_mut().filter(|r| r.state == MessageState::Sending) {
        r.state = MessageState::Due;
        r.next_attempt_at = Some(now);
        n += 1;
    }
    if n > 0 {
        if let Some(a) = rec.attempts.iter_mut().rev().find(|a| a.finished_at.is_none()) {
            a.reply = Some("interrupted: gatepost stopped during this attempt; outcome unknown".into());
        }
        rec.push_event(
            now,
            "interrupted",
            format!("{n} recipient(s) will be tried again; the interrupted attempt may have delivered"),
        );
        rec.state = rec.derive_state();
    }
    n
}

#[cfg(test)]
mod tests;
