//! Whether the store can be trusted, decided before anything is served from it.
//!
//! redb creates a new database in a missing *or empty* file and trusts a file it did not see
//! damaged: a truncated `gatepost.redb` would start as an empty store (users and held mail
//! gone, their bodies left behind), and a page overwritten outside redb is found only when a
//! read walks into it, as a panic deep inside redb. So:
//!
//! - [`probe`] looks at the data directory first. An empty database file, or gatepost data
//!   (bodies, orphans, the trace index, the clean-stop marker) without a database, is damage,
//!   never a fresh install. gatepost itself never leaves an empty database file: a new one is
//!   built under a temporary name and linked into place whole ([`create_database`]).
//! - `gatepost serve` opens with redb's integrity check after an unclean stop (every page
//!   checksum of the committed trees verified; docs/queue.md has its cost), and
//!   `gatepost store check` does so on demand. A failed check stops the start with an error
//!   naming the file and what to do.
//! - A panic raised inside redb (damage met after the open) is noted by the panic hook
//!   installed by `main` ([`install_panic_hook`]): no Rust panic text, a clear error naming
//!   the file instead; the CLI turns it into an error at its boundary, and the server stops
//!   (without marking the stop clean, so the next start checks the file).

use std::fs::{self, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use redb::{ConcurrencyMode, Database, ReadableDatabase, ReadableTable};

use super::{CLEAN_MARKER, DB_FILE, MESSAGES, QueueRecord, Store, StoreError, USERS, UserRecord, sync_dir};

/// What a data directory holds before the store is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataDirState {
    /// Nothing of gatepost's yet: the store will be created.
    New,
    /// A store whose last server stopped cleanly.
    CleanStop,
    /// A store whose last server crashed, was killed, or is still running.
    UncleanStop,
}

/// How far to trust the database file when opening it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Integrity {
    /// Open as is (every command; fast).
    Trust,
    /// Verify every page of the committed trees first; damage is an error, never a panic.
    Verify,
}

/// What to do, said once for every kind of damage.
const RESTORE: &str = "restore gatepost.redb from a backup (with gatepost stopped); to start with an \
                       empty store instead, move the whole data directory aside";

/// Page cache of the database file.
const CACHE_SIZE: usize = 64 * 1024 * 1024;

pub(super) fn builder(check_integrity: bool) -> redb::Builder {
    let mut b = Database::builder();
    b.set_concurrency_mode(ConcurrencyMode::MultiWriter)
        // redb's default page cache is 1 GiB; a scan of a million held records would fill
        // it. Hot data (the due index, recent records) is small.
        .set_cache_size(CACHE_SIZE)
        // Every page checksum of the committed trees verified, damage reported as an error.
        .set_check_integrity_on_open(check_integrity);
    b
}

/// A redb error about `path`, with the damage case told apart.
pub(super) fn db_error(path: &Path, e: redb::DatabaseError) -> StoreError {
    match StoreError::from(e) {
        StoreError::Damaged(why) => {
            if let Some(dir) = path.parent() {
                forget_clean_stop(dir);
            }
            StoreError::Damaged(format!(
                "{}: {why}; the database failed its integrity check: restore it from a backup (with gatepost \
                 stopped), or move the data directory aside to start with an empty store",
                path.display()
            ))
        }
        StoreError::Db(why) => StoreError::Db(format!("{}: {why}", path.display())),
        other => other,
    }
}

/// Look at `data_dir` without changing it.
pub fn probe(data_dir: &Path) -> Result<DataDirState, StoreError> {
    let db = data_dir.join(DB_FILE);
    match fs::metadata(&db) {
        Ok(m) if !m.is_file() => Err(StoreError::Damaged(format!("{} is not a file; {RESTORE}", db.display()))),
        Ok(m) if m.len() == 0 => Err(StoreError::Damaged(format!(
            "{} is empty (0 bytes): the database was truncated, so its users and queued mail cannot be \
             read, and gatepost will not start a new store over it; {RESTORE}",
            db.display()
        ))),
        Ok(_) if data_dir.join(CLEAN_MARKER).is_file() => Ok(DataDirState::CleanStop),
        Ok(_) => Ok(DataDirState::UncleanStop),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let found = gatepost_data(data_dir);
            if found.is_empty() {
                Ok(DataDirState::New)
            } else {
                Err(StoreError::Damaged(format!(
                    "{} holds gatepost data ({}) but no {DB_FILE}: the database is missing, so that data has \
                     no records; {RESTORE}",
                    data_dir.display(),
                    found.join(", ")
                )))
            }
        }
        Err(e) => Err(StoreError::Io { context: format!("looking at {}", db.display()), source: e }),
    }
}

/// What in `data_dir` only a store with a database leaves behind.
fn gatepost_data(data_dir: &Path) -> Vec<String> {
    let nonempty = |name: &str| fs::read_dir(data_dir.join(name)).is_ok_and(|mut d| d.next().is_some());
    let mut found = Vec::new();
    for dir in ["bodies", "orphans", "trace"] {
        if nonempty(dir) {
            found.push(format!("{dir}/"));
        }
    }
    if data_dir.join(CLEAN_MARKER).exists() {
        found.push(CLEAN_MARKER.to_string());
    }
    found
}

/// Build a new, empty database as `path`, never leaving a partial file under that name: it is
/// made under a temporary name (owner-only from its first byte; it will hold password
/// hashes), initialised, and then hard-linked into place, which fails rather than replaces
/// when another process got there first (then theirs is used).
pub(super) fn create_database(
    path: &Path,
    init: impl FnOnce(&Path) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!("{DB_FILE}.new-{}", std::process::id()));
    let _ = fs::remove_file(&tmp);
    private_file(&tmp).map_err(StoreError::io(format!("creating {}", tmp.display())))?;
    let made = init(&tmp).and_then(|()| match fs::hard_link(&tmp, path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        // A file system without hard links: a rename, which the probe before made safe enough.
        Err(_) => fs::rename(&tmp, path).map_err(StoreError::io(format!("creating {}", path.display()))),
    });
    let _ = fs::remove_file(&tmp);
    made?;
    sync_dir(dir).map_err(StoreError::io(format!("syncing {}", dir.display())))
}

#[cfg(unix)]
fn private_file(path: &Path) -> io::Result<fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)
}

#[cfg(not(unix))]
fn private_file(path: &Path) -> io::Result<fs::File> {
    OpenOptions::new().write(true).create_new(true).open(path)
}

/// Write a small file of ours owner-only (0600), whatever the umask.
pub fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write;
    let mut options = OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(bytes)
}

/// Create `dir` and its missing parents owner-only (0700), whatever the umask. An existing
/// directory keeps its mode (the start warns when it is wider).
pub fn private_dir_all(dir: &Path) -> io::Result<()> {
    let mut b = fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
    b.create(dir)
}

impl Store {
    /// Every message record and every user, decoded in one snapshot, each handed over with
    /// its decoding result (`gatepost store check`): one bad record does not hide the others.
    pub fn scan_records(
        &self,
        mut message: impl FnMut(&str, Result<QueueRecord, StoreError>),
        mut user: impl FnMut(&str, Result<UserRecord, StoreError>),
    ) -> Result<(), StoreError> {
        let txn = self.db.begin_read()?;
        for entry in txn.open_table(MESSAGES)?.iter()? {
            let (k, v) = entry?;
            message(k.value(), QueueRecord::decode(v.value()));
        }
        for entry in txn.open_table(USERS)?.iter()? {
            let (k, v) = entry?;
            let decoded = serde_json::from_slice::<UserRecord>(v.value())
                .map_err(|e| StoreError::Damaged(format!("user record {:?}: {e}", k.value())));
            user(k.value(), decoded);
        }
        Ok(())
    }
}

/// The damage noted by the panic hook, and the database it is about.
static DAMAGE: Mutex<Option<String>> = Mutex::new(None);
static LAST_OPENED: Mutex<Option<PathBuf>> = Mutex::new(None);
static DAMAGE_SEEN: tokio::sync::Notify = tokio::sync::Notify::const_new();

pub(super) fn note_opened(db: &Path) {
    *LAST_OPENED.lock().unwrap_or_else(|p| p.into_inner()) = Some(db.to_path_buf());
}

/// Whether a source file of a panic's location is redb's own (`…/redb-4.5.0/src/…`).
pub fn is_redb_source(file: &str) -> bool {
    file.split(['/', '\\']).any(|part| part.starts_with("redb-"))
}

/// Replace the panic hook: a panic inside redb means the database file is damaged (redb
/// checks what it writes, so a read that makes no sense was changed outside it). It is noted
/// for [`damage`] and logged, without Rust's panic text; any other panic is a bug in gatepost
/// and goes to the previous hook as usual.
pub fn install_panic_hook() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let Some(loc) = info.location().filter(|l| is_redb_source(l.file())) else {
            return previous(info);
        };
        let payload = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic".into());
        let file = LAST_OPENED.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let file = file.map(|f| f.display().to_string()).unwrap_or_else(|| DB_FILE.to_string());
        let short = loc.file().rsplit_once("/src/").map_or(loc.file(), |(_, s)| s);
        let note = format!(
            "{file}: redb failed reading it ({payload}, in redb's {short}:{}); stop gatepost and run \
             `gatepost store check`, or {RESTORE}",
            loc.line()
        );
        tracing::error!("{note}");
        if let Some(dir) = LAST_OPENED.lock().unwrap_or_else(|p| p.into_inner()).as_deref().and_then(Path::parent) {
            forget_clean_stop(dir);
        }
        DAMAGE.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert(note);
        DAMAGE_SEEN.notify_waiters();
    }));
}

/// A store that showed damage is checked at the next start, however its last server stopped:
/// the clean-stop marker goes.
pub fn forget_clean_stop(data_dir: &Path) {
    let _ = fs::remove_file(data_dir.join(CLEAN_MARKER));
}

/// The first damage the panic hook saw in this process, if any.
pub fn damage() -> Option<String> {
    DAMAGE.lock().unwrap_or_else(|p| p.into_inner()).clone()
}

/// Returns once the panic hook has seen damage (the server stops then).
pub async fn damage_seen() -> String {
    loop {
        let notified = DAMAGE_SEEN.notified();
        if let Some(d) = damage() {
            return d;
        }
        notified.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redb_sources_are_told_apart() {
        assert!(is_redb_source(
            "/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/redb-4.5.0/src/tree_store/btree_base.rs"
        ));
        assert!(is_redb_source("C:\\cargo\\registry\\src\\x\\redb-4.5.0\\src\\db.rs"));
        assert!(!is_redb_source("src/store/mod.rs"));
        assert!(!is_redb_source("/rustc/abc/library/core/src/option.rs"));
    }

    #[test]
    fn the_data_directory_says_what_it_is() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        assert_eq!(probe(d).unwrap(), DataDirState::New);
        // leftovers of a store without its database are damage
        for leftover in ["bodies/01jf/ab/x.eml", "orphans/x.eml", "trace/meta.json"] {
            let sub = tempfile::tempdir().unwrap();
            let p = sub.path().join(leftover);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(&p, b"x").unwrap();
            let err = probe(sub.path()).unwrap_err().to_string();
            assert!(err.contains("no gatepost.redb") && err.contains(leftover.split('/').next().unwrap()), "{err}");
        }
        fs::write(d.join(DB_FILE), b"").unwrap();
        let err = probe(d).unwrap_err().to_string();
        assert!(err.contains("gatepost.redb is empty") && err.contains("backup"), "{err}");
        fs::write(d.join(DB_FILE), b"something").unwrap();
        assert_eq!(probe(d).unwrap(), DataDirState::UncleanStop);
        fs::write(d.join(CLEAN_MARKER), b"").unwrap();
        assert_eq!(probe(d).unwrap(), DataDirState::CleanStop);
    }
}
