//! The mail store (docs/mailstore.md): every user's mailboxes, messages and flags, over the
//! blobs of `crate::blobs`. [`MailStore`] is what protocol sessions hold: the metadata
//! database, the blob store, and the per-user change signal.
//!
//! Change signalling (docs/imap.md, "Locking and broadcast"): a write commits first, then
//! publishes the user's new modseq on that user's watch channel, in commit order (a value
//! only ever rises). A session that wakes reads its own changes since the modseq it last saw
//! from the database; nothing is queued per session, so a slow or idle client holds no memory
//! and can never miss a change. No lock is held while a session writes to its client.

pub mod db;
pub mod signal;
pub mod structure;

use std::path::Path;
use std::sync::Arc;

use crate::accounts::quota::QuotaRule;
use crate::blobs::BlobStore;

pub use db::{MailDb, MailError};
pub use signal::Signals;

pub struct MailStore {
    pub db: MailDb,
    pub blobs: Arc<dyn BlobStore>,
    pub signals: Signals,
    /// Held while a `Scheduled` entry's queue message and the entry change together (a cancel
    /// and the entry's EXPUNGE or MOVE; the filer's sync), so neither sees the other half-done.
    pub held_lock: std::sync::Mutex<()>,
}

impl MailStore {
    /// The embedded default: `mailstore.redb` and the blob files under `dir` (decision D37).
    /// `verify`: check every page first (after an unclean stop).
    pub fn open(dir: &Path, rule: QuotaRule, verify: bool) -> Result<MailStore, MailError> {
        let db = MailDb::open_checked(&dir.join("mailstore.redb"), rule, verify)?;
        let blobs = crate::blobs::files::FileBlobs::new(dir.join("blobs"));
        // Only the process holding the server lock opens the store this way (serve).
        match blobs.sweep_temporary() {
            Ok(0) => {}
            Ok(n) => tracing::info!(removed = n, "removed temporary blob files left by a crash"),
            Err(e) => tracing::warn!(error = %e, "could not sweep temporary blob files"),
        }
        Ok(MailStore { db, blobs: Arc::new(blobs), signals: Signals::default(), held_lock: Default::default() })
    }

    /// A store in memory blobs over a database file (tests).
    pub fn with_blobs(db: MailDb, blobs: Arc<dyn BlobStore>) -> MailStore {
        MailStore { db, blobs, signals: Signals::default(), held_lock: Default::default() }
    }

    /// After a commit: tell the user's sessions (commit order is kept by the rising value).
    pub fn changed(&self, user: u32) {
        match self.db.modseq(user) {
            Ok(modseq) => self.signals.publish(user, modseq),
            Err(e) => tracing::warn!(error = %e, user, "could not read the modseq to signal a change"),
        }
    }
}

/// How often `serve` collects unreferenced blobs by itself, and looks for a request from
/// `gatepost store gc`.
const COLLECT_EVERY: std::time::Duration = std::time::Duration::from_secs(3600);
const LOOK_FOR_REQUESTS: std::time::Duration = std::time::Duration::from_secs(2);

/// The collector task of `serve` (the process holding the server lock).
pub async fn collector(store: Arc<MailStore>, mut shutdown: tokio::sync::watch::Receiver<bool>) -> bool {
    let mut last = std::time::Instant::now();
    loop {
        tokio::select! {
            _ = shutdown.changed() => return true,
            _ = tokio::time::sleep(LOOK_FOR_REQUESTS) => {}
        }
        let requested = store.db.collection_state().map(|(r, _)| r).unwrap_or(false);
        if !requested && last.elapsed() < COLLECT_EVERY {
            continue;
        }
        last = std::time::Instant::now();
        let s = store.clone();
        match tokio::task::spawn_blocking(move || s.db.collect(s.blobs.as_ref())).await {
            Ok(Ok(c)) if c != db::Collected::default() => tracing::info!(
                blobs = c.blobs,
                debris = c.debris,
                packs = c.packs,
                pack_bytes = c.pack_bytes,
                "collected unreferenced blobs"
            ),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "blob collection failed; will retry"),
            Err(e) => tracing::error!(error = %e, "blob collection task failed"),
        }
    }
}
