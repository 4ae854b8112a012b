//! Replays every seed of every fuzz target (`fuzz/corpus/<target>/`) through the same check
//! the fuzz target runs (`tests/fuzz_seeds/checks.rs`), so the seeds — including saved crash
//! inputs — are regression tests of the ordinary `cargo test`, with no cargo-fuzz or nightly
//! needed. A missing or empty corpus directory fails: the replay must never test nothing.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

#[path = "fuzz_seeds/checks.rs"]
mod checks;

/// Every fuzz target (the names of `fuzz/fuzz_targets/*.rs`).
const TARGETS: &[&str] = &[
    "smtp_session",
    "smtp_envelope",
    "smtp_data",
    "schedule",
    "record_decode",
    "message_summary",
    "rewrite",
    "trace_query",
    "quota",
    "blob_decode",
    "structure",
    "imap_session",
    "mbox",
    "sync_plan",
    "pop3_reply",
    "autoconfig",
    "dns_srv",
    "http_response",
];

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

/// The seed files of one target, sorted; hidden files are skipped (git ignores them).
fn seeds(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = fuzz_dir().join("corpus").join(target);
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("corpus of {target}: {}: {e}", dir.display()));
    let mut out = Vec::new();
    for entry in entries {
        let path = entry.expect("readable corpus directory").path();
        let name = path.file_name().expect("file name").to_string_lossy().into_owned();
        if name.starts_with('.') || !path.is_file() {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        out.push((name, bytes));
    }
    out.sort();
    assert!(!out.is_empty(), "the corpus of {target} ({}) has no seed files", dir.display());
    out
}

/// Runs `check` on every seed of `target`, reporting every failing seed by name.
fn replay<R>(target: &str, check: impl Fn(&[u8]) -> R) -> Vec<R> {
    let mut results = Vec::new();
    let mut failed = Vec::new();
    for (name, bytes) in seeds(target) {
        match catch_unwind(AssertUnwindSafe(|| check(&bytes))) {
            Ok(r) => results.push(r),
            Err(e) => {
                let why = e
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                failed.push(format!("fuzz/corpus/{target}/{name}: {why}"));
            }
        }
    }
    assert!(failed.is_empty(), "{} seed(s) of {target} fail:\n{}", failed.len(), failed.join("\n"));
    results
}

#[test]
fn smtp_session_seeds() {
    let deliveries: usize = replay("smtp_session", checks::smtp_session).into_iter().sum();
    // The seeds must reach the end of DATA and the queue, or they exercise only the front door.
    assert!(deliveries >= 3, "only {deliveries} seed session(s) reached Step::Deliver");
}

#[test]
fn smtp_envelope_seeds() {
    replay("smtp_envelope", checks::smtp_envelope);
}

#[test]
fn smtp_data_seeds() {
    replay("smtp_data", checks::smtp_data);
}

#[test]
fn schedule_seeds() {
    replay("schedule", checks::schedule);
}

#[test]
fn rewrite_seeds() {
    replay("rewrite", checks::rewrite);
}

#[test]
fn record_decode_seeds() {
    let decoded = replay("record_decode", checks::record_decode).into_iter().filter(|ok| *ok).count();
    // Without a valid record among the seeds the round trip would never be checked.
    assert!(decoded >= 2, "only {decoded} record seed(s) decode");
}

#[test]
fn message_summary_seeds() {
    replay("message_summary", checks::message_summary);
}

/// Every fuzz target has a replay above, and every replayed target exists.
#[test]
fn every_fuzz_target_is_replayed() {
    let dir = fuzz_dir().join("fuzz_targets");
    let mut found: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("readable directory").path())
        .filter(|p| p.extension().is_some_and(|x| x == "rs"))
        .map(|p| p.file_stem().expect("file stem").to_string_lossy().into_owned())
        .collect();
    found.sort();
    let mut known: Vec<String> = TARGETS.iter().map(|s| s.to_string()).collect();
    known.sort();
    assert_eq!(found, known, "fuzz/fuzz_targets/ and TARGETS in tests/fuzz_seeds.rs disagree");
}

#[test]
fn imap_session_seeds() {
    replay("imap_session", checks::imap_session);
}

#[test]
fn structure_seeds() {
    replay("structure", checks::structure);
}

#[test]
fn blob_decode_seeds() {
    replay("blob_decode", checks::blob_decode);
}

#[test]
fn quota_seeds() {
    replay("quota", checks::quota);
}

#[test]
fn trace_query_seeds() {
    replay("trace_query", checks::trace_query);
}

#[test]
fn mbox_seeds() {
    replay("mbox", checks::mbox);
}

#[test]
fn sync_plan_seeds() {
    replay("sync_plan", checks::sync_plan);
}

#[test]
fn pop3_reply_seeds() {
    replay("pop3_reply", checks::pop3_reply);
}

#[test]
fn autoconfig_seeds() {
    replay("autoconfig", checks::autoconfig);
}

#[test]
fn dns_srv_seeds() {
    replay("dns_srv", checks::dns_srv);
}

#[test]
fn http_response_seeds() {
    replay("http_response", checks::http_response);
}
