//! The queue's record table and its secondary indexes (due times, per user, deliveries under
//! way, the trace feed), open together in one write transaction. Every change to a record
//! goes through `put` or `remove`, so no index can drift from the records.

use redb::{Table, TableDefinition, WriteTransaction};

use super::{BY_USER, DUE, MESSAGES, Origin, QueueId, QueueRecord, QueueState, SENDING, StoreError, due_key};

/// The trace feed: a record's id with a token that changes at every change of the record
/// (the indexer clears an entry only if the token is still the one it indexed).
pub(super) const TRACE_PENDING: TableDefinition<&str, u64> = TableDefinition::new("trace_pending");

/// The filers' feed (`filing/`): queue id → what to file, written in the transaction that
/// makes it due: [`FILE_SENT`] when a client's message has its first recipient delivered
/// (docs/imap.md, "Sent"), [`FILE_INBOX`] when gatepost queues a DSN for a user.
pub(super) const FILING_PENDING: TableDefinition<&str, u8> = TableDefinition::new("filing_pending");
pub const FILE_SENT: u8 = 1;
pub const FILE_INBOX: u8 = 2;

/// The `Scheduled` view's feed (`filing::scheduled`): a scheduled client message's id with a
/// token that changes at every change of its record, as the trace feed; the view is brought in
/// step with the record, and the entry cleared only if the token is still the one it read.
pub(super) const SCHEDULED_PENDING: TableDefinition<&str, u64> = TableDefinition::new("scheduled_pending");

pub(super) fn new_token() -> u64 {
    // 64 of the 80 random bits of a ULID: tokens only have to differ from the one before.
    ulid::Ulid::new().random() as u64
}

pub(super) struct QueueTables<'txn> {
    pub messages: Table<'txn, &'static str, &'static [u8]>,
    due: Table<'txn, &'static [u8], ()>,
    by_user: Table<'txn, &'static str, ()>,
    sending: Table<'txn, &'static str, ()>,
    trace_pending: Table<'txn, &'static str, u64>,
    filing_pending: Table<'txn, &'static str, u8>,
    scheduled_pending: Table<'txn, &'static str, u64>,
}

impl<'txn> QueueTables<'txn> {
    pub fn open(txn: &'txn WriteTransaction) -> Result<Self, StoreError> {
        Ok(QueueTables {
            messages: txn.open_table(MESSAGES)?,
            due: txn.open_table(DUE)?,
            by_user: txn.open_table(BY_USER)?,
            sending: txn.open_table(SENDING)?,
            trace_pending: txn.open_table(TRACE_PENDING)?,
            filing_pending: txn.open_table(FILING_PENDING)?,
            scheduled_pending: txn.open_table(SCHEDULED_PENDING)?,
        })
    }

    /// Store `rec`, new (`old` is None) or replacing `old`, with every index in step.
    pub fn put(&mut self, rec: &QueueRecord, old: Option<&QueueRecord>) -> Result<(), StoreError> {
        let key = rec.id.to_string();
        let (old_due, same_user) = match old {
            Some(old) => (pending_release_times(old), old.user == rec.user),
            None => (vec![], false),
        };
        let new_due = pending_release_times(rec);
        for &at in old_due.iter().filter(|at| !new_due.contains(at)) {
            self.due.remove(due_key(at, rec.id).as_slice())?;
        }
        for &at in new_due.iter().filter(|at| !old_due.contains(at)) {
            self.due.insert(due_key(at, rec.id).as_slice(), ())?;
        }
        if !same_user {
            if let Some(old) = old {
                self.by_user.remove(by_user_key(old, &key).as_str())?;
            }
            self.by_user.insert(by_user_key(rec, &key).as_str(), ())?;
        }
        if rec.recipients.iter().any(|r| r.state == QueueState::Sending) {
            self.sending.insert(key.as_str(), ())?;
        } else if old.is_some() {
            self.sending.remove(key.as_str())?;
        }
        self.messages.insert(key.as_str(), rec.encode().as_slice())?;
        self.trace_pending.insert(key.as_str(), new_token())?;
        let delivered = |r: &QueueRecord| r.recipients.iter().any(|r| r.state == QueueState::Sent);
        if rec.origin == Origin::Client && delivered(rec) && !old.is_some_and(delivered) {
            self.filing_pending.insert(key.as_str(), FILE_SENT)?;
        }
        if old.is_none() && rec.origin == Origin::Internal && rec.notice_of.is_some() {
            self.filing_pending.insert(key.as_str(), FILE_INBOX)?;
        }
        if rec.was_scheduled() {
            self.scheduled_pending.insert(key.as_str(), new_token())?;
        }
        Ok(())
    }

    /// Remove a record and its index entries; false when there was none. A record that no
    /// longer decodes goes too (its due entries, keyed by time, are left to the dispatcher,
    /// which drops entries whose record is gone).
    pub fn remove(&mut self, id: QueueId) -> Result<bool, StoreError> {
        let key = id.to_string();
        let Some(bytes) = self.messages.remove(key.as_str())? else { return Ok(false) };
        let old = QueueRecord::decode(bytes.value());
        drop(bytes);
        match old {
            Ok(old) => self.unindex(&old, &key)?,
            Err(_) => {
                self.sending.remove(key.as_str())?;
            }
        }
        self.trace_pending.insert(key.as_str(), new_token())?;
        Ok(true)
    }

    fn unindex(&mut self, old: &QueueRecord, key: &str) -> Result<(), StoreError> {
        for at in pending_release_times(old) {
            self.due.remove(due_key(at, old.id).as_slice())?;
        }
        self.by_user.remove(by_user_key(old, key).as_str())?;
        self.sending.remove(key)?;
        Ok(())
    }
}

fn by_user_key(rec: &QueueRecord, key: &str) -> String {
    format!("{}\0{key}", rec.user)
}

/// Distinct next-attempt times of recipients still waiting: one due entry each (none while
/// the user has paused it).
pub(super) fn pending_release_times(rec: &QueueRecord) -> Vec<jiff::Timestamp> {
    if rec.paused {
        return Vec::new();
    }
    let mut times: Vec<jiff::Timestamp> =
        rec.recipients.iter().filter(|r| r.state.is_pending()).map(|r| r.next_attempt()).collect();
    times.sort();
    times.dedup();
    times
}
