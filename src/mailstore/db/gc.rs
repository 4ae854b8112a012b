//! Garbage collection of blobs (docs/mailstore.md, "Garbage collection" and "Packs"). Safe
//! against writers because every blob write holds `blob_writes` (shared) from its `put` to
//! its commit, and the collector holds it exclusively: no blob can be between "written" and
//! "referenced" while the collector looks, so whatever no row references is debris. Only the
//! process holding the server lock writes blobs and collects (`serve`; `gatepost store gc`
//! asks it, or runs itself when no server runs); a pack another live process holds (its
//! `flock`) is never touched.
//!
//! One collection:
//! 1. Blobs with a reference count of zero: a file of its own is deleted, then its rows (count,
//!    place, structure) go in one transaction; a packed one's bytes become dead space. A crash
//!    after a file is deleted but before its row goes leaves a zero row without a file: the
//!    next collection removes the row.
//! 2. Files no row references (a write refused or crashed between its `put` and its commit)
//!    are deleted.
//! 3. Packs no live writer holds: one with nothing live is deleted; one less than half live is
//!    compacted — its live records are copied (verified) into the current pack under one
//!    fsync, their new places committed, and only then the old pack deleted. A reader that
//!    looked up the old place and finds the pack gone looks again (`read_blob`).

use std::collections::{HashMap, HashSet};

use redb::ReadableTable;

use super::*;
use crate::blobs::packs::{Claim, PackFile, Packs, RECORD_HEAD};
use crate::blobs::{BlobStore, codec};

/// What a collection removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Collected {
    /// Unreferenced blobs whose rows (and own files) went.
    pub blobs: u64,
    /// Files of blobs nothing references (debris of refused or crashed writes).
    pub debris: u64,
    /// Packs deleted (empty) or compacted.
    pub packs: u64,
    /// Bytes of pack files freed.
    pub pack_bytes: u64,
}

const REQUEST: &str = "gc_requested";
const LAST: &str = "gc_last_collected";

/// A live record: (hash, offset, stored length).
type Live = Vec<([u8; 32], u64, u32)>;

impl MailDb {
    pub fn collect(&self, blobs: &dyn BlobStore) -> Result<Collected, MailError> {
        let _exclusive = self.blob_writes.write().unwrap_or_else(|e| e.into_inner());
        let mut out = Collected::default();
        let (dead, known) = {
            let txn = self.db.begin_read()?;
            let refs = txn.open_table(BLOB_REFS)?;
            let places = txn.open_table(BLOB_PLACES)?;
            let (mut dead, mut known) = (Vec::new(), HashSet::new());
            for entry in refs.iter()? {
                let (k, v) = entry?;
                let packed = places.get(k.value())?.is_some();
                if v.value() == 0 {
                    dead.push((*k.value(), packed));
                } else if !packed {
                    known.insert(*k.value());
                }
            }
            (dead, known)
        };
        for (hash, packed) in &dead {
            if !packed {
                blobs.delete(&BlobHash(*hash))?;
            }
        }
        // Own files with no live row naming them (a packed blob's stray file included).
        for hash in blobs.own_names()? {
            if !known.contains(&hash.0) {
                blobs.delete(&hash)?;
                out.debris += 1;
            }
        }
        let txn = self.write()?;
        {
            let mut refs = txn.open_table(BLOB_REFS)?;
            let mut places = txn.open_table(BLOB_PLACES)?;
            let mut structures = txn.open_table(STRUCTURES)?;
            for (hash, _) in &dead {
                // Still zero: nothing can have referenced it meanwhile (the lock), but say so.
                if refs.get(hash)?.is_some_and(|v| v.value() == 0) {
                    refs.remove(hash)?;
                    places.remove(hash)?;
                    structures.remove(hash)?;
                    out.blobs += 1;
                }
            }
            let mut counters = txn.open_table(COUNTERS)?;
            counters.insert(LAST, out.blobs)?;
            counters.remove(REQUEST)?;
        }
        txn.commit()?;
        if let Some(packs) = blobs.packs() {
            self.compact(packs, &mut out)?;
        }
        Ok(out)
    }

    /// Step 3: packs with little or nothing live.
    fn compact(&self, packs: &Packs, out: &mut Collected) -> Result<(), MailError> {
        let io = |e: std::io::Error| MailError::Db(format!("packs: {e}"));
        let claimed: Vec<(PackFile, Claim)> =
            packs.list().map_err(io)?.into_iter().filter_map(|(p, c)| c.map(|c| (p, c))).collect();
        if claimed.is_empty() {
            return Ok(());
        }
        let mut live: HashMap<u64, Live> = HashMap::new();
        {
            let txn = self.db.begin_read()?;
            for entry in txn.open_table(BLOB_PLACES)?.iter()? {
                let (k, v) = entry?;
                let (pack, offset, len) = v.value();
                live.entry(pack).or_default().push((*k.value(), offset, len));
            }
        }
        for (pack, claim) in claimed {
            let records = live.remove(&pack.id).unwrap_or_default();
            let used: u64 = records.iter().map(|r| u64::from(r.2) + RECORD_HEAD).sum();
            if !records.is_empty() && used * 2 >= pack.len {
                continue;
            }
            if !records.is_empty() && !self.move_records(packs, pack.id, &records)? {
                continue;
            }
            packs.remove(pack.id, claim).map_err(io)?;
            out.packs += 1;
            out.pack_bytes += pack.len;
        }
        Ok(())
    }

    /// Copy a pack's live records into the current pack and commit their new places; false
    /// (and nothing changed) if one of them is damaged: the pack stays for the operator
    /// (`store verify` names the blob).
    fn move_records(&self, packs: &Packs, id: u64, records: &Live) -> Result<bool, MailError> {
        let mut stored = Vec::with_capacity(records.len());
        for &(hash, offset, len) in records {
            let hash = BlobHash(hash);
            let bytes = match packs.read(&hash, id, offset, len).and_then(|b| codec::decode(&hash, &b).map(|_| b)) {
                Ok(b) => b,
                Err(e) => {
                    tracing::warn!(error = %e, pack = format!("{id:016x}"), "pack not compacted: a live blob is damaged");
                    return Ok(false);
                }
            };
            stored.push((hash, bytes));
        }
        let batch: Vec<(BlobHash, &[u8])> = stored.iter().map(|(h, b)| (*h, b.as_slice())).collect();
        let moved = packs.append_all(&batch).map_err(|e| MailError::Db(format!("packs: {e}")))?;
        let txn = self.write()?;
        {
            let mut places = txn.open_table(BLOB_PLACES)?;
            for ((hash, _), place) in stored.iter().zip(moved) {
                if let crate::blobs::Place::Packed { pack, offset, len } = place {
                    places.insert(&hash.0, (pack, offset, len))?;
                }
            }
        }
        txn.commit()?;
        Ok(true)
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
