//! Message bodies as files: `bodies/<aaaa>/<bb>/<id>.eml`, where `aaaa` and `bb` are the
//! first six characters of the ULID, its time prefix (`aaaa` spans about 12.4 days, `bb` about
//! 17.5 minutes). Time shards put a burst of submissions in one directory, so one directory
//! fsync covers a whole group commit (random shards cost one directory fsync per message),
//! and no directory grows without bound over the years. A body is created under its final
//! name and fsynced; the directory is fsynced before the record that points at it is
//! committed, so a record never names a body that a crash could take away, and a body that
//! has no record yet (perhaps half written) is never acknowledged and never delivered.
//!
//! Bodies are other people's mail: files are created 0600 and directories 0700 whatever the
//! process umask (`main` also sets the umask to 077 for the files libraries create).

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use ring::digest;

use super::QueueId;

/// What a scan finds in one shard directory: `(id, path)` of every body, and leftover temps.
#[derive(Debug, Default)]
pub struct ShardScan {
    pub bodies: Vec<(String, PathBuf)>,
    pub temps: Vec<PathBuf>,
}

#[derive(Debug, Clone)]
pub struct Bodies {
    root: PathBuf,
}

/// SHA-256 of a body in lower-case hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let d = digest::digest(&digest::SHA256, bytes);
    d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

impl Bodies {
    pub fn new(root: PathBuf) -> Self {
        Bodies { root }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn shard_dir(&self, id: QueueId) -> PathBuf {
        let id = id.to_string();
        self.root.join(id[0..4].to_ascii_lowercase()).join(id[4..6].to_ascii_lowercase())
    }

    pub fn path(&self, id: QueueId) -> PathBuf {
        self.shard_dir(id).join(format!("{id}.eml"))
    }

    /// Create `<id>.eml` (never replacing a file), write and fsync it. The caller fsyncs the
    /// shard directory (see `sync_dir`) before committing the record, so directory syncs can
    /// be grouped. No temporary name and rename: until its record is committed a body is
    /// nobody's (recovery moves it to `orphans/`), so a crash mid-write is already covered,
    /// and with a hundred sessions writing into one shard every directory operation saved is
    /// one fewer turn on that directory's lock. The shard directory is made only when the
    /// create finds it missing (a `mkdir` per message would lock the parent every time).
    pub fn write(&self, id: QueueId, body: &[u8]) -> io::Result<PathBuf> {
        let dir = self.shard_dir(id);
        let path = self.path(id);
        let mut f = match create_private(&path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                super::integrity::private_dir_all(&dir)?;
                // A new shard (every ~17.5 minutes) is an entry in its parent, and a new day
                // group one in the root: sync them up to the data directory, or a power cut
                // could lose the directory with the synced bodies in it.
                let day = dir.parent().unwrap_or(&self.root);
                for d in [day, &self.root].into_iter().chain(self.root.parent()) {
                    sync_dir(d)?;
                }
                create_private(&path)?
            }
            other => other?,
        };
        if let Err(e) = f.write_all(body).and_then(|()| f.sync_all()) {
            drop(f);
            let _ = fs::remove_file(&path);
            return Err(e);
        }
        Ok(dir)
    }

    pub fn read(&self, id: QueueId) -> io::Result<Vec<u8>> {
        fs::read(self.path(id))
    }

    pub fn exists(&self, id: QueueId) -> bool {
        self.path(id).is_file()
    }

    /// Every body file and every leftover `.tmp` file (earlier builds wrote through a
    /// temporary name; never acknowledged), one shard
    /// directory at a time, so a scan of a million bodies holds one shard in memory.
    pub fn scan(&self, mut each_shard: impl FnMut(ShardScan) -> io::Result<()>) -> io::Result<()> {
        if !self.root.exists() {
            return Ok(());
        }
        for days in sorted_dirs(&self.root)? {
            for shard in sorted_dirs(&days)? {
                let mut found = ShardScan::default();
                for entry in fs::read_dir(&shard)? {
                    let path = entry?.path();
                    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
                    if let Some(id) = name.strip_suffix(".eml") {
                        found.bodies.push((id.to_string(), path.clone()));
                    } else if name.ends_with(".tmp") {
                        found.temps.push(path.clone());
                    }
                }
                each_shard(found)?;
            }
        }
        Ok(())
    }
}

/// `O_CREAT|O_EXCL`, mode 0600.
pub fn create_private(path: &Path) -> io::Result<File> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}

fn sorted_dirs(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut dirs = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            dirs.push(entry.path());
        }
    }
    dirs.sort();
    Ok(dirs)
}

/// fsync a directory so the renames inside it survive a crash.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}
