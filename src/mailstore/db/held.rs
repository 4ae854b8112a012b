//! The `Scheduled` view's entries (docs/imap.md, "Scheduled"): one message per held queue
//! message, its INTERNALDATE the earliest pending release, `\Deleted` while its release is
//! paused. The queue's record is the truth; [`MailDb::held_sync`] brings the entry in step
//! with it — made, replaced under a new UID when the release time changed (UIDs stay strictly
//! ascending: RFC 3501 §2.3.1.1), re-flagged, or expunged once nothing is held — in one
//! transaction that re-reads the entry, so the filer and an APPEND racing on the same message
//! never make two.

use jiff::Timestamp;
use redb::ReadableTable;

use super::write::{Work, split_flags};
use super::*;
use crate::accounts::quota::{self, Writer};
use crate::blobs::BlobStore;

/// What the entry of a held message should be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeldWant {
    /// The earliest pending release: the entry's INTERNALDATE.
    pub release: Timestamp,
    /// The release is stopped: the entry carries `\Deleted`.
    pub paused: bool,
}

/// Where a new entry's bytes, flags and quota charge come from.
pub struct HeldSource<'a> {
    /// The submitted bytes (`None`: the body is gone).
    pub raw: &'a dyn Fn() -> Option<Vec<u8>>,
    /// A new entry's flags (an APPEND's); a replaced entry keeps its own.
    pub flags: &'a [String],
    pub writer: Writer,
    pub now: Timestamp,
}

impl MailDb {
    /// The entry of queue message `queue` in `mailbox`: (uid, message), if it is there.
    pub fn held_entry(&self, user: u32, mailbox: u32, queue: &str) -> Result<Option<(u32, Message)>, MailError> {
        let txn = self.db.begin_read()?;
        let Some(uid) = txn.open_table(HELD)?.get((user, queue))?.map(|v| v.value()) else { return Ok(None) };
        let Some((id, _, _)) = txn.open_table(MEMBERS)?.get((user, mailbox, uid))?.map(|v| v.value()) else {
            return Ok(None);
        };
        let Some(v) = txn.open_table(MESSAGES)?.get((user, id))? else { return Ok(None) };
        let msg: Message = read("message", v.value())?;
        let ours = msg.origin == Origin::Held { queue: queue.to_string() };
        Ok(ours.then_some((uid, msg)))
    }

    /// Bring the entry of `queue` in step with `want` (`None`: it goes); `source` gives what a
    /// new entry is made of. Returns the entry's UID.
    pub fn held_sync(
        &self,
        blobs: &dyn BlobStore,
        (user, mailbox): (u32, u32),
        queue: &str,
        want: Option<HeldWant>,
        source: &HeldSource<'_>,
    ) -> Result<Option<u32>, MailError> {
        let current = self.held_entry(user, mailbox, queue)?;
        let needs_bytes = match (&want, &current) {
            (Some(w), Some((_, msg))) => msg.internaldate != w.release,
            (Some(_), None) => true,
            (None, _) => false,
        };
        let bytes = if needs_bytes {
            match (source.raw)() {
                Some(b) => Some(b),
                // The body is gone: nothing to show (the queue reports that loss itself).
                None => return Ok(None),
            }
        } else {
            None
        };
        if let Some(b) = &bytes {
            // Refused before the blob costs disk; decided again in the transaction.
            let state = self.user_state(user)?;
            quota::decide(&self.rule, state.ceiling, state.limit, state.used, b.len() as u64, source.writer)?;
        }
        let _writing = self.blob_writes.read().unwrap_or_else(|e| e.into_inner());
        let put = bytes.as_deref().map(|b| self.put_blob(blobs, b)).transpose()?;
        let txn = self.write()?;
        let uid = {
            let mut held = txn.open_table(HELD)?;
            let mut work = Work::open(&txn, user, self.expunge_keep)?;
            // Re-read inside the transaction: what the pre-check saw may have changed.
            let entry = match held.get((user, queue))?.map(|v| v.value()) {
                Some(uid) => match work.member(mailbox, uid)? {
                    Some((id, _, deleted)) => {
                        let msg = work.message(id)?;
                        (msg.origin == (Origin::Held { queue: queue.to_string() })).then_some((uid, id, deleted, msg))
                    }
                    None => None,
                },
                None => None,
            };
            let out = match (want, entry) {
                (None, Some((_, id, _, _))) => {
                    work.expunge_message(id)?;
                    held.remove((user, queue))?;
                    None
                }
                (None, None) => {
                    held.remove((user, queue))?;
                    None
                }
                (Some(w), Some((uid, id, deleted, msg))) if msg.internaldate == w.release => {
                    if deleted != w.paused {
                        work.set_deleted(mailbox, uid, id, msg.size, w.paused)?;
                    }
                    Some(uid)
                }
                (Some(w), old) => {
                    let (Some(raw), Some((hash, place))) = (&bytes, &put) else {
                        // Another writer changed the entry between the look and now: look again.
                        drop(work);
                        drop(held);
                        txn.abort()?;
                        return self.held_sync(blobs, (user, mailbox), queue, want, source);
                    };
                    let (shared, _) = match &old {
                        Some((_, _, _, msg)) => (msg.flags.clone(), false),
                        None => split_flags(source.flags),
                    };
                    if let Some((_, old_id, _, _)) = old {
                        work.expunge_message(old_id)?;
                    }
                    let size = raw.len() as u64;
                    work.charge(&self.rule, size, source.writer, source.now)?;
                    let origin = Origin::Held { queue: queue.to_string() };
                    let (uid, _) = work.new_message(
                        mailbox,
                        hash,
                        Some(*place),
                        size,
                        w.release,
                        shared,
                        origin,
                        message_id_of(raw),
                    )?;
                    if w.paused {
                        let id = work.member(mailbox, uid)?.map(|m| m.0).unwrap_or_default();
                        work.set_deleted(mailbox, uid, id, size, true)?;
                    }
                    held.insert((user, queue), uid)?;
                    let mut structures = txn.open_table(STRUCTURES)?;
                    if structures.get(&hash.0)?.is_none() {
                        structures.insert(&hash.0, Structure::of(raw).encode().as_slice())?;
                    }
                    Some(uid)
                }
            };
            work.finish()?;
            out
        };
        txn.commit()?;
        Ok(uid)
    }
}
