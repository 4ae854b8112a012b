//! Rate-limited log lines: a warning that every new connection could trigger (a trusted
//! network naming a disabled user, say) is logged at most once per interval and key, with
//! the number of times it was held back, so a busy client cannot flood the log.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct Quiet {
    every: Duration,
    /// Key → (when last logged, times held back since).
    seen: Mutex<HashMap<String, (Instant, u64)>>,
}

impl Quiet {
    pub fn new(every: Duration) -> Self {
        Quiet { every, seen: Mutex::new(HashMap::new()) }
    }

    /// `Some(held_back)` when the line for `key` should be logged now (`held_back` times it
    /// was not since the last one), `None` to stay quiet.
    pub fn allow(&self, key: &str, now: Instant) -> Option<u64> {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        match seen.get_mut(key) {
            Some((last, held)) if now.duration_since(*last) < self.every => {
                *held += 1;
                None
            }
            Some((last, held)) => {
                let n = std::mem::take(held);
                *last = now;
                Some(n)
            }
            None => {
                // Keys are few (configured networks); bound them anyway.
                if seen.len() >= 10_000 {
                    seen.clear();
                }
                seen.insert(key.to_string(), (now, 0));
                Some(0)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn once_per_interval_with_a_count() {
        let q = Quiet::new(Duration::from_secs(60));
        let t = Instant::now();
        assert_eq!(q.allow("10.0.0.0/8", t), Some(0));
        for s in 1..=5 {
            assert_eq!(q.allow("10.0.0.0/8", t + Duration::from_secs(s)), None);
        }
        assert_eq!(q.allow("192.0.2.0/24", t), Some(0), "per key");
        assert_eq!(q.allow("10.0.0.0/8", t + Duration::from_secs(61)), Some(5));
        assert_eq!(q.allow("10.0.0.0/8", t + Duration::from_secs(62)), None);
    }
}
