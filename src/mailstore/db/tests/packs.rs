//! Packs in the mail store: small messages share a pack, deduplicated by their recorded
//! place; the collector compacts a pack no writer holds and takes the debris of writes that
//! never committed (docs/mailstore.md, "Packs").

use super::*;
use crate::blobs::Place;
use crate::blobs::files::FileBlobs;

fn small(i: usize) -> Vec<u8> {
    format!("Subject: note {i}\r\n\r\n{}\r\n", "words ".repeat(i % 7 + 1)).into_bytes()
}

/// Bytes that do not compress: a file of their own.
fn large(seed: u32) -> Vec<u8> {
    noise(seed, 100_000)
}

fn noise(seed: u32, n: usize) -> Vec<u8> {
    let mut x = seed.wrapping_add(1);
    let mut out = b"Subject: large\r\n\r\n".to_vec();
    out.extend((0..n).map(|_| {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        b'A' + (x % 26) as u8
    }));
    out
}

fn append(db: &MailDb, blobs: &FileBlobs, user: u32, mailbox: u32, raw: &[u8]) -> u32 {
    let now = ts("2026-12-01T10:00:00Z");
    let new = NewMessage { raw, flags: &[], internaldate: now, writer: Writer::User };
    db.append(blobs, user, mailbox, &new).unwrap().uid
}

fn packs_on_disk(root: &std::path::Path) -> usize {
    std::fs::read_dir(root.join("packs")).map_or(0, |d| d.count())
}

#[test]
fn small_messages_are_packed_once_and_compaction_moves_them_without_losing_a_byte() {
    let (dir, db) = open();
    let root = dir.path().join("blobs");
    let now = ts("2026-12-01T10:00:00Z");
    let (alice, bob) = (db.user("alice", now).unwrap(), db.user("bob", now).unwrap());
    let (a_inbox, b_inbox) = (db.mailbox_id(alice, "INBOX").unwrap(), db.mailbox_id(bob, "INBOX").unwrap());
    let blobs = FileBlobs::new(root.clone());
    for i in 0..40 {
        append(&db, &blobs, alice, a_inbox, &small(i));
    }
    append(&db, &blobs, bob, b_inbox, &small(0));
    let first = match db.blob_place(&BlobHash::of(&small(0))).unwrap() {
        p @ Place::Packed { .. } => p,
        Place::Own => panic!("a small message got a file of its own"),
    };
    let Place::Packed { pack: old_pack, .. } = first else { unreachable!() };
    assert_eq!(blobs.packs().unwrap().records(old_pack).unwrap().len(), 40, "bob's copy is alice's record");
    assert_eq!(db.blob_refs(&BlobHash::of(&small(0))).unwrap(), 2);
    assert!(blobs.own_names().unwrap().is_empty(), "no file per message");

    // 30 expunged: their rows go; the pack is this writer's, so it stays as it is.
    db.store_flags(alice, a_inbox, &(1..=30).collect::<Vec<_>>(), FlagOp::Add, &["\\Deleted".into()], None).unwrap();
    db.expunge(alice, a_inbox, None).unwrap();
    let c = db.collect(&blobs).unwrap();
    assert_eq!((c.blobs, c.packs), (29, 0), "small(0) is still bob's; a live writer's pack is not compacted");

    // After a restart the old pack is no writer's: a quarter live, so it is compacted.
    drop(blobs);
    let blobs = FileBlobs::new(root.clone());
    let c = db.collect(&blobs).unwrap();
    assert_eq!(c.packs, 1);
    assert!(c.pack_bytes > 0);
    let now_at = db.blob_place(&BlobHash::of(&small(0))).unwrap();
    assert!(matches!(now_at, Place::Packed { pack, .. } if pack != old_pack), "{now_at:?}");
    assert!(!blobs.packs().unwrap().path(old_pack).exists(), "the old pack is deleted");
    // A reader holding the old place finds the pack gone and looks the place up again.
    assert!(matches!(blobs.get(&BlobHash::of(&small(0)), first), Err(BlobError::Missing(_))));
    assert_eq!(db.read_blob(&blobs, &BlobHash::of(&small(0))).unwrap(), small(0));
    for i in (30..40).chain([0]) {
        assert_eq!(db.read_blob(&blobs, &BlobHash::of(&small(i))).unwrap(), small(i), "message {i}");
    }
    let report = db.verify(&blobs, || {}).unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);

    // Everything expunged: after the next restart the pack goes whole.
    db.store_flags(alice, a_inbox, &(31..=40).collect::<Vec<_>>(), FlagOp::Add, &["\\Deleted".into()], None).unwrap();
    db.expunge(alice, a_inbox, None).unwrap();
    db.store_flags(bob, b_inbox, &[1], FlagOp::Add, &["\\Deleted".into()], None).unwrap();
    db.expunge(bob, b_inbox, None).unwrap();
    drop(blobs);
    let blobs = FileBlobs::new(root.clone());
    let c = db.collect(&blobs).unwrap();
    assert_eq!((c.blobs, c.packs), (11, 1));
    assert_eq!(packs_on_disk(&root), 0);
    // The same bytes again are written again, not found by a stale row.
    append(&db, &blobs, alice, a_inbox, &small(3));
    assert_eq!(db.read_blob(&blobs, &BlobHash::of(&small(3))).unwrap(), small(3));
    assert!(db.verify(&blobs, || {}).unwrap().problems.is_empty());
}

#[test]
fn writes_that_never_committed_leave_debris_the_collector_takes() {
    let (dir, db) = open();
    let root = dir.path().join("blobs");
    let now = ts("2026-12-01T10:00:00Z");
    let alice = db.user("alice", now).unwrap();
    let inbox = db.mailbox_id(alice, "INBOX").unwrap();
    let blobs = FileBlobs::new(root.clone());
    append(&db, &blobs, alice, inbox, &large(1));
    for i in [1, 4, 5] {
        append(&db, &blobs, alice, inbox, &small(i));
    }
    // A crash (or a refusal at commit) between the blob's write and the commit.
    let (stray, place) = blobs.put(&large(2)).unwrap();
    assert_eq!(place, Place::Own);
    let (_, orphan) = blobs.put(&small(2)).unwrap();
    let Place::Packed { pack, .. } = orphan else { panic!("small is packed") };

    let c = db.collect(&blobs).unwrap();
    assert_eq!(c.debris, 1, "the stray file");
    assert!(!blobs.contains(&stray).unwrap());
    assert!(blobs.contains(&BlobHash::of(&large(1))).unwrap(), "a referenced file stays");
    assert_eq!(db.read_blob(&blobs, &BlobHash::of(&small(1))).unwrap(), small(1));

    // The orphan record shares a pack with a live one: dead space until that pack is half
    // dead; a pack holding nothing live (a crashed writer's) goes whole.
    drop(blobs);
    let other = FileBlobs::new(root.clone());
    other.put(&small(3)).unwrap(); // written by a "process" that then crashed
    drop(other);
    let blobs = FileBlobs::new(root.clone());
    let c = db.collect(&blobs).unwrap();
    assert_eq!(c.packs, 1, "the crashed writer's pack, nothing in it live");
    assert!(blobs.packs().unwrap().path(pack).exists(), "three quarters live: kept");
    assert_eq!(db.read_blob(&blobs, &BlobHash::of(&small(1))).unwrap(), small(1));
    assert!(db.verify(&blobs, || {}).unwrap().problems.is_empty());
}

#[test]
fn a_damaged_live_record_keeps_its_pack_from_compaction() {
    let (dir, db) = open();
    let root = dir.path().join("blobs");
    let now = ts("2026-12-01T10:00:00Z");
    let alice = db.user("alice", now).unwrap();
    let inbox = db.mailbox_id(alice, "INBOX").unwrap();
    let blobs = FileBlobs::new(root.clone());
    for i in 0..10 {
        append(&db, &blobs, alice, inbox, &small(i));
    }
    db.store_flags(alice, inbox, &(1..=8).collect::<Vec<_>>(), FlagOp::Add, &["\\Deleted".into()], None).unwrap();
    db.expunge(alice, inbox, None).unwrap();
    let Place::Packed { pack, offset, .. } = db.blob_place(&BlobHash::of(&small(9))).unwrap() else { panic!() };
    drop(blobs);
    let path = root.join("packs").join(format!("{pack:016x}.pack"));
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[offset as usize + 2] ^= 0x20;
    std::fs::write(&path, &bytes).unwrap();
    let blobs = FileBlobs::new(root.clone());
    let c = db.collect(&blobs).unwrap();
    assert_eq!(c.packs, 0, "not compacted");
    assert!(path.exists(), "kept for the operator");
    assert_eq!(db.read_blob(&blobs, &BlobHash::of(&small(8))).unwrap(), small(8), "its neighbour still reads");
    let report = db.verify(&blobs, || {}).unwrap();
    assert!(report.problems.iter().any(|p| p.contains(&BlobHash::of(&small(9)).to_string())), "{:?}", report.problems);
}

#[test]
fn a_batch_is_filed_under_one_commit_each_message_decided_on_its_own() {
    let (dir, db) = open();
    let root = dir.path().join("blobs");
    let now = ts("2026-12-01T10:00:00Z");
    let alice = db.user("alice", now).unwrap();
    let inbox = db.mailbox_id(alice, "INBOX").unwrap();
    let blobs = FileBlobs::new(root.clone());
    let too_big = noise(9, 71 * MB as usize); // over the tests' ceiling of 70 "MB"
    let mut raws: Vec<Vec<u8>> = (0..100).map(small).collect();
    raws.insert(50, too_big);
    raws.push(small(7)); // the same bytes twice in one batch
    let news: Vec<NewMessage> =
        raws.iter().map(|raw| NewMessage { raw, flags: &[], internaldate: now, writer: Writer::User }).collect();
    let origin = Origin::Append;
    let out = db.file_all(&blobs, alice, inbox, &news, &origin).unwrap();
    assert_eq!(out.len(), 102);
    assert!(matches!(out[50], Err(MailError::OverQuota(_))), "{:?}", out[50].as_ref().err());
    let uids: Vec<u32> = out.iter().filter_map(|o| o.as_ref().ok()).map(|a| a.uid).collect();
    assert_eq!(uids, (1..=101).collect::<Vec<u32>>());
    assert_eq!(db.blob_refs(&BlobHash::of(&small(7))).unwrap(), 2);
    for i in 0..100 {
        assert_eq!(db.read_blob(&blobs, &BlobHash::of(&small(i))).unwrap(), small(i));
    }
    let Place::Packed { pack, .. } = db.blob_place(&BlobHash::of(&small(0))).unwrap() else { panic!("packed") };
    assert_eq!(blobs.packs().unwrap().records(pack).unwrap().len(), 101, "written once each, the twin twice");
    // The refused message cost no disk: no file of its own was written.
    assert!(blobs.own_names().unwrap().is_empty());
    let report = db.verify(&blobs, || {}).unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert_eq!(report.messages, 101);
}
