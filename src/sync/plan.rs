//! The sync planner (docs/accounts.md, "Sync"): what one pass over one source folder does,
//! from what the source listed and what the map remembers. Pure, so every rule is a table
//! test and the fuzzer can feed it anything; the IMAP driver (`pass.rs`) stays thin.
//!
//! Rules, per source UID:
//! - listed, not in the map: fetch it (a tombstone is in the map, so it is never fetched);
//! - in the map, not listed: removed at the source (the message gets `$RemovedAtSource`);
//! - in both, the source's flags reported and different from those last seen there: the
//!   source changed them and wins, even over a local change (a conflict);
//! - otherwise local flags different from those last seen at the source: write them back.
//!
//! Only flags both sides mean the same way are synced: `\Seen \Answered \Flagged \Draft` and
//! keywords. `\Deleted` is per mailbox here and an expunge stays local; `\Recent` belongs to
//! a session; `$RemovedAtSource` is gatepost's own.

use std::collections::{BTreeMap, BTreeSet};

use crate::mailstore::db::{FolderChanges, REMOVED_AT_SOURCE, Synced, same_flags};

/// What the source said about a folder in this pass.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listing {
    /// Every UID the folder holds now.
    pub uids: BTreeSet<u32>,
    /// Flags of the messages the source reported: all of them, or with CONDSTORE those
    /// changed since the last pass.
    pub flags: BTreeMap<u32, Vec<String>>,
}

/// A flag change to send to the source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Push {
    pub uid: u32,
    pub add: Vec<String>,
    pub remove: Vec<String>,
    /// The flags the source holds once both are done (recorded as seen there).
    pub result: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FolderPlan {
    /// Source UIDs to fetch, ascending.
    pub fetch: Vec<u32>,
    pub changes: FolderChanges,
    pub push: Vec<Push>,
}

/// Whether a flag is synced between gatepost and the source.
pub fn synced_flag(flag: &str) -> bool {
    !(flag.eq_ignore_ascii_case("\\Recent")
        || flag.eq_ignore_ascii_case("\\Deleted")
        || flag.eq_ignore_ascii_case(REMOVED_AT_SOURCE)
        || flag.is_empty()
        || flag.contains(|c: char| c.is_control() || c == ' ' || c == '(' || c == ')'))
}

/// The synced flags of a list, each once (compared without regard to case).
pub fn normalize(flags: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(flags.len());
    for f in flags {
        if synced_flag(f) && !out.iter().any(|o| o.eq_ignore_ascii_case(f)) {
            out.push(f.clone());
        }
    }
    out
}

fn minus(a: &[String], b: &[String]) -> Vec<String> {
    a.iter().filter(|f| !b.iter().any(|g| g.eq_ignore_ascii_case(f))).cloned().collect()
}

/// The pass over one folder.
pub fn plan(listing: &Listing, known: &[Synced]) -> FolderPlan {
    let mut out = FolderPlan::default();
    let mapped: BTreeSet<u32> = known.iter().map(|k| k.uid).collect();
    out.fetch = listing.uids.iter().copied().filter(|u| !mapped.contains(u)).collect();
    for k in known {
        if !listing.uids.contains(&k.uid) {
            out.changes.removed.push(k.uid);
            continue;
        }
        let seen = normalize(&k.seen);
        if let Some(remote) = listing.flags.get(&k.uid).map(|f| normalize(f))
            && !same_flags(&remote, &seen)
        {
            out.changes.from_source.push((k.uid, remote));
            continue;
        }
        let Some(local) = k.local.as_ref().map(|l| normalize(l)) else { continue };
        if !same_flags(&local, &seen) {
            out.push.push(Push { uid: k.uid, add: minus(&local, &seen), remove: minus(&seen, &local), result: local });
        }
    }
    out
}

/// A UID list as an IMAP sequence set of ranges (`1:5,8,10:12`), at most `max` UIDs per set.
pub fn uid_sets(uids: &[u32], max: usize) -> Vec<String> {
    let mut sets = Vec::new();
    for chunk in uids.chunks(max.max(1)) {
        let mut parts: Vec<String> = Vec::new();
        let mut i = 0;
        while i < chunk.len() {
            let start = chunk[i];
            let mut end = start;
            while i + 1 < chunk.len() && chunk[i + 1] == end.wrapping_add(1) {
                i += 1;
                end = chunk[i];
            }
            parts.push(if start == end { start.to_string() } else { format!("{start}:{end}") });
            i += 1;
        }
        sets.push(parts.join(","));
    }
    sets
}

/// Batches of (uid, size) to fetch: at most `max_count` messages and, past the first
/// message, at most `max_bytes` each, in order. Memory is bounded by the batch, not the folder.
pub fn batches(sizes: &[(u32, u64)], max_count: usize, max_bytes: u64) -> Vec<Vec<u32>> {
    let mut out = Vec::new();
    let (mut cur, mut bytes) = (Vec::new(), 0u64);
    for &(uid, size) in sizes {
        if !cur.is_empty() && (cur.len() >= max_count || bytes + size > max_bytes) {
            out.push(std::mem::take(&mut cur));
            bytes = 0;
        }
        cur.push(uid);
        bytes += size;
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// The local path of a source folder under `Accounts/<account>/`: the source's levels (split
/// at its delimiter) joined with `/`; in a level, `/` becomes `∕` (U+2215), `*` `∗` (U+2217),
/// `%` `٪` (U+066A) and control characters `�`, since gatepost's names cannot hold them. The
/// folder record keeps the source's own name, so the mapping never has to be undone. The
/// source INBOX is `INBOX` whatever its case. A path longer than gatepost's names allow is
/// cut and ends in `…` and eight hex digits of the full name's hash (still unique).
pub fn local_path(account: &str, remote: &str, delimiter: Option<&str>) -> String {
    let full = local_path_unbounded(account, remote, delimiter);
    if full.len() <= LOCAL_PATH_MAX {
        return full;
    }
    let mut cut = LOCAL_PATH_MAX - 16;
    while !full.is_char_boundary(cut) {
        cut -= 1;
    }
    let hash = crate::store::sha256_hex(remote.as_bytes());
    format!("{}\u{2026}{}", full[..cut].trim_end_matches('/'), &hash[..8])
}

/// Local paths stay under this many bytes (mailbox names may have 1000).
const LOCAL_PATH_MAX: usize = 900;

fn local_path_unbounded(account: &str, remote: &str, delimiter: Option<&str>) -> String {
    let levels: Vec<&str> = match delimiter.filter(|d| !d.is_empty()) {
        Some(d) => remote.split(d).collect(),
        None => vec![remote],
    };
    let mut out = format!("Accounts/{account}");
    for (i, level) in levels.iter().enumerate() {
        out.push('/');
        if i == 0 && level.eq_ignore_ascii_case("INBOX") {
            out.push_str("INBOX");
            continue;
        }
        if level.is_empty() {
            out.push('_');
            continue;
        }
        for c in level.chars() {
            out.push(match c {
                '/' => '\u{2215}',
                '*' => '\u{2217}',
                '%' => '\u{066A}',
                c if c.is_control() => '\u{FFFD}',
                c => c,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests;
