//! Group commit: one thread owns the write side of submission. Sessions hand it records
//! whose bodies are already fsynced; it takes everything waiting, syncs the touched body
//! directories once, commits all records in one durable transaction and answers each
//! session. Under load one fsync pays for many messages; alone, a message waits for nothing.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc;

use tokio::sync::oneshot;

use super::QueueError;
use crate::store::{MessageRecord, Store};

/// The most records one transaction takes (bounds commit latency under a flood).
const MAX_BATCH: usize = 512;

struct Job {
    record: MessageRecord,
    dir: PathBuf,
    done: oneshot::Sender<Result<(), QueueError>>,
}

pub struct Committer {
    tx: mpsc::Sender<Job>,
}

impl Committer {
    pub fn start(store: Arc<Store>) -> Committer {
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("gatepost-commit".into())
            .spawn(move || run(store, rx))
            .expect("spawning the commit thread");
        Committer { tx }
    }

    pub async fn commit(&self, record: MessageRecord, dir: PathBuf) -> Result<(), QueueError> {
        let (done, wait) = oneshot::channel();
        self.tx.send(Job { record, dir, done }).map_err(|_| QueueError::ShuttingDown)?;
        wait.await.map_err(|_| QueueError::ShuttingDown)?
    }
}

/// Runs until every sender is gone (the queue was dropped), finishing what was handed in.
fn run(store: Arc<Store>, rx: mpsc::Receiver<Job>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let dirs: Vec<PathBuf> = batch.iter().map(|j| j.dir.clone()).collect::<BTreeSet<_>>().into_iter().collect();
        let (records, waiting): (Vec<MessageRecord>, Vec<_>) = batch.into_iter().map(|j| (j.record, j.done)).unzip();
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
