//! The server lock, `<data_dir>/serve.lock`: one `gatepost serve` per data directory.
//!
//! A second server on the same store would run crash recovery under the first one's feet
//! (moving bodies still being written to `orphans/`) and deliver the same due mail twice. So
//! the server takes an exclusive lock on this file before anything else, and a second one
//! stops there, touching nothing. The file holds the pid of the server that holds it, for the
//! error message; the lock (flock, released by the kernel when the process dies, however it
//! dies) is what counts, never the file's presence. The CLI does not take it: its commands
//! work beside a running server (decision D4).

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{self, Read, Seek, Write};
use std::path::{Path, PathBuf};

use super::integrity::private_dir_all;

pub const LOCK_FILE: &str = "serve.lock";

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "another gatepost serve{} is running on the data directory {dir} (it holds {lock}); stop it first, or give this one its own data_dir",
        pid.map(|p| format!(" (pid {p})")).unwrap_or_default()
    )]
    Held { dir: String, lock: String, pid: Option<u32> },
    #[error("server lock {path}: {source}")]
    Io { path: String, source: io::Error },
}

/// Held for as long as the server runs; dropping it releases the lock.
#[derive(Debug)]
pub struct ServerLock {
    _file: File,
    path: PathBuf,
}

impl ServerLock {
    /// Take the lock, creating the data directory (owner-only) and the file when missing.
    pub fn acquire(data_dir: &Path) -> Result<ServerLock, LockError> {
        let path = data_dir.join(LOCK_FILE);
        let io_err = |source| LockError::Io { path: path.display().to_string(), source };
        private_dir_all(data_dir).map_err(io_err)?;
        let mut options = OpenOptions::new();
        // Never truncate before holding the lock: that would erase the holder's pid.
        options.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&path).map_err(io_err)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut text = String::new();
                let _ = file.read_to_string(&mut text);
                return Err(LockError::Held {
                    dir: data_dir.display().to_string(),
                    lock: path.display().to_string(),
                    pid: text.trim().parse().ok(),
                });
            }
            Err(TryLockError::Error(e)) => return Err(io_err(e)),
        }
        file.set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| writeln!(file, "{}", std::process::id()))
            .map_err(io_err)?;
        Ok(ServerLock { _file: file, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether a `gatepost serve` seems to run on `data_dir`: the pid in the lock file is a
    /// live gatepost process. Read only, so it can never make a starting server fail (a
    /// probe of the lock itself could, for an instant). For messages, not for safety.
    pub fn server_seems_running(data_dir: &Path) -> bool {
        let Ok(text) = std::fs::read_to_string(data_dir.join(LOCK_FILE)) else { return false };
        let Ok(pid) = text.trim().parse::<u32>() else { return false };
        std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim().starts_with("gatepost"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_with_the_first_ones_pid() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let first = ServerLock::acquire(&data).unwrap();
        let err = ServerLock::acquire(&data).unwrap_err().to_string();
        assert!(err.contains(&format!("pid {}", std::process::id())) && err.contains("serve.lock"), "{err}");
        drop(first);
        let again = ServerLock::acquire(&data).unwrap();
        assert_eq!(std::fs::read_to_string(again.path()).unwrap().trim(), std::process::id().to_string());
    }
}
