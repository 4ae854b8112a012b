//! STORE, EXPUNGE, COPY, MOVE, the change log and folder operations.

use super::*;

struct Fixture {
    _dir: tempfile::TempDir,
    db: MailDb,
    blobs: MemoryBlobs,
    user: u32,
    now: Timestamp,
}

fn fixture() -> Fixture {
    let (dir, db) = open();
    let now = ts("2026-12-01T10:00:00Z");
    let user = db.user("alice", now).unwrap();
    Fixture { _dir: dir, db, blobs: MemoryBlobs::default(), user, now }
}

impl Fixture {
    fn mbox(&self, name: &str) -> u32 {
        self.db.mailbox_id(self.user, name).unwrap()
    }
    fn append(&self, mailbox: u32, body: &str, flags: &[&str]) -> Appended {
        let raw = format!("Subject: {body}\r\n\r\n{body}\r\n");
        let flags: Vec<String> = flags.iter().map(|f| f.to_string()).collect();
        let new = NewMessage { raw: raw.as_bytes(), flags: &flags, internaldate: self.now, writer: Writer::User };
        self.db.append(&self.blobs, self.user, mailbox, &new).unwrap()
    }
    fn flags(&self, mailbox: u32, uid: u32) -> Vec<String> {
        let m = self.db.members(self.user, mailbox, uid..=uid).unwrap();
        let mut f: Vec<String> = m[0].flags().map(str::to_string).collect();
        f.sort();
        f
    }
    fn counters(&self, mailbox: u32) -> (u32, u32, u32) {
        let m = self.db.mailbox(self.user, mailbox).unwrap();
        (m.exists, m.unseen, m.deleted)
    }
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn store_adds_removes_replaces_and_keeps_counters() {
    let f = fixture();
    let inbox = f.mbox("INBOX");
    f.append(inbox, "one", &[]);
    f.append(inbox, "two", &["\\Seen"]);
    assert_eq!(f.counters(inbox), (2, 1, 0));
    let before = f.db.mailbox(f.user, inbox).unwrap().highestmodseq;
    let out = f.db.store_flags(f.user, inbox, &[1, 2], FlagOp::Add, &strings(&["\\Seen", "$Work"]), None).unwrap();
    assert_eq!(out.changed.len(), 2);
    assert!(out.changed.iter().all(|(_, m)| *m > before));
    assert_eq!(f.flags(inbox, 1), ["$Work", "\\Seen"]);
    assert_eq!(f.counters(inbox), (2, 0, 0));
    let out = f.db.store_flags(f.user, inbox, &[1], FlagOp::Add, &strings(&["\\seen"]), None).unwrap();
    assert!(out.changed.is_empty(), "no change, no new modseq");
    f.db.store_flags(f.user, inbox, &[2], FlagOp::Remove, &strings(&["\\Seen"]), None).unwrap();
    assert_eq!(f.counters(inbox), (2, 1, 0));
    f.db.store_flags(f.user, inbox, &[1], FlagOp::Replace, &strings(&["\\Deleted", "\\Recent", "\\Flagged"]), None)
        .unwrap();
    assert_eq!(f.flags(inbox, 1), ["\\Deleted", "\\Flagged"], "\\Recent is never stored");
    assert_eq!(f.counters(inbox), (2, 2, 1));
    let m = f.db.mailbox(f.user, inbox).unwrap();
    assert_eq!(m.deleted_size, f.db.members(f.user, inbox, 1..=1).unwrap()[0].message.size);
}

#[test]
fn unchangedsince_refuses_what_changed_after_it() {
    let f = fixture();
    let inbox = f.mbox("INBOX");
    let a = f.append(inbox, "one", &[]);
    let b = f.append(inbox, "two", &[]);
    let out = f.db.store_flags(f.user, inbox, &[1, 2], FlagOp::Add, &strings(&["\\Seen"]), Some(a.modseq)).unwrap();
    assert_eq!(out.modified, [2], "uid 2 has modseq {} > {}", b.modseq, a.modseq);
    assert_eq!(out.changed.iter().map(|c| c.0).collect::<Vec<_>>(), [1]);
}

#[test]
fn expunge_takes_only_deleted_and_logs_it_for_sessions() {
    let f = fixture();
    let inbox = f.mbox("INBOX");
    for n in ["a", "b", "c"] {
        f.append(inbox, n, &[]);
    }
    let since = f.db.mailbox(f.user, inbox).unwrap().highestmodseq;
    f.db.store_flags(f.user, inbox, &[1, 3], FlagOp::Add, &strings(&["\\Deleted"]), None).unwrap();
    assert_eq!(f.db.expunge(f.user, inbox, Some(&[3])).unwrap(), [3], "UID EXPUNGE takes only what it names");
    assert_eq!(f.db.expunge(f.user, inbox, None).unwrap(), [1]);
    assert_eq!(f.db.uids(f.user, inbox).unwrap(), [2]);
    let changes = f.db.changes_since(f.user, inbox, since).unwrap();
    assert_eq!(changes.expunged, [1, 3]);
    assert!(changes.changed.is_empty(), "flag changes of expunged messages are not reported");
    assert_eq!(f.counters(inbox), (1, 1, 0));
    let q = f.db.quota(f.user).unwrap();
    let left = f.db.members(f.user, inbox, 1..=u32::MAX).unwrap()[0].message.size;
    assert_eq!(q.used, left, "the quota is freed");
    let gone = BlobHash::of(b"Subject: a\r\n\r\na\r\n");
    assert_eq!(f.db.blob_refs(&gone).unwrap(), 0, "the blob is unreferenced, for the collector");
}

#[test]
fn the_expunge_log_keeps_its_newest_entries_and_older_asks_are_answered_by_absence() {
    let mut f = fixture();
    f.db.expunge_keep = 4;
    let inbox = f.mbox("INBOX");
    for n in 0..12 {
        f.append(inbox, &format!("m{n}"), &[]);
    }
    let start = f.db.mailbox(f.user, inbox).unwrap().highestmodseq;
    // Expunge UIDs 1..=5 one by one: the log grows past 4 + 4/10 and is trimmed to 4.
    let mut before_last = 0;
    for uid in 1..=5u32 {
        before_last = f.db.mailbox(f.user, inbox).unwrap().highestmodseq;
        f.db.store_flags(f.user, inbox, &[uid], FlagOp::Add, &strings(&["\\Deleted"]), None).unwrap();
        f.db.expunge(f.user, inbox, None).unwrap();
    }
    let m = f.db.mailbox(f.user, inbox).unwrap();
    assert_eq!(m.expunge_log, 4);
    assert!(m.expunge_floor > start, "the oldest entry was forgotten");
    // Within the log: exactly what went.
    let recent = f.db.changes_since(f.user, inbox, before_last).unwrap();
    assert_eq!((recent.expunged.clone(), recent.present.is_none()), (vec![5], true));
    // From before the floor: by absence, never a wrong answer.
    let old = f.db.changes_since(f.user, inbox, start).unwrap();
    assert!(old.expunged.is_empty());
    assert_eq!(old.present.as_deref(), Some(&[6, 7, 8, 9, 10, 11, 12][..]));
    assert_eq!(old.expunged_of(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]), [1, 2, 3, 4, 5]);
    assert_eq!(old.vanished(), [1, 2, 3, 4, 5]);
    // The trim leaves the counters alone.
    assert_eq!(f.counters(inbox), (7, 7, 0));
}

#[test]
fn copy_then_delete_and_expunge_the_original_keeps_the_copy() {
    let f = fixture();
    let (inbox, archive) = (f.mbox("INBOX"), f.mbox("Archive"));
    f.append(inbox, "keep me", &["\\Seen"]);
    let used = f.db.quota(f.user).unwrap().used;
    let (validity, pairs) = f.db.copy(f.user, inbox, &[1], archive, f.now).unwrap();
    assert_eq!(validity, f.db.mailbox(f.user, archive).unwrap().uidvalidity);
    assert_eq!(pairs, [(1, 1)]);
    assert_eq!(f.db.quota(f.user).unwrap().used, 2 * used, "a copy counts again");
    f.db.store_flags(f.user, inbox, &[1], FlagOp::Add, &strings(&["\\Deleted"]), None).unwrap();
    assert_eq!(f.flags(archive, 1), ["\\Seen"], "\\Deleted is per membership");
    f.db.expunge(f.user, inbox, None).unwrap();
    assert_eq!(f.db.uids(f.user, archive).unwrap(), [1]);
    assert_eq!(f.db.quota(f.user).unwrap().used, used);
    assert_eq!(f.db.blob_refs(&BlobHash::of(b"Subject: keep me\r\n\r\nkeep me\r\n")).unwrap(), 1);
}

#[test]
fn move_keeps_the_message_and_its_flags_and_logs_the_source_expunge() {
    let f = fixture();
    let (inbox, trash) = (f.mbox("INBOX"), f.mbox("Trash"));
    f.append(inbox, "x", &["$Label"]);
    f.append(inbox, "y", &[]);
    let used = f.db.quota(f.user).unwrap().used;
    let since = f.db.mailbox(f.user, inbox).unwrap().highestmodseq;
    let (_, pairs) = f.db.move_messages(f.user, inbox, &[2, 1], trash).unwrap();
    assert_eq!(pairs, [(2, 1), (1, 2)], "target UIDs in the order given");
    assert_eq!(f.flags(trash, 2), ["$Label"]);
    assert_eq!(f.db.quota(f.user).unwrap().used, used, "a move costs no quota");
    assert_eq!(f.db.changes_since(f.user, inbox, since).unwrap().expunged, [1, 2]);
    assert_eq!(f.counters(inbox), (0, 0, 0));
    assert_eq!(f.counters(trash), (2, 2, 0));
}

#[test]
fn a_flag_change_is_seen_since_the_modseq_before_it() {
    let f = fixture();
    let inbox = f.mbox("INBOX");
    f.append(inbox, "a", &[]);
    f.append(inbox, "b", &[]);
    let since = f.db.mailbox(f.user, inbox).unwrap().highestmodseq;
    assert_eq!(
        f.db.changes_since(f.user, inbox, since).unwrap(),
        Changes { highest: since, uidnext: 3, ..Changes::default() }
    );
    f.db.store_flags(f.user, inbox, &[1], FlagOp::Add, &strings(&["\\Answered"]), None).unwrap();
    let c = f.db.changes_since(f.user, inbox, since).unwrap();
    assert_eq!(c.changed.iter().map(|c| c.0).collect::<Vec<_>>(), [1]);
    assert_eq!(c.changed[0].1, c.highest);
    assert_eq!(c.highest, f.db.modseq(f.user).unwrap());
    let all: Vec<u32> = f.db.changes_since(f.user, inbox, 0).unwrap().changed.iter().map(|c| c.0).collect();
    assert_eq!(all, [1, 2], "from zero, everything");
}

#[test]
fn recent_is_claimed_once() {
    let f = fixture();
    let inbox = f.mbox("INBOX");
    f.append(inbox, "a", &[]);
    assert_eq!(f.db.claim_recent(f.user, inbox).unwrap(), 1);
    assert_eq!(f.db.claim_recent(f.user, inbox).unwrap(), 2, "the second session gets none");
    f.append(inbox, "b", &[]);
    assert_eq!(f.db.claim_recent(f.user, inbox).unwrap(), 2);
}

#[test]
fn folders_delete_rename_and_reserved_names() {
    let f = fixture();
    f.db.create_mailbox(f.user, "Work", f.now).unwrap();
    let sub = f.db.create_mailbox(f.user, "Work/2026", f.now).unwrap();
    f.append(sub, "report", &[]);
    assert!(matches!(f.db.delete_mailbox(f.user, "Work"), Err(MailError::HasChildren(_))));
    assert!(matches!(f.db.delete_mailbox(f.user, "Sent"), Err(MailError::Reserved(..))));
    assert!(matches!(f.db.rename_mailbox(f.user, "Trash", "Bin", f.now), Err(MailError::Reserved(..))));
    assert!(matches!(f.db.rename_mailbox(f.user, "Work", "Sent", f.now), Err(MailError::MailboxExists(_))));
    f.db.rename_mailbox(f.user, "Work", "Job", f.now).unwrap();
    assert_eq!(f.mbox("Job/2026"), sub, "children move with their parent and keep their UIDs");
    assert!(matches!(f.db.mailbox_id(f.user, "Work"), Err(MailError::NoMailbox(_))));
    let used = f.db.quota(f.user).unwrap().used;
    assert!(used > 0);
    f.db.delete_mailbox(f.user, "Job/2026").unwrap();
    assert_eq!(f.db.quota(f.user).unwrap().used, 0, "deleting a mailbox frees its messages");
    f.db.delete_mailbox(f.user, "Job").unwrap();
    let inbox = f.mbox("INBOX");
    f.append(inbox, "i", &[]);
    f.db.rename_mailbox(f.user, "INBOX", "Old", f.now).unwrap();
    assert_eq!(f.db.uids(f.user, inbox).unwrap(), Vec::<u32>::new(), "INBOX stays, empty");
    assert_eq!(f.db.uids(f.user, f.mbox("Old")).unwrap(), [1]);
    f.db.subscribe(f.user, "Old", true).unwrap();
    assert!(f.db.subscriptions(f.user).unwrap().contains(&"Old".to_string()));
}

#[test]
fn collection_deletes_only_unreferenced_blobs_and_a_later_append_writes_again() {
    let f = fixture();
    let inbox = f.mbox("INBOX");
    f.append(inbox, "gone", &[]);
    f.append(inbox, "kept", &[]);
    let gone = BlobHash::of(b"Subject: gone\r\n\r\ngone\r\n");
    let kept = BlobHash::of(b"Subject: kept\r\n\r\nkept\r\n");
    f.db.store_flags(f.user, inbox, &[1], FlagOp::Add, &strings(&["\\Deleted"]), None).unwrap();
    f.db.expunge(f.user, inbox, None).unwrap();
    assert_eq!(f.db.collect(&f.blobs).unwrap().blobs, 1);
    assert!(!f.blobs.contains(&gone).unwrap() && f.blobs.contains(&kept).unwrap());
    assert!(f.db.structure(&gone).unwrap().is_none(), "its structure goes with it");
    assert_eq!(f.db.collect(&f.blobs).unwrap().blobs, 0, "nothing twice");
    f.append(inbox, "gone", &[]);
    assert!(f.blobs.contains(&gone).unwrap(), "the same bytes appended again are written again");
    let report = f.db.verify(&f.blobs, || {}).unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
}

#[test]
fn the_first_unseen_follows_flags_and_expunges_and_is_built_for_an_older_store() {
    let f = fixture();
    let inbox = f.mbox("INBOX");
    f.append(inbox, "read", &["\\Seen"]);
    f.append(inbox, "new", &[]);
    f.append(inbox, "newer", &[]);
    assert_eq!(f.db.first_unseen(f.user, inbox).unwrap(), Some(2));
    f.db.store_flags(f.user, inbox, &[2], FlagOp::Add, &strings(&["\\Seen"]), None).unwrap();
    assert_eq!(f.db.first_unseen(f.user, inbox).unwrap(), Some(3));
    f.db.store_flags(f.user, inbox, &[1], FlagOp::Remove, &strings(&["\\Seen"]), None).unwrap();
    assert_eq!(f.db.first_unseen(f.user, inbox).unwrap(), Some(1));
    f.db.store_flags(f.user, inbox, &[1], FlagOp::Add, &strings(&["\\Deleted"]), None).unwrap();
    f.db.expunge(f.user, inbox, None).unwrap();
    assert_eq!(f.db.first_unseen(f.user, inbox).unwrap(), Some(3));
    // A copy is unseen in its mailbox too, and has flags of its own.
    let archive = f.mbox("Archive");
    f.db.copy(f.user, inbox, &[3], archive, f.now).unwrap();
    assert_eq!(f.db.first_unseen(f.user, archive).unwrap(), Some(1));
    f.db.store_flags(f.user, archive, &[1], FlagOp::Add, &strings(&["\\Seen"]), None).unwrap();
    assert_eq!(f.db.first_unseen(f.user, archive).unwrap(), None);
    assert_eq!(f.db.first_unseen(f.user, inbox).unwrap(), Some(3));
    f.db.store_flags(f.user, archive, &[1], FlagOp::Remove, &strings(&["\\Seen"]), None).unwrap();
    let report = f.db.verify(&f.blobs, || {}).unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);

    // A store from before the index: no entries and no marker. Opening builds it.
    let path = f._dir.path().join("mailstore.redb");
    {
        let txn = f.db.write().unwrap();
        txn.open_table(UNSEEN).unwrap().retain(|_, _| false).unwrap();
        txn.open_table(COUNTERS).unwrap().remove("unseen_index").unwrap();
        txn.commit().unwrap();
    }
    let report = f.db.verify(&f.blobs, || {}).unwrap();
    assert!(report.problems.iter().any(|p| p.contains("unseen index")), "verify notices: {:?}", report.problems);
    let Fixture { _dir, db, blobs, user, .. } = f;
    drop(db);
    let db = MailDb::open(&path, rule()).unwrap();
    assert_eq!(db.first_unseen(user, inbox).unwrap(), Some(3));
    assert_eq!(db.first_unseen(user, archive).unwrap(), Some(1));
    let report = db.verify(&blobs, || {}).unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
}
