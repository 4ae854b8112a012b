//! The indexer task of `gatepost serve`: every two seconds it applies the store's pending changes
//! to the trace index, and once an hour it applies the retention policy. Work runs on the
//! blocking pool; a failure is logged and retried on the next tick, and the change feed
//! keeps everything that was not applied.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::Timestamp;
use tokio::sync::watch;

use super::index::{IndexError, TraceIndex, TraceWriter};
use crate::clock::Clock;
use crate::store::Store;

const TICK: Duration = Duration::from_secs(2);
const RETENTION_EVERY: Duration = Duration::from_secs(3600);
/// Records removed per retention transaction.
const RETENTION_BATCH: usize = 1000;

pub struct Indexer {
    pub store: Arc<Store>,
    pub index: Arc<TraceIndex>,
    pub clock: Arc<dyn Clock>,
    pub retention: Option<Duration>,
}

impl Indexer {
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) -> bool {
        let writer: Arc<Mutex<Option<TraceWriter>>> = Arc::new(Mutex::new(None));
        let mut last_retention: Option<tokio::time::Instant> = None;
        let mut busy_logged = false;
        loop {
            let (store, index, w) = (self.store.clone(), self.index.clone(), writer.clone());
            let retention_due = last_retention.is_none_or(|t| t.elapsed() >= RETENTION_EVERY);
            let cutoff = match (self.retention, retention_due) {
                (Some(keep), true) => {
                    last_retention = Some(tokio::time::Instant::now());
                    jiff::SignedDuration::try_from(keep).ok().and_then(|k| self.clock.now().checked_sub(k).ok())
                }
                _ => None,
            };
            let result = tokio::task::spawn_blocking(move || tick(&store, &index, &w, cutoff)).await;
            match result {
                Ok(Ok(())) => busy_logged = false,
                Ok(Err(IndexError::Busy)) => {
                    if !busy_logged {
                        tracing::warn!(
                            "trace index is held by another process (`gatepost trace reindex`?); will retry"
                        );
                        busy_logged = true;
                    }
                }
                Ok(Err(e)) => tracing::error!(error = %e, "trace indexing failed; will retry"),
                Err(e) => tracing::error!(error = %e, "trace indexer task failed"),
            }
            tokio::select! {
                _ = tokio::time::sleep(TICK) => {}
                _ = shutdown.changed() => break,
            }
        }
        true
    }
}

fn tick(
    store: &Store,
    index: &TraceIndex,
    writer: &Mutex<Option<TraceWriter>>,
    retention_cutoff: Option<Timestamp>,
) -> Result<(), IndexError> {
    if let Some(cutoff) = retention_cutoff {
        loop {
            let ids = store.expired_records(cutoff, RETENTION_BATCH)?;
            if ids.is_empty() {
                break;
            }
            let n = store.remove_messages(&ids)?;
            tracing::info!(removed = n, before = %cutoff, "retention: removed finished messages");
        }
    }
    let mut guard = writer.lock().unwrap_or_else(|p| p.into_inner());
    if guard.is_none() {
        *guard = Some(index.writer()?);
    }
    let w = guard.as_mut().expect("writer just set");
    let n = w.catch_up(store, |_| {})?;
    if n > 0 {
        tracing::debug!(changes = n, "trace index updated");
    }
    Ok(())
}
