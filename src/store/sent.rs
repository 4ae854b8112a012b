//! What the Sent filer needs from the queue's store: its feed (`sent_pending`, written with
//! the first delivery of a client's message) and a way to clear what it filed.

use redb::{ReadableDatabase, ReadableTable};

use super::tables::SENT_PENDING;
use super::{MESSAGES, QueueRecord, Store, StoreError};

impl Store {
    /// Up to `limit` messages waiting to be filed in their user's Sent, with their records
    /// (`None`: the record is gone or does not decode; the entry is cleared as done).
    pub fn sent_pending(&self, limit: usize) -> Result<Vec<(String, Option<QueueRecord>)>, StoreError> {
        let txn = self.db.begin_read()?;
        let pending = txn.open_table(SENT_PENDING)?;
        let messages = txn.open_table(MESSAGES)?;
        let mut out = Vec::new();
        for entry in pending.iter()?.take(limit) {
            let id = entry?.0.value().to_string();
            let rec = messages.get(id.as_str())?.and_then(|b| QueueRecord::decode(b.value()).ok());
            out.push((id, rec));
        }
        Ok(out)
    }

    pub fn sent_done(&self, ids: &[String]) -> Result<(), StoreError> {
        let txn = self.write_txn()?;
        {
            let mut pending = txn.open_table(SENT_PENDING)?;
            for id in ids {
                pending.remove(id.as_str())?;
            }
        }
        txn.commit()?;
        Ok(())
    }
}
