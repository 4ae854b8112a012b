//! Import and sync against a private Dovecot (docs/accounts.md, "Sync"): passes run directly
//! over a real IMAP session, the source changed by a second real client between passes.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use gatepost::accounts::quota::QuotaRule;
use gatepost::mailstore::MailStore;
use gatepost::mailstore::db::{FlagOp, REMOVED_AT_SOURCE};
use gatepost::net::server_url::{Protocol, ServerUrl};
use gatepost::sync::account::full_pass;
use gatepost::sync::connect::{Session, Target, connect};
use gatepost::sync::pass::{Ctx, Report};

use crate::dovecot::{Dovecot, available, cert};

pub const LOGIN: &str = "alice@work.example";
pub const PASSWORD: &str = "the work password";

pub async fn session(dv: &Dovecot) -> Session {
    let url = ServerUrl::parse(&format!("imap://127.0.0.1:{}", dv.imap_port), &[Protocol::Imap], "incoming").unwrap();
    let tls = Arc::new(gatepost::relay::trust::client_config(Some(&cert()), "--ca-file").unwrap());
    let t = Target { url: &url, login: LOGIN, password: PASSWORD, tls, step_timeout: Duration::from_secs(5) };
    connect(&t).await.unwrap_or_else(|e| panic!("{e}\n{}", dv.log())).session
}

pub fn rule() -> QuotaRule {
    QuotaRule { initial: 1 << 30, grow_when_free_below: 0, grow_by: 1 << 20, ceiling: None, reserve: 1 << 20 }
}

/// gatepost's side: a mail store, the user, and the account's sync context.
pub struct Local {
    pub _dir: tempfile::TempDir,
    pub store: Arc<MailStore>,
    pub user: u32,
    pub ctx: Ctx,
}

pub fn local(rule: QuotaRule) -> Local {
    local_with(rule, true)
}

/// `condstore`: whether passes use CONDSTORE (the server offers it) or the plain UID path.
pub fn local_with(rule: QuotaRule, condstore: bool) -> Local {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(MailStore::open(dir.path(), rule, false).unwrap());
    let user = store.db.user("alice", jiff::Timestamp::now()).unwrap();
    let sync = store.db.sync_account(user, "Work").unwrap();
    let ctx = Ctx {
        store: store.clone(),
        user,
        account_name: "Work".into(),
        account: sync.id,
        inbox: store.db.mailbox_id(user, "INBOX").unwrap(),
        max_size: 10 << 20,
        condstore,
        timeout: Duration::from_secs(3),
        hostname: "gp.example".into(),
    };
    Local { _dir: dir, store, user, ctx }
}

impl Local {
    /// (uid, flags, bytes) of every message in a local mailbox.
    pub fn messages(&self, name: &str) -> Vec<(u32, Vec<String>, Vec<u8>)> {
        let db = &self.store.db;
        let Ok(mbox) = db.mailbox_id(self.user, name) else { return vec![] };
        db.members(self.user, mbox, 1..=u32::MAX)
            .unwrap()
            .into_iter()
            .map(|m| {
                let hash = m.message.blob.parse().unwrap();
                let raw = db.read_blob(self.store.blobs.as_ref(), &hash).unwrap();
                (m.uid, m.message.flags.clone(), raw)
            })
            .collect()
    }

    pub fn bodies(&self, name: &str) -> Vec<Vec<u8>> {
        let mut b: Vec<Vec<u8>> = self.messages(name).into_iter().map(|m| m.2).collect();
        b.sort();
        b
    }
}

pub fn message(n: usize, subject: &str) -> Vec<u8> {
    format!(
        "From: Bob <bob@example.org>\r\nTo: alice@work.example\r\nSubject: {subject}\r\n\
         Message-ID: <{n}.{subject}@example.org>\r\nDate: Tue, 1 Dec 2026 10:00:00 +0000\r\n\r\nBody {n}\r\n"
    )
    .into_bytes()
}

/// 8-bit text and a MIME tree with an odd boundary and a NUL-free binary-looking part.
fn odd_message() -> Vec<u8> {
    b"From: =?utf-8?q?J=C3=BCrgen?= <j@example.org>\r\nSubject: Gr\xc3\xbc\xc3\x9fe\r\n\
        MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"--=_ odd (b)\"\r\n\r\n\
        preamble\r\n----=_ odd (b)\r\nContent-Type: text/plain; charset=utf-8\r\n\
        Content-Transfer-Encoding: 8bit\r\n\r\nStra\xc3\x9fe \xe2\x82\xac 100\r\n\
        ----=_ odd (b)\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n\
        AAECAwQFBgcICQ==\r\n----=_ odd (b)--\r\nepilogue\r\n"
        .to_vec()
}

pub async fn append(s: &mut Session, folder: &str, raw: &[u8], flags: Option<&str>) {
    s.append(folder, flags, None, raw).await.unwrap_or_else(|e| panic!("APPEND to {folder}: {e}"));
}

/// The flags the source holds for the message with this Message-ID number in `folder`.
async fn source_flags(s: &mut Session, folder: &str) -> Vec<(u32, Vec<String>)> {
    s.select(folder).await.unwrap();
    let fetches: Vec<_> = s.uid_fetch("1:*", "(UID FLAGS)").await.unwrap().collect().await;
    fetches
        .into_iter()
        .map(|f| {
            let f = f.unwrap();
            (f.uid.unwrap(), f.flags().map(|f| format!("{f:?}")).collect())
        })
        .collect()
}

pub async fn pass(l: &Local, dv: &Dovecot) -> Report {
    let mut s = session(dv).await;
    let r = full_pass(&mut s, &l.ctx).await.unwrap_or_else(|e| panic!("sync pass: {e}\n{}", dv.log()));
    let _ = s.logout().await;
    r
}

#[tokio::test]
async fn the_first_import_mirrors_every_folder_byte_for_byte_and_pairs_the_inbox() {
    if !available() {
        return;
    }
    let dv = Dovecot::start(&[(LOGIN, PASSWORD)]);
    let mut src = session(&dv).await;
    src.create("Lists").await.unwrap();
    src.create("Lists.rust").await.unwrap();
    append(&mut src, "INBOX", &message(1, "hello"), Some("(\\Seen)")).await;
    append(&mut src, "INBOX", &odd_message(), None).await;
    append(&mut src, "INBOX", &message(3, "flagged"), Some("(\\Flagged $Work)")).await;
    for n in 0..5 {
        append(&mut src, "Lists.rust", &message(10 + n, "list"), None).await;
    }
    let l = local(rule());
    let r = pass(&l, &dv).await;
    assert_eq!((r.filed, r.found), (8, 0), "{r:?}");

    let mut want_inbox = vec![message(1, "hello"), odd_message(), message(3, "flagged")];
    want_inbox.sort();
    assert_eq!(l.bodies("Accounts/Work/INBOX"), want_inbox, "byte for byte");
    assert_eq!(l.bodies("INBOX"), want_inbox, "the source INBOX is in the unified INBOX too");
    assert_eq!(l.messages("Accounts/Work/Lists/rust").len(), 5);
    assert!(l.messages("INBOX").iter().all(|m| !m.1.iter().any(|f| f == "\\Recent")));
    let flagged = l.messages("Accounts/Work/INBOX").into_iter().find(|m| m.2 == message(3, "flagged")).unwrap();
    assert!(
        flagged.1.contains(&"\\Flagged".to_string()) && flagged.1.contains(&"$Work".to_string()),
        "{:?}",
        flagged.1
    );
    let seen = l.messages("INBOX").into_iter().find(|m| m.2 == message(1, "hello")).unwrap();
    assert_eq!(seen.1, ["\\Seen"]);

    // The pair is one message: a flag set through the unified INBOX shows in the account's.
    let inbox = l.store.db.mailbox_id(l.user, "INBOX").unwrap();
    let odd_uid = l.messages("INBOX").into_iter().find(|m| m.2 == odd_message()).unwrap().0;
    l.store.db.store_flags(l.user, inbox, &[odd_uid], FlagOp::Add, &["\\Answered".into()], None).unwrap();
    let odd = l.messages("Accounts/Work/INBOX").into_iter().find(|m| m.2 == odd_message()).unwrap();
    assert_eq!(odd.1, ["\\Answered"]);

    // A second pass changes nothing here but writes the flag back.
    let r = pass(&l, &dv).await;
    assert_eq!((r.filed, r.removed, r.from_source, r.pushed), (0, 0, 0, 1), "{r:?}");
    let flags = source_flags(&mut src, "INBOX").await;
    assert!(flags[1].1.iter().any(|f| f == "Answered"), "{flags:?}");
    let status = l.store.db.find_sync_account(l.user, "Work").unwrap().unwrap().status;
    assert!(status.first_import_done && status.inbox_ready, "{status:?}");
    assert_eq!(status.imported_messages, 8);
}

#[tokio::test]
async fn changes_at_the_source_arrive_and_nothing_is_ever_lost_or_doubled() {
    if !available() {
        return;
    }
    changes_arrive(true).await;
}

#[tokio::test]
async fn without_condstore_the_plain_uid_path_does_the_same() {
    if !available() {
        return;
    }
    changes_arrive(false).await;
}

async fn changes_arrive(condstore: bool) {
    let dv = Dovecot::start(&[(LOGIN, PASSWORD)]);
    let mut src = session(&dv).await;
    src.create("Archive").await.unwrap();
    for n in 1..=4 {
        append(&mut src, "INBOX", &message(n, "m"), None).await;
    }
    let l = local_with(rule(), condstore);
    assert_eq!(pass(&l, &dv).await.filed, 4);

    // At the source: a new message, one deleted, one moved to Archive, one flagged.
    append(&mut src, "INBOX", &message(5, "new"), None).await;
    src.select("INBOX").await.unwrap();
    src.uid_store("1", "+FLAGS (\\Deleted)").await.unwrap().collect::<Vec<_>>().await;
    src.uid_store("3", "+FLAGS (\\Flagged)").await.unwrap().collect::<Vec<_>>().await;
    src.uid_mv("2", "Archive").await.unwrap();
    src.expunge().await.unwrap().collect::<Vec<_>>().await;
    // Here: the user expunges message 4 (its tombstone must hold).
    let acc_inbox = l.store.db.mailbox_id(l.user, "Accounts/Work/INBOX").unwrap();
    let four = l.messages("Accounts/Work/INBOX").into_iter().find(|m| m.2 == message(4, "m")).unwrap().0;
    l.store.db.store_flags(l.user, acc_inbox, &[four], FlagOp::Add, &["\\Deleted".into()], None).unwrap();
    l.store.db.expunge(l.user, acc_inbox, None).unwrap();

    let r = pass(&l, &dv).await;
    assert_eq!(r.filed, 1, "only the new message is filed: {r:?}");
    assert_eq!(r.found, 1, "the moved one is found again by content: {r:?}");
    let inbox = l.messages("Accounts/Work/INBOX");
    let find = |n: usize, s: &str| inbox.iter().find(|m| m.2 == message(n, s)).map(|m| m.1.clone());
    assert_eq!(find(1, "m").unwrap(), [REMOVED_AT_SOURCE], "deleted at the source, kept here");
    assert_eq!(find(3, "m").unwrap(), ["\\Flagged"]);
    assert!(find(5, "new").is_some());
    assert!(find(4, "m").is_none(), "the user's expunge stays");
    assert!(find(2, "m").is_none(), "the moved message left with its source folder");
    let archive = l.messages("Accounts/Work/Archive");
    assert_eq!(archive.len(), 1, "moved, not doubled: {archive:?}");
    assert_eq!(archive[0].2, message(2, "m"));
    assert!(archive[0].1.is_empty(), "no $RemovedAtSource on a message found again: {:?}", archive[0].1);
    // Nothing is written to the source by a local expunge.
    let flags = source_flags(&mut src, "INBOX").await;
    assert_eq!(flags.len(), 3, "{flags:?}");

    // A third pass: nothing to do; the tombstone is not fetched again.
    let r = pass(&l, &dv).await;
    assert_eq!((r.filed, r.found), (0, 0), "{r:?}");
}

#[tokio::test]
async fn a_uidvalidity_reset_is_matched_by_content_and_a_conflict_goes_to_the_source() {
    if !available() {
        return;
    }
    let dv = Dovecot::start(&[(LOGIN, PASSWORD)]);
    let mut src = session(&dv).await;
    src.create("Projects").await.unwrap();
    for n in 1..=3 {
        append(&mut src, "Projects", &message(n, "p"), None).await;
    }
    let l = local(rule());
    assert_eq!(pass(&l, &dv).await.filed, 3);

    // Conflict: the same message changed on both sides; the source wins.
    let projects = l.store.db.mailbox_id(l.user, "Accounts/Work/Projects").unwrap();
    l.store.db.store_flags(l.user, projects, &[1], FlagOp::Add, &["\\Flagged".into()], None).unwrap();
    src.select("Projects").await.unwrap();
    src.uid_store("1", "+FLAGS (\\Seen)").await.unwrap().collect::<Vec<_>>().await;
    let r = pass(&l, &dv).await;
    assert_eq!((r.from_source, r.pushed), (1, 0), "{r:?}");
    let one = l.messages("Accounts/Work/Projects").into_iter().find(|m| m.2 == message(1, "p")).unwrap();
    assert_eq!(one.1, ["\\Seen"]);

    // The folder is deleted and made again at the source with the same mail: new UIDVALIDITY.
    src.select("INBOX").await.unwrap();
    src.delete("Projects").await.unwrap();
    src.create("Projects").await.unwrap();
    for n in 1..=4 {
        append(&mut src, "Projects", &message(n, "p"), None).await;
    }
    let r = pass(&l, &dv).await;
    assert_eq!((r.filed, r.found), (1, 3), "three matched by content, one new: {r:?}");
    assert_eq!(l.messages("Accounts/Work/Projects").len(), 4, "never doubled");
}

#[tokio::test]
async fn at_the_quota_ceiling_import_pauses_with_one_notice_and_resumes_when_there_is_room() {
    if !available() {
        return;
    }
    let dv = Dovecot::start(&[(LOGIN, PASSWORD)]);
    let mut src = session(&dv).await;
    for n in 1..=30 {
        append(&mut src, "INBOX", &message(n, "q"), None).await;
    }
    let size = message(1, "q").len() as u64;
    let tight = QuotaRule {
        initial: 10 * size,
        grow_when_free_below: 0,
        grow_by: size,
        ceiling: Some(10 * size),
        reserve: 1 << 20,
    };
    let l = local(tight);
    for _ in 0..2 {
        let r = pass(&l, &dv).await;
        assert!(r.quota_full, "{r:?}");
    }
    let stored = l.messages("Accounts/Work/INBOX").len();
    assert!((9..=10).contains(&stored), "filed up to the ceiling: {stored}");
    let status = l.store.db.find_sync_account(l.user, "Work").unwrap().unwrap().status;
    assert!(status.quota_paused_since.is_some() && status.phase == "paused", "{status:?}");
    assert!(!status.first_import_done);
    let notices: Vec<_> = l
        .messages("INBOX")
        .into_iter()
        .filter(|m| String::from_utf8_lossy(&m.2).contains("Subject: Import of Work paused"))
        .collect();
    assert_eq!(notices.len(), 1, "one notice per pause, not per pass");

    // Room appears: the rest comes, nothing twice.
    l.store.db.set_ceiling(l.user, Some(100 * size)).unwrap();
    let r = pass(&l, &dv).await;
    assert!(!r.quota_full, "{r:?}");
    let mut bodies = l.bodies("Accounts/Work/INBOX");
    bodies.dedup();
    assert_eq!(bodies.len(), 30);
    assert_eq!(l.messages("Accounts/Work/INBOX").len(), 30);
    let status = l.store.db.find_sync_account(l.user, "Work").unwrap().unwrap().status;
    assert!(status.quota_paused_since.is_none() && status.first_import_done, "{status:?}");
}

#[tokio::test]
async fn a_folder_renamed_at_the_source_moves_here_with_its_children_and_nothing_comes_twice() {
    if !available() {
        return;
    }
    let dv = Dovecot::start(&[(LOGIN, PASSWORD)]);
    let mut src = session(&dv).await;
    src.create("Projects").await.unwrap();
    src.create("Projects.2026").await.unwrap();
    for n in 1..=3 {
        append(&mut src, "Projects", &message(n, "p"), None).await;
    }
    for n in 4..=5 {
        append(&mut src, "Projects.2026", &message(n, "p26"), None).await;
    }
    let l = local(rule());
    assert_eq!(pass(&l, &dv).await.filed, 5);
    let projects = l.store.db.mailbox_id(l.user, "Accounts/Work/Projects").unwrap();

    src.rename("Projects", "Clients").await.unwrap();
    let r = pass(&l, &dv).await;
    assert_eq!((r.filed, r.found, r.removed), (0, 0, 0), "a rename, not new mail: {r:?}");
    assert!(l.store.db.mailbox_id(l.user, "Accounts/Work/Projects").is_err(), "the old name is gone");
    assert_eq!(l.store.db.mailbox_id(l.user, "Accounts/Work/Clients").unwrap(), projects, "the same mailbox, renamed");
    assert_eq!(l.messages("Accounts/Work/Clients").len(), 3);
    assert_eq!(l.messages("Accounts/Work/Clients/2026").len(), 2);
    assert!(l.messages("Accounts/Work/Clients").iter().all(|m| m.1.is_empty()), "no $RemovedAtSource");

    // And it keeps syncing under the new name.
    append(&mut src, "Clients.2026", &message(6, "p26"), None).await;
    assert_eq!(pass(&l, &dv).await.filed, 1);
    assert_eq!(l.messages("Accounts/Work/Clients/2026").len(), 3);
}

#[test]
fn two_source_folders_never_share_a_local_mailbox() {
    use gatepost::mailstore::db::{FolderSync, MailError};
    let l = local(rule());
    let new =
        FolderSync { mailbox: 0, uidvalidity: 0, uidnext: 0, highestmodseq: 0, exists: 0, role: None, gone: false };
    let now = jiff::Timestamp::now();
    let a = l
        .store
        .db
        .open_sync_folder(l.user, l.ctx.account, "a/b", "Accounts/Work/a\u{2215}b", new.clone(), now)
        .unwrap();
    let again = l.store.db.open_sync_folder(l.user, l.ctx.account, "a/b", "Accounts/Work/a\u{2215}b", new.clone(), now);
    assert_eq!(again.unwrap().mailbox, a.mailbox, "the same source folder may open its own mailbox again");
    let other = l.store.db.open_sync_folder(l.user, l.ctx.account, "a\u{2215}b", "Accounts/Work/a\u{2215}b", new, now);
    assert!(matches!(other, Err(MailError::MailboxExists(_))), "{other:?}");
}
