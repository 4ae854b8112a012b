//! Free space on the data file system. Below `[store] min_free_disk` gatepost takes no new
//! mail (SMTP `452 4.3.1` at MAIL, as Postfix does below `queue_minfree`; IMAP writes will get
//! `NO [UNAVAILABLE]`), so a full disk stops intake before it can break a commit. One
//! `statvfs` per second at most, shared by every session.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a measurement is trusted.
const FRESH: Duration = Duration::from_secs(1);

pub struct FreeSpace {
    dir: PathBuf,
    min_free: u64,
    last: Mutex<Option<(Instant, bool)>>,
}

impl FreeSpace {
    /// `min_free` 0 turns the check off.
    pub fn new(dir: PathBuf, min_free: u64) -> FreeSpace {
        FreeSpace { dir, min_free, last: Mutex::new(None) }
    }

    /// Whether free space is below the minimum (measured at most once a second). A file
    /// system that cannot be measured counts as enough: the commit itself still fails safely.
    pub fn low(&self, now: Instant) -> bool {
        if self.min_free == 0 {
            return false;
        }
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((at, low)) = *last
            && now.duration_since(at) < FRESH
        {
            return low;
        }
        let low = available(&self.dir).is_some_and(|free| free < self.min_free);
        let was = last.is_some_and(|(_, was)| was);
        if low && !was {
            tracing::warn!(dir = %self.dir.display(), min_free = self.min_free, "free disk space is below store.min_free_disk: new mail is refused");
        } else if was && !low {
            tracing::info!(dir = %self.dir.display(), "free disk space is above store.min_free_disk again: mail is taken");
        }
        *last = Some((now, low));
        low
    }
}

/// Bytes available to an unprivileged user on the file system holding `dir`.
#[cfg(unix)]
pub fn available(dir: &std::path::Path) -> Option<u64> {
    let s = rustix::fs::statvfs(dir).ok()?;
    Some(s.f_bavail.saturating_mul(s.f_frsize))
}

#[cfg(not(unix))]
pub fn available(_dir: &std::path::Path) -> Option<u64> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures_caches_and_can_be_off() {
        let dir = tempfile::tempdir().unwrap();
        let free = available(dir.path()).expect("a temp dir can be measured");
        assert!(free > 0);
        let t = Instant::now();
        assert!(FreeSpace::new(dir.path().into(), u64::MAX).low(t), "nobody has 16 EiB free");
        assert!(!FreeSpace::new(dir.path().into(), 1).low(t));
        assert!(!FreeSpace::new(dir.path().into(), 0).low(t), "0 turns it off");
        // Cached for a second: a measurement is not repeated per command.
        let space = FreeSpace::new(dir.path().join("gone"), u64::MAX);
        assert!(!space.low(t), "an unmeasurable file system counts as enough");
        std::fs::create_dir(dir.path().join("gone")).unwrap();
        assert!(!space.low(t + Duration::from_millis(500)), "still the cached answer");
        assert!(space.low(t + Duration::from_secs(2)), "measured again after a second");
    }
}
