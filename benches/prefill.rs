//! Prefill a gatepost store with N held messages, for the "million held" ingest benchmark.
//!
//!     cargo bench --bench prefill -- DATA_DIR N [THREADS]
//!
//! Each message gets a ULID whose time is its submission time, spread evenly over the 90 days
//! before now (one million messages in a quarter is ~11,000 a day; the body shard
//! directories then look like a server's after a season, not one directory holding a
//! million files), a ~500-byte body written through the store's own body
//! writer (`Bodies::write`: create, write, fsync), and a record that looks like a real
//! held submission (one recipient, `Deliver-On` source, release at 08:00 UTC on a
//! pseudo-random day of next year, `submitted` and `held` events). Records are committed in
//! batches of 10,000 with `Store::insert_messages` (which first fsyncs the touched shard
//! directories), exactly the path the group committer uses. Body writes inside a batch are
//! spread over THREADS threads (default 8) because each one is an fsync.
//!
//! The store must not be open elsewhere (stop gatepost first). The user named in the records
//! (`bench`) does not have to exist for prefilling; the ingest script adds it.
//!
//! At the end every body and record is durable, so the store is marked as cleanly shut down
//! (`Store::mark_clean_shutdown`), as `gatepost serve` does when it stops: the first start
//! on the prefilled store then skips the start-up recovery scan like any later one. (The
//! ingest script measures that scan on its own with `--recovery`.) The trace index is not
//! built here; the ingest script builds it with `gatepost trace reindex`.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Instant;

use gatepost::store::{
    Event, EventKind, QueueId, QueueRecord, QueueState, RECORD_VERSION, RecipientRecord, Store, sha256_hex,
};
use jiff::{Timestamp, civil};

const BATCH: usize = 10_000;
/// Prefilled messages were submitted over this many days before now.
const SPREAD_DAYS: i64 = 90;
const USER: &str = "bench";
const SENDER: &str = "bench@gatepost.test";

fn main() {
    // `cargo bench` appends `--bench` to the arguments of harness = false targets.
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    if args.len() < 2 {
        eprintln!("usage: cargo bench --bench prefill -- DATA_DIR N [THREADS]");
        std::process::exit(2);
    }
    let dir = PathBuf::from(&args[0]);
    let total: usize = args[1].parse().unwrap_or_else(|_| {
        eprintln!("prefill: N must be a number, got {:?}", args[1]);
        std::process::exit(2)
    });
    let threads: usize = args.get(2).and_then(|t| t.parse().ok()).unwrap_or(8).max(1);
    if let Err(e) = run(&dir, total, threads) {
        eprintln!("prefill: {e}");
        std::process::exit(1);
    }
}

fn run(dir: &Path, total: usize, threads: usize) -> Result<(), Box<dyn std::error::Error>> {
    let started = Instant::now();
    let store = Store::open(dir)?;
    let before = store.message_count()?;
    eprintln!(
        "prefill: {} held messages into {} ({} already there), batches of {BATCH}, {threads} body threads",
        total,
        dir.display(),
        before
    );
    let now = Timestamp::now();
    let next_year = now.to_zoned(jiff::tz::TimeZone::UTC).year() + 1;
    let jan1 = civil::date(next_year, 1, 1).at(8, 0, 0, 0).to_zoned(jiff::tz::TimeZone::UTC)?.timestamp();
    let client: SocketAddr = "127.0.0.1:40000".parse()?;
    let spread = jiff::SignedDuration::from_hours(24 * SPREAD_DAYS);
    let first_submitted = now - spread;
    let mut rng = 0x9e37_79b9_7f4a_7c15u64 ^ (now.as_nanosecond() as u64);

    let (mut body_secs, mut commit_secs) = (0f64, 0f64);
    let mut done = 0usize;
    while done < total {
        let n = BATCH.min(total - done);
        let mut records = Vec::with_capacity(n);
        let mut bodies = Vec::with_capacity(n);
        for i in 0..n {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let day = (rng % 365) as i64;
            let release_at = jan1 + jiff::SignedDuration::from_hours(24 * day);
            let seq = done + i;
            // Submitted over the last SPREAD_DAYS in order, as a server that has been
            // holding mail for a season got it: bodies spread over that many days of
            // shard directories, records appended in id order.
            let submitted = first_submitted + spread * (seq as i32) / (total as i32);
            let id = QueueId::from_u128(
                ulid::Ulid::from_parts(submitted.as_millisecond() as u64, ulid::Ulid::new().random()).0,
            );
            let rcpt = format!("friend{}@example.net", seq % 5000);
            let release_date = release_at.to_zoned(jiff::tz::TimeZone::UTC).date();
            let body = format!(
                "From: Bench <{SENDER}>\r\nTo: <{rcpt}>\r\nSubject: held message {seq}\r\n\
                 Date: Mon, 23 Nov 2026 12:00:00 +0000\r\nMessage-ID: <prefill.{id}@gatepost.test>\r\n\
                 Deliver-On: {release_date}\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
                 This message was put in the store by benches/prefill.rs to measure ingest\r\n\
                 speed with a large hold queue. It is released on {release_date}.\r\n"
            )
            .into_bytes();
            let mut rec = QueueRecord {
                version: RECORD_VERSION,
                id,
                user: USER.into(),
                sender: SENDER.into(),
                sender_name: Some("Bench".into()),
                recipients: vec![RecipientRecord {
                    original: rcpt.clone(),
                    address: rcpt,
                    release_at,
                    source: gatepost::schedule::ScheduleSource::DeliverOnHeader,
                    state: QueueState::Held,
                    next_attempt_at: None,
                    attempts: 0,
                    last_error: None,
                    possibly_delivered: 0,
                }],
                subject: Some(format!("held message {seq}")),
                message_id: Some(format!("<prefill.{id}@gatepost.test>")),
                size: body.len() as u64,
                body_sha256: sha256_hex(&body),
                client,
                origin: Default::default(),
                tls: Some("TLSv1.3".into()),
                helo: "prefill".into(),
                submitted_at: submitted,
                session_id: "prefill".into(),
                timezone: "UTC".into(),
                state: QueueState::Held,
                notice_of: None,
                route: None,
                paused: false,
                attempts: vec![],
                events: vec![],
            };
            rec.events.push(Event {
                at: submitted,
                kind: EventKind::Submitted,
                detail: format!("from {client} over TLSv1.3"),
            });
            rec.events.push(Event { at: submitted, kind: EventKind::Held, detail: format!("until {release_at}") });
            records.push(rec);
            bodies.push(body);
        }

        let t = Instant::now();
        let chunk = n.div_ceil(threads);
        let dirs: BTreeSet<PathBuf> = std::thread::scope(|s| {
            let handles: Vec<_> = records
                .chunks(chunk)
                .zip(bodies.chunks(chunk))
                .map(|(recs, bods)| {
                    let store = &store;
                    s.spawn(move || -> std::io::Result<Vec<PathBuf>> {
                        recs.iter().zip(bods).map(|(r, b)| store.bodies().write(r.id, b)).collect()
                    })
                })
                .collect();
            let mut dirs = BTreeSet::new();
            for h in handles {
                dirs.extend(h.join().expect("body writer thread panicked")?);
            }
            Ok::<_, std::io::Error>(dirs)
        })?;
        body_secs += t.elapsed().as_secs_f64();

        let t = Instant::now();
        let dirs: Vec<PathBuf> = dirs.into_iter().collect();
        store.insert_messages(&records, &dirs)?;
        commit_secs += t.elapsed().as_secs_f64();

        done += n;
        let el = started.elapsed().as_secs_f64();
        eprintln!(
            "prefill: {done}/{total} ({:.0}%) {el:.0} s elapsed, {:.0} msgs/s (bodies {body_secs:.0} s, commits {commit_secs:.0} s)",
            100.0 * done as f64 / total as f64,
            done as f64 / el
        );
    }
    let count = store.message_count()?;
    // Everything above is committed and fsynced: this is a clean stop.
    store.mark_clean_shutdown()?;
    let el = started.elapsed().as_secs_f64();
    println!(
        "prefill: done: {total} held messages in {el:.1} s ({:.0} msgs/s; bodies {body_secs:.1} s, commits {commit_secs:.1} s); store now holds {count}",
        total as f64 / el
    );
    Ok(())
}
