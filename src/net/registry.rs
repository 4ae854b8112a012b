//! Live sessions per user, so a change to an account reaches the sessions already open.
//!
//! A session registers when it logs in (or starts as a trusted network's user) with the
//! account generation it logged in under, and holds a [`SessionTicket`] until it ends. When the
//! account changes (`accounts::changes` follows the store's feed), every session of that user
//! under an older generation is told to end: SMTP answers `421 4.7.0` and closes, wherever it
//! is waiting (a command, DATA); IMAP will send `* BYE`, IDLE included. One registry for every
//! protocol, so account sync and IMAP reuse the same mechanism.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;

#[derive(Default)]
struct EndSignal {
    ended: AtomicBool,
    notify: Notify,
}

struct Entry {
    id: u64,
    generation: u64,
    signal: Arc<EndSignal>,
}

#[derive(Default)]
pub struct SessionRegistry {
    users: Mutex<HashMap<String, Vec<Entry>>>,
    next_id: AtomicU64,
}

/// A registered session. Dropping it unregisters.
pub struct SessionTicket {
    registry: Arc<SessionRegistry>,
    user: String,
    id: u64,
    generation: u64,
    signal: Arc<EndSignal>,
}

impl SessionRegistry {
    pub fn new() -> Arc<SessionRegistry> {
        Arc::new(SessionRegistry::default())
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Vec<Entry>>> {
        self.users.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn register(self: &Arc<Self>, user: &str, generation: u64) -> SessionTicket {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let signal = Arc::new(EndSignal::default());
        self.lock().entry(user.to_string()).or_default().push(Entry { id, generation, signal: signal.clone() });
        SessionTicket { registry: self.clone(), user: user.to_string(), id, generation, signal }
    }

    /// `user` is now at generation `current` (`None`: the account is gone): end every session
    /// of theirs from an older generation. Returns how many were told to end.
    pub fn account_changed(&self, user: &str, current: Option<u64>) -> usize {
        let users = self.lock();
        let Some(entries) = users.get(user) else { return 0 };
        let mut ended = 0;
        for e in entries.iter().filter(|e| current.is_none_or(|g| e.generation < g)) {
            if !e.signal.ended.swap(true, Ordering::AcqRel) {
                e.signal.notify.notify_waiters();
                ended += 1;
            }
        }
        ended
    }

    /// Users with live sessions (to recheck them all when the change feed had a gap).
    pub fn users(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }

    /// Live sessions of `user`.
    pub fn sessions_of(&self, user: &str) -> usize {
        self.lock().get(user).map_or(0, Vec::len)
    }
}

impl SessionTicket {
    pub fn user(&self) -> &str {
        &self.user
    }

    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Whether the session has been told to end.
    pub fn is_ended(&self) -> bool {
        self.signal.ended.load(Ordering::Acquire)
    }

    /// Resolves once the session has been told to end (cancel-safe; usable in `select!`).
    pub async fn ended(&self) {
        loop {
            let notified = self.signal.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.is_ended() {
                return;
            }
            notified.await;
        }
    }
}

impl Drop for SessionTicket {
    fn drop(&mut self) {
        let mut users = self.registry.lock();
        if let Some(entries) = users.get_mut(&self.user) {
            entries.retain(|e| e.id != self.id);
            if entries.is_empty() {
                users.remove(&self.user);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn older_generations_end_newer_stay() {
        let r = SessionRegistry::new();
        let old = r.register("alice", 3);
        let new = r.register("alice", 4);
        let bob = r.register("bob", 1);
        assert_eq!(r.sessions_of("alice"), 2);
        let waiter = tokio::spawn(async move {
            old.ended().await;
            old
        });
        tokio::task::yield_now().await;
        assert_eq!(r.account_changed("alice", Some(4)), 1);
        let old = tokio::time::timeout(Duration::from_secs(5), waiter).await.unwrap().unwrap();
        assert!(old.is_ended() && !new.is_ended() && !bob.is_ended());
        assert_eq!(r.account_changed("alice", Some(4)), 0, "told once");
        assert_eq!(r.account_changed("bob", None), 1, "a deleted account ends everything");
        bob.ended().await;
        drop((old, new, bob));
        assert!(r.users().is_empty(), "tickets unregister when dropped");
    }
}
