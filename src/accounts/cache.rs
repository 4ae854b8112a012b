//! The verified-password cache. Mail clients such as Outlook open a connection and log in for
//! every message, and argon2 then costs more than the message. A login that argon2 accepted is
//! remembered for `ttl`, so the next ones skip argon2 — never the throttle, nor the disabled
//! and verified checks, which read the account every time.
//!
//! The key is HMAC-SHA256 under a random key made at start-up (never stored) over the user name
//! and the password: memory holds no password and nothing a dump could be checked against
//! offline without that key. The value is the account's generation at the time and an expiry;
//! an entry from an older generation (the password changed, the account was disabled …) never
//! matches and is dropped. Failures are never cached. Entries are not extended by hits: a
//! password is checked by argon2 again at least once per `ttl`.
//!
//! Checks of the same user and password at the same moment go one at a time through a gate
//! ([`VerifiedCache::gate`]): a client opening five connections at start (Thunderbird, a
//! phone) pays argon2 once, and the other four find the first one's entry. Different
//! passwords never wait for each other (the same wrong one sent at once by many connections
//! is checked one at a time, which only slows its sender).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use ring::hmac;

/// Most entries kept (one per user and password; only successful logins make entries).
pub const MAX_ENTRIES: usize = 10_000;

type Key = [u8; 32];

#[derive(Debug, Clone)]
struct Entry {
    user: String,
    generation: u64,
    expires: Instant,
}

pub struct VerifiedCache {
    key: hmac::Key,
    ttl: Duration,
    entries: Mutex<HashMap<Key, Entry>>,
    /// One gate per (user, password) being checked now; gone when nobody holds it.
    gates: Mutex<HashMap<Key, Arc<tokio::sync::Mutex<()>>>>,
}

/// The right to check one (user, password) now: hold `lock` across the check and the insert.
pub struct Gate<'a> {
    cache: &'a VerifiedCache,
    key: Key,
    pub lock: Arc<tokio::sync::Mutex<()>>,
}

impl Drop for Gate<'_> {
    fn drop(&mut self) {
        let mut gates = self.cache.gates.lock().unwrap_or_else(|e| e.into_inner());
        // The map's reference and this one: nobody else waits.
        if Arc::strong_count(&self.lock) == 2 {
            gates.remove(&self.key);
        }
    }
}

impl VerifiedCache {
    /// `ttl` zero turns the cache off.
    pub fn new(ttl: Duration) -> Self {
        let rng = ring::rand::SystemRandom::new();
        let key = hmac::Key::generate(hmac::HMAC_SHA256, &rng).expect("system randomness");
        VerifiedCache { key, ttl, entries: Mutex::new(HashMap::new()), gates: Mutex::new(HashMap::new()) }
    }

    /// The gate for checking this user and password (see the module comment).
    pub fn gate(&self, user: &str, password: &str) -> Gate<'_> {
        let key = self.key_for(user, password);
        let lock = self.gates.lock().unwrap_or_else(|e| e.into_inner()).entry(key).or_default().clone();
        Gate { cache: self, key, lock }
    }

    /// Gates open now (tests).
    pub fn gates(&self) -> usize {
        self.gates.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn enabled(&self) -> bool {
        !self.ttl.is_zero()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<Key, Entry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Length-prefixed so ("ab", "c") and ("a", "bc") differ.
    fn key_for(&self, user: &str, password: &str) -> Key {
        let mut ctx = hmac::Context::with_key(&self.key);
        ctx.update(&(user.len() as u64).to_be_bytes());
        ctx.update(user.as_bytes());
        ctx.update(password.as_bytes());
        let tag = ctx.sign();
        tag.as_ref().try_into().expect("HMAC-SHA256 is 32 bytes")
    }

    /// Whether argon2 accepted this password for this generation of the account less than
    /// `ttl` ago.
    pub fn hit(&self, user: &str, password: &str, generation: u64, now: Instant) -> bool {
        if !self.enabled() {
            return false;
        }
        let key = self.key_for(user, password);
        let mut entries = self.lock();
        match entries.get(&key) {
            Some(e) if e.generation == generation && now < e.expires => true,
            Some(_) => {
                entries.remove(&key);
                false
            }
            None => false,
        }
    }

    /// Remember a password argon2 just accepted.
    pub fn insert(&self, user: &str, password: &str, generation: u64, now: Instant) {
        if !self.enabled() {
            return;
        }
        let key = self.key_for(user, password);
        let mut entries = self.lock();
        if entries.len() >= MAX_ENTRIES && !entries.contains_key(&key) {
            entries.retain(|_, e| now < e.expires);
            if entries.len() >= MAX_ENTRIES {
                // Full of live entries: drop the one closest to expiring.
                let soonest = entries.iter().min_by_key(|(_, e)| e.expires).map(|(k, _)| *k);
                if let Some(k) = soonest {
                    entries.remove(&k);
                }
            }
        }
        entries.insert(key, Entry { user: user.to_string(), generation, expires: now + self.ttl });
    }

    /// Drop every entry of `user` (the account changed).
    pub fn forget_user(&self, user: &str) {
        self.lock().retain(|_, e| e.user != user);
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hits_only_the_same_password_generation_and_time() {
        let c = VerifiedCache::new(Duration::from_secs(60));
        let now = Instant::now();
        assert!(!c.hit("alice", "pw", 1, now), "empty");
        c.insert("alice", "pw", 1, now);
        assert!(c.hit("alice", "pw", 1, now + Duration::from_secs(59)));
        assert!(!c.hit("alice", "other", 1, now));
        assert!(!c.hit("alicepw", "", 1, now), "user and password are kept apart");
        assert!(!c.hit("bob", "pw", 1, now));
        assert!(!c.hit("alice", "pw", 1, now + Duration::from_secs(60)), "expired");
        assert!(c.is_empty(), "an expired entry is dropped when met");
        c.insert("alice", "pw", 1, now);
        assert!(!c.hit("alice", "pw", 2, now), "a newer generation never matches");
        assert!(!c.hit("alice", "pw", 1, now), "and the stale entry is gone");
    }

    #[test]
    fn forget_user_and_off_and_bounded() {
        let c = VerifiedCache::new(Duration::from_secs(60));
        let now = Instant::now();
        c.insert("alice", "a", 1, now);
        c.insert("alice", "b", 1, now);
        c.insert("bob", "a", 1, now);
        c.forget_user("alice");
        assert_eq!(c.len(), 1);
        assert!(c.hit("bob", "a", 1, now));
        let off = VerifiedCache::new(Duration::ZERO);
        off.insert("alice", "a", 1, now);
        assert!(!off.hit("alice", "a", 1, now) && off.is_empty());
        for i in 0..MAX_ENTRIES + 10 {
            c.insert(&format!("u{i}"), "pw", 1, now + Duration::from_millis(i as u64));
        }
        assert_eq!(c.len(), MAX_ENTRIES);
        assert!(c.hit(&format!("u{}", MAX_ENTRIES + 9), "pw", 1, now), "the newest entries stay");
    }
}
