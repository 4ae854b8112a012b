use super::*;
use crate::blobs::BlobStore;
use crate::blobs::memory::MemoryBlobs;

/// The quota's unit in these tests: a tenth of SPEC's megabyte keeps the messages small.
const MB: u64 = 100_000;

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn rule() -> QuotaRule {
    QuotaRule {
        initial: 30 * MB,
        grow_when_free_below: 2 * MB,
        grow_by: 30 * MB,
        ceiling: Some(70 * MB),
        reserve: 5 * MB,
    }
}

fn open() -> (tempfile::TempDir, MailDb) {
    let dir = tempfile::tempdir().unwrap();
    let db = MailDb::open(&dir.path().join("mailstore.redb"), rule()).unwrap();
    (dir, db)
}

#[test]
fn a_new_user_has_the_reserved_mailboxes_and_a_number_of_their_own() {
    let (_dir, db) = open();
    let now = ts("2026-12-01T10:00:00Z");
    let alice = db.user("alice", now).unwrap();
    assert_eq!(db.user("alice", now).unwrap(), alice, "made once");
    let bob = db.user("bob", now).unwrap();
    assert_ne!(alice, bob);
    let boxes = db.mailboxes(alice).unwrap();
    let names: Vec<&str> = boxes.iter().map(|(_, m)| m.name.as_str()).collect();
    assert_eq!(names, ["Accounts", "Archive", "Drafts", "INBOX", "Junk", "Scheduled", "Sent", "Trash"]);
    let sent = boxes.iter().find(|(_, m)| m.name == "Sent").unwrap();
    assert_eq!(sent.1.special_use.as_deref(), Some("\\Sent"));
    assert!(boxes.iter().all(|(_, m)| m.uidnext == 1 && m.exists == 0 && m.uidvalidity > 0));
    let validities: std::collections::HashSet<u32> = boxes.iter().map(|(_, m)| m.uidvalidity).collect();
    assert_eq!(validities.len(), boxes.len(), "each mailbox its own UIDVALIDITY");
}

#[test]
fn mailbox_names_are_checked_and_inbox_is_one_name() {
    let (_dir, db) = open();
    let now = ts("2026-12-01T10:00:00Z");
    let alice = db.user("alice", now).unwrap();
    assert_eq!(db.mailbox_id(alice, "inbox").unwrap(), db.mailbox_id(alice, "INBOX").unwrap());
    let work = db.create_mailbox(alice, "Projects/Büro", now).unwrap();
    assert_eq!(db.mailbox_id(alice, "Projects/Büro").unwrap(), work);
    assert!(matches!(db.create_mailbox(alice, "Projects/Büro", now), Err(MailError::MailboxExists(_))));
    assert!(matches!(db.create_mailbox(alice, "inbox", now), Err(MailError::MailboxExists(_))));
    assert_eq!(db.create_mailbox(alice, "inbox/sub", now).map(|_| ()).ok(), Some(()));
    assert!(db.mailbox_id(alice, "INBOX/sub").is_ok(), "INBOX/ is canonical at any case");
    for bad in ["", "a//b", "/a", "a/", "tab\there", "star*", "pct%"] {
        assert!(matches!(db.create_mailbox(alice, bad, now), Err(MailError::BadName(..))), "{bad:?}");
    }
    let bob = db.user("bob", now).unwrap();
    assert!(matches!(db.mailbox_id(bob, "Projects/Büro"), Err(MailError::NoMailbox(_))), "bob sees none of alice's");
}

#[test]
fn append_allocates_uids_modseqs_and_shares_blobs_between_users() {
    let (_dir, db) = open();
    let blobs = MemoryBlobs::default();
    let now = ts("2026-12-01T10:00:00Z");
    let (alice, bob) = (db.user("alice", now).unwrap(), db.user("bob", now).unwrap());
    let (a_inbox, b_inbox) = (db.mailbox_id(alice, "INBOX").unwrap(), db.mailbox_id(bob, "INBOX").unwrap());
    let raw = b"Subject: hi\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\none\r\n--b--\r\n";
    let first = db
        .append(
            &blobs,
            alice,
            a_inbox,
            &NewMessage { raw, flags: &["\\Seen".into()], internaldate: now, writer: Writer::User },
        )
        .unwrap();
    let second = db
        .append(
            &blobs,
            alice,
            a_inbox,
            &NewMessage { raw: b"Subject: two\r\n\r\nx\r\n", flags: &[], internaldate: now, writer: Writer::User },
        )
        .unwrap();
    assert_eq!((first.uid, second.uid), (1, 2));
    assert!(second.modseq > first.modseq);
    let theirs = db
        .append(&blobs, bob, b_inbox, &NewMessage { raw, flags: &[], internaldate: now, writer: Writer::User })
        .unwrap();
    assert_eq!(theirs.uid, 1, "bob's INBOX counts its own UIDs");

    let hash = BlobHash::of(raw);
    assert_eq!(db.blob_refs(&hash).unwrap(), 2, "one blob, two references");
    let s = db.structure(&hash).unwrap().expect("structure stored with the first reference");
    assert_eq!((s.root.media_type.as_str(), s.root.subtype.as_str()), ("multipart", "mixed"));

    let members = db.members(alice, a_inbox, 1..=u32::MAX).unwrap();
    assert_eq!(members.iter().map(|m| m.uid).collect::<Vec<_>>(), [1, 2]);
    assert_eq!(members[0].message.flags, ["\\Seen"]);
    assert_eq!(members[0].message.blob, hash.to_string());
    assert_eq!(db.members(bob, b_inbox, 1..=u32::MAX).unwrap().len(), 1);
    let (_, inbox) = db.mailboxes(alice).unwrap().into_iter().find(|(id, _)| *id == a_inbox).unwrap();
    assert_eq!((inbox.uidnext, inbox.exists, inbox.highestmodseq), (3, 2, second.modseq));
    assert_eq!(inbox.uidvalidity, first.uidvalidity);
}

#[test]
fn append_grows_the_quota_and_refuses_past_the_ceiling_changing_nothing() {
    let (_dir, db) = open();
    let blobs = MemoryBlobs::default();
    let now = ts("2026-12-01T10:00:00Z");
    let alice = db.user("alice", now).unwrap();
    let inbox = db.mailbox_id(alice, "INBOX").unwrap();
    let big = |n: u8, len: u64| {
        let mut m = format!("Subject: {n}\r\n\r\n").into_bytes();
        m.resize(len as usize, b'a' + n);
        m
    };
    db.append(
        &blobs,
        alice,
        inbox,
        &NewMessage { raw: &big(1, 29 * MB), flags: &[], internaldate: now, writer: Writer::User },
    )
    .unwrap();
    let q = db.quota(alice).unwrap();
    assert_eq!((q.limit, q.used), (60 * MB, 29 * MB), "less than 2 MB would have been free: one step");
    assert_eq!(q.growth, [(now, 30 * MB, 60 * MB)]);
    db.append(
        &blobs,
        alice,
        inbox,
        &NewMessage { raw: &big(2, 30 * MB), flags: &[], internaldate: now, writer: Writer::User },
    )
    .unwrap();
    assert_eq!(db.quota(alice).unwrap().limit, 70 * MB, "growth stops at the ceiling");
    let err = db
        .append(
            &blobs,
            alice,
            inbox,
            &NewMessage { raw: &big(3, 12 * MB), flags: &[], internaldate: now, writer: Writer::User },
        )
        .unwrap_err();
    assert!(matches!(err, MailError::OverQuota(_)), "{err}");
    assert_eq!(db.quota(alice).unwrap().used, 59 * MB, "nothing counted");
    assert_eq!(db.members(alice, inbox, 1..=u32::MAX).unwrap().len(), 2, "nothing filed");
    assert!(!blobs.contains(&BlobHash::of(&big(3, 12 * MB))).unwrap(), "no blob written for a refused write");
    // gatepost's own filing may use the reserve above the ceiling.
    db.append(
        &blobs,
        alice,
        inbox,
        &NewMessage { raw: &big(4, 12 * MB), flags: &[], internaldate: now, writer: Writer::System },
    )
    .unwrap();
    assert_eq!(db.quota(alice).unwrap().used, 71 * MB);
}

#[test]
fn appends_at_once_are_committed_together_and_each_decided_on_its_own() {
    let (_dir, db) = open();
    let blobs = MemoryBlobs::default();
    let now = ts("2026-12-01T10:00:00Z");
    let alice = db.user("alice", now).unwrap();
    let inbox = db.mailbox_id(alice, "INBOX").unwrap();
    // 16 threads × 10 small messages: every one filed once, UIDs 1..=160, counters right.
    let uids = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for t in 0..16 {
            let (db, blobs, uids) = (&db, &blobs, &uids);
            s.spawn(move || {
                for n in 0..10 {
                    let raw = format!("Subject: {t}-{n}\r\n\r\nbody {t} {n}\r\n");
                    let new = NewMessage { raw: raw.as_bytes(), flags: &[], internaldate: now, writer: Writer::User };
                    let a = db.append(blobs, alice, inbox, &new).unwrap();
                    uids.lock().unwrap().push(a.uid);
                }
            });
        }
    });
    let mut uids = uids.into_inner().unwrap();
    uids.sort_unstable();
    assert_eq!(uids, (1..=160).collect::<Vec<u32>>());
    let m = db.mailbox(alice, inbox).unwrap();
    assert_eq!((m.exists, m.unseen, m.uidnext), (160, 160, 161));
    let report = db.verify(&blobs, || {}).unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);

    // Eight 20 MB messages at once against a 70 MB ceiling: three fit, whatever the batches.
    let bob = db.user("bob", now).unwrap();
    let bob_inbox = db.mailbox_id(bob, "INBOX").unwrap();
    let outcomes = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for t in 0..8u8 {
            let (db, blobs, outcomes) = (&db, &blobs, &outcomes);
            s.spawn(move || {
                let mut raw = format!("Subject: big {t}\r\n\r\n").into_bytes();
                raw.resize(20 * MB as usize, b'a' + t);
                let new = NewMessage { raw: &raw, flags: &[], internaldate: now, writer: Writer::User };
                outcomes.lock().unwrap().push(db.append(blobs, bob, bob_inbox, &new));
            });
        }
    });
    let outcomes = outcomes.into_inner().unwrap();
    assert_eq!(outcomes.iter().filter(|o| o.is_ok()).count(), 3);
    assert!(outcomes.iter().filter_map(|o| o.as_ref().err()).all(|e| matches!(e, MailError::OverQuota(_))));
    let q = db.quota(bob).unwrap();
    assert_eq!((q.used, q.limit), (3 * (20 * MB), 70 * MB));
    assert_eq!(db.mailbox(bob, bob_inbox).unwrap().exists, 3);
    let report = db.verify(&blobs, || {}).unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
}

mod ops;
mod packs;
mod sent;
