//! The `Scheduled` view kept in step with the hold queue (docs/imap.md, "Scheduled"). Every
//! change to a scheduled client message's record puts it on a durable feed (`store::tables`,
//! written in the record's own transaction); this reads the feed and makes the user's entry
//! match the record: there with INTERNALDATE = its earliest pending release while some
//! recipient is held, `\Deleted` while paused, gone once released or cancelled. Idempotent, so
//! a crash anywhere only repeats work; an entry is cleared only if the record has not changed
//! since it was read.

use crate::accounts::quota::Writer;
use crate::mailstore::MailError;
use crate::mailstore::db::{HeldSource, HeldWant};
use crate::store::{QueueId, QueueRecord, Store, sha256_hex};

use super::filer::Filer;

const BATCH: usize = 256;

impl Filer {
    /// One pass over the view's feed; returns how many entries were cleared.
    pub fn once_scheduled(&self) -> anyhow::Result<usize> {
        let pending = self.store.scheduled_pending(BATCH)?;
        let mut done: Vec<(QueueId, u64)> = Vec::new();
        for (id, token, rec) in pending {
            let Some(rec) = rec else {
                done.push((id, token));
                continue;
            };
            match self.sync_scheduled(&rec) {
                Ok(_) => done.push((id, token)),
                Err(MailError::OverQuota(q)) => {
                    tracing::warn!(queue_id = %id, used = q.used, limit = q.limit, "Scheduled entry waits: over the quota and its reserve");
                }
                Err(e) => return Err(e.into()),
            }
        }
        let n = done.len();
        if n > 0 {
            self.store.scheduled_done(&done)?;
        }
        Ok(n)
    }

    /// Make the user's `Scheduled` entry for `rec` match it; returns the entry's UID.
    pub fn sync_scheduled(&self, rec: &QueueRecord) -> Result<Option<u32>, MailError> {
        sync(&self.store, &self.mail, rec, &[], Writer::System, self.clock.now())
    }
}

/// The one way an entry is made or changed: by the filer, and by an IMAP APPEND/COPY/MOVE into
/// `Scheduled` right after its submission (with the client's flags).
pub fn sync(
    store: &Store,
    mail: &crate::mailstore::MailStore,
    rec: &QueueRecord,
    flags: &[String],
    writer: Writer,
    now: jiff::Timestamp,
) -> Result<Option<u32>, MailError> {
    let db = &mail.db;
    let _held = mail.held_lock.lock().unwrap_or_else(|e| e.into_inner());
    let user = db.user(&rec.user, now)?;
    let mailbox = db.mailbox_id(user, "Scheduled")?;
    let want = rec.scheduled_view().map(|release| HeldWant { release, paused: rec.paused });
    // Never the bytes of a damaged body: the entry is the message as submitted, or nothing.
    let raw = || store.bodies().read(rec.id).ok().filter(|b| sha256_hex(b) == rec.body_sha256);
    let source = HeldSource { raw: &raw, flags, writer, now };
    let uid = db.held_sync(mail.blobs.as_ref(), (user, mailbox), &rec.id.to_string(), want, &source)?;
    mail.changed(user);
    Ok(uid)
}
