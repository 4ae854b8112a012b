//! `gatepost store verify`: the mail store checked against itself. Every message's blob is
//! read back (which re-hashes it: a damaged blob is named), reference counts are recounted
//! from the messages, every membership points at its message and back, each mailbox's
//! counters (EXISTS, UNSEEN, DELETED, sizes), the unseen index and each user's quota usage
//! are recomputed.
//! Runs beside a running server (read transactions only); a write that commits meanwhile can
//! show as a counter mismatch, so run it again before acting on one.

use std::collections::HashMap;

use redb::{ReadableDatabase, ReadableTable, ReadableTableMetadata};

use super::*;
use crate::blobs::{BlobStore, Place};

#[derive(Debug, Default)]
pub struct VerifyReport {
    pub users: u64,
    pub messages: u64,
    pub blobs: u64,
    pub bytes: u64,
    pub problems: Vec<String>,
}

#[derive(Default, PartialEq, Eq, Debug)]
struct Counts {
    exists: u32,
    unseen: u32,
    deleted: u32,
    size: u64,
    deleted_size: u64,
}

impl MailDb {
    /// Check everything; `progress` is called once per message.
    pub fn verify(&self, blobs: &dyn BlobStore, mut progress: impl FnMut()) -> Result<VerifyReport, MailError> {
        let txn = self.db.begin_read()?;
        let mut report = VerifyReport::default();
        let messages = txn.open_table(MESSAGES)?;
        let members = txn.open_table(MEMBERS)?;
        let mut refs: HashMap<String, u64> = HashMap::new();
        let mut used: HashMap<u32, u64> = HashMap::new();
        let mut sizes: HashMap<(u32, u64), (u64, bool)> = HashMap::new();
        for entry in messages.iter()? {
            let (k, v) = entry?;
            let (user, id) = k.value();
            progress();
            report.messages += 1;
            let msg: Message = match read("message", v.value()) {
                Ok(m) => m,
                Err(e) => {
                    report.problems.push(format!("user {user} message {id}: {e}"));
                    continue;
                }
            };
            *refs.entry(msg.blob.clone()).or_default() += 1;
            *used.entry(user).or_default() += msg.size;
            sizes.insert((user, id), (msg.size, msg.seen()));
            for &(mailbox, uid) in &msg.members {
                match members.get((user, mailbox, uid))? {
                    Some(m) if m.value().0 == id => {}
                    _ => report.problems.push(format!(
                        "user {user} message {id}: its membership ({mailbox}, UID {uid}) does not point back to it"
                    )),
                }
            }
        }
        let mut counts: HashMap<(u32, u32), Counts> = HashMap::new();
        let unseen_index = txn.open_table(UNSEEN)?;
        let mut indexed_unseen = 0u64;
        for entry in members.iter()? {
            let (k, v) = entry?;
            let (user, mailbox, uid) = k.value();
            let (id, _, deleted) = v.value();
            let Some(&(size, seen)) = sizes.get(&(user, id)) else {
                report.problems.push(format!("user {user} mailbox {mailbox} UID {uid}: no message {id}"));
                continue;
            };
            let indexed = unseen_index.get((user, mailbox, uid))?.is_some();
            indexed_unseen += u64::from(indexed);
            if indexed == seen {
                report.problems.push(format!(
                    "user {user} mailbox {mailbox} UID {uid}: the unseen index says {}, the message says {}",
                    if indexed { "unseen" } else { "seen" },
                    if seen { "seen" } else { "unseen" }
                ));
            }
            let c = counts.entry((user, mailbox)).or_default();
            c.exists += 1;
            c.size += size;
            c.unseen += u32::from(!seen);
            if deleted {
                c.deleted += 1;
                c.deleted_size += size;
            }
        }
        for entry in txn.open_table(MAILBOXES)?.iter()? {
            let (k, v) = entry?;
            let (user, mailbox) = k.value();
            let rec: Mailbox = read("mailbox", v.value())?;
            let have = Counts {
                exists: rec.exists,
                unseen: rec.unseen,
                deleted: rec.deleted,
                size: rec.size,
                deleted_size: rec.deleted_size,
            };
            let want = counts.remove(&(user, mailbox)).unwrap_or_default();
            if have != want {
                report
                    .problems
                    .push(format!("user {user} mailbox {:?}: counters {have:?}, recounted {want:?}", rec.name));
            }
        }
        if unseen_index.len()? != indexed_unseen {
            report.problems.push(format!(
                "the unseen index has {} entries, {indexed_unseen} of them for memberships that exist",
                unseen_index.len()?
            ));
        }
        for ((user, mailbox), _) in counts {
            report.problems.push(format!("user {user}: memberships in mailbox {mailbox}, which does not exist"));
        }
        for entry in txn.open_table(USERS)?.iter()? {
            let (k, v) = entry?;
            report.users += 1;
            let state: UserState = read("user", v.value())?;
            let want = used.get(&k.value()).copied().unwrap_or(0);
            if state.used != want {
                report.problems.push(format!("user {}: quota usage {} bytes, recounted {want}", k.value(), state.used));
            }
        }
        let stored = txn.open_table(BLOB_REFS)?;
        let places = txn.open_table(BLOB_PLACES)?;
        for (blob, want) in &refs {
            let hash: BlobHash = match blob.parse() {
                Ok(h) => h,
                Err(e) => {
                    report.problems.push(format!("blob name {blob:?}: {e}"));
                    continue;
                }
            };
            let have = stored.get(&hash.0)?.map_or(0, |v| v.value());
            if have != *want {
                report.problems.push(format!("blob {blob}: reference count {have}, {want} messages use it"));
            }
            report.blobs += 1;
            let place = places.get(&hash.0)?.map_or(Place::Own, |v| packed(v.value()));
            match blobs.get(&hash, place) {
                Ok(raw) => report.bytes += raw.len() as u64,
                Err(e) => report.problems.push(format!("blob {blob}: {e}")),
            }
        }
        for entry in stored.iter()? {
            let (k, v) = entry?;
            let name = BlobHash(*k.value()).to_string();
            if v.value() > 0 && !refs.contains_key(&name) {
                report.problems.push(format!("blob {name}: reference count {} but no message uses it", v.value()));
            }
        }
        for entry in places.iter()? {
            let (k, _) = entry?;
            if stored.get(k.value())?.is_none() {
                report.problems.push(format!("blob {}: a pack place but no reference count", BlobHash(*k.value())));
            }
        }
        Ok(report)
    }

    /// Messages in the whole store (for a progress bar).
    pub fn message_count(&self) -> Result<u64, MailError> {
        Ok(self.db.begin_read()?.open_table(MESSAGES)?.len()?)
    }
}
