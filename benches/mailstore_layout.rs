//! One `mailstore.redb` or one file per user? (issue 9, docs/mailstore.md)
//!
//!     cargo bench --bench mailstore_layout -- DIR [APPENDS] [USERS]
//!
//! For each layout, on a fresh directory under DIR: USERS threads APPEND their share of
//! APPENDS messages (sizes 2-150 KB, durable: blob fsync, then a two-phase redb commit each)
//! while the real hold queue (`Queue::submit`, group commit into `gatepost.redb`) takes 2,000
//! SMTP-sized messages from 10 concurrent submitters. Prints the APPEND rate and the
//! submission latency p50/p99, beside a baseline of the queue alone. Put DIR on the disk the
//! server uses (not tmpfs): fsync is what is measured.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gatepost::accounts::quota::{QuotaRule, Writer};
use gatepost::blobs::files::FileBlobs;
use gatepost::mailstore::db::{MailDb, NewMessage};
use gatepost::queue::{Queue, Submission};
use gatepost::schedule::{RecipientRelease, ScheduleSource};
use gatepost::store::Store;
use jiff::Timestamp;

const SUBMISSIONS: usize = 2_000;
const SUBMITTERS: usize = 10;

fn rule() -> QuotaRule {
    QuotaRule { initial: 30 << 20, grow_when_free_below: 2 << 20, grow_by: 30 << 20, ceiling: None, reserve: 5 << 20 }
}

/// A message of `size` bytes, different per `n` (no two blobs alike).
fn message(n: usize, size: usize) -> Vec<u8> {
    let mut m = format!("Subject: message {n}\r\nMessage-ID: <{n}@bench>\r\n\r\n").into_bytes();
    let line = format!("line of message {n}, the quick brown fox jumps over the lazy dog\r\n");
    while m.len() < size {
        m.extend_from_slice(line.as_bytes());
    }
    m.truncate(size);
    m
}

fn submission(n: usize) -> Submission {
    let now = Timestamp::now();
    Submission {
        session_id: format!("bench{n}"),
        user: "bench".into(),
        sender: "bench@example.com".into(),
        sender_name: None,
        recipients: vec![RecipientRelease {
            original: "sink@example.net".into(),
            address: "sink@example.net".into(),
            release_at: now + jiff::SignedDuration::from_hours(24 * 90),
            source: ScheduleSource::DeliverOnHeader,
        }],
        subject: Some("bench".into()),
        message_id: None,
        client: "127.0.0.1:1".parse().unwrap(),
        tls: Some("TLSv1.3".into()),
        helo: "bench".into(),
        submitted_at: now,
        timezone: "UTC".into(),
        body: message(n, 4096),
        notice_of: None,
        route: None,
    }
}

/// Submission latencies (sorted) of 2,000 messages from 10 concurrent submitters.
fn submit_load(rt: &tokio::runtime::Runtime, queue: Arc<Queue>) -> Vec<Duration> {
    rt.block_on(async move {
        let mut tasks = Vec::new();
        for s in 0..SUBMITTERS {
            let queue = queue.clone();
            tasks.push(tokio::spawn(async move {
                let mut lat = Vec::new();
                for i in (s..SUBMISSIONS).step_by(SUBMITTERS) {
                    let t = Instant::now();
                    queue.submit(submission(i)).await.expect("queued");
                    lat.push(t.elapsed());
                }
                lat
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.unwrap());
        }
        all.sort();
        all
    })
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p) as usize].as_secs_f64() * 1000.0
}

/// APPEND `appends` messages split over `users` threads; `db_for(u)` picks each user's
/// database. Returns appends per second.
fn append_load(dir: &Path, dbs: &[Arc<MailDb>], users: usize, appends: usize) -> f64 {
    let blobs = Arc::new(FileBlobs::new(dir.join("blobs")));
    let start = Instant::now();
    std::thread::scope(|scope| {
        for u in 0..users {
            let (db, blobs) = (dbs[u % dbs.len()].clone(), blobs.clone());
            scope.spawn(move || {
                let now = Timestamp::now();
                let user = db.user(&format!("user{u}"), now).unwrap();
                let inbox = db.mailbox_id(user, "INBOX").unwrap();
                for i in (u..appends).step_by(users) {
                    let size = 2_000 + (i * 7919) % 148_000;
                    let raw = message(1_000_000 + i, size);
                    let new = NewMessage { raw: &raw, flags: &[], internaldate: now, writer: Writer::User };
                    db.append(&*blobs, user, inbox, &new).unwrap();
                }
            });
        }
    });
    appends as f64 / start.elapsed().as_secs_f64()
}

fn fresh(base: &Path, name: &str) -> PathBuf {
    let dir = base.join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    let base = PathBuf::from(args.first().expect("usage: mailstore_layout DIR [APPENDS] [USERS]"));
    let appends: usize = args.get(1).map_or(10_000, |a| a.parse().unwrap());
    let users: usize = args.get(2).map_or(4, |a| a.parse().unwrap());
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();

    let dir = fresh(&base, "baseline");
    let queue = Arc::new(Queue::start(Arc::new(Store::open(&dir.join("queue")).unwrap())));
    let base_lat = submit_load(&rt, queue);
    println!(
        "queue alone: submit p50 {:.2} ms, p99 {:.2} ms ({SUBMISSIONS} messages, {SUBMITTERS} submitters)",
        pct(&base_lat, 0.5),
        pct(&base_lat, 0.99)
    );

    for layout in ["one mailstore.redb", "one file per user"] {
        let dir = fresh(&base, if layout.starts_with("one m") { "single" } else { "per-user" });
        let dbs: Vec<Arc<MailDb>> = if layout.starts_with("one m") {
            vec![Arc::new(MailDb::open(&dir.join("mailstore.redb"), rule()).unwrap())]
        } else {
            (0..users).map(|u| Arc::new(MailDb::open(&dir.join(format!("user{u}.redb")), rule()).unwrap())).collect()
        };
        let queue = Arc::new(Queue::start(Arc::new(Store::open(&dir.join("queue")).unwrap())));
        let (rate, lat) = std::thread::scope(|scope| {
            let appender = scope.spawn(|| append_load(&dir, &dbs, users, appends));
            let lat = submit_load(&rt, queue);
            (appender.join().unwrap(), lat)
        });
        println!(
            "{layout}: {rate:.0} APPENDs/s ({users} users, {appends} messages); meanwhile submit p50 {:.2} ms, p99 {:.2} ms",
            pct(&lat, 0.5),
            pct(&lat, 0.99)
        );
    }
}
