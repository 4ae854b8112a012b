//! What the IMAP server needs from the hold queue for the `Scheduled` view (docs/imap.md,
//! "Scheduled"): submitting a message dropped into it, pausing and cancelling a held one.
//! Sessions run on the blocking pool, so the queue's async submit is waited for here.

use std::sync::Arc;

use jiff::Timestamp;

use crate::queue::{Queue, QueueError, Submission};
use crate::smtp::session::{AuthedUser, SessionSettings};
use crate::store::{QueueId, QueueRecord, Store};

pub struct HoldQueue {
    pub store: Arc<Store>,
    pub queue: Arc<Queue>,
    /// The SMTP submission rules (sizes, schedule limits, the From rule).
    pub rules: Arc<SessionSettings>,
    pub runtime: tokio::runtime::Handle,
}

impl HoldQueue {
    /// The user as the submission rules see them (addresses they may send as, their zone).
    pub fn sender(&self, name: &str) -> Option<AuthedUser> {
        let user = self.store.get_user(name).ok().flatten()?;
        Some(crate::smtp::driver::authed_user(&self.store, &user))
    }

    /// Queue durably; the record as stored. Called from the blocking pool only.
    pub fn submit(&self, sub: Submission) -> Result<QueueRecord, QueueError> {
        let accepted = self.runtime.block_on(self.queue.submit(sub))?;
        self.store
            .get_message(accepted.id)?
            .ok_or_else(|| QueueError::Store(crate::store::StoreError::NotFound(accepted.id.to_string())))
    }

    pub fn pause(&self, id: QueueId, on: bool, by: &str, now: Timestamp) -> Result<QueueRecord, QueueError> {
        crate::queue::pause(&self.store, id, on, by, now)
    }

    pub fn cancel(&self, id: QueueId, by: &str, now: Timestamp) -> Result<QueueRecord, QueueError> {
        crate::queue::cancel(&self.store, id, by, now)
    }
}
