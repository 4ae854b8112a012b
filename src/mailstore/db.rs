//! The mail store's metadata in redb (docs/mailstore.md, "Tables"): users numbered for
//! fixed-width keys, mailboxes with UIDVALIDITY/UIDNEXT/HIGHESTMODSEQ and counters, messages
//! (flags, origin, memberships), memberships with their own UID, MODSEQ and `\Deleted`, the
//! modseq index and the expunge log, subscriptions, blob reference counts and stored
//! structures. Blob bytes are written (durably) before the transaction that references them;
//! a crash between leaves an unreferenced blob for gc. Writes are in `write.rs` (messages) and
//! `folders.rs` (mailboxes), reads for sessions in `read.rs`, blobs' places and structures in
//! `blob_meta.rs`.

use std::path::Path;

use jiff::Timestamp;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

use super::structure::Structure;
use crate::accounts::quota::{self, QuotaRule, Writer};
use crate::blobs::{BlobError, BlobHash, BlobStore, Place};

pub(super) const USER_IDS: TableDefinition<&str, u32> = TableDefinition::new("user_ids");
pub(super) const COUNTERS: TableDefinition<&str, u64> = TableDefinition::new("counters");
pub(super) const USERS: TableDefinition<u32, &[u8]> = TableDefinition::new("users");
pub(super) const MAILBOXES: TableDefinition<(u32, u32), &[u8]> = TableDefinition::new("mailboxes");
pub(super) const MAILBOX_NAMES: TableDefinition<(u32, &str), u32> = TableDefinition::new("mailbox_names");
pub(super) const MESSAGES: TableDefinition<(u32, u64), &[u8]> = TableDefinition::new("messages");
/// (user, mailbox, uid) → (message, modseq, `\\Deleted`): `\\Deleted` is per membership, so
/// COPY + STORE \\Deleted + EXPUNGE (the move of clients without MOVE) never loses the copy.
pub(super) const MEMBERS: TableDefinition<(u32, u32, u32), (u64, u64, bool)> = TableDefinition::new("members");
/// (user, mailbox, modseq) → uid: CONDSTORE `CHANGEDSINCE` and IDLE catch-up.
pub(super) const BY_MODSEQ: TableDefinition<(u32, u32, u64), u32> = TableDefinition::new("by_modseq");
/// (user, mailbox, modseq) → uid of an expunged membership: QRESYNC `VANISHED` and every
/// session's catch-up read what left a mailbox from here.
pub(super) const EXPUNGED: TableDefinition<(u32, u32, u64), u32> = TableDefinition::new("expunged");
/// (user, mailbox, uid) → () for each membership whose message lacks `\\Seen` (`unseen.rs`).
pub(super) const UNSEEN: TableDefinition<(u32, u32, u32), ()> = TableDefinition::new("unseen");
/// (user, name) → (): LSUB and LIST (SUBSCRIBED); a name may be subscribed without existing.
pub(super) const SUBSCRIBED: TableDefinition<(u32, &str), ()> = TableDefinition::new("subscribed");
pub(super) const BLOB_REFS: TableDefinition<&[u8; 32], u64> = TableDefinition::new("blob_refs");
/// hash → (pack, offset, stored length) of a packed blob, written in the transaction that
/// first references it and moved by compaction (`gc.rs`); no row: the blob has a file of its own.
pub(super) const BLOB_PLACES: TableDefinition<&[u8; 32], (u64, u64, u32)> = TableDefinition::new("blob_places");
pub(super) const STRUCTURES: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("structures");
/// (user, queue id) → UID of the held message's entry in the user's `Scheduled` view
/// (`held.rs`). An entry the user expunged or moved away leaves a stale key, checked on read.
pub(super) const HELD: TableDefinition<(u32, &str), u32> = TableDefinition::new("held");

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

/// Whether `name` (canonical) is one of the reserved top-level folders.
pub fn is_reserved(name: &str) -> bool {
    RESERVED.iter().any(|(r, _)| *r == name)
}

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
    #[error("{0:?} is reserved: {1}")]
    Reserved(String, &'static str),
    #[error("mailbox {0:?} has children: delete them first")]
    HasChildren(String),
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
pub(super) struct UserState {
    pub(super) next_mailbox: u32,
    pub(super) next_message: u64,
    /// One modseq counter per user (RFC 7162): every change in any of the user's mailboxes
    /// takes the next value, so one number says how far a session has seen.
    pub(super) modseq: u64,
    pub(super) limit: u64,
    pub(super) used: u64,
    /// `gatepost quota set USER --ceiling`: replaces the operator's ceiling.
    pub(super) ceiling: Option<u64>,
    /// Each growth of the limit: (time, old, new).
    pub(super) growth: Vec<(Timestamp, u64, u64)>,
}

/// A mailbox and its counters, kept in step by every write so SELECT and STATUS never scan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mailbox {
    pub name: String,
    pub special_use: Option<String>,
    pub uidvalidity: u32,
    pub uidnext: u32,
    pub highestmodseq: u64,
    pub exists: u32,
    #[serde(default)]
    pub unseen: u32,
    /// Memberships with `\Deleted`, and the sum of their sizes (STATUS DELETED,
    /// DELETED-STORAGE: RFC 9208 §4.3).
    #[serde(default)]
    pub deleted: u32,
    #[serde(default)]
    pub deleted_size: u64,
    #[serde(default)]
    pub size: u64,
    /// UIDs from here on are `\Recent` for the next session that selects the mailbox
    /// (RFC 3501 §2.3.2): that session claims them.
    #[serde(default = "one")]
    pub recent_from: u32,
    /// Keywords ever used in the mailbox (SELECT's FLAGS), at most [`MAX_KEYWORDS`].
    #[serde(default)]
    pub keywords: Vec<String>,
    /// The expunge log forgets entries at or below this modseq (it keeps the newest
    /// [`EXPUNGE_LOG_KEEP`]); a catch-up from below it compares UID lists instead.
    #[serde(default)]
    pub expunge_floor: u64,
    /// Entries in the expunge log since it was last trimmed (a trigger, not an exact count:
    /// stores from before the floor start at zero).
    #[serde(default)]
    pub expunge_log: u32,
}

/// Expunges remembered per mailbox for QRESYNC and for sessions catching up; the log is
/// trimmed back to this many when it has grown by a tenth more (docs/mailstore.md).
pub const EXPUNGE_LOG_KEEP: u32 = 10_000;

/// Keywords a mailbox lists; more are still stored on messages, just not announced.
pub const MAX_KEYWORDS: usize = 200;

fn one() -> u32 {
    1
}

/// Where a message came from; the change feed carries it (notifications name the mailbox and
/// say whether it is new mail or a copy).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    Append,
    /// `gatepost import` from an mbox, a Maildir or .eml files.
    Import,
    Copy,
    /// Filed by the Sent filer for the queued message `queue`.
    SentCopy {
        queue: String,
    },
    /// A DSN or notice gatepost queued as `queue` and filed for the user.
    Notice {
        queue: String,
    },
    /// The entry of the held message `queue` in the `Scheduled` view (its bytes as submitted).
    Held {
        queue: String,
    },
    Remote {
        account: u32,
        folder: String,
        uidvalidity: u32,
        uid: u32,
        first_import: bool,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub blob: String,
    pub size: u64,
    pub internaldate: Timestamp,
    /// System flags and keywords, shared by every membership; never `\Deleted` (per
    /// membership) or `\Recent` (per session).
    pub flags: Vec<String>,
    pub origin: Origin,
    /// (mailbox, uid) of each membership: one, or the INBOX pair.
    pub members: Vec<(u32, u32)>,
    /// The Message-ID field's value, as written (the Sent filer's duplicate check).
    #[serde(default)]
    pub message_id: Option<String>,
}

impl Message {
    pub fn seen(&self) -> bool {
        self.flags.iter().any(|f| f.eq_ignore_ascii_case("\\Seen"))
    }
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
    pub(super) db: Database,
    pub(super) rule: QuotaRule,
    /// Held (shared) by a write from its blob `put` to its commit, and (exclusively) by the
    /// collector while it deletes: the collector never sees a blob written but not yet
    /// referenced (docs/mailstore.md, "Garbage collection").
    pub(super) blob_writes: std::sync::RwLock<()>,
    /// [`EXPUNGE_LOG_KEEP`], smaller in tests.
    pub(super) expunge_keep: u32,
    /// New messages waiting to be committed together (`group.rs`).
    filings: group::Filings,
}

pub(super) fn json<T: Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).expect("mail store records always serialise")
}

pub(super) fn read<T: for<'de> Deserialize<'de>>(what: &str, bytes: &[u8]) -> Result<T, MailError> {
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
    if name.len() > 1000 {
        return Err(bad("longer than 1000 bytes"));
    }
    match name.split_once('/') {
        Some((top, rest)) if top.eq_ignore_ascii_case("INBOX") => Ok(format!("INBOX/{rest}")),
        None if name.eq_ignore_ascii_case("INBOX") => Ok("INBOX".into()),
        _ => Ok(name.to_string()),
    }
}

impl MailDb {
    pub fn open(path: &Path, rule: QuotaRule) -> Result<MailDb, MailError> {
        MailDb::open_checked(path, rule, false)
    }

    /// Open, verifying every page checksum first when `verify` (after an unclean stop, as the
    /// queue's store is). A file redb cannot read (it may panic on damage made outside it) is
    /// damage naming the file, never a new empty store.
    pub fn open_checked(path: &Path, rule: QuotaRule, verify: bool) -> Result<MailDb, MailError> {
        let mut builder = redb::Builder::new();
        // MultiWriter, as the queue's store (decision D4): `gatepost quota set` and
        // `mailbox list` work beside a running server.
        builder
            .set_concurrency_mode(redb::ConcurrencyMode::MultiWriter)
            .set_cache_size(64 << 20)
            .set_check_integrity_on_open(verify);
        let exists = path.exists();
        let opened = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            if exists { builder.open(path) } else { builder.create(path) }
        }));
        let db = match opened {
            Ok(Ok(db)) => db,
            Ok(Err(e)) => return Err(MailError::Damaged(format!("{}: {e}", path.display()))),
            Err(_) => {
                return Err(MailError::Damaged(format!(
                    "{}: redb could not open it; restore it from a backup with gatepost stopped",
                    path.display()
                )));
            }
        };
        let txn = db.begin_write()?;
        txn.open_table(USERS)?;
        txn.open_table(USER_IDS)?;
        txn.open_table(COUNTERS)?;
        txn.open_table(MAILBOXES)?;
        txn.open_table(MAILBOX_NAMES)?;
        txn.open_table(MESSAGES)?;
        txn.open_table(MEMBERS)?;
        txn.open_table(BY_MODSEQ)?;
        txn.open_table(EXPUNGED)?;
        txn.open_table(SUBSCRIBED)?;
        txn.open_table(BLOB_REFS)?;
        txn.open_table(BLOB_PLACES)?;
        txn.open_table(STRUCTURES)?;
        txn.open_table(HELD)?;
        txn.open_table(UNSEEN)?;
        sync::create_tables(&txn)?;
        sync_sent::create_tables(&txn)?;
        txn.commit()?;
        let db = MailDb {
            db,
            rule,
            blob_writes: std::sync::RwLock::new(()),
            expunge_keep: EXPUNGE_LOG_KEEP,
            filings: group::Filings::default(),
        };
        db.build_unseen_index()?;
        Ok(db)
    }

    pub(super) fn write(&self) -> Result<redb::WriteTransaction, MailError> {
        let mut txn = self.db.begin_write()?;
        txn.set_two_phase_commit(true);
        Ok(txn)
    }

    /// The user's number if the user has one yet.
    pub fn find_user(&self, name: &str) -> Result<Option<u32>, MailError> {
        Ok(self.db.begin_read()?.open_table(USER_IDS)?.get(name)?.map(|v| v.value()))
    }

    /// The user's number, made on first use with the reserved mailboxes and a new quota.
    pub fn user(&self, name: &str, now: Timestamp) -> Result<u32, MailError> {
        if let Some(id) = self.find_user(name)? {
            return Ok(id);
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
            let mut subscribed = txn.open_table(SUBSCRIBED)?;
            for (name, role) in RESERVED {
                let mbox = state.next_mailbox;
                state.next_mailbox += 1;
                let rec = new_mailbox(name, role.map(str::to_string), now, mbox, 1);
                boxes.insert((id, mbox), json(&rec).as_slice())?;
                names.insert((id, name), mbox)?;
                subscribed.insert((id, name), ())?;
            }
            txn.open_table(USERS)?.insert(id, json(&state).as_slice())?;
            id
        };
        txn.commit()?;
        Ok(id)
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

    pub fn mailbox(&self, user: u32, mailbox: u32) -> Result<Mailbox, MailError> {
        let txn = self.db.begin_read()?;
        let boxes = txn.open_table(MAILBOXES)?;
        let v = boxes.get((user, mailbox))?.ok_or_else(|| MailError::NoMailbox(mailbox.to_string()))?;
        read("mailbox", v.value())
    }

    /// Subscribed names, by name (RFC 3501 LSUB).
    pub fn subscriptions(&self, user: u32) -> Result<Vec<String>, MailError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(SUBSCRIBED)?;
        let mut out = Vec::new();
        for entry in table.range((user, "")..)? {
            let (k, _) = entry?;
            let (u, name) = k.value();
            if u != user {
                break;
            }
            out.push(name.to_string());
        }
        Ok(out)
    }

    pub fn subscribe(&self, user: u32, name: &str, on: bool) -> Result<(), MailError> {
        let name = canonical_name(name)?;
        let txn = self.write()?;
        {
            let mut table = txn.open_table(SUBSCRIBED)?;
            if on {
                table.insert((user, name.as_str()), ())?;
            } else {
                table.remove((user, name.as_str()))?;
            }
        }
        txn.commit()?;
        Ok(())
    }

    pub fn quota(&self, user: u32) -> Result<QuotaState, MailError> {
        let state = self.user_state(user)?;
        Ok(QuotaState { limit: state.limit, used: state.used, growth: state.growth })
    }

    /// Whether `size` more bytes would be admitted for the user now (the write decides again).
    pub fn admit(&self, user: u32, size: u64, writer: Writer) -> Result<(), MailError> {
        let s = self.user_state(user)?;
        quota::decide(&self.rule, s.ceiling, s.limit, s.used, size, writer)?;
        Ok(())
    }

    /// The user's modseq counter: the highest modseq of any change so far.
    pub fn modseq(&self, user: u32) -> Result<u64, MailError> {
        Ok(self.user_state(user)?.modseq)
    }

    pub(super) fn user_state(&self, user: u32) -> Result<UserState, MailError> {
        let txn = self.db.begin_read()?;
        let users = txn.open_table(USERS)?;
        read("user", users.get(user)?.ok_or(MailError::Db("no such user".into()))?.value())
    }
}

pub(super) fn new_mailbox(name: &str, role: Option<String>, now: Timestamp, mbox: u32, modseq: u64) -> Mailbox {
    Mailbox {
        name: name.into(),
        special_use: role,
        uidvalidity: uidvalidity(now, mbox),
        uidnext: 1,
        highestmodseq: modseq,
        exists: 0,
        unseen: 0,
        deleted: 0,
        deleted_size: 0,
        size: 0,
        recent_from: 1,
        keywords: vec![],
        expunge_floor: 0,
        expunge_log: 0,
    }
}

/// UIDVALIDITY: the creation second, made distinct per mailbox number so a mailbox deleted
/// and made again within a second still gets a new one (RFC 3501 §2.3.1.1).
fn uidvalidity(now: Timestamp, mailbox: u32) -> u32 {
    (now.as_second() as u32).wrapping_add(mailbox).max(1)
}

mod blob_meta;
mod filing;
mod folders;
mod gc;
mod group;
mod held;
mod read;
mod sync;
mod sync_filing;
mod sync_folders;
mod sync_sent;
mod unseen;
mod verify;
mod write;

pub(super) use blob_meta::packed;
pub use gc::Collected;
pub use held::{HeldSource, HeldWant};
pub use read::{Changes, Member};
pub use sync::{
    AccountSync, Destination, FolderChanges, FolderSync, Imported, Pending, REMOVED_AT_SOURCE, RemoteMessage,
    SyncStatus, Synced, TOO_LARGE_LISTED, same_flags,
};
pub use sync_sent::SentCopyFiled;
pub use verify::VerifyReport;
pub use write::{FlagOp, Stored, message_id_of};

#[cfg(test)]
mod tests;
