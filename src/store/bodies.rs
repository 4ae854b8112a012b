//! Message bodies as files: `bodies/<shard>/<id>.eml`, where the shard is the last two
//! characters of the ULID (1024 directories, so no directory grows huge with a million
//! held messages). A body is written to `<id>.tmp`, fsynced and renamed; the directory is
//! fsynced before the record that points at it is committed, so a record never names a body
//! that a crash could take away.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use ring::digest;

/// What a scan of the body directories finds: `(id, path)` of every body, and leftover temps.
pub type ScanResult = (Vec<(String, PathBuf)>, Vec<PathBuf>);

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

    pub fn shard_dir(&self, id: &str) -> PathBuf {
        let shard = id.get(id.len().saturating_sub(2)..).unwrap_or("00");
        self.root.join(shard.to_ascii_lowercase())
    }

    pub fn path(&self, id: &str) -> PathBuf {
        self.shard_dir(id).join(format!("{id}.eml"))
    }

    /// Write, fsync and rename the body. The caller fsyncs the shard directory (see
    /// `sync_dir`) before committing the record, so directory syncs can be grouped.
    pub fn write(&self, id: &str, body: &[u8]) -> io::Result<PathBuf> {
        let dir = self.shard_dir(id);
        fs::create_dir_all(&dir)?;
        let tmp = dir.join(format!("{id}.tmp"));
        let mut f = File::create(&tmp)?;
        f.write_all(body)?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, self.path(id))?;
        Ok(dir)
    }

    pub fn read(&self, id: &str) -> io::Result<Vec<u8>> {
        fs::read(self.path(id))
    }

    pub fn exists(&self, id: &str) -> bool {
        self.path(id).is_file()
    }

    /// Every `(id, path)` body file and every leftover `.tmp` file (never acknowledged).
    pub fn scan(&self) -> io::Result<ScanResult> {
        let mut bodies = Vec::new();
        let mut temps = Vec::new();
        if !self.root.exists() {
            return Ok((bodies, temps));
        }
        for shard in fs::read_dir(&self.root)? {
            let shard = shard?;
            if !shard.file_type()?.is_dir() {
                continue;
            }
            for entry in fs::read_dir(shard.path())? {
                let path = entry?.path();
                let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
                if let Some(id) = name.strip_suffix(".eml") {
                    bodies.push((id.to_string(), path.clone()));
                } else if name.ends_with(".tmp") {
                    temps.push(path.clone());
                }
            }
        }
        Ok((bodies, temps))
    }
}

/// fsync a directory so the renames inside it survive a crash.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}
