//! Garbage collection of blobs (docs/mailstore.md, "Garbage collection"). A blob whose
//! reference count is zero is deleted, file first, then its row and its stored structure in
//! one transaction. Safe against writers because every blob write holds `blob_writes` (shared)
//! from its `put` to its commit, and the collector holds it exclusively: no blob can be
//! between "written" and "referenced" while the collector looks. Only the process holding the
//! server lock writes blobs and collects (`serve`; `gatepost store gc` asks it, or runs
//! itself when no server runs). A crash after a file is deleted but before its row goes
//! leaves a zero row without a file: the next collection removes the row.

use redb::ReadableTable;

use super::*;
use crate::blobs::BlobStore;

/// What a collection removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Collected {
    pub blobs: u64,
}

const REQUEST: &str = "gc_requested";
const LAST: &str = "gc_last_collected";

impl MailDb {
    pub fn collect(&self, blobs: &dyn BlobStore) -> Result<Collected, MailError> {
        let _exclusive = self.blob_writes.write().unwrap_or_else(|e| e.into_inner());
        let dead: Vec<[u8; 32]> = {
            let txn = self.db.begin_read()?;
            let refs = txn.open_table(BLOB_REFS)?;
            let mut out = Vec::new();
            for entry in refs.iter()? {
                let (k, v) = entry?;
                if v.value() == 0 {
                    out.push(*k.value());
                }
            }
            out
        };
        for hash in &dead {
            blobs.delete(&BlobHash(*hash))?;
        }
        let txn = self.write()?;
        {
            let mut refs = txn.open_table(BLOB_REFS)?;
            let mut structures = txn.open_table(STRUCTURES)?;
            for hash in &dead {
                // Still zero: nothing can have referenced it meanwhile (the lock), but say so.
                if refs.get(hash)?.is_some_and(|v| v.value() == 0) {
                    refs.remove(hash)?;
                    structures.remove(hash)?;
                }
            }
            let mut counters = txn.open_table(COUNTERS)?;
            counters.insert(LAST, dead.len() as u64)?;
            counters.remove(REQUEST)?;
        }
        txn.commit()?;
        Ok(Collected { blobs: dead.len() as u64 })
    }

    /// `gatepost store gc` beside a running server: ask it (it looks every few seconds).
    pub fn request_collection(&self) -> Result<(), MailError> {
        let txn = self.write()?;
        txn.open_table(COUNTERS)?.insert(REQUEST, 1)?;
        txn.commit()?;
        Ok(())
    }

    /// Whether a collection is asked for, and how many blobs the last one removed.
    pub fn collection_state(&self) -> Result<(bool, u64), MailError> {
        let txn = self.db.begin_read()?;
        let counters = txn.open_table(COUNTERS)?;
        let requested = counters.get(REQUEST)?.is_some();
        let last = counters.get(LAST)?.map_or(0, |v| v.value());
        Ok((requested, last))
    }
}
