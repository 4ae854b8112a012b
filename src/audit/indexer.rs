//! The indexer task of `gatepost serve`: every two seconds it applies the store's pending changes
//! to the trace index, and once an hour it applies the retention policy. While changes keep
//! arriving (a submission flood) it holds back, up to `MAX_LAG`, so indexing does not take
//! CPU from the sessions and is done in fewer, larger commits (`Pacer`). Work runs on the
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
/// The longest the index trails the store while changes keep arriving.
const MAX_LAG: Duration = Duration::from_secs(10);
/// Pending changes that are applied at once, flood or not (bounds one catch-up's work).
const MAX_HELD_BACK: u64 = 50_000;

/// When to index: at once when the feed is quiet, else after `MAX_LAG` (pure; table-tested).
#[derive(Debug, Default)]
pub struct Pacer {
    waiting_since: Option<Duration>,
    last_pending: u64,
}

impl Pacer {
    /// `now` is any monotonic time; `pending` the feed's length. True: index now.
    pub fn index_now(&mut self, now: Duration, pending: u64) -> bool {
        let growing = pending > self.last_pending;
        self.last_pending = pending;
        if pending == 0 {
            self.waiting_since = None;
            return false;
        }
        let since = *self.waiting_since.get_or_insert(now);
        let go = !growing || now.saturating_sub(since) >= MAX_LAG || pending >= MAX_HELD_BACK;
        if go {
            self.waiting_since = None;
            self.last_pending = 0;
        }
        go
    }
}
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
        let mut pacer = Pacer::default();
        let started = tokio::time::Instant::now();
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
            let elapsed = started.elapsed();
            // The pacer goes to the blocking pool with the tick (counting the feed reads redb);
            // should the tick panic, pacing starts afresh.
            let mut pacer_out = std::mem::take(&mut pacer);
            let stopping = shutdown.clone();
            let result = tokio::task::spawn_blocking(move || {
                let pending = store.trace_pending_count().unwrap_or(u64::MAX);
                let index_now = pacer_out.index_now(elapsed, pending);
                (pacer_out, tick(&store, &index, &w, cutoff, index_now, &|| *stopping.borrow()))
            })
            .await
            .map(|(p, r)| {
                pacer = p;
                r
            });
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
    index_now: bool,
    stopping: &dyn Fn() -> bool,
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
    // The server holds the index from its first tick, whether or not there is work: a
    // `gatepost trace` meanwhile only reads (it would otherwise take the writer and do the
    // server's indexing in its own process, and the server would find the index busy).
    let mut guard = writer.lock().unwrap_or_else(|p| p.into_inner());
    if guard.is_none() {
        *guard = Some(index.writer()?);
    }
    if !index_now {
        return Ok(());
    }
    let w = guard.as_mut().expect("writer just set");
    let n = w.catch_up_until(store, |_| {}, stopping)?;
    if n > 0 {
        tracing::debug!(changes = n, "trace index updated");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_server_holds_the_index_from_its_first_tick() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let index = TraceIndex::open(dir.path(), &store).unwrap();
        let writer = Mutex::new(None);
        // Nothing to index, and the pacer says wait: the writer is taken all the same, so a
        // `gatepost trace` beside the server only reads.
        tick(&store, &index, &writer, None, false, &|| false).unwrap();
        assert!(writer.lock().unwrap().is_some());
        assert!(matches!(index.writer(), Err(IndexError::Busy)));
    }

    #[test]
    fn pacing() {
        let s = Duration::from_secs;
        let mut p = Pacer::default();
        // (time, pending) -> index now?
        let table: &[(u64, u64, bool)] = &[
            (0, 0, false),   // nothing to do
            (2, 5, false),   // changes arriving: wait
            (4, 5, true),    // quiet since: index
            (6, 0, false),   // applied
            (8, 100, false), // a flood starts
            (10, 900, false),
            (12, 2_000, false),
            (14, 3_000, false),
            (16, 4_000, false),
            (18, 5_000, true),  // ten seconds of lag: index although still growing
            (20, 800, false),   // the flood goes on: a new wait begins
            (22, 60_000, true), // too much held back: index
            (24, 10, false),
            (26, 10, true),
        ];
        for &(t, pending, want) in table {
            assert_eq!(p.index_now(s(t), pending), want, "t={t} pending={pending}");
        }
    }
}
