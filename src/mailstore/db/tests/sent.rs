//! Sent copies of mail sent as an account (`sync_sent.rs`): which source folder is Sent, the
//! copy joining it once, and the feed of copies to APPEND.

use super::*;
use crate::mailstore::db::sync::FolderSync;

fn folder(mailbox: u32, role: Option<&str>) -> FolderSync {
    FolderSync {
        mailbox,
        uidvalidity: 7,
        uidnext: 1,
        highestmodseq: 0,
        exists: 0,
        role: role.map(str::to_string),
        gone: false,
    }
}

#[test]
fn the_sent_folder_is_the_marked_one_else_a_usual_name_and_the_copy_joins_it_once() {
    let (_dir, db) = open();
    let blobs = MemoryBlobs::default();
    let now = ts("2026-12-02T10:00:00Z");
    let user = db.user("alice", now).unwrap();
    let account = db.sync_account(user, "Work").unwrap().id;
    assert_eq!(db.add_sent_copy(user, "Work", 1, true, None).unwrap(), SentCopyFiled::NoSentFolder, "no folders yet");

    db.open_sync_folder(user, account, "Sent Items", "Accounts/Work/Sent Items", folder(0, None), now).unwrap();
    let (name, _) = db.sent_folder(user, account).unwrap().unwrap();
    assert_eq!(name, "Sent Items", "a usual name");
    db.open_sync_folder(user, account, "Gesendet", "Accounts/Work/Gesendet", folder(0, Some("\\Sent")), now).unwrap();
    let (name, rec) = db.sent_folder(user, account).unwrap().unwrap();
    assert_eq!(name, "Gesendet", "the role wins over a name");

    let sent = db.mailbox_id(user, "Sent").unwrap();
    let raw = b"From: alice@work.example\r\nMessage-ID: <m1@work.example>\r\nSubject: s\r\n\r\nx\r\n";
    let new = NewMessage { raw, flags: &[], internaldate: now, writer: Writer::System };
    let a = db.file(&blobs, user, sent, &new, Origin::Append).unwrap();
    let id = db.members_of(user, sent, &[a.uid]).unwrap()[0].id;
    for _ in 0..2 {
        assert_eq!(db.add_sent_copy(user, "Work", id, true, None).unwrap(), SentCopyFiled::Filed { appending: true });
    }
    let members = db.members(user, rec.mailbox, 1..=u32::MAX).unwrap();
    assert_eq!(members.len(), 1, "one membership, however often");
    assert_eq!(members[0].id, id, "the same message as in Sent");
    assert_eq!(db.pending_appends(user, account).unwrap(), [id]);
    let (bytes, mid) = db.sent_copy_bytes(&blobs, user, id).unwrap().unwrap();
    assert_eq!((bytes.as_slice(), mid.as_deref()), (&raw[..], Some("<m1@work.example>")));
    assert_eq!(db.sent_copies_waiting(user, account, rec.mailbox, &[mid.clone(), None]).unwrap(), [Some(id), None]);
    let inbox = db.mailbox_id(user, "INBOX").unwrap();
    assert_eq!(
        db.sent_copies_waiting(user, account, inbox, std::slice::from_ref(&mid)).unwrap(),
        [None],
        "only into its own folder"
    );
    db.append_done(user, account, id).unwrap();
    assert!(db.pending_appends(user, account).unwrap().is_empty());
    // A client that appended its own copy to the account's Sent: that copy is the one.
    let theirs = b"From: alice@work.example\r\nMessage-ID: <m2@work.example>\r\nX-Client: yes\r\n\r\nx\r\n";
    let ours = b"From: alice@work.example\r\nMessage-ID: <m2@work.example>\r\n\r\nx\r\n";
    let new = NewMessage { raw: theirs, flags: &[], internaldate: now, writer: Writer::User };
    let c = db.file(&blobs, user, rec.mailbox, &new, Origin::Append).unwrap();
    let client = db.members_of(user, rec.mailbox, &[c.uid]).unwrap()[0].id;
    let new = NewMessage { raw: ours, flags: &[], internaldate: now, writer: Writer::System };
    let o = db.file(&blobs, user, sent, &new, Origin::Append).unwrap();
    let ours_id = db.members_of(user, sent, &[o.uid]).unwrap()[0].id;
    db.add_sent_copy(user, "Work", ours_id, true, None).unwrap();
    assert_eq!(db.members(user, rec.mailbox, 1..=u32::MAX).unwrap().len(), 2, "m1 and the client's m2 only");
    assert_eq!(db.pending_appends(user, account).unwrap(), [client]);
    db.append_done(user, account, client).unwrap();
    // Forgetting the account forgets what waited for it.
    db.forget_sync_account(user, "Work").unwrap();
    assert_eq!(db.sent_copies_waiting(user, account, rec.mailbox, &[mid]).unwrap(), [None]);
}
