//! The dispatcher: sleeps until the earliest due entry (or a wake-up on submit, or shutdown),
//! claims everything due in one transaction (the attempt is recorded before dialling), hands
//! it to the relay in batches that share a connection, with bounded concurrency, and records
//! each outcome in one transaction.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;

use super::attempts::{self, Claim, RetryPolicy};
use super::dsn::{self, FailedRecipient};
use super::{Queue, Submission};
use crate::clock::Clock;
use crate::relay::accounts::{AccountRoutes, Unusable};
use crate::relay::{Delivery, Outgoing, RecipientResult, Refusal, Relay};
use crate::schedule::{RecipientRelease, ScheduleSource};
use crate::store::{EventKind, INTERNAL_CLIENT, QueueId, QueueRecord, Store, StoreError, sha256_hex};

/// The longest the dispatcher sleeps without looking at the clock again, so a wall clock
/// that jumps forward is noticed within this time (not busy polling: one read per minute).
pub const MAX_SLEEP: Duration = Duration::from_secs(60);

#[derive(Debug, Clone)]
pub struct DispatchSettings {
    /// Relay connections at once.
    pub concurrency: usize,
    /// Messages handed to one connection.
    pub per_connection: usize,
    pub retry: RetryPolicy,
    /// Envelope sender on the relay; `None` keeps the user's own address.
    pub envelope_sender: Option<String>,
    /// Our name, for delivery status notifications.
    pub hostname: String,
    /// Connected accounts' own servers, for mail whose route names one (SPEC §10); without
    /// them such mail waits (deferred), never taking the system relay.
    pub accounts: Option<Arc<AccountRoutes>>,
}

impl Default for DispatchSettings {
    fn default() -> Self {
        DispatchSettings {
            concurrency: 4,
            per_connection: 50,
            retry: RetryPolicy::default(),
            envelope_sender: None,
            hostname: "localhost".into(),
            accounts: None,
        }
    }
}

/// The way out of a batch's messages: a user and their connected account, or `None`, the
/// system relay.
type Route = Option<(String, String)>;

/// Turns a stored body into the bytes that leave (the rewrite step).
pub type Prepare = dyn Fn(&QueueRecord, Vec<u8>) -> Result<Vec<u8>, String> + Send + Sync;

pub struct Dispatcher {
    store: Arc<Store>,
    /// Where delivery status notifications are queued.
    queue: Arc<Queue>,
    relay: Arc<dyn Relay>,
    clock: Arc<dyn Clock>,
    wake: Arc<Notify>,
    settings: DispatchSettings,
    prepare: Arc<Prepare>,
}

impl Dispatcher {
    pub fn new(
        queue: Arc<Queue>,
        relay: Arc<dyn Relay>,
        clock: Arc<dyn Clock>,
        wake: Arc<Notify>,
        settings: DispatchSettings,
        prepare: Arc<Prepare>,
    ) -> Arc<Dispatcher> {
        let store = queue.store().clone();
        Arc::new(Dispatcher { store, queue, relay, clock, wake, settings, prepare })
    }

    /// Recipients left in `sending` by a crash are due again (their outcome is uncertain).
    pub fn recover_interrupted(&self) -> Result<usize, StoreError> {
        let ids = self.store.sending_ids()?;
        if ids.is_empty() {
            return Ok(0);
        }
        let now = self.clock.now();
        let mut n = 0;
        self.store.update_messages(&ids, |rec| {
            n += attempts::mark_interrupted(rec, now);
            Ok(())
        })?;
        tracing::warn!(messages = ids.len(), recipients = n, "deliveries interrupted by a stop are due again");
        Ok(n)
    }

    /// Run until shutdown; in-flight deliveries finish (bounded by `grace`), then it returns
    /// whether they all did.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>, grace: Duration) -> bool {
        if let Err(e) = self.recover_interrupted() {
            tracing::error!(error = %e, "could not recover interrupted deliveries");
        }
        let permits = Arc::new(Semaphore::new(self.settings.concurrency.max(1)));
        let mut tasks = JoinSet::new();
        loop {
            if *shutdown.borrow() {
                break;
            }
            while tasks.try_join_next().is_some() {}
            let free = permits.available_permits();
            let mut failed = false;
            let claimed = if free == 0 {
                Ok(Vec::new())
            } else {
                self.claim_due(free * self.settings.per_connection.max(1)).await
            };
            let claimed = match claimed {
                Ok(c) => c,
                Err(e) => {
                    tracing::error!(error = %e, "claiming due messages failed; retrying in a minute");
                    failed = true;
                    Vec::new()
                }
            };
            if claimed.is_empty() {
                // After a store error, wait rather than spin on a due entry that keeps failing.
                let wait = if free == 0 || failed { MAX_SLEEP } else { self.sleep_time() };
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = self.wake.notified() => {}
                    _ = shutdown.changed() => {}
                    Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
                }
                continue;
            }
            for chunk in claimed.chunks(self.settings.per_connection.max(1)) {
                let Ok(permit) = permits.clone().acquire_owned().await else { break };
                tasks.spawn(self.clone().deliver(chunk.to_vec(), permit));
            }
        }
        if !tasks.is_empty() {
            tracing::info!(in_flight = tasks.len(), "waiting for deliveries to finish");
            if tokio::time::timeout(grace, async { while tasks.join_next().await.is_some() {} }).await.is_err() {
                tracing::warn!("deliveries still running at shutdown; they will be retried at the next start");
                tasks.abort_all();
                return false;
            }
        }
        true
    }

    /// How long until the earliest due entry, at most `MAX_SLEEP`.
    fn sleep_time(&self) -> Duration {
        match self.store.next_due() {
            Ok(Some(at)) => {
                let left = at.duration_since(self.clock.now());
                Duration::try_from(left).unwrap_or(Duration::ZERO).min(MAX_SLEEP)
            }
            Ok(None) => MAX_SLEEP,
            Err(e) => {
                tracing::error!(error = %e, "reading the due index");
                MAX_SLEEP
            }
        }
    }

    /// Claim up to `limit` due messages in one transaction. If the batch fails (a record that
    /// no longer decodes), claim one by one and take the unreadable ones out of the due index,
    /// so one damaged record cannot stall the queue.
    async fn claim_due(&self, limit: usize) -> Result<Vec<(Claim, QueueRecord)>, StoreError> {
        let store = self.store.clone();
        let now = self.clock.now();
        tokio::task::spawn_blocking(move || {
            let mut seen = HashSet::new();
            let due: Vec<(Timestamp, QueueId)> =
                store.due_until(now, limit)?.into_iter().filter(|(_, id)| seen.insert(*id)).collect();
            if due.is_empty() {
                return Ok(Vec::new());
            }
            let ids: Vec<QueueId> = due.iter().map(|(_, id)| *id).collect();
            let mut claims = Vec::new();
            match store.update_messages(&ids, |rec| {
                claims.push(attempts::claim(rec, now));
                Ok(())
            }) {
                Ok(records) => Ok(claims.into_iter().zip(records).filter_map(|(c, r)| c.map(|c| (c, r))).collect()),
                Err(batch_error) => {
                    tracing::warn!(error = %batch_error, "claiming a batch failed; claiming one by one");
                    let mut out = Vec::new();
                    for (at, id) in due {
                        let mut claim = None;
                        match store.update_message(id, |rec| {
                            claim = attempts::claim(rec, now);
                            Ok(())
                        }) {
                            Ok(rec) => out.extend(claim.map(|c| (c, rec))),
                            Err(e) => {
                                tracing::error!(queue_id = %id, error = %e, "record cannot be read; removed from the due index (the record is kept)");
                                store.remove_due_entry(at, id)?;
                            }
                        }
                    }
                    Ok(out)
                }
            }
        })
        .await
        .map_err(|e| StoreError::Db(format!("claim task: {e}")))?
    }

    async fn deliver(self: Arc<Self>, batch: Vec<(Claim, QueueRecord)>, _permit: OwnedSemaphorePermit) {
        let mut results: Vec<(Claim, Option<Delivery>)> = Vec::new();
        // What is ready to leave, by route (user and account; `None` the system relay), with
        // each message's place in `results`.
        let mut routes: Vec<(Route, Vec<(usize, Outgoing)>)> = Vec::new();
        for (claim, rec) in batch {
            match self.outgoing(&claim, &rec).await {
                Ok(o) => {
                    let route = rec.route.clone().map(|account| (rec.user.clone(), account));
                    let place = (results.len(), o);
                    match routes.iter_mut().find(|(r, _)| *r == route) {
                        Some((_, msgs)) => msgs.push(place),
                        None => routes.push((route, vec![place])),
                    }
                    results.push((claim, None));
                }
                Err(why) => {
                    tracing::error!(queue_id = %rec.id, error = %why, "message cannot be sent");
                    let d =
                        Delivery::all(claim.recipients.len(), RecipientResult::Failed(Refusal::why(why.clone())), why);
                    results.push((claim, Some(d)));
                }
            }
        }
        for (route, msgs) in routes {
            let (places, outgoing): (Vec<usize>, Vec<Outgoing>) = msgs.into_iter().unzip();
            let delivered = match &route {
                None => self.relay.deliver_batch(&outgoing).await,
                Some((user, account)) => self.through_account(user, account, &outgoing).await,
            };
            let mut delivered = delivered.into_iter();
            for place in places {
                results[place].1 = Some(delivered.next().unwrap_or_else(|| {
                    Delivery::all(1, RecipientResult::Deferred(Refusal::why("relay gave no result")), "")
                }));
            }
        }
        self.record(results).await;
    }

    /// Hand a batch to the account's own server; if the route cannot carry it now, each
    /// message is deferred or failed for the reason (never sent another way).
    async fn through_account(&self, user: &str, account: &str, msgs: &[Outgoing]) -> Vec<Delivery> {
        let relay = match &self.settings.accounts {
            None => Err(Unusable::Wait("this server cannot send as connected accounts".into())),
            Some(routes) => {
                let (routes, user, account) = (routes.clone(), user.to_string(), account.to_string());
                tokio::task::spawn_blocking(move || routes.relay(&user, &account))
                    .await
                    .unwrap_or_else(|e| Err(Unusable::Wait(format!("route task failed: {e}"))))
            }
        };
        let unsent = |why: &str, result: fn(Refusal) -> RecipientResult| {
            tracing::warn!(account, "{why}");
            msgs.iter().map(|m| Delivery::all(m.recipients.len(), result(Refusal::why(why)), why)).collect()
        };
        match relay {
            Ok(relay) => relay.deliver_batch(msgs).await,
            Err(Unusable::Wait(why)) => unsent(&why, RecipientResult::Deferred),
            Err(Unusable::Never(why)) => unsent(&why, RecipientResult::Failed),
        }
    }

    /// Read, verify and prepare the body of one claimed message.
    async fn outgoing(&self, claim: &Claim, rec: &QueueRecord) -> Result<Outgoing, String> {
        let store = self.store.clone();
        let id = rec.id;
        let body = tokio::task::spawn_blocking(move || store.bodies().read(id))
            .await
            .map_err(|e| format!("reading the body: {e}"))?
            .map_err(|e| format!("body file unreadable: {e}"))?;
        if sha256_hex(&body) != rec.body_sha256 {
            return Err("body file damaged: its checksum does not match the record".into());
        }
        // A notice goes as written, from the null sender (RFC 5321 §4.5.5): no rewrite, no
        // notice about it can ever be sent back.
        // Mail sent as a connected account keeps its own envelope sender: that server is
        // the account's, and the address is its own (SPEC §10).
        let (body, sender) = match (rec.notice_of, &rec.route) {
            (Some(_), _) => (body, String::new()),
            (None, Some(_)) => ((self.prepare)(rec, body)?, rec.sender.clone()),
            (None, None) => (
                (self.prepare)(rec, body)?,
                self.settings.envelope_sender.clone().unwrap_or_else(|| rec.sender.clone()),
            ),
        };
        Ok(Outgoing {
            queue_id: rec.id.to_string(),
            sender,
            recipients: claim.recipients.iter().map(|&i| rec.recipients[i].address.clone()).collect(),
            body,
        })
    }

    /// One transaction records every outcome of the batch; then recipients that failed for
    /// good are reported to their sender.
    async fn record(&self, results: Vec<(Claim, Option<Delivery>)>) {
        let store = self.store.clone();
        let now = self.clock.now();
        let retry = self.settings.retry;
        let ids: Vec<QueueId> = results.iter().map(|(c, _)| c.queue_id).collect();
        let done = tokio::task::spawn_blocking(move || {
            let mut it = results.into_iter();
            let mut failures = Vec::new();
            let recs = store.update_messages(&ids, |rec| {
                if let Some((claim, Some(d))) = it.next() {
                    failures.push(attempts::apply_outcome(rec, &claim, &d, now, &retry));
                }
                Ok(())
            })?;
            Ok::<_, StoreError>(recs.into_iter().zip(failures).collect::<Vec<_>>())
        })
        .await;
        let recorded = match done {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => {
                return tracing::error!(error = %e, "recording delivery outcomes failed; they will be retried");
            }
            Err(e) => return tracing::error!(error = %e, "recording task failed"),
        };
        for (rec, failed) in recorded {
            tracing::info!(queue_id = %rec.id, state = rec.state.as_str(), "delivery recorded");
            if !failed.is_empty() && rec.notice_of.is_none() && !rec.sender.is_empty() {
                self.notify_sender(&rec, &failed).await;
            }
        }
    }

    /// Queue a delivery status notification to the message's sender, and note it on the record.
    async fn notify_sender(&self, rec: &QueueRecord, failed: &[FailedRecipient]) {
        let now = self.clock.now();
        let original = self.store.bodies().read(rec.id).unwrap_or_default();
        let body = dsn::build(rec, &original, failed, now, &self.settings.hostname);
        let sub = Submission {
            // Written by gatepost, not by a client: recorded as internal (`Origin::Internal`).
            session_id: "internal".into(),
            user: rec.user.clone(),
            sender: String::new(),
            sender_name: Some("Mail Delivery System".into()),
            recipients: vec![RecipientRelease {
                original: rec.sender.clone(),
                address: rec.sender.clone(),
                release_at: now,
                source: ScheduleSource::Immediate,
            }],
            subject: Some("Undelivered Mail Returned to Sender".into()),
            message_id: None,
            client: INTERNAL_CLIENT,
            tls: None,
            helo: self.settings.hostname.clone(),
            submitted_at: now,
            timezone: rec.timezone.clone(),
            body,
            notice_of: Some(rec.id),
            route: None,
        };
        let outcome = match self.queue.submit(sub).await {
            Ok(acc) => format!("delivery status notification {} queued to {}", acc.id, rec.sender),
            Err(e) => format!("could not queue a delivery status notification: {e}"),
        };
        tracing::info!(queue_id = %rec.id, "{outcome}");
        let id = rec.id;
        let store = self.store.clone();
        let _ = tokio::task::spawn_blocking(move || {
            store.update_message(id, |r| {
                r.push_event(now, EventKind::Dsn, outcome);
                Ok(())
            })
        })
        .await;
    }
}

#[cfg(test)]
mod tests;
