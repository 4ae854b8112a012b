//! Following the store's per-user change feed, so a change made by the CLI (or later by sync,
//! HTTP, IMAP) reaches the running server: once a second, one read of the feed; for each user
//! that changed, sessions under an older generation are ended (`net::registry`) and cached
//! password checks dropped. Within two seconds of the commit, whatever process made it.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::login::Login;
use crate::net::registry::SessionRegistry;
use crate::store::{Store, StoreError};

/// How often the feed is read.
pub const POLL_EVERY: Duration = Duration::from_secs(1);
/// Changes read per poll at most (the rest next time).
const BATCH: usize = 1000;

pub struct ChangeFollower {
    store: Arc<Store>,
    sessions: Arc<SessionRegistry>,
    login: Arc<Login>,
    /// The last change applied.
    seen: u64,
}

impl ChangeFollower {
    /// Start after the newest change: what happened before this server started concerns no
    /// session of it.
    pub fn new(store: Arc<Store>, sessions: Arc<SessionRegistry>, login: Arc<Login>) -> Result<Self, StoreError> {
        let seen = store.last_user_change()?;
        Ok(ChangeFollower { store, sessions, login, seen })
    }

    /// Poll until shutdown. Returns true (it has nothing to finish).
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) -> bool {
        loop {
            tokio::select! {
                _ = shutdown.changed() => return true,
                _ = tokio::time::sleep(POLL_EVERY) => {}
            }
            let (store, seen) = (self.store.clone(), self.seen);
            let read = tokio::task::spawn_blocking(move || store.user_changes_after(seen, BATCH)).await;
            match read {
                Ok(Ok(changes)) => {
                    let gap = changes.first().is_some_and(|c| c.seq > self.seen + 1);
                    let mut users: Vec<String> = changes.iter().map(|c| c.user.clone()).collect();
                    if gap {
                        tracing::warn!(after = self.seen, "account change feed has a gap: rechecking every session");
                        users.extend(self.sessions.users());
                    }
                    if let Some(last) = changes.last() {
                        self.seen = last.seq;
                    }
                    users.sort();
                    users.dedup();
                    self.apply(users).await;
                }
                Ok(Err(e)) => tracing::warn!(error = %e, "reading the account change feed"),
                Err(e) => tracing::warn!(error = %e, "reading the account change feed"),
            }
        }
    }

    /// End the older sessions of each changed user and drop their cached checks.
    async fn apply(&self, users: Vec<String>) {
        for user in users {
            self.login.forget_user(&user);
            let store = self.store.clone();
            let name = user.clone();
            let current = match tokio::task::spawn_blocking(move || store.get_user(&name)).await {
                Ok(Ok(u)) => u.map(|u| u.generation),
                _ => continue,
            };
            let ended = self.sessions.account_changed(&user, current);
            if ended > 0 {
                tracing::info!(user = ?user, sessions = ended, "account changed: ending its older sessions");
            }
        }
    }
}
