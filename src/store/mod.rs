//! The store: redb tables for records and indexes, plus body files. This is the only module
//! that knows the on-disk layout (`docs/queue.md` describes it).
//!
//! Tables:
//! - `messages`: queue id → JSON `QueueRecord`
//! - `due`: `release_at (8 bytes, order-preserving) ‖ ULID (16 bytes)` → () — the release
//!   order; a range scan stops at the first future key, so held mail costs nothing until due
//! - `by_user`: `user \0 id` → () — per-user listing without a full scan
//! - `users`: name → JSON `UserRecord`; `user_changes`: seq → user name, the per-user change
//!   feed a running server follows; `login_successes`: `ip \0 user` → unix seconds of a
//!   successful login (the password pool's priority lane) — see `users.rs`
//! - `sending`: id → () for messages with a recipient in `sending` state: after a crash these
//!   are the deliveries whose outcome is uncertain, found without scanning every record
//! - `trace_pending`, `trace_meta`: the change feed of the trace index (`trace.rs`)

mod bodies;
mod connected;
mod event;
mod filing;
mod id;
pub mod integrity;
pub mod lock;
mod record;
pub mod space;
mod tables;
mod trace;
mod users;

use std::path::{Path, PathBuf};

use jiff::Timestamp;
use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition, TableHandle};

pub use bodies::{Bodies, create_private, sha256_hex, sync_dir};
pub use connected::{ConnectedAccount, SendAs, SentCopy, validate_account_name};
pub use event::{Event, EventKind};
pub use id::{BadQueueId, QueueId};
pub use integrity::{DataDirState, Integrity};
pub use lock::{LockError, ServerLock};
pub use record::{Attempt, INTERNAL_CLIENT, Origin, QueueRecord, QueueState, RECORD_VERSION, RecipientRecord};
use tables::QueueTables;
pub use tables::{FILE_INBOX, FILE_SENT};
pub use trace::TraceChange;
use users::USERS;
pub use users::{USER_CHANGES_KEPT, UserChange, UserRecord};

const MESSAGES: TableDefinition<&str, &[u8]> = TableDefinition::new("messages");
const DUE: TableDefinition<&[u8], ()> = TableDefinition::new("due");
const BY_USER: TableDefinition<&str, ()> = TableDefinition::new("by_user");
const SENDING: TableDefinition<&str, ()> = TableDefinition::new("sending");

/// Written at a clean shutdown, removed at start: its absence means the last run crashed.
const CLEAN_MARKER: &str = "clean-shutdown";
/// The database file in the data directory.
pub const DB_FILE: &str = "gatepost.redb";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{context}: {source}")]
    Io { context: String, source: std::io::Error },
    #[error("database error: {0}")]
    Db(String),
    #[error("damaged store: {0}")]
    Damaged(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Refused(String),
}

impl StoreError {
    pub fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> StoreError {
        let context = context.into();
        move |source| StoreError::Io { context, source }
    }
}

macro_rules! db_err {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self { StoreError::Db(e.to_string()) }
        }
    )*};
}
db_err!(redb::TransactionError, redb::TableError, redb::StorageError, redb::CommitError);

impl From<redb::DatabaseError> for StoreError {
    fn from(e: redb::DatabaseError) -> Self {
        match e {
            redb::DatabaseError::Storage(redb::StorageError::Corrupted(why)) => StoreError::Damaged(why),
            other => StoreError::Db(other.to_string()),
        }
    }
}

/// Order-preserving due key: time first, then id, so equal times keep submission order.
pub fn due_key(at: Timestamp, id: QueueId) -> Vec<u8> {
    let micros = at.as_microsecond();
    let ordered = (micros as u64) ^ (1u64 << 63);
    let mut key = Vec::with_capacity(24);
    key.extend_from_slice(&ordered.to_be_bytes());
    key.extend_from_slice(&id.to_u128().to_be_bytes());
    key
}

fn parse_due_key(key: &[u8]) -> Option<(Timestamp, QueueId)> {
    let t = u64::from_be_bytes(key.get(..8)?.try_into().ok()?) ^ (1u64 << 63);
    let id = u128::from_be_bytes(key.get(8..24)?.try_into().ok()?);
    let at = Timestamp::from_microsecond(t as i64).ok()?;
    Some((at, QueueId::from_u128(id)))
}

pub struct Store {
    db: Database,
    bodies: Bodies,
    data_dir: PathBuf,
}

impl Store {
    /// Open (or create) the store under `data_dir`, trusting the database file (every
    /// command but `serve` and `store check`). Damage found by [`integrity::probe`] is an error.
    pub fn open(data_dir: &Path) -> Result<Store, StoreError> {
        Store::open_with(data_dir, Integrity::Trust)
    }

    /// Open (or create) the store under `data_dir`. A damaged database file, an empty one, or
    /// gatepost data without one is a clear error naming the file, never a fresh store.
    pub fn open_with(data_dir: &Path, integrity: Integrity) -> Result<Store, StoreError> {
        integrity::private_dir_all(data_dir)
            .map_err(StoreError::io(format!("creating data directory {}", data_dir.display())))?;
        let path = data_dir.join(DB_FILE);
        if integrity::probe(data_dir)? == DataDirState::New {
            integrity::create_database(&path, |tmp| {
                let db = integrity::builder(false).create(tmp).map_err(|e| integrity::db_error(tmp, e))?;
                create_tables(&db)
            })?;
        }
        integrity::note_opened(&path);
        // A plain open of a file damaged outside redb may panic inside redb; catch that here
        // as the damage it is (the panic hook of `main` keeps its text off the terminal).
        let opened = std::panic::catch_unwind(|| integrity::builder(integrity == Integrity::Verify).open(&path));
        let db = match opened {
            Ok(r) => r.map_err(|e| integrity::db_error(&path, e))?,
            Err(_) => {
                return Err(StoreError::Damaged(integrity::damage().unwrap_or_else(|| {
                    format!(
                        "{}: redb could not open it; run `gatepost store check` with gatepost stopped",
                        path.display()
                    )
                })));
            }
        };
        create_tables(&db)?;
        Ok(Store { db, bodies: Bodies::new(data_dir.join("bodies")), data_dir: data_dir.to_path_buf() })
    }

    /// Note that this run ends cleanly (everything committed, nothing half-written).
    pub fn mark_clean_shutdown(&self) -> Result<(), StoreError> {
        let path = self.data_dir.join(CLEAN_MARKER);
        integrity::write_private(&path, b"gatepost stopped cleanly\n")
            .map_err(StoreError::io("writing the clean-shutdown marker"))?;
        sync_dir(&self.data_dir).map_err(StoreError::io("syncing the data directory"))
    }

    /// Whether the last run stopped cleanly; consumes the marker, so a crash of this run is
    /// noticed at the next start.
    pub fn take_clean_shutdown(&self) -> bool {
        let path = self.data_dir.join(CLEAN_MARKER);
        let was = path.is_file();
        if was {
            let _ = std::fs::remove_file(&path);
            let _ = sync_dir(&self.data_dir);
        }
        was
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    pub fn bodies(&self) -> &Bodies {
        &self.bodies
    }

    fn write_txn(&self) -> Result<redb::WriteTransaction, StoreError> {
        let mut txn = self.db.begin_write()?;
        // Two-phase commit: a torn commit can never be mistaken for a good one.
        txn.set_two_phase_commit(true);
        Ok(txn)
    }

    /// Commit new records (their bodies already written) in one durable transaction, after
    /// making the body renames durable. This is the group-commit point of submission.
    pub fn insert_messages(&self, records: &[QueueRecord], dirs: &[PathBuf]) -> Result<(), StoreError> {
        for dir in dirs {
            sync_dir(dir).map_err(StoreError::io(format!("syncing {}", dir.display())))?;
        }
        let txn = self.write_txn()?;
        {
            let mut tables = QueueTables::open(&txn)?;
            for rec in records {
                tables.put(rec, None)?;
            }
        }
        txn.commit()?;
        Ok(())
    }

    pub fn get_message(&self, id: QueueId) -> Result<Option<QueueRecord>, StoreError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(MESSAGES)?;
        match table.get(id.to_string().as_str())? {
            Some(v) => Ok(Some(QueueRecord::decode(v.value())?)),
            None => Ok(None),
        }
    }

    /// Change one record in a transaction, keeping the indexes in step with it.
    pub fn update_message<F>(&self, id: QueueId, change: F) -> Result<QueueRecord, StoreError>
    where
        F: FnOnce(&mut QueueRecord) -> Result<(), StoreError>,
    {
        let mut change = Some(change);
        let mut out = self.update_messages(&[id], |rec| change.take().expect("called once")(rec))?;
        out.pop().ok_or_else(|| StoreError::NotFound(format!("no queued message {id}")))
    }

    /// Change several records in one transaction (the dispatcher claims a batch this way).
    /// A missing id is an error for the whole batch; `change` may refuse one record, which
    /// also aborts the batch.
    pub fn update_messages<F>(&self, ids: &[QueueId], mut change: F) -> Result<Vec<QueueRecord>, StoreError>
    where
        F: FnMut(&mut QueueRecord) -> Result<(), StoreError>,
    {
        let txn = self.write_txn()?;
        let mut updated = Vec::with_capacity(ids.len());
        {
            let mut tables = QueueTables::open(&txn)?;
            for &id in ids {
                let old = match tables.messages.get(id.to_string().as_str())? {
                    Some(v) => QueueRecord::decode(v.value())?,
                    None => return Err(StoreError::NotFound(format!("no queued message {id}"))),
                };
                let mut rec = old.clone();
                change(&mut rec)?;
                tables.put(&rec, Some(&old))?;
                updated.push(rec);
            }
        }
        txn.commit()?;
        Ok(updated)
    }

    /// Take one entry out of the due index without touching its record: for a record that
    /// can no longer be read, so it cannot block the dispatcher. The record stays for the operator.
    pub fn remove_due_entry(&self, at: Timestamp, id: QueueId) -> Result<(), StoreError> {
        let txn = self.write_txn()?;
        txn.open_table(DUE)?.remove(due_key(at, id).as_slice())?;
        txn.commit()?;
        Ok(())
    }

    /// Overwrite a record with raw bytes: lets tests damage the store the way a disk might.
    #[cfg(test)]
    pub(crate) fn put_raw_record(&self, id: QueueId, bytes: &[u8]) -> Result<(), StoreError> {
        let txn = self.write_txn()?;
        txn.open_table(MESSAGES)?.insert(id.to_string().as_str(), bytes)?;
        txn.commit()?;
        Ok(())
    }

    /// Messages with a delivery under way (or interrupted by a crash).
    pub fn sending_ids(&self) -> Result<Vec<QueueId>, StoreError> {
        let txn = self.db.begin_read()?;
        let sending = txn.open_table(SENDING)?;
        let mut ids = Vec::new();
        for entry in sending.iter()? {
            let entry = entry?;
            let id = entry.0.value().parse().map_err(|e| StoreError::Damaged(format!("sending index: {e}")))?;
            ids.push(id);
        }
        Ok(ids)
    }

    /// Records, newest first, optionally for one user and/or in one state.
    pub fn list_messages(
        &self,
        user: Option<&str>,
        state: Option<QueueState>,
        limit: usize,
    ) -> Result<Vec<QueueRecord>, StoreError> {
        let txn = self.db.begin_read()?;
        let messages = txn.open_table(MESSAGES)?;
        let mut out = Vec::new();
        let mut keep = |rec: QueueRecord| {
            if state.is_none_or(|s| rec.state == s) {
                out.push(rec);
            }
            out.len() < limit
        };
        match user {
            Some(u) => {
                let by_user = txn.open_table(BY_USER)?;
                let (lo, hi) = (format!("{u}\0"), format!("{u}\u{1}"));
                for entry in by_user.range(lo.as_str()..hi.as_str())?.rev() {
                    let (k, _) = entry?;
                    let id = k.value().rsplit('\0').next().unwrap_or_default().to_string();
                    if let Some(v) = messages.get(id.as_str())?
                        && !keep(QueueRecord::decode(v.value())?)
                    {
                        break;
                    }
                }
            }
            None => {
                for entry in messages.iter()?.rev() {
                    let (_, v) = entry?;
                    if !keep(QueueRecord::decode(v.value())?) {
                        break;
                    }
                }
            }
        }
        Ok(out)
    }

    /// Due entries with release time `<= until`, earliest first (the dispatcher's view).
    pub fn due_until(&self, until: Timestamp, limit: usize) -> Result<Vec<(Timestamp, QueueId)>, StoreError> {
        let txn = self.db.begin_read()?;
        let due = txn.open_table(DUE)?;
        let mut out = Vec::new();
        for entry in due.iter()? {
            let (k, _) = entry?;
            let Some((at, id)) = parse_due_key(k.value()) else {
                return Err(StoreError::Damaged("due index key of the wrong shape".into()));
            };
            if at > until || out.len() >= limit {
                break;
            }
            out.push((at, id));
        }
        Ok(out)
    }

    /// The earliest pending release time, if any: what the dispatcher sleeps until.
    pub fn next_due(&self) -> Result<Option<Timestamp>, StoreError> {
        let txn = self.db.begin_read()?;
        let due = txn.open_table(DUE)?;
        Ok(due.first()?.and_then(|(k, _)| parse_due_key(k.value())).map(|(at, _)| at))
    }

    /// Call `each` with every message id, in id (submission) order, without collecting them.
    pub fn for_each_message_id(&self, mut each: impl FnMut(&str)) -> Result<(), StoreError> {
        let txn = self.db.begin_read()?;
        let messages = txn.open_table(MESSAGES)?;
        for entry in messages.iter()? {
            each(entry?.0.value());
        }
        Ok(())
    }

    /// Every message id (tests and small tools; recovery streams instead).
    pub fn message_ids(&self) -> Result<Vec<String>, StoreError> {
        let mut ids = Vec::new();
        self.for_each_message_id(|id| ids.push(id.to_string()))?;
        Ok(ids)
    }

    /// Those of `ids` that have no record.
    pub fn unknown_ids<'a>(&self, ids: impl IntoIterator<Item = &'a str>) -> Result<Vec<&'a str>, StoreError> {
        let txn = self.db.begin_read()?;
        let messages = txn.open_table(MESSAGES)?;
        let mut unknown = Vec::new();
        for id in ids {
            if messages.get(id)?.is_none() {
                unknown.push(id);
            }
        }
        Ok(unknown)
    }

    pub fn message_count(&self) -> Result<u64, StoreError> {
        let txn = self.db.begin_read()?;
        Ok(txn.open_table(MESSAGES)?.len()?)
    }
}

/// Every table exists from the start (an upgrade that adds one gets it here too). Looked at
/// in a read transaction first: a command that only reads then writes nothing (no commit, no
/// fsync), and does not walk into a damaged page before it has to.
fn create_tables(db: &Database) -> Result<(), StoreError> {
    let all_there = {
        let txn = db.begin_read()?;
        let names: Vec<String> = txn.list_tables()?.map(|t| t.name().to_string()).collect();
        [
            MESSAGES.name(),
            DUE.name(),
            BY_USER.name(),
            USERS.name(),
            SENDING.name(),
            tables::TRACE_PENDING.name(),
            tables::FILING_PENDING.name(),
            tables::SCHEDULED_PENDING.name(),
            trace::TRACE_META.name(),
        ]
        .iter()
        .all(|t| names.iter().any(|n| n == t))
    };
    if all_there {
        return Ok(());
    }
    let txn = db.begin_write()?;
    {
        txn.open_table(MESSAGES)?;
        txn.open_table(DUE)?;
        txn.open_table(BY_USER)?;
        txn.open_table(USERS)?;
        txn.open_table(SENDING)?;
        txn.open_table(tables::TRACE_PENDING)?;
        txn.open_table(tables::FILING_PENDING)?;
        txn.open_table(trace::TRACE_META)?;
        let new_view_feed = !txn.list_tables()?.any(|t| t.name() == tables::SCHEDULED_PENDING.name());
        let mut view_feed = txn.open_table(tables::SCHEDULED_PENDING)?;
        if new_view_feed {
            // An upgrade to the `Scheduled` view: what is held now enters it.
            filing::backfill_scheduled(&txn.open_table(MESSAGES)?, &mut view_feed)?;
        }
    }
    txn.commit()?;
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests;
