//! Packs: small blobs appended to a shared file instead of one file each (docs/mailstore.md,
//! "Packs"). What a file per message costs is not the bytes but the file: a create, an fsync
//! of the file, a rename and an fsync of its directory, and an inode forever. A pack makes
//! that one positioned write and one `fdatasync` — shared by every writer that appended
//! before it ran (group fsync) — and lets many small messages of an import share one sync.
//!
//! A pack belongs to one writer process for its whole life: it is created with `O_EXCL`
//! under a random name and held under an exclusive `flock` while open, so two processes
//! never append to the same pack and the collector (which takes the same lock before it
//! compacts or deletes a pack) never touches one a live writer may still append to. A crash
//! leaves at worst a torn record at the end of a pack that nothing references (references
//! are committed only after the fsync); the collector reclaims it with the pack.
//!
//! Layout: an 8-byte magic, then records `hash (32) | stored length (u32 LE) | stored bytes`
//! (the codec's marker and payload). A place names (pack, offset of the stored bytes,
//! stored length); a read checks the record's own hash and length against the place and
//! then the bytes against the hash, so a wrong place is damage, never someone else's mail.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use super::{BlobError, BlobHash, Place, codec};
use crate::store::{integrity::private_dir_all, sync_dir};

const MAGIC: &[u8; 8] = b"GPPACK\x00\x01";
/// Bytes before a record's stored bytes: its hash and length.
pub const RECORD_HEAD: u64 = 36;
/// A pack is closed for appends once it holds this much; smaller packs are cheaper to compact.
pub const PACK_SIZE: u64 = 32 << 20;

/// A pack as the collector sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PackFile {
    pub id: u64,
    pub len: u64,
}

struct Open {
    id: u64,
    file: Arc<File>,
    len: u64,
}

pub struct Packs {
    dir: PathBuf,
    open: Mutex<Option<Open>>,
    /// (pack, bytes known durable): one fsync covers every append before it.
    synced: Mutex<(u64, u64)>,
    readers: Mutex<std::collections::HashMap<u64, Arc<File>>>,
}

/// Pack handles kept open for reading (a pack is 32 MiB: 256 of them are 8 GiB of mail).
const READERS: usize = 256;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Packs {
    pub fn new(dir: PathBuf) -> Packs {
        Packs { dir, open: Mutex::new(None), synced: Mutex::new((0, 0)), readers: Mutex::default() }
    }

    pub fn path(&self, id: u64) -> PathBuf {
        self.dir.join(format!("{id:016x}.pack"))
    }

    /// Append a stored blob and return its place once it is durable.
    pub fn append(&self, hash: &BlobHash, stored: &[u8]) -> io::Result<Place> {
        Ok(self.append_all(&[(*hash, stored)])?.remove(0))
    }

    /// Append stored blobs under one fsync (compaction, bulk import) and return their places
    /// once all are durable.
    pub fn append_all(&self, blobs: &[(BlobHash, &[u8])]) -> io::Result<Vec<Place>> {
        let mut places = Vec::with_capacity(blobs.len());
        let mut last: Option<(Arc<File>, u64, u64)> = None;
        let mut open = lock(&self.open);
        for (hash, stored) in blobs {
            let len = u32::try_from(stored.len()).map_err(|_| io::Error::other("too large for a pack"))?;
            let mut record = Vec::with_capacity(stored.len() + RECORD_HEAD as usize);
            record.extend_from_slice(&hash.0);
            record.extend_from_slice(&len.to_le_bytes());
            record.extend_from_slice(stored);
            let full = |o: &Open| o.len + record.len() as u64 > PACK_SIZE && o.len > MAGIC.len() as u64;
            if open.as_ref().is_none_or(full) {
                if let Some((file, _, _)) = last.take() {
                    // What this call put in the pack being left is made durable now (once per
                    // pack: holding the lock for it costs little).
                    file.sync_data()?;
                }
                *open = Some(self.create()?);
            }
            let o = open.as_mut().expect("just opened");
            o.file.write_all_at(&record, o.len)?;
            places.push(Place::Packed { pack: o.id, offset: o.len + RECORD_HEAD, len });
            o.len += record.len() as u64;
            last = Some((o.file.clone(), o.id, o.len));
        }
        drop(open);
        if let Some((file, pack, end)) = last {
            self.sync(&file, pack, end)?;
        }
        Ok(places)
    }

    /// Make the pack durable up to `end`. Appends that arrive while one fsync runs are
    /// covered by the next, which the first of them starts: one fsync per burst, not per blob.
    fn sync(&self, file: &File, pack: u64, end: u64) -> io::Result<()> {
        let mut synced = lock(&self.synced);
        if synced.0 == pack && synced.1 >= end {
            return Ok(());
        }
        // Everything appended so far is covered by the fsync that starts now.
        let covered = lock(&self.open).as_ref().filter(|o| o.id == pack).map_or(end, |o| o.len);
        file.sync_data()?;
        *synced = (pack, covered.max(end));
        Ok(())
    }

    /// A new pack under a fresh random name, locked for this process, durable and empty.
    fn create(&self) -> io::Result<Open> {
        if !self.dir.is_dir() {
            private_dir_all(&self.dir)?;
            sync_dir(self.dir.parent().unwrap_or(&self.dir))?;
        }
        loop {
            let id = random_id()?;
            let file = match OpenOptions::new().read(true).write(true).create_new(true).mode(0o600).open(self.path(id))
            {
                Ok(f) => f,
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            };
            file.lock()?;
            file.write_all_at(MAGIC, 0)?;
            file.sync_all()?;
            sync_dir(&self.dir)?;
            return Ok(Open { id, file: Arc::new(file), len: MAGIC.len() as u64 });
        }
    }

    /// The stored bytes at `place`, checked against the record's own head.
    pub fn read(&self, hash: &BlobHash, pack: u64, offset: u64, len: u32) -> Result<Vec<u8>, BlobError> {
        let io_err = |context, source| BlobError::Io { hash: *hash, context, source };
        let damaged = |why: String| BlobError::Damaged { hash: *hash, why };
        let file = match self.reader(pack) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(BlobError::Missing(*hash)),
            Err(e) => return Err(io_err("opening its pack", e)),
        };
        let start = offset.checked_sub(RECORD_HEAD).ok_or_else(|| damaged(format!("offset {offset} in a pack")))?;
        let mut buf = vec![0u8; RECORD_HEAD as usize + len as usize];
        file.read_exact_at(&mut buf, start).map_err(|e| match e.kind() {
            io::ErrorKind::UnexpectedEof => damaged(format!("pack {pack:016x} ends before {len} bytes at {offset}")),
            _ => io_err("reading its pack", e),
        })?;
        if buf[..32] != hash.0 || buf[32..RECORD_HEAD as usize] != len.to_le_bytes() {
            return Err(damaged(format!("pack {pack:016x} holds another record at {offset}")));
        }
        buf.drain(..RECORD_HEAD as usize);
        Ok(buf)
    }

    /// An open handle on a pack for reading, kept (up to [`READERS`]) so a FETCH of many
    /// messages opens each pack once. A handle on a pack compaction has since deleted still
    /// reads the bytes it held, which are verified as ever.
    fn reader(&self, pack: u64) -> io::Result<Arc<File>> {
        if let Some(f) = lock(&self.readers).get(&pack) {
            return Ok(f.clone());
        }
        let file = Arc::new(File::open(self.path(pack))?);
        let mut readers = lock(&self.readers);
        if readers.len() >= READERS {
            readers.clear();
        }
        readers.insert(pack, file.clone());
        Ok(file)
    }

    /// Every pack on disk with its length; `None` for those a live writer holds.
    pub fn list(&self) -> io::Result<Vec<(PackFile, Option<Claim>)>> {
        let mut out = Vec::new();
        let Ok(entries) = fs::read_dir(&self.dir) else { return Ok(out) };
        for entry in entries {
            let path = entry?.path();
            let Some(id) = pack_id(&path) else { continue };
            let file = File::open(&path)?;
            let len = file.metadata()?.len();
            let claim = match file.try_lock() {
                Ok(()) => Some(Claim { _file: file }),
                Err(fs::TryLockError::WouldBlock) => None,
                Err(fs::TryLockError::Error(e)) => return Err(e),
            };
            out.push((PackFile { id, len }, claim));
        }
        out.sort_by_key(|(p, _)| p.id);
        Ok(out)
    }

    /// Delete a pack the caller has claimed (nothing references it any more).
    pub fn remove(&self, id: u64, claim: Claim) -> io::Result<()> {
        lock(&self.readers).remove(&id);
        match fs::remove_file(self.path(id)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        drop(claim);
        sync_dir(&self.dir)
    }

    /// Every record of a pack in order, as far as it is whole (the collector's and tests' view;
    /// a torn tail ends the walk).
    pub fn records(&self, id: u64) -> io::Result<Vec<(BlobHash, u64, u32)>> {
        Ok(parse_records(&fs::read(self.path(id))?))
    }
}

/// The whole, verified records of a pack's bytes in order: (hash, offset of the stored
/// bytes, stored length). A torn or damaged record ends the walk; bytes that are not a pack
/// have none. Fuzzed (`blob_decode`).
pub fn parse_records(bytes: &[u8]) -> Vec<(BlobHash, u64, u32)> {
    let mut out = Vec::new();
    if bytes.get(..MAGIC.len()) != Some(MAGIC) {
        return out;
    }
    let mut at = MAGIC.len();
    while let Some(head) = bytes.get(at..at.saturating_add(RECORD_HEAD as usize)) {
        let hash = BlobHash(head[..32].try_into().expect("32 bytes"));
        let len = u32::from_le_bytes(head[32..].try_into().expect("4 bytes"));
        let offset = at + RECORD_HEAD as usize;
        let Some(stored) = bytes.get(offset..offset.saturating_add(len as usize)) else { break };
        if codec::decode(&hash, stored).is_err() {
            break;
        }
        out.push((hash, offset as u64, len));
        at = offset + len as usize;
    }
    out
}

/// A pack's bytes holding `blobs` (tests and fuzz seeds: the layout `append` writes).
pub fn pack_bytes(blobs: &[&[u8]]) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    for raw in blobs {
        let stored = codec::encode(raw);
        out.extend_from_slice(&BlobHash::of(raw).0);
        out.extend_from_slice(&(stored.len() as u32).to_le_bytes());
        out.extend_from_slice(&stored);
    }
    out
}

/// The collector's hold on a pack no live writer has: while it is held no process can
/// reopen the pack for appends (nothing ever does: a writer only appends to packs it created).
pub struct Claim {
    _file: File,
}

fn pack_id(path: &Path) -> Option<u64> {
    let name = path.file_name()?.to_str()?;
    let hex = name.strip_suffix(".pack")?;
    (hex.len() == 16).then(|| u64::from_str_radix(hex, 16).ok()).flatten()
}

fn random_id() -> io::Result<u64> {
    use ring::rand::SecureRandom;
    let mut b = [0u8; 8];
    ring::rand::SystemRandom::new().fill(&mut b).map_err(|_| io::Error::other("no random numbers"))?;
    Ok(u64::from_le_bytes(b))
}
