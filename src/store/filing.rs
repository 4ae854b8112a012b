//! What the filers need from the queue's store: their feed (`filing_pending`, written with
//! the first delivery of a client's message, or with a DSN) and a way to clear what they filed;
//! the same for the `Scheduled` view's feed.

use redb::{ReadableDatabase, ReadableTable, ReadableTableMetadata};

use super::tables::{FILING_PENDING, SCHEDULED_PENDING};
use super::{MESSAGES, QueueId, QueueRecord, Store, StoreError};

impl Store {
    /// Up to `limit` messages waiting to be filed, what for ([`super::FILE_SENT`],
    /// [`super::FILE_INBOX`]), with their records (`None`: the record is gone or does not
    /// decode; the entry is cleared as done).
    pub fn filing_pending(&self, limit: usize) -> Result<Vec<(String, u8, Option<QueueRecord>)>, StoreError> {
        let txn = self.db.begin_read()?;
        let pending = txn.open_table(FILING_PENDING)?;
        if pending.is_empty()? {
            // The records are not touched when there is nothing to file (the filer looks
            // twice a second; it should not keep the records' pages hot for nothing).
            return Ok(Vec::new());
        }
        let messages = txn.open_table(MESSAGES)?;
        let mut out = Vec::new();
        for entry in pending.iter()?.take(limit) {
            let (k, v) = entry?;
            let id = k.value().to_string();
            let rec = messages.get(id.as_str())?.and_then(|b| QueueRecord::decode(b.value()).ok());
            out.push((id, v.value(), rec));
        }
        Ok(out)
    }

    pub fn filing_done(&self, ids: &[String]) -> Result<(), StoreError> {
        let txn = self.write_txn()?;
        {
            let mut pending = txn.open_table(FILING_PENDING)?;
            for id in ids {
                pending.remove(id.as_str())?;
            }
        }
        txn.commit()?;
        Ok(())
    }
}

/// One entry of the `Scheduled` view's feed: the message, the token read with it, its record.
pub type ScheduledChange = (QueueId, u64, Option<QueueRecord>);

impl Store {
    /// Up to `limit` scheduled messages whose view entry may be out of step with their record.
    pub fn scheduled_pending(&self, limit: usize) -> Result<Vec<ScheduledChange>, StoreError> {
        let txn = self.db.begin_read()?;
        let pending = txn.open_table(SCHEDULED_PENDING)?;
        if pending.is_empty()? {
            return Ok(Vec::new());
        }
        let messages = txn.open_table(MESSAGES)?;
        let mut out = Vec::new();
        for entry in pending.iter()?.take(limit) {
            let (k, v) = entry?;
            let Ok(id) = k.value().parse::<QueueId>() else { continue };
            let rec = messages.get(k.value())?.and_then(|b| QueueRecord::decode(b.value()).ok());
            out.push((id, v.value(), rec));
        }
        Ok(out)
    }

    /// Clear the entries brought in step, each only if its record has not changed since
    /// (its token is still the one read).
    pub fn scheduled_done(&self, done: &[(QueueId, u64)]) -> Result<(), StoreError> {
        let txn = self.write_txn()?;
        {
            let mut pending = txn.open_table(SCHEDULED_PENDING)?;
            for (id, token) in done {
                let key = id.to_string();
                let same = pending.get(key.as_str())?.is_some_and(|v| v.value() == *token);
                if same {
                    pending.remove(key.as_str())?;
                }
            }
        }
        txn.commit()?;
        Ok(())
    }
}

/// Every scheduled client message still held enters the feed (the upgrade that adds it).
pub(super) fn backfill_scheduled(
    messages: &redb::Table<&str, &[u8]>,
    feed: &mut redb::Table<&str, u64>,
) -> Result<(), StoreError> {
    for entry in messages.iter()? {
        let (k, v) = entry?;
        if QueueRecord::decode(v.value()).is_ok_and(|r| r.scheduled_view().is_some()) {
            feed.insert(k.value(), super::tables::new_token())?;
        }
    }
    Ok(())
}
