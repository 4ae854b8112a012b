//! The login door every protocol shares: one async call per attempt,
//! [`Login::check`]`(ip, user, password)`, which the SMTP driver (and later IMAP and HTTP) maps
//! to its own replies in one place.
//!
//! Order of an attempt: the throttle admits it (or it is `Throttled` without any work); the
//! account is read; a cached verification of this exact password and account generation skips
//! argon2, otherwise argon2 runs in the bounded password pool (`Busy` when full, counted as
//! nothing); then the account's own state (disabled, unverified) is checked; a wrong password
//! waits out the throttle's delay before it is answered.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use super::cache::VerifiedCache;
use super::known::{KnownPairs, REMEMBERED_FOR};
use super::pool::{Lane, PoolError, PoolSettings, PoolStats, VerifyPool};
use super::throttle::Throttle;
use super::{DUMMY_HASH, LoginRefusal, refusal_for, verify_password};
use crate::clock::Clock;
use crate::store::{Store, StoreError, UserRecord};

/// What became of one login attempt.
#[derive(Debug, Clone)]
pub enum LoginOutcome {
    /// Logged in; sessions register under this generation of the account.
    Accepted {
        user: UserRecord,
        generation: u64,
    },
    Refused(LoginRefusal),
    /// Too many failures (or attempts in flight) from this address: try later.
    Throttled,
    /// Too many password checks at once: try again in a moment. Not a failure.
    Busy,
    /// The account store could not be read.
    Unavailable,
}

/// The `[login]` settings, as the wiring builds them from the config.
#[derive(Debug, Clone, Copy)]
pub struct LoginSettings {
    pub failures_before_lockout: u32,
    pub lockout: Duration,
    pub pool: PoolSettings,
    /// How long a verified password is remembered; zero turns the cache off.
    pub cache_ttl: Duration,
}

/// Checks a stored hash against a password. Argon2 in production; tests substitute one they
/// can hold still.
pub type Verifier = Arc<dyn Fn(&str, &str) -> bool + Send + Sync>;

/// The longest an attempt waits for a place behind attempts in flight from its address.
const ADMIT_WAIT: Duration = Duration::from_secs(30);

pub struct Login {
    store: Arc<Store>,
    clock: Arc<dyn Clock>,
    throttle: Throttle,
    pool: VerifyPool,
    cache: VerifiedCache,
    known: KnownPairs,
    /// When remembered pairs older than 30 days were last forgotten in the store (unix seconds).
    pruned_at: AtomicI64,
    verifier: Verifier,
}

impl Login {
    /// Build the door; reads the remembered successful pairs from the store (and forgets
    /// those older than 30 days).
    pub fn new(store: Arc<Store>, clock: Arc<dyn Clock>, settings: LoginSettings) -> Result<Login, StoreError> {
        Login::with_verifier(store, clock, settings, Arc::new(verify_password))
    }

    pub fn with_verifier(
        store: Arc<Store>,
        clock: Arc<dyn Clock>,
        settings: LoginSettings,
        verifier: Verifier,
    ) -> Result<Login, StoreError> {
        let since = clock.now().saturating_sub(REMEMBERED_FOR).unwrap_or(clock.now());
        store.forget_login_successes(since)?;
        let known = KnownPairs::load(store.login_successes(since)?);
        Ok(Login {
            throttle: Throttle::new(settings.failures_before_lockout, settings.lockout),
            pool: VerifyPool::new(settings.pool),
            cache: VerifiedCache::new(settings.cache_ttl),
            known,
            pruned_at: AtomicI64::new(clock.now().as_second()),
            store,
            clock,
            verifier,
        })
    }

    pub fn pool_stats(&self) -> PoolStats {
        self.pool.stats()
    }

    pub fn throttle(&self) -> &Throttle {
        &self.throttle
    }

    /// Whether `user` logged in successfully from `ip` in the last 30 days (the priority lane).
    pub fn is_known(&self, ip: IpAddr, user: &str) -> bool {
        self.known.contains(ip, user, self.clock.now())
    }

    /// The account changed: drop its cached password checks.
    pub fn forget_user(&self, user: &str) {
        self.cache.forget_user(user);
    }

    /// A place for one attempt from `ip`; waits while the address is over its limit only by
    /// attempts still being checked (`throttle`, module comment), at most `ADMIT_WAIT`.
    async fn admit(&self, ip: IpAddr) -> Option<super::throttle::Attempt<'_>> {
        let deadline = tokio::time::Instant::now() + ADMIT_WAIT;
        loop {
            let decided = self.throttle.decided().notified();
            tokio::pin!(decided);
            decided.as_mut().enable();
            if let Ok(attempt) = self.throttle.admit(ip, Instant::now()) {
                return Some(attempt);
            }
            if !self.throttle.only_in_flight(ip, Instant::now()) || tokio::time::Instant::now() >= deadline {
                return None;
            }
            let _ = tokio::time::timeout_at(deadline, decided).await;
        }
    }

    /// Check one login attempt from `ip`. A wrong password returns after the throttle's delay.
    pub async fn check(&self, ip: IpAddr, name: &str, password: &str) -> LoginOutcome {
        let Some(attempt) = self.admit(ip).await else {
            tracing::warn!(%ip, user = ?name, "login refused: address is locked out");
            return LoginOutcome::Throttled;
        };
        let user = match self.store.find_user(name) {
            Ok(u) => u,
            Err(e) => {
                tracing::error!(error = %e, "login could not read the account store");
                return LoginOutcome::Unavailable;
            }
        };
        let hit = |u: &Option<crate::store::UserRecord>| {
            u.as_ref().is_some_and(|u| self.cache.hit(name, password, u.generation, Instant::now()))
        };
        let verified = hit(&user) || {
            // The same password being checked by another connection right now: wait for it,
            // then look again (module comment of `cache`).
            let gate = self.cache.gate(name, password);
            let _held = if self.cache.enabled() && user.is_some() { Some(gate.lock.lock().await) } else { None };
            hit(&user) || {
                let hash = user.as_ref().map_or(DUMMY_HASH.to_string(), |u| u.password_hash.clone());
                let lane = if self.known.contains(ip, name, self.clock.now()) { Lane::Known } else { Lane::Other };
                let (verifier, password_owned) = (self.verifier.clone(), password.to_string());
                match self.pool.run(lane, move || verifier(&hash, &password_owned)).await {
                    Ok(ok) => {
                        let ok = ok && user.is_some();
                        if let Some(u) = user.as_ref().filter(|_| ok) {
                            // Before the gate opens, so the next in line finds it.
                            self.cache.insert(name, password, u.generation, Instant::now());
                        }
                        ok
                    }
                    Err(PoolError::Busy) => {
                        tracing::warn!(%ip, user = ?name, "login refused: too many password checks at once");
                        return LoginOutcome::Busy;
                    }
                    Err(PoolError::Failed) => return LoginOutcome::Unavailable,
                }
            }
        };
        let Some(user) = user.filter(|_| verified) else {
            let delay = attempt.failed(name, Instant::now());
            tracing::warn!(%ip, user = ?name, ?delay, "login failed: wrong user name or password");
            tokio::time::sleep(delay).await;
            return LoginOutcome::Refused(LoginRefusal::BadCredentials);
        };
        if let Some(refusal) = refusal_for(&user) {
            // The right password for an account that may not log in: not a guess, not a success.
            tracing::warn!(%ip, user = ?name, reason = ?refusal, "login refused");
            return LoginOutcome::Refused(refusal);
        }
        attempt.succeeded(name);
        self.remember(ip, name);
        LoginOutcome::Accepted { generation: user.generation, user }
    }

    /// Note a successful pair; at most about once a day per pair it costs a commit, made off
    /// the runtime and not waited for.
    fn remember(&self, ip: IpAddr, name: &str) {
        let now = self.clock.now();
        if !self.known.note(ip, name, now) {
            return;
        }
        let last_prune = self.pruned_at.load(Ordering::Relaxed);
        let prune = now.as_second() - last_prune >= 86_400
            && self
                .pruned_at
                .compare_exchange(last_prune, now.as_second(), Ordering::Relaxed, Ordering::Relaxed)
                .is_ok();
        let (store, name) = (self.store.clone(), name.to_string());
        tokio::task::spawn_blocking(move || {
            let forget_before = now.saturating_sub(REMEMBERED_FOR).unwrap_or(now);
            let written = store.note_login_success(ip, &name, now);
            if let Err(e) =
                written.and_then(|()| if prune { store.forget_login_successes(forget_before) } else { Ok(()) })
            {
                tracing::warn!(error = %e, "could not remember a successful login");
            }
        });
    }

    /// The account's current generation, and whether it may still log in: sessions check this
    /// before a transaction and before queueing. `None`: no such user any more.
    pub fn current(&self, name: &str) -> Result<Option<(u64, bool)>, StoreError> {
        Ok(self.store.get_user(name)?.map(|u| (u.generation, u.may_log_in())))
    }
}
