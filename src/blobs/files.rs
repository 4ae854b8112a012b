//! The embedded blob backend. A small blob (stored form at most [`PACK_BELOW`] bytes) is
//! appended to this process's pack (`packs.rs`, under `<data>/blobs/packs/`); a larger one
//! gets a file of its own under `<data>/blobs/<first two hex digits>/`, owner-only, written
//! under a temporary name, fsynced, renamed to its name and its directory fsynced, so a name
//! on disk always holds a whole blob and a crash leaves at most a temporary file (removed by
//! `sweep_temporary`). Why the split: a pack saves a small message the cost of a file, while
//! a large one is better deleted with its file than copied by compaction.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::packs::Packs;
use super::{BlobError, BlobHash, BlobStore, Place, codec};
use crate::store::{create_private, integrity::private_dir_all, sync_dir};

/// Stored forms up to this size go in a pack (docs/mailstore.md, "Packs": most mail is
/// smaller; a message with a real attachment is not).
pub const PACK_BELOW: usize = 64 << 10;

/// In a batch (`put_all`: import), stored forms up to this size are packed too: a file each
/// would cost an fsync per message, which bulk import must not (decision D44).
pub const PACK_BULK_BELOW: usize = 1 << 20;

pub struct FileBlobs {
    root: PathBuf,
    /// Makes temporary names unique within the process (the pid, across processes).
    counter: AtomicU64,
    packs: Packs,
    pack_below: usize,
}

impl FileBlobs {
    pub fn new(root: PathBuf) -> FileBlobs {
        FileBlobs::with_packing(root, PACK_BELOW)
    }

    /// Blobs whose stored form is at most `pack_below` bytes are packed (0: none; the
    /// benchmark of file-per-blob against packs).
    pub fn with_packing(root: PathBuf, pack_below: usize) -> FileBlobs {
        let packs = Packs::new(root.join("packs"));
        FileBlobs { root, counter: AtomicU64::new(0), packs, pack_below }
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
    fn put(&self, raw: &[u8]) -> Result<(BlobHash, Place), BlobError> {
        let hash = BlobHash::of(raw);
        if self.path(&hash).is_file() {
            return Ok((hash, Place::Own)); // the same bytes: content addressing makes this the same blob
        }
        let stored = codec::encode(raw);
        let io = |source| BlobError::Io { hash, context: "writing", source };
        if stored.len() <= self.pack_below {
            return Ok((hash, self.packs.append(&hash, &stored).map_err(io)?));
        }
        self.write_new(&hash, &stored).map_err(io)?;
        Ok((hash, Place::Own))
    }

    fn put_all(&self, blobs: &[(BlobHash, &[u8])]) -> Result<Vec<(BlobHash, Place)>, BlobError> {
        let bulk_below = if self.pack_below == 0 { 0 } else { self.pack_below.max(PACK_BULK_BELOW) };
        let mut out = Vec::with_capacity(blobs.len());
        let mut small: Vec<(usize, BlobHash, Vec<u8>)> = Vec::new();
        for &(hash, raw) in blobs {
            if self.path(&hash).is_file() {
                out.push((hash, Place::Own)); // the same bytes, stored already
                continue;
            }
            let stored = codec::encode(raw);
            if stored.len() <= bulk_below {
                small.push((out.len(), hash, stored));
                out.push((hash, Place::Own)); // its place follows
            } else {
                self.write_new(&hash, &stored).map_err(|source| BlobError::Io { hash, context: "writing", source })?;
                out.push((hash, Place::Own));
            }
        }
        if let Some(first) = small.first().map(|s| s.1) {
            let batch: Vec<(BlobHash, &[u8])> = small.iter().map(|(_, h, s)| (*h, s.as_slice())).collect();
            let places = self.packs.append_all(&batch).map_err(|source| BlobError::Io {
                hash: first,
                context: "writing a pack",
                source,
            })?;
            for ((i, _, _), place) in small.iter().zip(places) {
                out[*i].1 = place;
            }
        }
        Ok(out)
    }

    fn get(&self, hash: &BlobHash, place: Place) -> Result<Vec<u8>, BlobError> {
        if let Place::Packed { pack, offset, len } = place {
            let stored = self.packs.read(hash, pack, offset, len)?;
            return codec::decode(hash, &stored);
        }
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

    fn packs(&self) -> Option<&Packs> {
        Some(&self.packs)
    }

    fn own_names(&self) -> Result<Vec<BlobHash>, BlobError> {
        let io = |source| BlobError::Io { hash: BlobHash([0; 32]), context: "listing blob files", source };
        let mut out = Vec::new();
        let Ok(shards) = fs::read_dir(&self.root) else { return Ok(out) };
        for shard in shards {
            let shard = shard.map_err(io)?.path();
            if !shard.is_dir() || shard.file_name().is_some_and(|n| n.len() != 2) {
                continue;
            }
            for entry in fs::read_dir(&shard).map_err(io)? {
                let name = entry.map_err(io)?.file_name();
                if let Some(hash) = name.to_str().and_then(|n| n.parse().ok()) {
                    out.push(hash);
                }
            }
        }
        Ok(out)
    }
}

fn parent(path: &Path) -> &Path {
    path.parent().expect("a blob path has a shard directory")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(n: usize) -> Vec<u8> {
        b"Subject: hi\r\n\r\nthe same words, the same words, the same words\r\n".repeat(n)
    }

    #[test]
    fn stores_once_serves_verified_and_owner_only() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = FileBlobs::with_packing(dir.path().join("blobs"), 0);
        let raw = words(20);
        let (h, place) = blobs.put(&raw).unwrap();
        assert_eq!((h, place), (BlobHash::of(&raw), Place::Own));
        assert_eq!(blobs.put(&raw).unwrap(), (h, Place::Own), "storing it again is the same blob");
        assert_eq!(blobs.get(&h, Place::Own).unwrap(), raw);
        assert!(blobs.contains(&h).unwrap());
        assert_eq!(blobs.own_names().unwrap(), vec![h]);
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
        let err = blobs.get(&h, Place::Own).unwrap_err();
        assert!(matches!(err, BlobError::Damaged { .. }) && err.to_string().contains(&h.to_string()), "{err}");

        blobs.delete(&h).unwrap();
        assert!(matches!(blobs.get(&h, Place::Own), Err(BlobError::Missing(_))));
        blobs.delete(&h).unwrap(); // deleting twice is fine (a gc interrupted and run again)
    }

    #[test]
    fn small_blobs_share_a_pack_and_large_ones_get_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = FileBlobs::with_packing(dir.path().join("blobs"), 4096);
        let small: Vec<Vec<u8>> = (0..50).map(|i| format!("Subject: {i}\r\n\r\nbody {i}\r\n").into_bytes()).collect();
        let places: Vec<_> = small.iter().map(|raw| blobs.put(raw).unwrap()).collect();
        let packs: std::collections::BTreeSet<u64> = places
            .iter()
            .map(|(_, p)| match p {
                Place::Packed { pack, .. } => *pack,
                Place::Own => panic!("a small blob got its own file"),
            })
            .collect();
        assert_eq!(packs.len(), 1, "one pack for one writer");
        for (raw, (h, p)) in small.iter().zip(&places) {
            assert_eq!(&blobs.get(h, *p).unwrap(), raw);
            assert!(!blobs.contains(h).unwrap(), "no file of its own");
        }
        let big: Vec<u8> = (0..20_000u32).flat_map(|i| i.wrapping_mul(2_654_435_761).to_le_bytes()).collect();
        assert_eq!(blobs.put(&big).unwrap().1, Place::Own);
        assert_eq!(blobs.own_names().unwrap(), vec![BlobHash::of(&big)]);

        // The pack is this writer's: the collector cannot claim it while it is open.
        let listed = blobs.packs.list().unwrap();
        assert_eq!(listed.len(), 1);
        assert!(listed[0].1.is_none(), "a live writer's pack is not claimable");
        let id = listed[0].0.id;
        let records = blobs.packs.records(id).unwrap();
        assert_eq!(records.len(), 50);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(blobs.packs.path(id)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }

        // A place that names another record, or runs past the end, is damage naming the blob.
        let (h0, p0) = places[0];
        let (_, p1) = places[1];
        let err = blobs.get(&h0, p1).unwrap_err();
        assert!(matches!(err, BlobError::Damaged { .. }) && err.to_string().contains(&h0.to_string()), "{err}");
        let Place::Packed { pack, offset, len } = p0 else { unreachable!() };
        let past = Place::Packed { pack, offset: offset + (1 << 30), len };
        assert!(matches!(blobs.get(&h0, past), Err(BlobError::Damaged { .. })));
        // Damage inside a packed blob's bytes is caught by its hash.
        let path = blobs.packs.path(pack);
        let mut bytes = fs::read(&path).unwrap();
        bytes[(offset + u64::from(len) - 1) as usize] ^= 0x55;
        fs::write(&path, &bytes).unwrap();
        assert!(matches!(blobs.get(&h0, p0), Err(BlobError::Damaged { .. })));
        assert_eq!(blobs.get(&places[1].0, p1).unwrap(), small[1], "its neighbours are untouched");

        // A new process (a new store value) never appends to the old pack, and once the old
        // writer is gone its pack can be claimed.
        drop(blobs);
        let again = FileBlobs::with_packing(dir.path().join("blobs"), 4096);
        let (_, p) = again.put(b"Subject: later\r\n\r\n.\r\n").unwrap();
        assert!(matches!(p, Place::Packed { pack: other, .. } if other != pack));
        let listed = again.packs.list().unwrap();
        assert_eq!(listed.iter().filter(|(_, c)| c.is_some()).count(), 1, "the old pack is claimable");
    }

    #[test]
    fn concurrent_small_puts_are_all_durable_and_readable() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = std::sync::Arc::new(FileBlobs::new(dir.path().join("blobs")));
        let handles: Vec<_> = (0..8)
            .map(|t| {
                let blobs = blobs.clone();
                std::thread::spawn(move || {
                    (0..40)
                        .map(|i| {
                            let raw = format!("Subject: {t}/{i}\r\n\r\n{}\r\n", "x".repeat(i * 31)).into_bytes();
                            let (h, p) = blobs.put(&raw).unwrap();
                            (raw, h, p)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let all: Vec<_> = handles.into_iter().flat_map(|h| h.join().unwrap()).collect();
        for (raw, h, p) in &all {
            assert_eq!(&blobs.get(h, *p).unwrap(), raw);
        }
        let id = blobs.packs.list().unwrap()[0].0.id;
        assert_eq!(blobs.packs.records(id).unwrap().len(), 320, "no record lost or torn");
    }

    #[test]
    fn a_crash_mid_write_leaves_only_a_temporary_file_that_the_sweep_removes() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = FileBlobs::new(dir.path().join("blobs"));
        let (h, p) = blobs.put(b"kept").unwrap();
        let debris = blobs.path(&BlobHash::of(b"lost")).with_extension("tmp.1.0");
        private_dir_all(debris.parent().unwrap()).unwrap();
        fs::write(&debris, b"\x00half").unwrap();
        assert!(!blobs.contains(&BlobHash::of(b"lost")).unwrap());
        assert_eq!(blobs.sweep_temporary().unwrap(), 1);
        assert!(!debris.exists());
        assert_eq!(blobs.get(&h, p).unwrap(), b"kept");
    }

    #[test]
    fn a_torn_record_ends_the_walk_of_a_pack() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = FileBlobs::new(dir.path().join("blobs"));
        let (_, p) = blobs.put(b"one").unwrap();
        blobs.put(b"two").unwrap();
        let Place::Packed { pack, .. } = p else { panic!("small blobs are packed") };
        let path = blobs.packs.path(pack);
        let len = fs::metadata(&path).unwrap().len();
        fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(len - 2).unwrap();
        assert_eq!(blobs.packs.records(pack).unwrap().len(), 1);
    }
}
