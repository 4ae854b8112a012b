//! `Scheduled`, the IMAP view of the user's hold queue (docs/imap.md, "Scheduled"): held mail
//! shows there with its release time as INTERNALDATE, `\Deleted` pauses, EXPUNGE cancels, MOVE
//! out cancels and files, and a message dropped in is submitted by the SMTP rules.

use std::sync::Arc;
use std::time::Duration;

use gatepost::clock::ManualClock;
use gatepost::store::{EventKind, QueueId, QueueRecord, QueueState};

use crate::client::{Imap, tagged};
use crate::support::{Client, TestServer};

const START: &str = "2026-11-23T10:00:00Z";

async fn start() -> (TestServer, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(START.parse().unwrap()));
    let server = TestServer::start_with(|t| t, clock.clone()).await;
    (server, clock)
}

fn imaps(server: &TestServer) -> std::net::SocketAddr {
    server.running.as_ref().unwrap().imaps_addrs[0]
}

async fn wait_until(what: &str, mut probe: impl AsyncFnMut() -> bool) {
    for _ in 0..300 {
        if probe().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting for {what}");
}

async fn submit(server: &TestServer, rcpts: &[&str], message: &[u8]) -> QueueId {
    let (mut smtp, _) = Client::implicit_tls(server.submissions).await;
    smtp.login().await;
    let r = smtp.submit("alice@example.com", rcpts, message).await;
    assert!(r.starts_with("250"), "{r}");
    crate::support::queue_id(&r).parse().unwrap()
}

fn record(server: &TestServer, id: QueueId) -> QueueRecord {
    server.store().get_message(id).unwrap().expect("the record")
}

fn all_records(server: &TestServer) -> Vec<QueueRecord> {
    server.store().list_messages(None, None, 100).unwrap()
}

async fn messages(c: &mut Imap, mailbox: &str) -> u32 {
    let r = c.cmd(&format!("STATUS {mailbox} (MESSAGES)")).await;
    let line = r.iter().find(|l| l.starts_with("* STATUS")).unwrap_or_else(|| panic!("{r:?}"));
    let n = line.rsplit("MESSAGES ").next().unwrap().trim_end_matches([')', '\r', '\n']);
    n.parse().unwrap_or_else(|_| panic!("{line}"))
}

/// The UIDs in the selected mailbox.
async fn uids(c: &mut Imap) -> Vec<u32> {
    let r = c.cmd("UID SEARCH ALL").await;
    let line = r.iter().find(|l| l.starts_with("* SEARCH")).unwrap();
    line.split_whitespace().skip(2).map(|n| n.parse().unwrap()).collect()
}

fn wake(server: &TestServer) {
    server.running.as_ref().unwrap().dispatcher_wake.notify_one();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn held_mail_is_shown_at_its_release_time_and_leaves_when_released() {
    let (server, clock) = start().await;
    let msg = b"From: alice@example.com\r\nTo: bob+2026-12-25@example.net, carol+2026-12-28@example.net\r\nSubject: twice\r\n\r\nheld body\r\n";
    let id = submit(&server, &["bob+2026-12-25@example.net", "carol+2026-12-28@example.net"], msg).await;
    let mut c = Imap::login(imaps(&server)).await;
    wait_until("the entry", async || messages(&mut c, "Scheduled").await == 1).await;
    c.cmd("SELECT Scheduled").await;
    let first = uids(&mut c).await;
    assert_eq!(first.len(), 1);
    let r = c.cmd("UID FETCH 1:* (INTERNALDATE RFC822.SIZE BODY.PEEK[])").await;
    assert!(r[0].contains("INTERNALDATE \"25-Dec-2026 08:00:00 +0000\""), "earliest release: {r:?}");
    assert!(r[0].contains(&format!("RFC822.SIZE {}", msg.len())), "{r:?}");
    assert!(r[0].contains("held body") && r[0].contains("Subject: twice"), "as submitted: {r:?}");

    // Bob's copy goes; Carol's is still held: a new UID with the next release time.
    clock.set("2026-12-25T08:00:00Z".parse().unwrap());
    wake(&server);
    wait_until("the entry to move on", async || {
        let now = uids(&mut c).await;
        now.len() == 1 && now[0] > first[0]
    })
    .await;
    let r = c.cmd("FETCH 1 (INTERNALDATE)").await;
    assert!(r.iter().any(|l| l.contains("28-Dec-2026 08:00:00 +0000")), "{r:?}");
    assert_eq!(record(&server, id).recipients[0].state, QueueState::Sent);

    clock.set("2026-12-28T08:00:00Z".parse().unwrap());
    wake(&server);
    wait_until("the entry to leave", async || uids(&mut c).await.is_empty()).await;
    assert_eq!(record(&server, id).state, QueueState::Sent);
    // Nothing of it is left on the view's feed.
    wait_until("the feed to drain", async || server.store().scheduled_pending(10).unwrap().is_empty()).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_pauses_the_release_and_expunge_cancels_it_naming_the_client() {
    let (server, clock) = start().await;
    let msg =
        b"From: alice@example.com\r\nTo: bob@example.net\r\nDeliver-On: 2026-12-25\r\nSubject: maybe\r\n\r\nx\r\n";
    let id = submit(&server, &["bob@example.net"], msg).await;
    let mut c = Imap::login(imaps(&server)).await;
    wait_until("the entry", async || messages(&mut c, "Scheduled").await == 1).await;
    c.cmd("SELECT Scheduled").await;

    let r = c.cmd("STORE 1 +FLAGS (\\Deleted)").await;
    assert!(tagged(&r).contains("OK"), "{r:?}");
    let rec = record(&server, id);
    assert!(rec.paused && rec.state == QueueState::Held, "{rec:?}");
    assert_eq!(server.store().next_due().unwrap(), None, "a paused message has no due entry");
    // Its time comes and goes: nothing is released while paused.
    clock.set("2026-12-26T08:00:00Z".parse().unwrap());
    wake(&server);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(record(&server, id).state, QueueState::Held);
    clock.set(START.parse().unwrap());

    let r = c.cmd("STORE 1 -FLAGS (\\Deleted)").await;
    assert!(tagged(&r).contains("OK"), "{r:?}");
    assert!(!record(&server, id).paused);
    assert_eq!(server.store().next_due().unwrap(), Some("2026-12-25T08:00:00Z".parse().unwrap()), "resumed");

    c.cmd("STORE 1 +FLAGS.SILENT (\\Deleted)").await;
    let r = c.cmd("EXPUNGE").await;
    assert!(r.iter().any(|l| l.starts_with("* 1 EXPUNGE")) && tagged(&r).contains("OK"), "{r:?}");
    let rec = record(&server, id);
    assert_eq!(rec.state, QueueState::Cancelled);
    let kinds: Vec<&EventKind> = rec.events.iter().map(|e| &e.kind).collect();
    assert!(kinds.contains(&&EventKind::Paused) && kinds.contains(&&EventKind::Resumed), "{kinds:?}");
    let cancelled = rec.events.iter().find(|e| e.kind == EventKind::Cancelled).unwrap();
    assert!(cancelled.detail.contains("IMAP client 127.0.0.1"), "{cancelled:?}");
    assert_eq!(messages(&mut c, "Scheduled").await, 0);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn move_out_cancels_and_files_copy_out_only_copies() {
    let (server, _clock) = start().await;
    let a =
        submit(&server, &["bob+2026-12-25@example.net"], b"From: alice@example.com\r\nSubject: a\r\n\r\nA\r\n").await;
    let b =
        submit(&server, &["bob+2026-12-26@example.net"], b"From: alice@example.com\r\nSubject: b\r\n\r\nB\r\n").await;
    let mut c = Imap::login(imaps(&server)).await;
    wait_until("both entries", async || messages(&mut c, "Scheduled").await == 2).await;
    c.cmd("SELECT Scheduled").await;
    let r = c.cmd("FETCH 1:2 (BODY.PEEK[HEADER.FIELDS (SUBJECT)])").await;
    assert!(r[0].contains("Subject: a") && r[1].contains("Subject: b"), "release order: {r:?}");

    let r = c.cmd("COPY 1 INBOX").await;
    assert!(tagged(&r).contains("OK [COPYUID"), "{r:?}");
    assert_eq!(record(&server, a).state, QueueState::Held, "COPY out only copies");

    let r = c.cmd("MOVE 2 Archive").await;
    assert!(tagged(&r).contains("OK") && r.iter().any(|l| l.starts_with("* 2 EXPUNGE")), "{r:?}");
    assert_eq!(record(&server, b).state, QueueState::Cancelled);
    assert!(record(&server, b).events.iter().any(|e| e.kind == EventKind::Cancelled));
    c.cmd("SELECT Archive").await;
    let r = c.cmd("FETCH 1 BODY.PEEK[TEXT]").await;
    assert!(r[0].contains("B\r\n") || r[0].contains("B"), "{r:?}");
    assert_eq!(messages(&mut c, "Scheduled").await, 1);
    // The filer, catching up with the cancel, does not touch the moved message.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(messages(&mut c, "Archive").await, 1);
    assert_eq!(messages(&mut c, "Scheduled").await, 1);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_dropped_into_scheduled_is_submitted_by_the_smtp_rules() {
    let (server, _clock) = start().await;
    let mut c = Imap::login(imaps(&server)).await;
    let msg = b"From: Alice <alice@example.com>\r\nTo: bob@example.net\r\nCc: carol@example.org\r\nBcc: dave@example.com\r\nDeliver-On: 2026-12-25\r\nSubject: from the phone\r\n\r\nhi\r\n";
    let r = c.append("Scheduled", "\\Seen", msg).await;
    assert!(tagged(&r).contains("OK [APPENDUID "), "{r:?}");
    let uid: u32 = tagged(&r).split_whitespace().nth(4).unwrap().trim_end_matches(']').parse().unwrap();
    let recs = all_records(&server);
    assert_eq!(recs.len(), 1);
    let rec = &recs[0];
    let to: Vec<&str> = rec.recipients.iter().map(|r| r.address.as_str()).collect();
    assert_eq!(to, ["bob@example.net", "carol@example.org", "dave@example.com"]);
    assert!(rec.recipients.iter().all(|r| r.release_at == "2026-12-25T08:00:00Z".parse().unwrap()));
    assert_eq!((rec.sender.as_str(), rec.helo.as_str()), ("alice@example.com", "IMAP APPEND"));
    assert_eq!(rec.client_ip(), Some("127.0.0.1".parse().unwrap()));
    c.cmd("SELECT Scheduled").await;
    let r = c.cmd(&format!("UID FETCH {uid} (FLAGS BODY.PEEK[])")).await;
    assert!(r[0].contains("\\Seen") && r[0].contains("Bcc: dave@example.com"), "byte for byte: {r:?}");

    // Refused with the SMTP texts; nothing queued.
    let cases: &[(&[u8], &str)] = &[
        (b"From: alice@example.com\r\nTo: bob@example.net\r\nSubject: now?\r\n\r\nx\r\n", "no schedule"),
        (b"From: mallory@example.com\r\nTo: bob+2026-12-25@example.net\r\n\r\nx\r\n", "is not yours"),
        (b"From: alice@example.com\r\nDeliver-On: 2026-12-25\r\n\r\nx\r\n", "no To, Cc or Bcc"),
        (b"From: alice@example.com\r\nTo: bob@example.net\r\nDeliver-On: the 32nd of Foo\r\n\r\nx\r\n", "Deliver-On"),
    ];
    for (bad, text) in cases {
        let r = c.append("Scheduled", "", bad).await;
        assert!(tagged(&r).contains("NO [CANNOT]") && tagged(&r).contains(text), "{text}: {r:?}");
    }
    assert!(tagged(&c.append("Scheduled", "", cases[0].0).await).contains("Deliver-On:"), "the forms are listed");
    assert_eq!(all_records(&server).len(), 1, "refusals queue nothing");

    // A draft moved into Scheduled is how a phone schedules; a draft without a date stays put.
    let draft = b"From: alice@example.com\r\nTo: erin+2026-12-26@example.net\r\nSubject: draft\r\n\r\nd\r\n";
    assert!(tagged(&c.append("Drafts", "\\Draft", draft).await).contains("OK"));
    assert!(tagged(&c.append("Drafts", "\\Draft", cases[0].0).await).contains("OK"));
    c.cmd("SELECT Drafts").await;
    let r = c.cmd("UID MOVE 1 Scheduled").await;
    assert!(r.iter().any(|l| l.contains("[COPYUID ")) && tagged(&r).contains("OK"), "{r:?}");
    let r = c.cmd("UID MOVE 2 Scheduled").await;
    assert!(tagged(&r).contains("NO [CANNOT]"), "{r:?}");
    assert_eq!(messages(&mut c, "Drafts").await, 1, "the refused draft stays");
    let recs = all_records(&server);
    assert_eq!(recs.len(), 2);
    assert!(recs.iter().any(|r| r.helo == "IMAP MOVE" && r.recipients[0].address == "erin@example.net"));
    assert_eq!(messages(&mut c, "Scheduled").await, 2);
    server.stop().await;
}

/// A message already sending cannot be cancelled: it keeps its place, loses `\Deleted`, and
/// the rest of the EXPUNGE still happens. The filer is not running here, so the view's entry
/// stays while its record moves on (the window a real filer closes within half a second).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entry_already_sending_is_not_cancelled_by_expunge() {
    use gatepost::imap::held::HoldQueue;

    let dir = tempfile::tempdir().unwrap();
    let text = crate::support::config_text(dir.path(), "");
    let config = gatepost::config::Config::from_toml(&text, &[]).unwrap();
    let store = Arc::new(gatepost::store::Store::open(dir.path()).unwrap());
    gatepost::accounts::add_user(&store, "alice", "alice@example.com", "pw-pw-pw-pw", jiff::Timestamp::now()).unwrap();
    let mail = Arc::new(
        gatepost::mailstore::MailStore::open(dir.path(), gatepost::app::settings::quota_rule(&config), false).unwrap(),
    );
    let queue = Arc::new(gatepost::queue::Queue::start(store.clone()));
    let mut env = gatepost::imap::script::env(mail.clone());
    Arc::get_mut(&mut env).unwrap().held = Some(Arc::new(HoldQueue {
        store: store.clone(),
        queue,
        rules: Arc::new(gatepost::app::settings::session(&config)),
        runtime: tokio::runtime::Handle::current(),
    }));
    let run = |input: &'static [u8]| {
        let env = env.clone();
        tokio::task::spawn_blocking(move || {
            String::from_utf8_lossy(&gatepost::imap::script::run_in(env, "alice", input)).to_string()
        })
    };
    let later = b"From: alice@example.com\r\nTo: bob+2027-01-05@example.net\r\n\r\nlater\r\n";
    let sooner = b"From: alice@example.com\r\nTo: bob+2027-01-04@example.net\r\n\r\nsooner\r\n";
    let mut input = Vec::new();
    for (tag, m) in [("a1", &later[..]), ("a2", &sooner[..])] {
        input.extend_from_slice(format!("{tag} APPEND Scheduled {{{}+}}\r\n", m.len()).as_bytes());
        input.extend_from_slice(m);
        input.extend_from_slice(b"\r\n");
    }
    let out = run(Box::leak(input.into_boxed_slice())).await.unwrap();
    assert!(out.contains("a1 OK [APPENDUID") && out.contains("a2 OK [APPENDUID"), "{out}");
    let recs = store.list_messages(None, None, 10).unwrap();
    let sooner_id = recs.iter().find(|r| r.recipients[0].original.contains("01-04")).unwrap().id;
    // The dispatcher takes it (its recipient is now sending) before the view catches up.
    store
        .update_message(sooner_id, |r| {
            r.recipients[0].state = QueueState::Sending;
            r.state = QueueState::Sending;
            Ok(())
        })
        .unwrap();
    let out =
        run(b"s SELECT Scheduled\r\nt STORE 1:2 +FLAGS.SILENT (\\Deleted)\r\ne EXPUNGE\r\nf FETCH 1:* (UID FLAGS)\r\n")
            .await
            .unwrap();
    assert!(out.contains("e NO [CANNOT] Already sending or sent, so not cancelled (UID 2)"), "{out}");
    assert!(out.contains("* 1 EXPUNGE"), "the other one went: {out}");
    let fetched: Vec<&str> = out.lines().filter(|l| l.starts_with("* 1 FETCH")).collect();
    assert!(fetched.last().is_some_and(|l| l.contains("UID 2") && !l.contains("\\Deleted")), "{out}");
    let recs = store.list_messages(None, None, 10).unwrap();
    let state = |id| recs.iter().find(|r| r.id == id).unwrap().state;
    assert_eq!(state(sooner_id), QueueState::Sending);
    assert!(recs.iter().any(|r| r.id != sooner_id && r.state == QueueState::Cancelled));
}
