//! (IP, user) pairs that logged in successfully in the last 30 days: they wait in the password
//! pool's priority lane. Kept in memory, loaded from the store at start, and written back at
//! most about once a day per pair, so a login does not cost a commit.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, MutexGuard};

use jiff::{SignedDuration, Timestamp};

/// How long a successful login keeps its pair in the priority lane.
pub const REMEMBERED_FOR: SignedDuration = SignedDuration::from_hours(30 * 24);
/// A pair's success is written to the store again only after this long.
pub const REWRITE_AFTER: SignedDuration = SignedDuration::from_hours(24);
/// Most pairs kept (only successful logins add pairs).
const MAX_PAIRS: usize = 200_000;

#[derive(Default)]
pub(super) struct KnownPairs {
    /// Pair → unix seconds of the success last written to the store.
    pairs: Mutex<HashMap<(IpAddr, String), i64>>,
}

impl KnownPairs {
    pub fn load(rows: Vec<(IpAddr, String, i64)>) -> Self {
        let pairs = rows.into_iter().map(|(ip, user, at)| ((ip, user), at)).collect();
        KnownPairs { pairs: Mutex::new(pairs) }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<(IpAddr, String), i64>> {
        self.pairs.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn contains(&self, ip: IpAddr, user: &str, now: Timestamp) -> bool {
        let since = now.saturating_sub(REMEMBERED_FOR).unwrap_or(now).as_second();
        self.lock().get(&(ip, user.to_string())).is_some_and(|&at| at >= since)
    }

    /// Note a success; true when it should be written to the store (new pair, or the last
    /// write is a day old).
    pub fn note(&self, ip: IpAddr, user: &str, now: Timestamp) -> bool {
        let mut pairs = self.lock();
        let key = (ip, user.to_string());
        let stale_before = now.saturating_sub(REWRITE_AFTER).unwrap_or(now).as_second();
        match pairs.get(&key) {
            Some(&at) if at > stale_before => false,
            _ => {
                if pairs.len() >= MAX_PAIRS {
                    let forget_before = now.saturating_sub(REMEMBERED_FOR).unwrap_or(now).as_second();
                    pairs.retain(|_, at| *at >= forget_before);
                    if pairs.len() >= MAX_PAIRS {
                        return false;
                    }
                }
                pairs.insert(key, now.as_second());
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_are_known_for_thirty_days_and_written_once_a_day() {
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let t0: Timestamp = "2026-05-01T00:00:00Z".parse().unwrap();
        let k = KnownPairs::load(vec![(ip, "old".into(), (t0 - SignedDuration::from_hours(31 * 24)).as_second())]);
        assert!(!k.contains(ip, "old", t0), "older than 30 days");
        assert!(!k.contains(ip, "alice", t0));
        assert!(k.note(ip, "alice", t0), "first success is written");
        assert!(k.contains(ip, "alice", t0 + SignedDuration::from_hours(29 * 24)));
        assert!(!k.contains("192.0.2.2".parse().unwrap(), "alice", t0), "per address");
        assert!(!k.note(ip, "alice", t0 + SignedDuration::from_hours(23)), "not again within a day");
        assert!(k.note(ip, "alice", t0 + SignedDuration::from_hours(25)));
    }
}
