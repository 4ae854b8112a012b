//! What the filers need from the queue's store: their feed (`filing_pending`, written with
//! the first delivery of a client's message, or with a DSN) and a way to clear what they filed.

use redb::{ReadableDatabase, ReadableTable, ReadableTableMetadata};

use super::tables::FILING_PENDING;
use super::{MESSAGES, QueueRecord, Store, StoreError};

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
