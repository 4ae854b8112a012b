//! The mail store's metadata in redb (docs/mailstore.md, "Tables"): users numbered for
//! fixed-width keys, mailboxes with UIDVALIDITY/UIDNEXT/HIGHESTMODSEQ, messages, memberships
//! and the modseq index, blob reference counts and stored structures. First slice: users,
//! mailboxes and APPEND under the growing quota; flags, EXPUNGE and the expunge log come
//! with the IMAP commands that use them. Blob bytes are written (durably) before the
//! transaction that references them; a crash between leaves an unreferenced blob for gc.

use std::path::Path;

use jiff::Timestamp;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

use super::structure::Structure;
use crate::accounts::quota::{self, QuotaRule, Writer};
use crate::blobs::{BlobError, BlobHash, BlobStore};

const USER_IDS: TableDefinition<&str, u32> = TableDefinition::new("user_ids");
const COUNTERS: TableDefinition<&str, u64> = TableDefinition::new("counters");
const USERS: TableDefinition<u32, &[u8]> = TableDefinition::new("users");
const MAILBOXES: TableDefinition<(u32, u32), &[u8]> = TableDefinition::new("mailboxes");
const MAILBOX_NAMES: TableDefinition<(u32, &str), u32> = TableDefinition::new("mailbox_names");
const MESSAGES: TableDefinition<(u32, u64), &[u8]> = TableDefinition::new("messages");
/// (user, mailbox, uid) → (message, modseq)
const MEMBERS: TableDefinition<(u32, u32, u32), (u64, u64)> = TableDefinition::new("members");
/// (user, mailbox, modseq) → uid: CONDSTORE `CHANGEDSINCE` and IDLE catch-up.
const BY_MODSEQ: TableDefinition<(u32, u32, u64), u32> = TableDefinition::new("by_modseq");
const BLOB_REFS: TableDefinition<&[u8; 32], u64> = TableDefinition::new("blob_refs");
const STRUCTURES: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("structures");

/// The top-level folders gatepost reserves; those with a role carry it (RFC 6154).
pub const RESERVED: [(&str, Option<&str>); 8] = [
    ("INBOX", None),
    ("Sent", Some("\\Sent")),
    ("Drafts", Some("\\Drafts")),
    ("Trash", Some("\\Trash")),
    ("Junk", Some("\\Junk")),
    ("Archive", Some("\\Archive")),
    ("Scheduled", None),
    ("Accounts", None),
];

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("mail store: {0}")]
    Db(String),
    #[error("mail store record damaged: {0}")]
    Damaged(String),
    #[error(transparent)]
    Blob(#[from] BlobError),
    #[error("no mailbox {0:?}")]
    NoMailbox(String),
    #[error("mailbox {0:?} exists")]
    MailboxExists(String),
    #[error("{0:?} is not a mailbox name: {1}")]
    BadName(String, &'static str),
    #[error(transparent)]
    OverQuota(#[from] quota::OverQuota),
}

macro_rules! db_errors {
    ($($t:ty),*) => {$(impl From<$t> for MailError {
        fn from(e: $t) -> Self { MailError::Db(e.to_string()) }
    })*};
}
db_errors!(redb::DatabaseError, redb::TransactionError, redb::TableError, redb::StorageError, redb::CommitError);

/// A user's quota state and counters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct UserState {
    next_mailbox: u32,
    next_message: u64,
    modseq: u64,
    limit: u64,
    used: u64,
    /// `gatepost quota set USER --ceiling`: replaces the operator's ceiling.
    ceiling: Option<u64>,
    /// Each growth of the limit: (time, old, new).
    growth: Vec<(Timestamp, u64, u64)>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mailbox {
    pub name: String,
    pub special_use: Option<String>,
    pub uidvalidity: u32,
    pub uidnext: u32,
    pub highestmodseq: u64,
    pub exists: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub blob: String,
    pub size: u64,
    pub internaldate: Timestamp,
    pub flags: Vec<String>,
}

/// A message to file: its bytes, flags, INTERNALDATE and who files it (for the quota).
#[derive(Debug, Clone, Copy)]
pub struct NewMessage<'a> {
    pub raw: &'a [u8],
    pub flags: &'a [String],
    pub internaldate: Timestamp,
    pub writer: Writer,
}

/// A user's quota as `gatepost quota show` prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaState {
    pub limit: u64,
    pub used: u64,
    /// Each growth: (time, old limit, new limit).
    pub growth: Vec<(Timestamp, u64, u64)>,
}

/// What APPEND answers (RFC 4315 APPENDUID).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    pub uidvalidity: u32,
    pub uid: u32,
    pub modseq: u64,
}

pub struct MailDb {
    db: Database,
    rule: QuotaRule,
}

fn json<T: Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).expect("mail store records always serialise")
}

fn read<T: for<'de> Deserialize<'de>>(what: &str, bytes: &[u8]) -> Result<T, MailError> {
    serde_json::from_slice(bytes).map_err(|e| MailError::Damaged(format!("{what}: {e}")))
}

/// Mailbox names: UTF-8, `/` between levels, no empty level, no control characters; the
/// reserved top-level names are matched without regard to case for INBOX only (RFC 3501 §5.1).
pub fn canonical_name(name: &str) -> Result<String, MailError> {
    let bad = |why| MailError::BadName(name.to_string(), why);
    if name.is_empty() || name.split('/').any(str::is_empty) {
        return Err(bad("empty level"));
    }
    if name.chars().any(|c| c.is_control() || c == '*' || c == '%') {
        return Err(bad("control characters and the wildcards * and % are not allowed"));
    }
    match name.split_once('/') {
        Some((top, rest)) if top.eq_ignore_ascii_case("INBOX") => Ok(format!("INBOX/{rest}")),
        None if name.eq_ignore_ascii_case("INBOX") => Ok("INBOX".into()),
        _ => Ok(name.to_string()),
    }
}

impl MailDb {
    pub fn open(path: &Path, rule: QuotaRule) -> Result<MailDb, MailError> {
        let mut builder = redb::Builder::new();
        builder.set_cache_size(16 << 20);
        let db = builder.create(path)?;
        let txn = db.begin_write()?;
        txn.open_table(USERS)?;
        txn.open_table(USER_IDS)?;
        txn.open_table(COUNTERS)?;
        txn.open_table(MAILBOXES)?;
        txn.open_table(MAILBOX_NAMES)?;
        txn.open_table(MESSAGES)?;
        txn.open_table(MEMBERS)?;
        txn.open_table(BY_MODSEQ)?;
        txn.open_table(BLOB_REFS)?;
        txn.open_table(STRUCTURES)?;
        txn.commit()?;
        Ok(MailDb { db, rule })
    }

    fn write(&self) -> Result<redb::WriteTransaction, MailError> {
        let mut txn = self.db.begin_write()?;
        txn.set_two_phase_commit(true);
        Ok(txn)
    }

    /// The user's number, made on first use with the reserved mailboxes and a new quota.
    pub fn user(&self, name: &str, now: Timestamp) -> Result<u32, MailError> {
        if let Some(id) = self.db.begin_read()?.open_table(USER_IDS)?.get(name)? {
            return Ok(id.value());
        }
        let txn = self.write()?;
        let id = {
            let mut ids = txn.open_table(USER_IDS)?;
            if let Some(id) = ids.get(name)? {
                return Ok(id.value());
            }
            let mut counters = txn.open_table(COUNTERS)?;
            let id = counters.get("next_user")?.map_or(1, |v| v.value());
            counters.insert("next_user", id + 1)?;
            let id = u32::try_from(id).map_err(|_| MailError::Db("too many users".into()))?;
            ids.insert(name, id)?;
            let mut state = UserState {
                next_mailbox: 1,
                next_message: 1,
                modseq: 1,
                limit: self.rule.initial,
                used: 0,
                ceiling: self.rule.ceiling,
                growth: vec![],
            };
            let mut boxes = txn.open_table(MAILBOXES)?;
            let mut names = txn.open_table(MAILBOX_NAMES)?;
            for (name, role) in RESERVED {
                let mbox = state.next_mailbox;
                state.next_mailbox += 1;
                let rec = Mailbox {
                    name: name.into(),
                    special_use: role.map(str::to_string),
                    uidvalidity: uidvalidity(now, mbox),
                    uidnext: 1,
                    highestmodseq: 1,
                    exists: 0,
                };
                boxes.insert((id, mbox), json(&rec).as_slice())?;
                names.insert((id, name), mbox)?;
            }
            txn.open_table(USERS)?.insert(id, json(&state).as_slice())?;
            id
        };
        txn.commit()?;
        Ok(id)
    }

    pub fn create_mailbox(&self, user: u32, name: &str, now: Timestamp) -> Result<u32, MailError> {
        let name = canonical_name(name)?;
        let txn = self.write()?;
        let mbox = {
            let mut names = txn.open_table(MAILBOX_NAMES)?;
            if names.get((user, name.as_str()))?.is_some() {
                return Err(MailError::MailboxExists(name));
            }
            let mut users = txn.open_table(USERS)?;
            let mut state: UserState =
                read("user", users.get(user)?.ok_or(MailError::Db("no such user".into()))?.value())?;
            let mbox = state.next_mailbox;
            state.next_mailbox += 1;
            users.insert(user, json(&state).as_slice())?;
            let rec = Mailbox {
                name: name.clone(),
                special_use: None,
                uidvalidity: uidvalidity(now, mbox),
                uidnext: 1,
                highestmodseq: state.modseq,
                exists: 0,
            };
            txn.open_table(MAILBOXES)?.insert((user, mbox), json(&rec).as_slice())?;
            names.insert((user, name.as_str()), mbox)?;
            mbox
        };
        txn.commit()?;
        Ok(mbox)
    }

    /// Every mailbox of the user, by name.
    pub fn mailboxes(&self, user: u32) -> Result<Vec<(u32, Mailbox)>, MailError> {
        let txn = self.db.begin_read()?;
        let boxes = txn.open_table(MAILBOXES)?;
        let mut out = Vec::new();
        for entry in boxes.range((user, 0)..=(user, u32::MAX))? {
            let (k, v) = entry?;
            out.push((k.value().1, read::<Mailbox>("mailbox", v.value())?));
        }
        out.sort_by(|a, b| a.1.name.cmp(&b.1.name));
        Ok(out)
    }

    pub fn mailbox_id(&self, user: u32, name: &str) -> Result<u32, MailError> {
        let name = canonical_name(name)?;
        let txn = self.db.begin_read()?;
        let id = txn.open_table(MAILBOX_NAMES)?.get((user, name.as_str()))?.map(|v| v.value());
        id.ok_or(MailError::NoMailbox(name))
    }

    /// APPEND: the blob first (durable, outside the transaction), then in one transaction the
    /// quota decision and its growth, the message, its membership, the modseq index, the
    /// mailbox counters and the blob's reference count.
    pub fn append(
        &self,
        blobs: &dyn BlobStore,
        user: u32,
        mailbox: u32,
        new: &NewMessage<'_>,
    ) -> Result<Appended, MailError> {
        let NewMessage { raw, flags, internaldate, writer } = *new;
        // Refuse an over-quota write before its blob costs disk; decided again below, in the
        // transaction, against the state it commits over.
        let state = self.user_state(user)?;
        quota::decide(&self.rule, state.ceiling, state.limit, state.used, raw.len() as u64, writer)?;
        let hash = blobs.put(raw)?;
        let txn = self.write()?;
        let appended = {
            let mut users = txn.open_table(USERS)?;
            let mut state: UserState =
                read("user", users.get(user)?.ok_or(MailError::Db("no such user".into()))?.value())?;
            let mut boxes = txn.open_table(MAILBOXES)?;
            let mut mbox: Mailbox =
                read("mailbox", boxes.get((user, mailbox))?.ok_or(MailError::NoMailbox(mailbox.to_string()))?.value())?;
            let size = raw.len() as u64;
            let admitted = quota::decide(&self.rule, state.ceiling, state.limit, state.used, size, writer)?;
            if let Some((old, new)) = admitted.grew {
                state.growth.push((internaldate, old, new));
            }
            state.limit = admitted.limit;
            state.used += size;
            state.modseq += 1;
            let (message, modseq) = (state.next_message, state.modseq);
            state.next_message += 1;
            let uid = mbox.uidnext;
            mbox.uidnext += 1;
            mbox.exists += 1;
            mbox.highestmodseq = modseq;
            let rec = Message { blob: hash.to_string(), size, internaldate, flags: flags.to_vec() };
            txn.open_table(MESSAGES)?.insert((user, message), json(&rec).as_slice())?;
            txn.open_table(MEMBERS)?.insert((user, mailbox, uid), (message, modseq))?;
            txn.open_table(BY_MODSEQ)?.insert((user, mailbox, modseq), uid)?;
            let mut refs = txn.open_table(BLOB_REFS)?;
            let count = refs.get(&hash.0)?.map_or(0, |v| v.value());
            refs.insert(&hash.0, count + 1)?;
            drop(refs);
            let mut structures = txn.open_table(STRUCTURES)?;
            if structures.get(&hash.0)?.is_none() {
                structures.insert(&hash.0, Structure::of(raw).encode().as_slice())?;
            }
            boxes.insert((user, mailbox), json(&mbox).as_slice())?;
            users.insert(user, json(&state).as_slice())?;
            Appended { uidvalidity: mbox.uidvalidity, uid, modseq }
        };
        txn.commit()?;
        Ok(appended)
    }

    /// Members of a mailbox in UID order, `uids` inclusive.
    pub fn members(
        &self,
        user: u32,
        mailbox: u32,
        uids: std::ops::RangeInclusive<u32>,
    ) -> Result<Vec<(u32, u64, Message)>, MailError> {
        let txn = self.db.begin_read()?;
        let members = txn.open_table(MEMBERS)?;
        let messages = txn.open_table(MESSAGES)?;
        let mut out = Vec::new();
        for entry in members.range((user, mailbox, *uids.start())..=(user, mailbox, *uids.end()))? {
            let (k, v) = entry?;
            let (message, modseq) = v.value();
            let rec = messages
                .get((user, message))?
                .ok_or_else(|| MailError::Damaged(format!("member {:?} without its message", k.value())))?;
            out.push((k.value().2, modseq, read::<Message>("message", rec.value())?));
        }
        Ok(out)
    }

    /// The stored structure of a blob.
    pub fn structure(&self, hash: &BlobHash) -> Result<Option<Structure>, MailError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(STRUCTURES)?;
        let Some(v) = table.get(&hash.0)? else { return Ok(None) };
        Structure::decode(v.value()).map(Some).map_err(MailError::Damaged)
    }

    pub fn blob_refs(&self, hash: &BlobHash) -> Result<u64, MailError> {
        Ok(self.db.begin_read()?.open_table(BLOB_REFS)?.get(&hash.0)?.map_or(0, |v| v.value()))
    }

    pub fn quota(&self, user: u32) -> Result<QuotaState, MailError> {
        let state = self.user_state(user)?;
        Ok(QuotaState { limit: state.limit, used: state.used, growth: state.growth })
    }

    fn user_state(&self, user: u32) -> Result<UserState, MailError> {
        let txn = self.db.begin_read()?;
        let users = txn.open_table(USERS)?;
        read("user", users.get(user)?.ok_or(MailError::Db("no such user".into()))?.value())
    }
}

/// UIDVALIDITY: the creation second, made distinct per mailbox number so a mailbox deleted
/// and made again within a second still gets a new one (RFC 3501 §2.3.1.1).
fn uidvalidity(now: Timestamp, mailbox: u32) -> u32 {
    (now.as_second() as u32).wrapping_add(mailbox).max(1)
}

#[cfg(test)]
mod tests;
