//! Trace search benchmark: latency of `gatepost trace` filters over N records (issue target:
//! p99 under 50 ms at one million, for any single-field filter and for a content word).
//!
//!     cargo bench --bench trace -- DATA_DIR [N] [QUERIES_PER_FILTER]
//!
//! First run: fills DATA_DIR with N records that look like a year of traffic (1,000 senders
//! on 50 domains, 20,000 recipients, 5,000 client IPs, 8 relay IPs, 2 system IPs; 70% sent,
//! 20% held, 5% failed, 5% cancelled; a subject and a ~80-word body drawn from a 5,000-word
//! vocabulary with a Zipf-like skew), then builds the index through the same path as
//! `gatepost trace reindex` and reports its rate. Bodies are written without fsync: this
//! measures search, not durability. Later runs reuse DATA_DIR.
//!
//! Each filter is then queried QUERIES_PER_FILTER times (default 200) with varying values,
//! the way the command does it: index search for the newest 50, then the 50 records read
//! from the store. Prints p50, p99 and max per filter. Single process, warm page cache.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use gatepost::audit::{TraceIndex, TraceQuery};
use gatepost::store::{
    Attempt, Event, EventKind, QueueId, QueueRecord, QueueState, RECORD_VERSION, RecipientRecord, Store,
};
use jiff::{SignedDuration, Timestamp};

const BATCH: usize = 10_000;
const WORDS: usize = 5_000;

/// xorshift: reproducible data without a dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    /// Skewed towards small values, like word frequencies.
    fn skewed(&mut self, n: u64) -> u64 {
        let a = self.below(n) + 1;
        self.below(a)
    }
}

fn word(i: u64) -> String {
    const SYL: [&str; 16] =
        ["ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "be", "da", "fu", "go", "hi", "ja", "pe", "zu"];
    let mut w = String::new();
    let mut v = i + 16;
    while v > 0 {
        w.push_str(SYL[(v % 16) as usize]);
        v /= 16;
    }
    w
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let Some(dir) = args.first().map(PathBuf::from) else {
        eprintln!("usage: cargo bench --bench trace -- DATA_DIR [N] [QUERIES_PER_FILTER]");
        std::process::exit(2);
    };
    let n: usize = args.get(1).and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    let per_filter: usize = args.get(2).and_then(|v| v.parse().ok()).unwrap_or(200);
    if let Err(e) = run(&dir, n, per_filter) {
        eprintln!("trace bench: {e}");
        std::process::exit(1);
    }
}

fn run(dir: &Path, n: usize, per_filter: usize) -> Result<(), Box<dyn std::error::Error>> {
    let store = Store::open(dir)?;
    let have = store.message_count()? as usize;
    let start = Timestamp::now().checked_sub(SignedDuration::from_hours(365 * 24))?;
    if have < n {
        fill(&store, n - have, have as u64, start)?;
    }
    let index = TraceIndex::open(dir, &store)?;
    let pending = store.trace_pending_count()?;
    if pending > 0 {
        let t = Instant::now();
        let mut done = 0usize;
        let mut next_report = 100_000;
        index.writer()?.catch_up(&store, |k| {
            done += k;
            if done >= next_report {
                eprintln!("trace bench: indexed {done}/{pending} ({:.0}/s)", done as f64 / t.elapsed().as_secs_f64());
                next_report += 100_000;
            }
        })?;
        let secs = t.elapsed().as_secs_f64();
        println!("indexing: {pending} records in {secs:.1} s ({:.0} records/s)", pending as f64 / secs);
    }
    let docs = index.document_count()?;
    println!(
        "index holds {docs} records; {per_filter} queries per filter, newest 50 each, records read from the store"
    );
    let mut rng = Rng(0x9e3779b97f4a7c15);
    let q = || TraceQuery { limit: 50, ..TraceQuery::default() };
    let day = move |k: u64| start.checked_add(SignedDuration::from_hours(24 * k as i64)).unwrap();
    type Make = Box<dyn Fn(&mut Rng) -> TraceQuery>;
    let filters: Vec<(&str, Make)> = vec![
        ("--sender", Box::new(move |r| TraceQuery { sender: Some(sender(r.below(1000))), ..q() })),
        (
            "--sender @domain",
            Box::new(move |r| TraceQuery { sender: Some(format!("@example{}.com", r.below(50))), ..q() }),
        ),
        ("--recipient", Box::new(move |r| TraceQuery { recipient: Some(recipient(r.below(20_000))), ..q() })),
        ("--user", Box::new(move |r| TraceQuery { user: Some(format!("user{}", r.below(1000))), ..q() })),
        (
            "--since/--until (a day)",
            Box::new(move |r| {
                let d = r.below(364);
                TraceQuery { since: Some(day(d)), until: Some(day(d + 1)), ..q() }
            }),
        ),
        ("--since (a month ago)", Box::new(move |r| TraceQuery { since: Some(day(335 + r.below(3))), ..q() })),
        (
            "--sent-since/--sent-until (a day)",
            Box::new(move |r| {
                let d = r.below(364);
                TraceQuery { sent_since: Some(day(d)), sent_until: Some(day(d + 1)), ..q() }
            }),
        ),
        ("--client-ip", Box::new(move |r| TraceQuery { client_ip: Some(client_ip(r.below(5000))), ..q() })),
        ("--relay-ip", Box::new(move |r| TraceQuery { relay_ip: Some(format!("192.0.2.{}", 1 + r.below(8))), ..q() })),
        (
            "--system-ip",
            Box::new(move |r| TraceQuery { system_ip: Some(format!("198.51.100.{}", 1 + r.below(2))), ..q() }),
        ),
        ("--subject (a word)", Box::new(move |r| TraceQuery { subject: Some(word(r.skewed(WORDS as u64))), ..q() })),
        ("--text (a word)", Box::new(move |r| TraceQuery { text: Some(word(r.skewed(WORDS as u64))), ..q() })),
        ("--text (a rare word)", Box::new(move |r| TraceQuery { text: Some(word(4000 + r.below(1000))), ..q() })),
        (
            "--state",
            Box::new(move |r| {
                let s = [QueueState::Sent, QueueState::Held, QueueState::Failed, QueueState::Cancelled]
                    [r.below(4) as usize];
                TraceQuery { state: Some(s), ..q() }
            }),
        ),
        ("no filter (newest 50)", Box::new(move |_| q())),
    ];
    println!("| filter | p50 ms | p99 ms | max ms | median matches |");
    println!("|---|---|---|---|---|");
    let mut worst_p99 = 0.0f64;
    for (name, make) in &filters {
        let mut times = Vec::with_capacity(per_filter);
        let mut matches = Vec::with_capacity(per_filter);
        for _ in 0..per_filter {
            let query = make(&mut rng);
            let t = Instant::now();
            let hits = index.search(&query)?;
            let mut shown = 0;
            for id in &hits.ids {
                shown += store.get_message(id.parse()?)?.is_some() as usize;
            }
            times.push(t.elapsed());
            assert_eq!(shown, hits.ids.len(), "{name}: a hit without a record");
            matches.push(hits.total);
        }
        times.sort();
        matches.sort();
        let pct = |p: f64| ms(times[((times.len() as f64 * p).ceil() as usize).clamp(1, times.len()) - 1]);
        worst_p99 = worst_p99.max(pct(0.99));
        println!(
            "| {name} | {:.1} | {:.1} | {:.1} | {} |",
            pct(0.50),
            pct(0.99),
            ms(*times.last().unwrap()),
            matches[matches.len() / 2]
        );
    }
    println!("worst p99: {worst_p99:.1} ms (target: under 50 ms)");
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn sender(i: u64) -> String {
    format!("user{i}@example{}.com", i % 50)
}

fn recipient(i: u64) -> String {
    format!("rcpt{i}@dest{}.example", i % 300)
}

fn client_ip(i: u64) -> String {
    format!("10.{}.{}.{}", i / 65536 % 256, i / 256 % 256, i % 256)
}

fn fill(store: &Store, count: usize, offset: u64, start: Timestamp) -> Result<(), Box<dyn std::error::Error>> {
    let t = Instant::now();
    let mut rng = Rng(0x2545f4914f6cdd1d ^ offset);
    let span_ms = 365 * 24 * 3600 * 1000u64;
    let mut made = 0usize;
    while made < count {
        let k = BATCH.min(count - made);
        let mut recs = Vec::with_capacity(k);
        for j in 0..k {
            // Spread over the year in submission order, like real traffic.
            let seq = offset + (made + j) as u64;
            let at_ms = start.as_millisecond() as u64 + span_ms * seq / (offset + count as u64).max(1);
            let id = QueueId::from_u128(ulid::Ulid::from_parts(at_ms, rng.next() as u128).0);
            let submitted = Timestamp::from_millisecond(at_ms as i64)?;
            let u = rng.below(1000);
            let subject: Vec<String> = (0..4).map(|_| word(rng.skewed(WORDS as u64))).collect();
            let text: Vec<String> = (0..80).map(|_| word(rng.skewed(WORDS as u64))).collect();
            let body = format!(
                "From: <{}>\r\nTo: <x@y>\r\nSubject: {}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{}\r\n",
                sender(u),
                subject.join(" "),
                text.join(" ")
            );
            let dir = store.bodies().shard_dir(id);
            std::fs::create_dir_all(&dir)?;
            std::fs::write(store.bodies().path(id), body.as_bytes())?;
            let roll = rng.below(100);
            let state = match roll {
                0..70 => QueueState::Sent,
                70..90 => QueueState::Held,
                90..95 => QueueState::Failed,
                _ => QueueState::Cancelled,
            };
            let release = submitted.checked_add(SignedDuration::from_hours(1 + rng.below(72) as i64))?;
            let rcpt = recipient(rng.below(20_000));
            let mut rec = QueueRecord {
                version: RECORD_VERSION,
                id,
                user: format!("user{u}"),
                sender: sender(u),
                sender_name: Some(format!("User {u}")),
                recipients: vec![RecipientRecord {
                    original: rcpt.clone(),
                    address: rcpt.clone(),
                    release_at: release,
                    source: gatepost::schedule::ScheduleSource::DeliverOnHeader,
                    state,
                    next_attempt_at: None,
                    attempts: 0,
                    last_error: None,
                    possibly_delivered: 0,
                }],
                subject: Some(subject.join(" ")),
                message_id: None,
                size: body.len() as u64,
                body_sha256: String::new(),
                client: SocketAddr::new(client_ip(rng.below(5000)).parse()?, 40000),
                origin: Default::default(),
                tls: Some("TLSv1.3".into()),
                helo: "client".into(),
                submitted_at: submitted,
                session_id: "bench".into(),
                timezone: "UTC".into(),
                state,
                notice_of: None,
                route: None,
                paused: false,
                attempts: vec![],
                events: vec![Event { at: submitted, kind: EventKind::Submitted, detail: String::new() }],
            };
            if matches!(state, QueueState::Sent | QueueState::Failed) {
                rec.attempts.push(Attempt {
                    started_at: release,
                    recipients: vec![rcpt.clone()],
                    finished_at: Some(release),
                    relay_ip: Some(std::net::Ipv4Addr::new(192, 0, 2, 1 + rng.below(8) as u8).into()),
                    system_ip: Some(std::net::Ipv4Addr::new(198, 51, 100, 1 + rng.below(2) as u8).into()),
                    reply: Some("250 2.0.0 Ok".into()),
                    possibly_delivered: vec![],
                });
                let kind = if state == QueueState::Sent { EventKind::Delivered } else { EventKind::Failed };
                rec.events.push(Event { at: release, kind, detail: String::new() });
            }
            recs.push(rec);
        }
        store.insert_messages(&recs, &[])?;
        made += k;
        if made % 100_000 < BATCH {
            eprintln!("trace bench: {made}/{count} records ({:.0}/s)", made as f64 / t.elapsed().as_secs_f64());
        }
    }
    println!("filled {count} records in {:.1} s", t.elapsed().as_secs_f64());
    Ok(())
}
