//! The dispatcher: sleeps until the earliest due entry (or a wake-up on submit, or shutdown),
//! claims everything due in one transaction (the attempt is recorded before dialling), hands
//! it to the relay in batches that share a connection, with bounded concurrency, and records
//! each outcome in one transaction.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;

use super::attempts::{self, Claim, RetryPolicy};
use crate::clock::Clock;
use crate::relay::{Delivery, Outgoing, RecipientResult, Relay};
use crate::store::{MessageRecord, Store, StoreError, sha256_hex};

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
}

impl Default for DispatchSettings {
    fn default() -> Self {
        DispatchSettings { concurrency: 4, per_connection: 50, retry: RetryPolicy::default(), envelope_sender: None }
    }
}

/// Turns a stored body into the bytes that leave (the rewrite step).
pub type Prepare = dyn Fn(&MessageRecord, Vec<u8>) -> Result<Vec<u8>, String> + Send + Sync;

pub struct Dispatcher {
    store: Arc<Store>,
    relay: Arc<dyn Relay>,
    clock: Arc<dyn Clock>,
    wake: Arc<Notify>,
    settings: DispatchSettings,
    prepare: Arc<Prepare>,
}

impl Dispatcher {
    pub fn new(
        store: Arc<Store>,
        relay: Arc<dyn Relay>,
        clock: Arc<dyn Clock>,
        wake: Arc<Notify>,
        settings: DispatchSettings,
        prepare: Arc<Prepare>,
    ) -> Arc<Dispatcher> {
        Arc::new(Dispatcher { store, relay, clock, wake, settings, prepare })
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

    /// Run until shutdown; in-flight deliveries finish (bounded by `grace`), then it returns.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>, grace: Duration) {
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
            let claimed = if free == 0 {
                Ok(Vec::new())
            } else {
                self.claim_due(free * self.settings.per_connection.max(1)).await
            };
            let claimed = match claimed {
                Ok(c) => c,
                Err(e) => {
                    tracing::error!(error = %e, "claiming due messages failed; retrying in a minute");
                    Vec::new()
                }
            };
            if claimed.is_empty() {
                let wait = if free == 0 { MAX_SLEEP } else { self.sleep_time() };
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
            }
        }
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

    /// Claim up to `limit` due messages in one transaction.
    async fn claim_due(&self, limit: usize) -> Result<Vec<(Claim, MessageRecord)>, StoreError> {
        let store = self.store.clone();
        let now = self.clock.now();
        tokio::task::spawn_blocking(move || {
            let mut seen = HashSet::new();
            let ids: Vec<String> = store
                .due_until(now, limit)?
                .into_iter()
                .map(|(_, id)| id)
                .filter(|id| seen.insert(id.clone()))
                .collect();
            if ids.is_empty() {
                return Ok(Vec::new());
            }
            let mut claims = Vec::new();
            let records = store.update_messages(&ids, |rec| {
                claims.push(attempts::claim(rec, now));
                Ok(())
            })?;
            Ok(claims.into_iter().zip(records).filter_map(|(c, r)| c.map(|c| (c, r))).collect())
        })
        .await
        .map_err(|e| StoreError::Db(format!("claim task: {e}")))?
    }

    async fn deliver(self: Arc<Self>, batch: Vec<(Claim, MessageRecord)>, _permit: OwnedSemaphorePermit) {
        let mut outgoing = Vec::new();
        let mut results: Vec<(Claim, Option<Delivery>)> = Vec::new();
        for (claim, rec) in batch {
            match self.outgoing(&claim, &rec).await {
                Ok(o) => {
                    outgoing.push(o);
                    results.push((claim, None));
                }
                Err(why) => {
                    tracing::error!(queue_id = %rec.id, error = %why, "message cannot be sent");
                    let d = Delivery::all(claim.recipients.len(), RecipientResult::Failed(why.clone()), why);
                    results.push((claim, Some(d)));
                }
            }
        }
        let mut delivered =
            if outgoing.is_empty() { Vec::new() } else { self.relay.deliver_batch(&outgoing).await }.into_iter();
        for (_, d) in results.iter_mut().filter(|(_, d)| d.is_none()) {
            *d = Some(
                delivered
                    .next()
                    .unwrap_or_else(|| Delivery::all(1, RecipientResult::Deferred("relay gave no result".into()), "")),
            );
        }
        self.record(results).await;
    }

    /// Read, verify and prepare the body of one claimed message.
    async fn outgoing(&self, claim: &Claim, rec: &MessageRecord) -> Result<Outgoing, String> {
        let store = self.store.clone();
        let id = rec.id.clone();
        let body = tokio::task::spawn_blocking(move || store.bodies().read(&id))
            .await
            .map_err(|e| format!("reading the body: {e}"))?
            .map_err(|e| format!("body file unreadable: {e}"))?;
        if sha256_hex(&body) != rec.body_sha256 {
            return Err("body file damaged: its checksum does not match the record".into());
        }
        let body = (self.prepare)(rec, body)?;
        Ok(Outgoing {
            queue_id: rec.id.clone(),
            sender: self.settings.envelope_sender.clone().unwrap_or_else(|| rec.sender.clone()),
            recipients: claim.recipients.iter().map(|&i| rec.recipients[i].address.clone()).collect(),
            body,
        })
    }

    /// One transaction records every outcome of the batch.
    async fn record(&self, results: Vec<(Claim, Option<Delivery>)>) {
        let store = self.store.clone();
        let now = self.clock.now();
        let retry = self.settings.retry;
        let ids: Vec<String> = results.iter().map(|(c, _)| c.queue_id.clone()).collect();
        let done = tokio::task::spawn_blocking(move || {
            let mut it = results.into_iter();
            store.update_messages(&ids, |rec| {
                if let Some((claim, Some(d))) = it.next() {
                    attempts::apply_outcome(rec, &claim, &d, now, &retry);
                }
                Ok(())
            })
        })
        .await;
        match done {
            Ok(Ok(recs)) => {
                for r in recs {
                    tracing::info!(queue_id = %r.id, state = r.state.as_str(), "delivery recorded");
                }
            }
            Ok(Err(e)) => tracing::error!(error = %e, "recording delivery outcomes failed; they will be retried"),
            Err(e) => tracing::error!(error = %e, "recording task failed"),
        }
    }
}

#[cfg(test)]
mod tests;
