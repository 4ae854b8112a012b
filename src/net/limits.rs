//! Connection limits shared by every listener: a total, a per-address cap, and a fair share
//! once the server is nearly full.
//!
//! The fair share: while more than 80% of `max_total` connections are open, an address may
//! open another only while it holds fewer than max(2, free / 10), where free = `max_total` −
//! open. So with the per-address cap alone, twenty addresses holding 50 idle connections each
//! filled 1,000 and locked everyone out; with the share, the last fifth of the slots is spread
//! over many addresses and a newcomer always finds one while any is free.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};

#[derive(Default)]
struct Counts {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
}

/// Counts open connections per client address.
pub struct ConnectionLimits {
    counts: Mutex<Counts>,
    max_total: usize,
    max_per_ip: usize,
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
    /// The server is nearly full and this address already holds its share of what is left.
    OverFairShare,
}

impl Refusal {
    /// What the client is told.
    pub fn explanation(self) -> &'static str {
        match self {
            Refusal::TooManyTotal => "too many connections, try again later",
            Refusal::TooManyFromAddress => "too many connections from your address, try again later",
            Refusal::OverFairShare => "server nearly full and your address holds its share, try again later",
        }
    }
}

/// How many connections one address may hold while `open` of `max_total` are open: the
/// fair share above 80%, else unlimited (the per-address cap still applies).
pub fn fair_share(open: usize, max_total: usize) -> usize {
    if open * 5 <= max_total * 4 {
        return usize::MAX;
    }
    let free = max_total.saturating_sub(open);
    (free / 10).max(2)
}

impl ConnectionLimits {
    pub fn new(max_total: usize, max_per_ip: usize) -> Arc<Self> {
        Arc::new(ConnectionLimits { counts: Mutex::new(Counts::default()), max_total, max_per_ip })
    }

    fn lock(&self) -> MutexGuard<'_, Counts> {
        self.counts.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn acquire(self: &Arc<Self>, ip: IpAddr) -> Result<ConnectionSlot, Refusal> {
        let mut c = self.lock();
        if c.total >= self.max_total {
            return Err(Refusal::TooManyTotal);
        }
        let held = c.per_ip.get(&ip).copied().unwrap_or(0);
        if held >= self.max_per_ip {
            return Err(Refusal::TooManyFromAddress);
        }
        if held >= fair_share(c.total, self.max_total) {
            return Err(Refusal::OverFairShare);
        }
        *c.per_ip.entry(ip).or_insert(0) += 1;
        c.total += 1;
        Ok(ConnectionSlot { limits: self.clone(), ip })
    }

    /// Open connections in total.
    pub fn open(&self) -> usize {
        self.lock().total
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let mut c = self.limits.lock();
        c.total = c.total.saturating_sub(1);
        if let Some(n) = c.per_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                c.per_ip.remove(&self.ip);
            }
        }
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
    fn fair_share_table() {
        for (open, max, share) in [
            (0, 100, usize::MAX),
            (80, 100, usize::MAX),
            (81, 100, 2),
            (99, 100, 2),
            (800, 1000, usize::MAX),
            (801, 1000, 19),
            (900, 1000, 10),
            (979, 1000, 2),
        ] {
            assert_eq!(fair_share(open, max), share, "open {open} of {max}");
        }
    }

    /// Item 16 (the black-box test is tests/security/connections.rs): two addresses taking all
    /// they can of 100/50 leave room for a third.
    #[test]
    fn two_greedy_addresses_leave_room_for_a_third() {
        let limits = ConnectionLimits::new(100, 50);
        let ip = |s: &str| -> IpAddr { s.parse().unwrap() };
        let mut held = Vec::new();
        for greedy in ["127.0.0.2", "127.0.0.3"] {
            held.extend((0..50).filter_map(|_| limits.acquire(ip(greedy)).ok()));
        }
        assert_eq!(held.len(), 81, "the second address stops at its share once past 80%");
        held.push(limits.acquire(ip("127.0.0.4")).unwrap());
        held.push(limits.acquire(ip("127.0.0.4")).unwrap());
        assert_eq!(limits.acquire(ip("127.0.0.4")).err(), Some(Refusal::OverFairShare));
        assert!(limits.acquire(ip("127.0.0.5")).is_ok(), "and for a fourth");
        assert_eq!(limits.open(), 83);
    }
}
