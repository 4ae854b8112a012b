//! The login throttle (what fail2ban would otherwise have to do), shared by every door.
//!
//! Per client IP: each failure adds 250 ms (up to 5 s) before the failure is answered, and
//! `max_failures` failures within `window` lock the address out for `window`. Attempts still
//! being checked count as failures until they are decided, so 30 simultaneous guesses cannot
//! all be checked when 10 are allowed. Per target user: failures add the same growing delay,
//! never a lockout (that would let anyone lock a user out). A success clears only its own
//! (IP, user) pair: logging in as carol does not forgive the guesses at alice from that address.
//! An attempt dropped undecided (busy pool, store trouble) counts for nothing.
//!
//! An address whose only excess is attempts in flight is not locked out: its next attempt
//! waits until one of them is decided ([`Throttle::only_in_flight`], [`Throttle::decided`]),
//! so twenty rightful logins at once from one office or one client are checked in turn
//! while thirty guesses at once still get only ten checks.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Added per failure, up to `MAX_DELAY`, before the failure reply is sent.
pub const DELAY_STEP: Duration = Duration::from_millis(250);
pub const MAX_DELAY: Duration = Duration::from_secs(5);
/// Beyond this many tracked addresses or users, stale entries are dropped; beyond it again,
/// new users are not tracked (their attempts still count for the address).
const MAX_TRACKED: usize = 100_000;
/// Longer names cannot be users (`accounts::validate_name`): tracked as one name, so an
/// attacker's 4 KiB names cost no memory.
const MAX_NAME: usize = 64;

#[derive(Debug, Default)]
struct Address {
    /// Failures per target user since the last quiet `window`.
    failures: HashMap<String, u32>,
    last_failure: Option<Instant>,
    locked_until: Option<Instant>,
    in_flight: u32,
}

impl Address {
    fn failures(&self) -> u32 {
        self.failures.values().sum()
    }

    /// Forget failures older than the window (counted from the latest one).
    fn age(&mut self, now: Instant, window: Duration) {
        if self.last_failure.is_some_and(|t| now.duration_since(t) >= window) {
            self.failures.clear();
            self.last_failure = None;
        }
        if self.locked_until.is_some_and(|t| now >= t) {
            self.locked_until = None;
        }
    }

    fn is_idle(&self) -> bool {
        self.failures.is_empty() && self.locked_until.is_none() && self.in_flight == 0
    }
}

#[derive(Debug, Clone, Copy)]
struct UserFailures {
    count: u32,
    last: Instant,
}

#[derive(Default)]
struct State {
    addresses: HashMap<IpAddr, Address>,
    users: HashMap<String, UserFailures>,
    /// Size of `addresses` at which idle entries are next dropped (doubles while a spray of
    /// live addresses keeps it large, so the sweep stays rare).
    sweep_at: usize,
    /// When `users` was last swept (at most once a second while it is full).
    users_swept: Option<Instant>,
}

pub struct Throttle {
    state: Mutex<State>,
    max_failures: u32,
    window: Duration,
    /// Woken whenever an attempt is decided or dropped (those waiting for a place).
    decided: tokio::sync::Notify,
}

/// The address is locked out (or has as many attempts in flight as it may still fail).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Locked;

/// One admitted attempt, counted as in flight until it is decided or dropped.
pub struct Attempt<'t> {
    throttle: &'t Throttle,
    ip: IpAddr,
    decided: bool,
}

fn user_key(name: &str) -> &str {
    if name.len() <= MAX_NAME { name } else { "" }
}

fn delay(count: u32) -> Duration {
    DELAY_STEP.saturating_mul(count).min(MAX_DELAY)
}

impl Throttle {
    pub fn new(max_failures: u32, window: Duration) -> Self {
        Throttle {
            state: Mutex::new(State::default()),
            max_failures: max_failures.max(1),
            window,
            decided: tokio::sync::Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Admit an attempt from `ip`, or refuse it without checking anything.
    pub fn admit(&self, ip: IpAddr, now: Instant) -> Result<Attempt<'_>, Locked> {
        let mut s = self.lock();
        if s.addresses.len() >= s.sweep_at.max(MAX_TRACKED) {
            let window = self.window;
            s.addresses.retain(|_, a| {
                a.age(now, window);
                !a.is_idle()
            });
            s.sweep_at = s.addresses.len() * 2;
        }
        let a = s.addresses.entry(ip).or_default();
        a.age(now, self.window);
        if a.locked_until.is_some() || a.failures() + a.in_flight >= self.max_failures {
            return Err(Locked);
        }
        a.in_flight += 1;
        Ok(Attempt { throttle: self, ip, decided: false })
    }

    /// Whether `ip` was refused only for its attempts in flight (not locked out, failures below
    /// the limit): it may wait for [`Throttle::decided`] and try again.
    pub fn only_in_flight(&self, ip: IpAddr, now: Instant) -> bool {
        let mut s = self.lock();
        s.addresses.get_mut(&ip).is_some_and(|a| {
            a.age(now, self.window);
            a.locked_until.is_none() && a.failures() < self.max_failures
        })
    }

    /// Notified when an attempt is decided or dropped.
    pub fn decided(&self) -> &tokio::sync::Notify {
        &self.decided
    }

    /// Whether `ip` is locked out right now.
    pub fn is_locked(&self, ip: IpAddr, now: Instant) -> bool {
        let mut s = self.lock();
        s.addresses.get_mut(&ip).is_some_and(|a| {
            a.age(now, self.window);
            a.locked_until.is_some()
        })
    }

    /// Current failure counts (address, user), for tests and logs.
    pub fn failures(&self, ip: IpAddr, user: &str) -> (u32, u32) {
        let s = self.lock();
        let by_ip = s.addresses.get(&ip).map_or(0, Address::failures);
        (by_ip, s.users.get(user_key(user)).map_or(0, |u| u.count))
    }
}

impl Attempt<'_> {
    /// A wrong password for `user`: returns how long to wait before answering.
    pub fn failed(mut self, user: &str, now: Instant) -> Duration {
        self.decided = true;
        let t = self.throttle;
        let mut s = t.lock();
        let key = user_key(user);
        let a = s.addresses.entry(self.ip).or_default();
        a.in_flight = a.in_flight.saturating_sub(1);
        a.age(now, t.window);
        *a.failures.entry(key.to_string()).or_insert(0) += 1;
        a.last_failure = Some(now);
        let by_ip = a.failures();
        if by_ip >= t.max_failures {
            a.locked_until = Some(now + t.window);
            tracing::warn!(ip = %self.ip, failures = by_ip, lockout = ?t.window, "login: address locked out");
        }
        if s.users.len() >= MAX_TRACKED && s.users_swept.is_none_or(|at| now.duration_since(at).as_secs() >= 1) {
            s.users.retain(|_, u| now.duration_since(u.last) < t.window);
            s.users_swept = Some(now);
        }
        let by_user = if s.users.len() < MAX_TRACKED || s.users.contains_key(key) {
            let u = s.users.entry(key.to_string()).or_insert(UserFailures { count: 0, last: now });
            if now.duration_since(u.last) >= t.window {
                u.count = 0;
            }
            u.count += 1;
            u.last = now;
            u.count
        } else {
            0
        };
        delay(by_ip).max(delay(by_user))
    }

    /// The right password for `user`: forgive exactly this pair's failures.
    pub fn succeeded(mut self, user: &str) {
        self.decided = true;
        let mut s = self.throttle.lock();
        let key = user_key(user);
        let mut forgiven = 0;
        if let Some(a) = s.addresses.get_mut(&self.ip) {
            a.in_flight = a.in_flight.saturating_sub(1);
            forgiven = a.failures.remove(key).unwrap_or(0);
        }
        if let Some(u) = s.users.get_mut(key) {
            u.count = u.count.saturating_sub(forgiven);
        }
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        if !self.decided
            && let Some(a) = self.throttle.lock().addresses.get_mut(&self.ip)
        {
            a.in_flight = a.in_flight.saturating_sub(1);
        }
        self.throttle.decided.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn failures_delay_then_lock_then_expire() {
        let t = Throttle::new(3, Duration::from_secs(60));
        let (a, now) = (ip("10.0.0.1"), Instant::now());
        assert_eq!(t.admit(a, now).unwrap().failed("alice", now), DELAY_STEP);
        assert_eq!(t.admit(a, now).unwrap().failed("bob", now), DELAY_STEP * 2);
        assert!(!t.is_locked(a, now));
        t.admit(a, now).unwrap().failed("alice", now);
        assert!(t.is_locked(a, now));
        assert_eq!(t.admit(a, now).err(), Some(Locked));
        let later = now + Duration::from_secs(61);
        assert!(!t.is_locked(a, later));
        assert!(t.admit(a, later).is_ok(), "the failures are forgotten with the lockout");
    }

    /// Item 6: attempts in flight count before they are checked.
    #[test]
    fn attempts_in_flight_count_against_the_limit() {
        let t = Throttle::new(10, Duration::from_secs(60));
        let (a, now) = (ip("10.0.0.1"), Instant::now());
        let admitted: Vec<_> = (0..30).filter_map(|_| t.admit(a, now).ok()).collect();
        assert_eq!(admitted.len(), 10, "30 simultaneous attempts, 10 checked");
        for attempt in admitted {
            attempt.failed("alice", now);
        }
        assert!(t.is_locked(a, now));
        // Undecided attempts (busy pool) give their place back and count for nothing.
        let t = Throttle::new(2, Duration::from_secs(60));
        for _ in 0..5 {
            let first = t.admit(a, now).unwrap();
            let _second = t.admit(a, now).unwrap();
            assert_eq!(t.admit(a, now).err(), Some(Locked));
            drop(first);
        }
        assert_eq!(t.failures(a, "alice"), (0, 0));
        assert!(t.admit(a, now).is_ok());
    }

    /// Item 6: a success as carol does not reset the guesses at alice (36 guesses, logging in
    /// as carol every 9, are locked out at the 10th).
    #[test]
    fn a_success_clears_only_its_own_pair() {
        let t = Throttle::new(10, Duration::from_secs(900));
        let (a, now) = (ip("10.0.0.1"), Instant::now());
        let mut guesses = 0;
        'outer: for _round in 0..4 {
            for _ in 0..9 {
                match t.admit(a, now) {
                    Ok(attempt) => {
                        attempt.failed("alice", now);
                        guesses += 1;
                    }
                    Err(Locked) => break 'outer,
                }
            }
            match t.admit(a, now) {
                Ok(attempt) => attempt.succeeded("carol"),
                Err(Locked) => break,
            }
        }
        assert_eq!(guesses, 10, "locked out at the tenth guess");
        assert!(t.is_locked(a, now));
        // alice's own success from an address forgives that address's guesses at her.
        let t = Throttle::new(10, Duration::from_secs(900));
        for _ in 0..5 {
            t.admit(a, now).unwrap().failed("alice", now);
        }
        t.admit(a, now).unwrap().failed("bob", now);
        t.admit(a, now).unwrap().succeeded("alice");
        assert_eq!(t.failures(a, "alice"), (1, 0));
    }

    /// Item 6: failures at one user from many addresses slow its replies (up to 5 s) but never
    /// lock anyone out; another address's success as that user does not forgive them.
    #[test]
    fn per_user_failures_delay_but_never_lock() {
        let t = Throttle::new(10, Duration::from_secs(900));
        let now = Instant::now();
        let mut last = Duration::ZERO;
        for i in 1..=40u32 {
            let from = ip(&format!("10.1.{}.{}", i / 200, i % 200 + 1));
            last = t.admit(from, now).unwrap().failed("alice", now);
            assert!(!t.is_locked(from, now));
            assert_eq!(last, delay(i), "attempt {i}");
        }
        assert_eq!(last, MAX_DELAY);
        let home = ip("192.0.2.1");
        t.admit(home, now).unwrap().succeeded("alice");
        assert_eq!(t.failures(home, "alice"), (0, 40), "only the pair's own failures are forgiven");
        assert!(t.admit(home, now).is_ok(), "the user is never locked out");
    }

    #[test]
    fn long_names_share_one_entry() {
        let t = Throttle::new(100, Duration::from_secs(60));
        let now = Instant::now();
        for i in 0..20 {
            t.admit(ip("10.0.0.1"), now).unwrap().failed(&format!("{i}{}", "x".repeat(4000)), now);
        }
        assert_eq!(t.lock().users.len(), 1);
        assert_eq!(t.failures(ip("10.0.0.1"), &"y".repeat(100)), (20, 20));
    }
}
