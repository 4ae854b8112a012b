//! Blobs in memory, for fast tests of the mail store: the same codec and the same checks as
//! the files backend, so a test cannot pass here and fail on disk for a codec reason.

use std::collections::HashMap;
use std::sync::Mutex;

use super::{BlobError, BlobHash, BlobStore, Place, codec};

#[derive(Default)]
pub struct MemoryBlobs {
    stored: Mutex<HashMap<BlobHash, Vec<u8>>>,
}

impl MemoryBlobs {
    /// Replace a blob's stored bytes (tests of damage).
    pub fn damage(&self, hash: &BlobHash, stored: Vec<u8>) {
        self.lock().insert(*hash, stored);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<BlobHash, Vec<u8>>> {
        self.stored.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl BlobStore for MemoryBlobs {
    fn put(&self, raw: &[u8]) -> Result<(BlobHash, Place), BlobError> {
        let hash = BlobHash::of(raw);
        self.lock().entry(hash).or_insert_with(|| codec::encode(raw));
        Ok((hash, Place::Own))
    }

    fn get(&self, hash: &BlobHash, _place: Place) -> Result<Vec<u8>, BlobError> {
        let stored = self.lock().get(hash).cloned().ok_or(BlobError::Missing(*hash))?;
        codec::decode(hash, &stored)
    }

    fn contains(&self, hash: &BlobHash) -> Result<bool, BlobError> {
        Ok(self.lock().contains_key(hash))
    }

    fn delete(&self, hash: &BlobHash) -> Result<(), BlobError> {
        self.lock().remove(hash);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn behaves_as_the_files_backend() {
        let blobs = MemoryBlobs::default();
        let (h, _) = blobs.put(b"abc").unwrap();
        assert_eq!(blobs.get(&h, Place::Own).unwrap(), b"abc");
        blobs.damage(&h, vec![codec::RAW, b'x']);
        assert!(matches!(blobs.get(&h, Place::Own), Err(BlobError::Damaged { .. })));
        blobs.delete(&h).unwrap();
        assert!(matches!(blobs.get(&h, Place::Own), Err(BlobError::Missing(_))));
    }
}
