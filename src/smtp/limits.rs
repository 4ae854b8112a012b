//! Per-address protections shared by all sessions: connection counts and the failed-AUTH
//! throttle (a growing delay per failure, then refusal for a while — what fail2ban would
//! otherwise have to do).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Counts open connections per client address.
pub struct ConnectionLimits {
    per_ip: Mutex<HashMap<IpAddr, usize>>,
    max_total: usize,
    max_per_ip: usize,
    total: Mutex<usize>,
}

/// Holds one connection slot; frees it when dropped.
pub struct ConnectionSlot {
    limits: Arc<ConnectionLimits>,
    ip: IpAddr,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    TooManyTotal,
    TooManyFromAddress,
}

impl ConnectionLimits {
    pub fn new(max_total: usize, max_per_ip: usize) -> Arc<Self> {
        Arc::new(ConnectionLimits { per_ip: Mutex::new(HashMap::new()), max_total, max_per_ip, total: Mutex::new(0) })
    }

    pub fn acquire(self: &Arc<Self>, ip: IpAddr) -> Result<ConnectionSlot, Refusal> {
        let mut total = self.total.lock().unwrap_or_else(|e| e.into_inner());
        let mut per_ip = self.per_ip.lock().unwrap_or_else(|e| e.into_inner());
        if *total >= self.max_total {
            return Err(Refusal::TooManyTotal);
        }
        let n = per_ip.entry(ip).or_insert(0);
        if *n >= self.max_per_ip {
            return Err(Refusal::TooManyFromAddress);
        }
        *n += 1;
        *total += 1;
        Ok(ConnectionSlot { limits: self.clone(), ip })
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let mut total = self.limits.total.lock().unwrap_or_else(|e| e.into_inner());
        let mut per_ip = self.limits.per_ip.lock().unwrap_or_else(|e| e.into_inner());
        *total = total.saturating_sub(1);
        if let Some(n) = per_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                per_ip.remove(&self.ip);
            }
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last: Instant,
    locked_until: Option<Instant>,
}

/// Failed-AUTH bookkeeping per client address.
pub struct AuthThrottle {
    map: Mutex<HashMap<IpAddr, Failures>>,
    max_failures: u32,
    lockout: Duration,
}

/// Added per failure, up to `MAX_DELAY`, before the failure reply is sent.
pub const DELAY_STEP: Duration = Duration::from_millis(250);
pub const MAX_DELAY: Duration = Duration::from_secs(5);

impl AuthThrottle {
    pub fn new(max_failures: u32, lockout: Duration) -> Self {
        AuthThrottle { map: Mutex::new(HashMap::new()), max_failures: max_failures.max(1), lockout }
    }

    /// Whether this address is locked out right now.
    pub fn is_locked(&self, ip: IpAddr, now: Instant) -> bool {
        let map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.get(&ip).and_then(|f| f.locked_until).is_some_and(|until| now < until)
    }

    /// Record a failure; returns how long to wait before answering.
    pub fn failed(&self, ip: IpAddr, now: Instant) -> Duration {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() > 100_000 {
            // Bound memory under a spray of addresses: forget stale entries.
            map.retain(|_, f| now.duration_since(f.last) < self.lockout);
        }
        let f = map.entry(ip).or_insert(Failures { count: 0, last: now, locked_until: None });
        if now.duration_since(f.last) >= self.lockout {
            f.count = 0;
            f.locked_until = None;
        }
        f.count += 1;
        f.last = now;
        if f.count >= self.max_failures {
            f.locked_until = Some(now + self.lockout);
        }
        (DELAY_STEP * f.count).min(MAX_DELAY)
    }

    pub fn succeeded(&self, ip: IpAddr) {
        self.map.lock().unwrap_or_else(|e| e.into_inner()).remove(&ip);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_slots_are_counted_and_freed() {
        let limits = ConnectionLimits::new(3, 2);
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let s1 = limits.acquire(a).unwrap();
        let _s2 = limits.acquire(a).unwrap();
        assert_eq!(limits.acquire(a).err(), Some(Refusal::TooManyFromAddress));
        let _s3 = limits.acquire(b).unwrap();
        assert_eq!(limits.acquire(b).err(), Some(Refusal::TooManyTotal));
        drop(s1);
        assert!(limits.acquire(a).is_ok());
    }

    #[test]
    fn throttle_grows_then_locks_then_forgets() {
        let t = AuthThrottle::new(3, Duration::from_secs(60));
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let now = Instant::now();
        assert_eq!(t.failed(ip, now), DELAY_STEP);
        assert_eq!(t.failed(ip, now), DELAY_STEP * 2);
        assert!(!t.is_locked(ip, now));
        t.failed(ip, now);
        assert!(t.is_locked(ip, now));
        assert!(!t.is_locked(ip, now + Duration::from_secs(61)));
        t.succeeded(ip);
        assert!(!t.is_locked(ip, now));
    }
}
