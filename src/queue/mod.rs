//! The hold queue: durable submission (body file, then record and due entry in one
//! transaction, grouped across sessions), listing, cancelling and start-up recovery.

pub mod attempts;
mod committer;
pub mod dispatch;
pub mod dsn;
pub mod prepare;
mod recovery;

use std::net::SocketAddr;
use std::sync::Arc;

use jiff::Timestamp;

use crate::schedule::RecipientRelease;
use crate::store::{
    EventKind, INTERNAL_CLIENT, Origin, QueueId, QueueRecord, QueueState, RECORD_VERSION, RecipientRecord, Store,
    StoreError, sha256_hex,
};

pub use recovery::{RecoveryReport, recover};

/// A message the SMTP session has accepted for queueing (every check already passed).
#[derive(Debug, Clone)]
pub struct Submission {
    pub session_id: String,
    pub user: String,
    pub sender: String,
    pub sender_name: Option<String>,
    pub recipients: Vec<RecipientRelease>,
    pub subject: Option<String>,
    pub message_id: Option<String>,
    pub client: SocketAddr,
    pub tls: Option<String>,
    pub helo: String,
    pub submitted_at: Timestamp,
    pub timezone: String,
    pub body: Vec<u8>,
    /// For a delivery status notification: the queue id it reports on.
    pub notice_of: Option<QueueId>,
    /// The connected account whose own server sends it (SPEC §10); `None`: the system relay.
    pub route: Option<String>,
}

/// What the client is told in the 250 reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    pub id: QueueId,
    /// Distinct release times, earliest first.
    pub release_times: Vec<Timestamp>,
}

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the queue is shutting down")]
    ShuttingDown,
    /// Nothing of it is waiting any more (sent, failed or already cancelled).
    #[error("message {id} cannot be cancelled: it is {}", state.as_str())]
    NotCancellable { id: QueueId, state: QueueState },
}

pub struct Queue {
    store: Arc<Store>,
    committer: committer::Committer,
    /// Wakes the dispatcher when a message is queued (it may be due at once).
    wake: Arc<tokio::sync::Notify>,
}

impl Queue {
    /// Start the queue (and its group-commit thread) over an open store.
    pub fn start(store: Arc<Store>) -> Queue {
        let committer = committer::Committer::start(store.clone());
        Queue { store, committer, wake: Arc::new(tokio::sync::Notify::new()) }
    }

    /// The dispatcher waits on this; every submit notifies it.
    pub fn waker(&self) -> Arc<tokio::sync::Notify> {
        self.wake.clone()
    }

    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// Make the message durable and return its queue id. Returns only once the body file,
    /// its directory entry and the record are all on disk.
    pub async fn submit(&self, sub: Submission) -> Result<Accepted, QueueError> {
        let id = QueueId::new();
        let record = build_record(id, &sub);
        let store = self.store.clone();
        let body = sub.body;
        let writing = self.committer.writing();
        let dir = tokio::task::spawn_blocking(move || store.bodies().write(id, &body))
            .await
            .map_err(|_| QueueError::ShuttingDown)?
            .map_err(StoreError::io(format!("writing body of {id}")))?;
        let mut release_times: Vec<Timestamp> = record.recipients.iter().map(|r| r.release_at).collect();
        release_times.sort();
        release_times.dedup();
        if let Err(e) = self.committer.commit(record, dir, writing).await {
            // Nothing half-stored: the body of an unacknowledged message goes.
            let _ = std::fs::remove_file(self.store.bodies().path(id));
            return Err(e);
        }
        self.wake.notify_one();
        Ok(Accepted { id, release_times })
    }

    /// Cancel every recipient still waiting. Recorded as an event, never forgotten.
    pub fn cancel(&self, id: QueueId, by: &str, now: Timestamp) -> Result<QueueRecord, QueueError> {
        cancel(&self.store, id, by, now)
    }
}

/// Cancel on a store directly (the CLI uses this without starting a queue).
pub fn cancel(store: &Store, id: QueueId, by: &str, now: Timestamp) -> Result<QueueRecord, QueueError> {
    let mut not_pending = None;
    let cancelled = store.update_message(id, |rec| {
        if !rec.recipients.iter().any(|r| r.state.is_pending()) {
            not_pending = Some(rec.state);
            return Err(StoreError::Refused(format!("message {id} is {}", rec.state.as_str())));
        }
        let mut n = 0;
        for r in rec.recipients.iter_mut().filter(|r| r.state.is_pending()) {
            r.state = QueueState::Cancelled;
            n += 1;
        }
        rec.state = rec.derive_state();
        rec.push_event(now, EventKind::Cancelled, format!("by {by}; {n} recipient(s) will not be sent"));
        Ok(())
    });
    match (cancelled, not_pending) {
        (Err(_), Some(state)) => Err(QueueError::NotCancellable { id, state }),
        (cancelled, _) => Ok(cancelled?),
    }
}

/// Stop (`on`) or restart the release of a message still held: the user's `\\Deleted` on its
/// entry in the IMAP `Scheduled` view. A paused message keeps its recipients' states and
/// release times but has no due entry (`store::tables`), so the dispatcher never takes it;
/// restarted after its time, it goes at once. Recorded as an event, as a cancel is.
pub fn pause(store: &Store, id: QueueId, on: bool, by: &str, now: Timestamp) -> Result<QueueRecord, QueueError> {
    let mut not_held = None;
    let paused = store.update_message(id, |rec| {
        if rec.scheduled_view().is_none() {
            not_held = Some(rec.state);
            return Err(StoreError::Refused(format!("message {id} is {}", rec.state.as_str())));
        }
        if rec.paused != on {
            rec.paused = on;
            let (kind, what) =
                if on { (EventKind::Paused, "release stopped") } else { (EventKind::Resumed, "release restarted") };
            rec.push_event(now, kind, format!("{what} by {by}"));
        }
        Ok(())
    });
    match (paused, not_held) {
        (Err(_), Some(state)) => Err(QueueError::NotCancellable { id, state }),
        (paused, _) => Ok(paused?),
    }
}

fn build_record(id: QueueId, sub: &Submission) -> QueueRecord {
    // gatepost's own notices are the only internal messages today; no client wrote them.
    let internal = sub.notice_of.is_some();
    let recipients: Vec<RecipientRecord> = sub
        .recipients
        .iter()
        .map(|r| RecipientRecord {
            original: r.original.clone(),
            address: r.address.clone(),
            release_at: r.release_at,
            source: r.source,
            state: if r.release_at <= sub.submitted_at { QueueState::Due } else { QueueState::Held },
            next_attempt_at: None,
            attempts: 0,
            last_error: None,
            possibly_delivered: 0,
        })
        .collect();
    let mut rec = QueueRecord {
        version: RECORD_VERSION,
        id,
        user: sub.user.clone(),
        sender: sub.sender.clone(),
        sender_name: sub.sender_name.clone(),
        recipients,
        subject: sub.subject.clone(),
        message_id: sub.message_id.clone(),
        size: sub.body.len() as u64,
        body_sha256: sha256_hex(&sub.body),
        client: if internal { INTERNAL_CLIENT } else { sub.client },
        origin: if internal { Origin::Internal } else { Origin::Client },
        tls: if internal { None } else { sub.tls.clone() },
        helo: sub.helo.clone(),
        submitted_at: sub.submitted_at,
        session_id: sub.session_id.clone(),
        timezone: sub.timezone.clone(),
        state: QueueState::Held,
        notice_of: sub.notice_of,
        route: sub.route.clone(),
        paused: false,
        attempts: vec![],
        events: vec![],
    };
    rec.state = rec.derive_state();
    let from = match &sub.notice_of {
        Some(original) => format!("written by gatepost (internal): a delivery status notification about {original}"),
        None => format!("from {} over {}", sub.client, sub.tls.as_deref().unwrap_or("plaintext")),
    };
    let from = match &sub.route {
        Some(account) => format!("{from}; leaves through account {account:?}'s own server"),
        None => from,
    };
    rec.push_event(sub.submitted_at, EventKind::Submitted, from);
    if rec.state == QueueState::Held {
        let when = rec.next_release().map(|t| t.to_string()).unwrap_or_default();
        rec.push_event(sub.submitted_at, EventKind::Held, format!("until {when}"));
    }
    rec
}

#[cfg(test)]
mod tests;
