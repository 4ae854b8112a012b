//! The embedded blob backend: one file per blob under `<data>/blobs/<first two hex digits>/`,
//! owner-only. A blob is written under a temporary name, fsynced, renamed to its name and its
//! directory fsynced, so a name on disk always holds a whole blob and a crash leaves at most a
//! temporary file (removed by `sweep_temporary`). Packing small blobs is the next step
//! (docs/mailstore.md); the interface does not change for it.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::{BlobError, BlobHash, BlobStore, codec};
use crate::store::{create_private, integrity::private_dir_all, sync_dir};

pub struct FileBlobs {
    root: PathBuf,
    /// Makes temporary names unique within the process (the pid, across processes).
    counter: AtomicU64,
}

impl FileBlobs {
    pub fn new(root: PathBuf) -> FileBlobs {
        FileBlobs { root, counter: AtomicU64::new(0) }
    }

    pub fn path(&self, hash: &BlobHash) -> PathBuf {
        let name = hash.to_string();
        self.root.join(&name[..2]).join(name)
    }

    /// Remove temporary files a crash left behind (nothing can reference them). Only the
    /// process holding the server lock calls this, at start, before any writer runs.
    pub fn sweep_temporary(&self) -> io::Result<usize> {
        let mut removed = 0;
        let Ok(shards) = fs::read_dir(&self.root) else { return Ok(0) };
        for shard in shards {
            let shard = shard?.path();
            if !shard.is_dir() {
                continue;
            }
            for entry in fs::read_dir(&shard)? {
                let path = entry?.path();
                if path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.contains(".tmp")) {
                    fs::remove_file(&path)?;
                    removed += 1;
                }
            }
        }
        Ok(removed)
    }

    fn write_new(&self, hash: &BlobHash, stored: &[u8]) -> io::Result<()> {
        let path = self.path(hash);
        let dir = path.parent().expect("a blob path has a shard directory");
        if !dir.is_dir() {
            private_dir_all(dir)?;
            sync_dir(&self.root)?;
        }
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let tmp = dir.join(format!("{hash}.tmp.{}.{n}", std::process::id()));
        let mut f = create_private(&tmp)?;
        let written = f.write_all(stored).and_then(|()| f.sync_all());
        drop(f);
        if let Err(e) = written.and_then(|()| fs::rename(&tmp, &path)) {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        sync_dir(dir)
    }
}

impl BlobStore for FileBlobs {
    fn put(&self, raw: &[u8]) -> Result<BlobHash, BlobError> {
        let hash = BlobHash::of(raw);
        if self.path(&hash).is_file() {
            return Ok(hash); // the same bytes: content addressing makes this the same blob
        }
        self.write_new(&hash, &codec::encode(raw)).map_err(|source| BlobError::Io {
            hash,
            context: "writing",
            source,
        })?;
        Ok(hash)
    }

    fn get(&self, hash: &BlobHash) -> Result<Vec<u8>, BlobError> {
        match fs::read(self.path(hash)) {
            Ok(stored) => codec::decode(hash, &stored),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(BlobError::Missing(*hash)),
            Err(source) => Err(BlobError::Io { hash: *hash, context: "reading", source }),
        }
    }

    fn contains(&self, hash: &BlobHash) -> Result<bool, BlobError> {
        Ok(self.path(hash).is_file())
    }

    fn delete(&self, hash: &BlobHash) -> Result<(), BlobError> {
        let path = self.path(hash);
        match fs::remove_file(&path) {
            Ok(()) => {
                sync_dir(parent(&path)).map_err(|source| BlobError::Io { hash: *hash, context: "deleting", source })
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(BlobError::Io { hash: *hash, context: "deleting", source }),
        }
    }
}

fn parent(path: &Path) -> &Path {
    path.parent().expect("a blob path has a shard directory")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stores_once_serves_verified_and_owner_only() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = FileBlobs::new(dir.path().join("blobs"));
        let raw = b"Subject: hi\r\n\r\nthe same words, the same words, the same words\r\n".repeat(20);
        let h = blobs.put(&raw).unwrap();
        assert_eq!(h, BlobHash::of(&raw));
        assert_eq!(blobs.put(&raw).unwrap(), h, "storing it again is the same blob");
        assert_eq!(blobs.get(&h).unwrap(), raw);
        assert!(blobs.contains(&h).unwrap());
        let path = blobs.path(&h);
        assert!(fs::metadata(&path).unwrap().len() < raw.len() as u64, "stored compressed");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
            assert_eq!(fs::metadata(path.parent().unwrap()).unwrap().permissions().mode() & 0o077, 0);
        }
        let shard: Vec<_> = fs::read_dir(path.parent().unwrap()).unwrap().collect();
        assert_eq!(shard.len(), 1, "no temporary file left behind");

        // Damage on disk is an error naming the blob, never other bytes.
        let mut stored = fs::read(&path).unwrap();
        let last = stored.len() - 1;
        stored[last] ^= 0x55;
        fs::write(&path, &stored).unwrap();
        let err = blobs.get(&h).unwrap_err();
        assert!(matches!(err, BlobError::Damaged { .. }) && err.to_string().contains(&h.to_string()), "{err}");

        blobs.delete(&h).unwrap();
        assert!(matches!(blobs.get(&h), Err(BlobError::Missing(_))));
        blobs.delete(&h).unwrap(); // deleting twice is fine (a gc interrupted and run again)
    }

    #[test]
    fn a_crash_mid_write_leaves_only_a_temporary_file_that_the_sweep_removes() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = FileBlobs::new(dir.path().join("blobs"));
        let h = blobs.put(b"kept").unwrap();
        let debris = blobs.path(&BlobHash::of(b"lost")).with_extension("tmp.1.0");
        private_dir_all(debris.parent().unwrap()).unwrap();
        fs::write(&debris, b"\x00half").unwrap();
        assert!(!blobs.contains(&BlobHash::of(b"lost")).unwrap());
        assert_eq!(blobs.sweep_temporary().unwrap(), 1);
        assert!(!debris.exists());
        assert_eq!(blobs.get(&h).unwrap(), b"kept");
    }
}
