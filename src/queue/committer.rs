//! Group commit: one thread owns the write side of submission. Sessions hand it records
//! whose bodies are already fsynced; it takes everything waiting, syncs the touched body
//! directories once, commits all records in one durable transaction and answers each
//! session. Under load one fsync pays for many messages; alone, a message waits for nothing.
//!
//! Siblings (PostgreSQL's `commit_delay` with `commit_siblings`, made exact): a session
//! counts itself as *writing* from the moment it starts writing its body until it hands the
//! record over. When other sessions are writing as a group is about to commit, the group waits
//! for them, at most `COMMIT_DELAY`: their bodies are a fraction of a millisecond from done,
//! and a redb commit (three syncs, a few dozen page writes) costs far more than that wait. A
//! message with no sibling commits at once.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::QueueError;
use crate::store::{QueueRecord, Store};

/// The most records one transaction takes (bounds commit latency under a flood).
const MAX_BATCH: usize = 512;
/// The longest a group waits for sessions still writing their bodies.
const COMMIT_DELAY: Duration = Duration::from_millis(2);

struct Job {
    record: QueueRecord,
    dir: PathBuf,
    done: oneshot::Sender<Result<(), QueueError>>,
}

pub struct Committer {
    tx: mpsc::Sender<Job>,
    writing: Arc<AtomicUsize>,
}

/// A session writing its body: counted from `writing()` until the record is handed over.
pub struct Writing(Arc<AtomicUsize>);

impl Drop for Writing {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Committer {
    pub fn start(store: Arc<Store>) -> Committer {
        let (tx, rx) = mpsc::channel::<Job>();
        let writing = Arc::new(AtomicUsize::new(0));
        let siblings = writing.clone();
        std::thread::Builder::new()
            .name("gatepost-commit".into())
            .spawn(move || run(store, rx, &siblings))
            .expect("spawning the commit thread");
        Committer { tx, writing }
    }

    /// Note that a session starts writing a body it will hand over (drop the guard then).
    pub fn writing(&self) -> Writing {
        self.writing.fetch_add(1, Ordering::SeqCst);
        Writing(self.writing.clone())
    }

    /// Hand a record over (its body written and fsynced) and wait for its commit. The
    /// `Writing` guard goes as the record is handed over, never before.
    pub async fn commit(&self, record: QueueRecord, dir: PathBuf, writing: Writing) -> Result<(), QueueError> {
        let (done, wait) = oneshot::channel();
        let sent = self.tx.send(Job { record, dir, done });
        drop(writing);
        sent.map_err(|_| QueueError::ShuttingDown)?;
        wait.await.map_err(|_| QueueError::ShuttingDown)?
    }
}

/// Runs until every sender is gone (the queue was dropped), finishing what was handed in.
fn run(store: Arc<Store>, rx: mpsc::Receiver<Job>, writing: &AtomicUsize) {
    while let Ok(first) = rx.recv() {
        let deadline = Instant::now() + COMMIT_DELAY;
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(mpsc::TryRecvError::Empty) if writing.load(Ordering::SeqCst) > 0 => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        break;
                    }
                    match rx.recv_timeout(left.min(Duration::from_micros(200))) {
                        Ok(job) => batch.push(job),
                        Err(mpsc::RecvTimeoutError::Timeout) => continue,
                        Err(mpsc::RecvTimeoutError::Disconnected) => break,
                    }
                }
                Err(_) => break,
            }
        }
        let dirs: Vec<PathBuf> = batch.iter().map(|j| j.dir.clone()).collect::<BTreeSet<_>>().into_iter().collect();
        let (records, waiting): (Vec<QueueRecord>, Vec<_>) = batch.into_iter().map(|j| (j.record, j.done)).unzip();
        let result = store.insert_messages(&records, &dirs);
        if let Err(e) = &result {
            tracing::error!(error = %e, messages = records.len(), "queue commit failed");
        }
        for done in waiting {
            let answer = match &result {
                Ok(()) => Ok(()),
                Err(e) => Err(QueueError::Store(crate::store::StoreError::Db(e.to_string()))),
            };
            let _ = done.send(answer);
        }
    }
}
