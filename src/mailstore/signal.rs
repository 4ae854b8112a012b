//! Per-user change signal: a watch channel carrying the user's highest committed modseq.
//! Watch keeps one value, never a queue: a thousand idle sessions cost one slot each.

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::sync::watch;

#[derive(Default)]
pub struct Signals {
    users: Mutex<HashMap<u32, watch::Sender<u64>>>,
}

impl Signals {
    /// A receiver for the user's changes; its first value is the last one published.
    pub fn subscribe(&self, user: u32) -> watch::Receiver<u64> {
        let mut users = self.users.lock().unwrap_or_else(|e| e.into_inner());
        users.entry(user).or_insert_with(|| watch::channel(0).0).subscribe()
    }

    /// The user reached `modseq`. A lower value than one already published is ignored, so
    /// two writers finishing out of order still leave the highest.
    pub fn publish(&self, user: u32, modseq: u64) {
        let mut users = self.users.lock().unwrap_or_else(|e| e.into_inner());
        let Some(tx) = users.get(&user) else { return };
        if tx.receiver_count() == 0 {
            users.remove(&user);
            return;
        }
        tx.send_if_modified(|v| {
            let rises = modseq > *v;
            if rises {
                *v = modseq;
            }
            rises
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_rising_values_wake_and_unwatched_users_cost_nothing() {
        let s = Signals::default();
        s.publish(1, 5);
        assert!(s.users.lock().unwrap().is_empty(), "no receiver, no entry");
        let mut rx = s.subscribe(1);
        s.publish(1, 7);
        assert!(rx.has_changed().unwrap());
        assert_eq!(*rx.borrow_and_update(), 7);
        s.publish(1, 6);
        assert!(!rx.has_changed().unwrap(), "a lower modseq does not wake");
        drop(rx);
        s.publish(1, 9);
        assert!(s.users.lock().unwrap().is_empty(), "the last receiver gone, the entry goes");
    }
}
