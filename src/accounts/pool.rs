//! The password pool: at most `max_running` password checks (argon2, 19 MiB each) at once, a
//! bounded waiting room with a bounded wait, and refusal at once beyond that. Without it a
//! burst of wrong logins from anywhere ran one argon2 per attempt in parallel on the blocking
//! pool: 150 attempts took 2.65 GB that stayed resident.
//!
//! The checks run on `max_running` threads of the pool's own, started with it, rather than on
//! tokio's blocking pool: each keeps its argon2 memory between checks (`verify_password`), so
//! the memory of password checking is `max_running × 19 MiB`, allocated once. On the blocking
//! pool every check ran on whichever of up to 512 threads was free, and each thread's malloc
//! arena kept its own 19 MiB after the free: a storm of wrong logins grew the process by
//! hundreds of MiB that stayed.
//!
//! Two lanes: an (IP, user) pair that logged in successfully lately waits in the `Known` lane,
//! which is served first and has its own waiting room, so a flood of strangers cannot keep a
//! regular user out. A slot freed by a finished check is handed straight to the next waiter
//! (known lane first), so waiters are served in order and never overtaken by newcomers.

use std::collections::VecDeque;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use tokio::sync::oneshot;

/// Which waiting room an attempt uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    /// The pair logged in successfully within the last 30 days.
    Known,
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolError {
    /// Every slot is taken and the waiting room is full, or the wait ran out: try later.
    Busy,
    /// The check itself panicked.
    Failed,
}

#[derive(Debug, Clone, Copy)]
pub struct PoolSettings {
    pub max_running: usize,
    /// Size of each lane's waiting room (0: no waiting, refuse when all slots are busy).
    pub max_waiting: usize,
    pub max_wait: Duration,
}

/// Counters and high-water marks, for tests and the operator.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolStats {
    pub running: usize,
    pub waiting_known: usize,
    pub waiting_other: usize,
    pub most_running: usize,
    pub most_waiting_known: usize,
    pub most_waiting_other: usize,
    /// Checks that ran.
    pub served: u64,
    /// Attempts refused as busy (room full or wait ran out).
    pub refused: u64,
}

struct Waiter {
    id: u64,
    tx: oneshot::Sender<Permit>,
}

#[derive(Default)]
struct State {
    known: VecDeque<Waiter>,
    other: VecDeque<Waiter>,
    next_id: u64,
    stats: PoolStats,
}

impl State {
    fn lane(&mut self, lane: Lane) -> &mut VecDeque<Waiter> {
        match lane {
            Lane::Known => &mut self.known,
            Lane::Other => &mut self.other,
        }
    }

    fn note_waiting(&mut self) {
        let s = &mut self.stats;
        (s.waiting_known, s.waiting_other) = (self.known.len(), self.other.len());
        s.most_waiting_known = s.most_waiting_known.max(s.waiting_known);
        s.most_waiting_other = s.most_waiting_other.max(s.waiting_other);
    }
}

struct Inner {
    settings: PoolSettings,
    state: Mutex<State>,
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A running slot. Dropping it frees the slot or hands it to the next waiter.
struct Permit {
    inner: Arc<Inner>,
    /// False for a permit that a waiter never received (it goes back without freeing a slot).
    armed: bool,
}

impl Drop for Permit {
    fn drop(&mut self) {
        if self.armed {
            release(&self.inner);
        }
    }
}

/// Hand the slot to the next live waiter, known lane first, or free it.
fn release(inner: &Arc<Inner>) {
    loop {
        let waiter = {
            let mut s = inner.lock();
            let next = s.known.pop_front().or_else(|| s.other.pop_front());
            s.note_waiting();
            match next {
                Some(w) => w,
                None => {
                    s.stats.running -= 1;
                    return;
                }
            }
        };
        match waiter.tx.send(Permit { inner: inner.clone(), armed: true }) {
            Ok(()) => return,
            // That waiter is gone: the permit comes back unused; try the next.
            Err(mut unused) => unused.armed = false,
        }
    }
}

/// A check with its permit and the way back to the caller.
type Job = Box<dyn FnOnce() + Send>;

#[derive(Clone)]
pub struct VerifyPool {
    inner: Arc<Inner>,
    /// To the checking threads; they end when the last pool handle is dropped.
    jobs: mpsc::Sender<Job>,
}

impl VerifyPool {
    pub fn new(settings: PoolSettings) -> Self {
        let settings = PoolSettings { max_running: settings.max_running.max(1), ..settings };
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for n in 0..settings.max_running {
            let queue = queue.clone();
            let spawned = std::thread::Builder::new().name(format!("gatepost-password-{n}")).spawn(move || {
                loop {
                    // A permit is held for every job, so there is never more work than threads.
                    let job = queue.lock().unwrap_or_else(|e| e.into_inner()).recv();
                    match job {
                        Ok(job) => job(),
                        Err(_) => return,
                    }
                }
            });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "could not start a password-checking thread");
            }
        }
        VerifyPool { inner: Arc::new(Inner { settings, state: Mutex::new(State::default()) }), jobs }
    }

    pub fn stats(&self) -> PoolStats {
        self.inner.lock().stats
    }

    /// Run `check` on one of the pool's threads once a slot is free. The slot is held by the
    /// job itself, so a caller that goes away cannot free it while argon2 still runs; a check
    /// that panics fails this attempt, not the thread.
    pub async fn run<T: Send + 'static>(
        &self,
        lane: Lane,
        check: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, PoolError> {
        let permit = self.acquire(lane).await?;
        let (done, result) = oneshot::channel();
        let job: Job = Box::new(move || {
            let out = std::panic::catch_unwind(AssertUnwindSafe(check));
            drop(permit);
            let _ = done.send(out);
        });
        self.jobs.send(job).map_err(|_| PoolError::Failed)?;
        match result.await {
            Ok(Ok(out)) => Ok(out),
            _ => Err(PoolError::Failed),
        }
    }

    async fn acquire(&self, lane: Lane) -> Result<Permit, PoolError> {
        let inner = &self.inner;
        let (id, mut rx) = {
            let mut s = inner.lock();
            let queued = s.known.len() + s.other.len();
            if s.stats.running < inner.settings.max_running && queued == 0 {
                s.stats.running += 1;
                s.stats.most_running = s.stats.most_running.max(s.stats.running);
                s.stats.served += 1;
                return Ok(Permit { inner: inner.clone(), armed: true });
            }
            if s.lane(lane).len() >= inner.settings.max_waiting {
                s.stats.refused += 1;
                return Err(PoolError::Busy);
            }
            let (tx, rx) = oneshot::channel();
            let id = s.next_id;
            s.next_id += 1;
            s.lane(lane).push_back(Waiter { id, tx });
            s.note_waiting();
            (id, rx)
        };
        let permit = match tokio::time::timeout(inner.settings.max_wait, &mut rx).await {
            Ok(got) => got.map_err(|_| PoolError::Busy)?,
            Err(_) => {
                let removed = {
                    let mut s = inner.lock();
                    let queue = s.lane(lane);
                    let pos = queue.iter().position(|w| w.id == id);
                    if let Some(pos) = pos {
                        queue.remove(pos);
                        s.note_waiting();
                        s.stats.refused += 1;
                    }
                    pos.is_some()
                };
                if removed {
                    return Err(PoolError::Busy);
                }
                // Handed a slot just as the wait ran out: it is on its way, take it.
                rx.await.map_err(|_| PoolError::Busy)?
            }
        };
        inner.lock().stats.served += 1;
        Ok(permit)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Condvar, Mutex};

    use super::*;

    /// A gate the checks wait at, and a gauge of how many run at once.
    #[derive(Default)]
    struct Gate {
        open: Mutex<bool>,
        cv: Condvar,
        now: AtomicUsize,
        most: AtomicUsize,
    }

    impl Gate {
        fn pass(&self) {
            let n = self.now.fetch_add(1, Ordering::SeqCst) + 1;
            self.most.fetch_max(n, Ordering::SeqCst);
            let mut open = self.open.lock().unwrap();
            while !*open {
                open = self.cv.wait(open).unwrap();
            }
            self.now.fetch_sub(1, Ordering::SeqCst);
        }
        fn open(&self) {
            *self.open.lock().unwrap() = true;
            self.cv.notify_all();
        }
    }

    fn pool(running: usize, waiting: usize) -> VerifyPool {
        VerifyPool::new(PoolSettings { max_running: running, max_waiting: waiting, max_wait: Duration::from_secs(600) })
    }

    async fn until(pool: &VerifyPool, what: impl Fn(&PoolStats) -> bool) {
        while !what(&pool.stats()) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Item 5's regression test, deterministic: 200 checks at once never run more than the
    /// limit nor queue more than the waiting room; the rest are refused at once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_hundred_at_once_stay_within_the_limits() {
        let (pool, gate) = (pool(4, 32), Arc::new(Gate::default()));
        let mut tasks = Vec::new();
        for _ in 0..200 {
            let (pool, gate) = (pool.clone(), gate.clone());
            tasks.push(tokio::spawn(async move { pool.run(Lane::Other, move || gate.pass()).await }));
        }
        until(&pool, |s| s.running == 4 && s.waiting_other == 32 && s.refused == 164).await;
        while gate.now.load(Ordering::SeqCst) < 4 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        gate.open();
        let mut busy = 0;
        for t in tasks {
            if t.await.unwrap() == Err(PoolError::Busy) {
                busy += 1;
            }
        }
        let s = pool.stats();
        assert_eq!(busy, 164);
        assert_eq!((s.most_running, s.most_waiting_other, s.served, s.refused), (4, 32, 36, 164));
        assert_eq!(gate.most.load(Ordering::SeqCst), 4, "never more checks at once than the limit");
        assert_eq!((s.running, s.waiting_other), (0, 0), "every slot is given back");
    }

    /// The known lane has its own room (a full room of strangers does not refuse it) and is
    /// served first.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_known_lane_has_its_own_room_and_goes_first() {
        let (pool, gate) = (pool(1, 2), Arc::new(Gate::default()));
        let order = Arc::new(Mutex::new(Vec::new()));
        let start = |lane: Lane, name: &'static str| {
            let (pool, gate, order) = (pool.clone(), gate.clone(), order.clone());
            tokio::spawn(async move {
                pool.run(lane, move || {
                    gate.pass();
                    order.lock().unwrap().push(name);
                })
                .await
            })
        };
        let first = start(Lane::Other, "first");
        until(&pool, |s| s.running == 1).await;
        // One at a time, so the order they queue in is known (spawned together, either may
        // reach the queue first).
        let stranger1 = start(Lane::Other, "stranger1");
        until(&pool, |s| s.waiting_other == 1).await;
        let stranger2 = start(Lane::Other, "stranger2");
        until(&pool, |s| s.waiting_other == 2).await;
        let strangers = [stranger1, stranger2];
        assert_eq!(start(Lane::Other, "stranger3").await.unwrap(), Err(PoolError::Busy), "room full");
        let known = start(Lane::Known, "known");
        until(&pool, |s| s.waiting_known == 1).await;
        gate.open();
        assert!(first.await.unwrap().is_ok() && known.await.unwrap().is_ok());
        for s in strangers {
            assert!(s.await.unwrap().is_ok());
        }
        assert_eq!(*order.lock().unwrap(), ["first", "known", "stranger1", "stranger2"]);
    }

    /// A wait is bounded: past `max_wait` the attempt is refused and leaves the room.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_wait_is_bounded() {
        let pool =
            VerifyPool::new(PoolSettings { max_running: 1, max_waiting: 4, max_wait: Duration::from_millis(50) });
        let gate = Arc::new(Gate::default());
        let g = gate.clone();
        let holder = tokio::spawn({
            let pool = pool.clone();
            async move { pool.run(Lane::Other, move || g.pass()).await }
        });
        until(&pool, |s| s.running == 1).await;
        assert_eq!(pool.run(Lane::Known, || ()).await, Err(PoolError::Busy));
        assert_eq!(pool.stats().waiting_known, 0);
        gate.open();
        assert!(holder.await.unwrap().is_ok());
        assert_eq!(pool.run(Lane::Other, || 7).await, Ok(7));
    }
}
