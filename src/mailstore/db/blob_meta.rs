//! Where each blob's bytes are (a file of its own, or a place in a pack), reading them back
//! verified, writing a new one, reference counts, and the MIME structures stored per blob.

use redb::ReadableDatabase;

use super::*;

impl MailDb {
    /// A blob's place and, when asked, its stored structure: FETCH's one read before the bytes.
    pub fn blob_meta(&self, hash: &BlobHash, structure: bool) -> Result<(Place, Option<Structure>), MailError> {
        let txn = self.db.begin_read()?;
        let place = txn.open_table(BLOB_PLACES)?.get(&hash.0)?.map_or(Place::Own, |v| packed(v.value()));
        if !structure {
            return Ok((place, None));
        }
        let table = txn.open_table(STRUCTURES)?;
        let s = match table.get(&hash.0)? {
            Some(v) => Some(Structure::decode(v.value()).map_err(MailError::Damaged)?),
            None => None,
        };
        Ok((place, s))
    }

    /// Keep structures parsed on first use (FETCH of an imported message), one commit.
    pub fn put_structures(&self, parsed: &[(BlobHash, Vec<u8>)]) -> Result<(), MailError> {
        let txn = self.write()?;
        {
            let mut table = txn.open_table(STRUCTURES)?;
            let refs = txn.open_table(BLOB_REFS)?;
            for (hash, s) in parsed {
                // Only for a blob still referenced: the collector removes a gone blob's row.
                if table.get(&hash.0)?.is_none() && refs.get(&hash.0)?.is_some_and(|v| v.value() > 0) {
                    table.insert(&hash.0, s.as_slice())?;
                }
            }
        }
        txn.commit()?;
        Ok(())
    }

    /// The stored structure of a blob.
    pub fn structure(&self, hash: &BlobHash) -> Result<Option<Structure>, MailError> {
        Ok(self.blob_meta(hash, true)?.1)
    }

    /// Where a blob's bytes are (no row: a file of its own).
    pub fn blob_place(&self, hash: &BlobHash) -> Result<Place, MailError> {
        let txn = self.db.begin_read()?;
        let places = txn.open_table(BLOB_PLACES)?;
        Ok(places.get(&hash.0)?.map_or(Place::Own, |v| packed(v.value())))
    }

    /// A blob's raw bytes, verified. A compaction may move a packed blob between reading its
    /// place and reading its pack (the old pack goes only after the new place is committed):
    /// a pack found missing is looked up again.
    pub fn read_blob(&self, blobs: &dyn BlobStore, hash: &BlobHash) -> Result<Vec<u8>, MailError> {
        self.read_blob_from(blobs, hash, self.blob_place(hash)?)
    }

    /// As `read_blob`, from a place already looked up (`blob_meta`).
    pub fn read_blob_from(
        &self,
        blobs: &dyn BlobStore,
        hash: &BlobHash,
        mut place: Place,
    ) -> Result<Vec<u8>, MailError> {
        for _ in 0..3 {
            match blobs.get(hash, place) {
                Err(BlobError::Missing(_)) if matches!(place, Place::Packed { .. }) => {
                    let now = self.blob_place(hash)?;
                    if now == place {
                        break;
                    }
                    place = now;
                }
                other => return Ok(other?),
            }
        }
        Ok(blobs.get(hash, place)?)
    }

    /// Store a new message's bytes durably, unless they are packed already (a packed blob's
    /// row always names bytes that exist: compaction commits a new place before it deletes
    /// the old pack). The caller holds `blob_writes` until its commit.
    pub(super) fn put_blob(&self, blobs: &dyn BlobStore, raw: &[u8]) -> Result<(BlobHash, Place), MailError> {
        let hash = BlobHash::of(raw);
        if let place @ Place::Packed { .. } = self.blob_place(&hash)? {
            return Ok((hash, place));
        }
        Ok(blobs.put(raw)?)
    }

    /// For each hash, its recorded pack place if it has one (one read transaction).
    pub(super) fn packed_places(
        &self,
        hashes: impl Iterator<Item = BlobHash>,
    ) -> Result<Vec<Option<(BlobHash, Place)>>, MailError> {
        let txn = self.db.begin_read()?;
        let places = txn.open_table(BLOB_PLACES)?;
        hashes.map(|h| Ok(places.get(&h.0)?.map(|v| (h, packed(v.value()))))).collect()
    }

    pub fn blob_refs(&self, hash: &BlobHash) -> Result<u64, MailError> {
        Ok(self.db.begin_read()?.open_table(BLOB_REFS)?.get(&hash.0)?.map_or(0, |v| v.value()))
    }
}

pub(in crate::mailstore) fn packed((pack, offset, len): (u64, u64, u32)) -> Place {
    Place::Packed { pack, offset, len }
}
