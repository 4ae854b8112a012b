//! Packs against a file per blob for small messages (issue 9, docs/mailstore.md "Packs").
//!
//!     cargo bench --bench packs -- DIR [MESSAGES] [WRITERS] [RUNS]
//!
//! For each layout, on a fresh directory under DIR: MESSAGES distinct small messages (1-16
//! KB of text, the bulk of real mail) into one user's INBOX through the real mail store
//! path, three ways: as a bulk import files them (`MailDb::file_all`, batches of 100: blobs
//! durable, then one commit per batch), by WRITERS concurrent APPENDs (`MailDb::append`:
//! blob durable, then the group commit), and a tenth of them one APPEND at a time. Then
//! every message is read back verified (FETCH's path, `read_blob`). Prints messages per
//! second, files and disk blocks used per layout, and the ratio packs / files, median of RUNS.
//! Put DIR on the disk the server uses (not tmpfs): fsync is what is measured.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use gatepost::accounts::quota::{QuotaRule, Writer};
use gatepost::blobs::BlobHash;
use gatepost::blobs::files::{FileBlobs, PACK_BELOW};
use gatepost::mailstore::db::{MailDb, NewMessage, Origin};
use jiff::Timestamp;

fn rule() -> QuotaRule {
    QuotaRule { initial: 30 << 20, grow_when_free_below: 2 << 20, grow_by: 30 << 20, ceiling: None, reserve: 5 << 20 }
}

/// A text message of 1-16 KB, different per `n`.
fn message(n: usize) -> Vec<u8> {
    let size = 1024 + (n * 7919) % (15 * 1024);
    let mut m = format!("Subject: note {n}\r\nMessage-ID: <{n}@bench>\r\n\r\n").into_bytes();
    let mut x = n as u32 | 1;
    const WORDS: [&str; 12] =
        ["mail", "the", "meeting", "tomorrow", "about", "report", "thanks", "please", "see", "attached", "we", "and"];
    while m.len() < size {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        m.extend_from_slice(WORDS[x as usize % WORDS.len()].as_bytes());
        m.extend_from_slice(if x.is_multiple_of(11) { b"\r\n" } else { b" " });
    }
    m
}

struct Figures {
    batched: f64,
    concurrent: f64,
    serial: f64,
    read: f64,
    files: u64,
    bytes: u64,
}

fn walk(dir: &Path) -> (u64, u64) {
    let mut out = (0, 0);
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        use std::os::unix::fs::MetadataExt;
        let m = e.metadata().unwrap();
        if m.is_dir() {
            let (f, b) = walk(&e.path());
            out = (out.0 + f, out.1 + b + m.blocks() * 512);
        } else {
            out = (out.0 + 1, out.1 + m.blocks() * 512);
        }
    }
    out
}

fn run(dir: &Path, pack_below: usize, messages: usize, writers: usize) -> Figures {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).unwrap();
    let db = Arc::new(MailDb::open(&dir.join("mailstore.redb"), rule()).unwrap());
    let blobs = Arc::new(FileBlobs::with_packing(dir.join("blobs"), pack_below));
    let now = Timestamp::now();
    let user = db.user("bench", now).unwrap();
    let inbox = db.mailbox_id(user, "INBOX").unwrap();
    let file = |n: usize| {
        let raw = message(n);
        let new = NewMessage { raw: &raw, flags: &[], internaldate: now, writer: Writer::User };
        db.append(blobs.as_ref(), user, inbox, &new).unwrap();
    };
    let start = Instant::now();
    for batch in (0..messages).collect::<Vec<_>>().chunks(100) {
        let raws: Vec<Vec<u8>> = batch.iter().map(|&n| message(n)).collect();
        let news: Vec<NewMessage> =
            raws.iter().map(|raw| NewMessage { raw, flags: &[], internaldate: now, writer: Writer::User }).collect();
        for out in db.file_all(blobs.as_ref(), user, inbox, &news, &Origin::Append).unwrap() {
            out.unwrap();
        }
    }
    let batched = messages as f64 / start.elapsed().as_secs_f64();
    let start = Instant::now();
    std::thread::scope(|s| {
        for w in 0..writers {
            let file = &file;
            s.spawn(move || (messages + w..2 * messages).step_by(writers).for_each(file));
        }
    });
    let concurrent = messages as f64 / start.elapsed().as_secs_f64();
    let serial_n = messages / 10;
    let start = Instant::now();
    (2 * messages..2 * messages + serial_n).for_each(file);
    let serial = serial_n as f64 / start.elapsed().as_secs_f64();
    let total = 2 * messages + serial_n;
    let start = Instant::now();
    for n in 0..total {
        let raw = db.read_blob(blobs.as_ref(), &BlobHash::of(&message(n))).unwrap();
        assert_eq!(raw.len(), message(n).len());
    }
    let read = total as f64 / start.elapsed().as_secs_f64();
    let (files, bytes) = walk(&dir.join("blobs"));
    Figures { batched, concurrent, serial, read, files, bytes }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    let dir = Path::new(args.first().map(String::as_str).unwrap_or("/var/tmp/gatepost-packs")).to_path_buf();
    let messages: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let writers: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(8);
    let runs: usize = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(3);
    println!(
        "{messages} messages of 1-16 KB in batches of 100, {messages} by {writers} writers, {} one at a time; {runs} runs",
        messages / 10
    );
    let mut all: Vec<(&str, Vec<Figures>)> = vec![("files", vec![]), ("packs", vec![])];
    for r in 0..runs {
        // Alternate which goes first: the second runs on a disk still writing the first's.
        let order: Vec<usize> = if r % 2 == 0 { vec![0, 1] } else { vec![1, 0] };
        for i in order {
            let (name, figures) = &mut all[i];
            let below = if *name == "packs" { PACK_BELOW } else { 0 };
            let f = run(&dir.join(*name), below, messages, writers);
            println!(
                "run {r} {name:5}: {:6.0} msg/s batched, {:6.0} concurrent, {:5.0} one at a time, {:6.0} read, {} files, {} bytes used",
                f.batched, f.concurrent, f.serial, f.read, f.files, f.bytes
            );
            figures.push(f);
        }
    }
    let med = |i: usize, f: fn(&Figures) -> f64| median(all[i].1.iter().map(f).collect());
    println!("median            files        packs     packs/files");
    for (what, f) in [
        ("batched msg/s", (|x: &Figures| x.batched) as fn(&Figures) -> f64),
        ("concurrent msg/s", |x| x.concurrent),
        ("one at a time", |x| x.serial),
        ("read msg/s", |x| x.read),
        ("files on disk", |x| x.files as f64),
        ("disk used (bytes)", |x| x.bytes as f64),
    ] {
        let (a, b) = (med(0, f), med(1, f));
        println!("{what:18} {a:12.0} {b:12.0} {:10.3}", b / a);
    }
    let _ = std::fs::remove_dir_all(&dir);
}
