//! The IMAP door's attacks: memory before login, the shared login throttle, one user reaching
//! another's mail by any command that names a mailbox or a UID, and account changes reaching
//! IMAP sessions (IDLE included).

use std::sync::Arc;
use std::time::{Duration, Instant};

use gatepost::clock::SystemClock;

#[path = "../imap/client.rs"]
mod client;

use client::{Imap, tagged};

use crate::support::*;

fn imaps(server: &TestServer) -> std::net::SocketAddr {
    server.running.as_ref().unwrap().imaps_addrs[0]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_command_before_login_is_cut_off() {
    let server = TestServer::start().await;
    let (mut c, _) = Imap::tls(imaps(&server)).await;
    // A literal announced before login: the client may send at most 64 KiB toward it.
    c.send(b"a LOGIN {10000000}\r\n").await;
    let cont = c.line().await;
    assert!(cont.starts_with('+'), "{cont}");
    let chunk = vec![b'x'; 16 * 1024];
    let mut cut = false;
    for _ in 0..64 {
        let w = c.try_send(&chunk).await;
        if !w {
            cut = true;
            break;
        }
    }
    let bye = tokio::time::timeout(Duration::from_secs(5), c.line()).await.unwrap_or_default();
    assert!(cut || bye.starts_with("* BYE"), "no BYE after 1 MiB before login: {bye:?}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imap_guesses_count_in_the_shared_throttle() {
    let server = TestServer::start_with(
        |t| t.replace("[submission]\n", "[login]\nfailures_before_lockout = 3\n[submission]\n"),
        Arc::new(SystemClock),
    )
    .await;
    for n in 0..3 {
        let (mut c, _) = Imap::tls(imaps(&server)).await;
        let r = c.cmd(&format!("LOGIN {USER} wrong{n}")).await;
        assert!(tagged(&r).contains("NO [AUTHENTICATIONFAILED]"), "{r:?}");
    }
    // Locked out now, from IMAP and from SMTP alike, even with the right password.
    let (mut c, _) = Imap::tls(imaps(&server)).await;
    let r = c.cmd(&format!("LOGIN {USER} \"{PASSWORD}\"")).await;
    assert!(tagged(&r).contains("NO [UNAVAILABLE]"), "{r:?}");
    let (mut s, _) = Client::implicit_tls(server.submissions).await;
    s.cmd("EHLO t").await;
    let r = s.auth_plain(USER, PASSWORD).await;
    assert!(r.starts_with("454") || r.starts_with("421"), "SMTP shares the lockout: {r}");
    server.stop().await;
}

/// Every command that names a mailbox or a UID, as bob, against alice's mail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_user_reaches_nothing_of_the_first() {
    let server = TestServer::start().await;
    server.add_user("bob", "bob's long password");
    let addr = imaps(&server);
    let mut alice = Imap::login(addr).await;
    alice.cmd("CREATE Secret").await;
    let r = alice.append("Secret", "\\Flagged", b"Subject: alice only\r\n\r\nsecret body\r\n").await;
    assert!(tagged(&r).contains("OK"), "{r:?}");
    alice.append("INBOX", "", b"Subject: alice inbox\r\n\r\nmine\r\n").await;
    let held = b"From: alice@example.com\r\nTo: carol+2027-01-04@example.net\r\nSubject: alice held\r\n\r\nmine\r\n";
    let r = alice.append("Scheduled", "", held).await;
    assert!(tagged(&r).contains("OK [APPENDUID"), "{r:?}");

    let (mut bob, _) = Imap::tls(addr).await;
    let r = bob.cmd("LOGIN bob \"bob's long password\"").await;
    assert!(tagged(&r).contains("OK"), "{r:?}");
    let r = bob.cmd("LIST \"\" *").await;
    assert!(!r.iter().any(|l| l.contains("Secret")), "LIST: {r:?}");
    for cmd in ["SELECT Secret", "EXAMINE Secret", "STATUS Secret (MESSAGES)", "DELETE Secret", "GETQUOTAROOT Secret"] {
        let r = bob.cmd(cmd).await;
        assert!(tagged(&r).contains("NO"), "{cmd}: {r:?}");
    }
    let r = bob.cmd("RENAME Secret Mine").await;
    assert!(tagged(&r).contains("NO"), "RENAME: {r:?}");
    let r = bob.cmd("SUBSCRIBE Secret").await;
    assert!(tagged(&r).contains("NO"), "SUBSCRIBE: {r:?}");
    let r = bob.cmd("SELECT INBOX").await;
    assert!(r.iter().any(|l| l == "* 0 EXISTS\r\n"), "bob's INBOX is his own: {r:?}");
    for cmd in ["UID FETCH 1:* (BODY.PEEK[])", "FETCH 1:* (FLAGS)", "UID SEARCH ALL", "UID STORE 1 +FLAGS (\\Seen)"] {
        let r = bob.cmd(cmd).await;
        assert!(!r.iter().any(|l| l.contains("secret") || l.contains("mine")), "{cmd}: {r:?}");
    }
    let r = bob.cmd("UID COPY 1 Secret").await;
    assert!(!tagged(&r).contains("OK [COPYUID"), "COPY: {r:?}");
    let r = bob.cmd("UID MOVE 1 Secret").await;
    assert!(!tagged(&r).contains("OK [COPYUID"), "MOVE: {r:?}");
    let r = bob.cmd("UID EXPUNGE 1").await;
    assert!(!r.iter().any(|l| l.contains("EXPUNGE\r\n") && l.starts_with("* ")), "{r:?}");
    let r = bob.cmd("GETQUOTA \"\"").await;
    let usage = r.iter().find(|l| l.starts_with("* QUOTA")).cloned().unwrap_or_default();
    assert!(usage.contains("(STORAGE 0 "), "bob's quota counts nothing of alice's: {usage}");
    let r = bob.cmd("GETQUOTA \"alice\"").await;
    assert!(tagged(&r).contains("NO"), "another root: {r:?}");
    // Scheduled is his own too: empty, and nothing he does there reaches alice's hold queue;
    // he cannot schedule as her either.
    let r = bob.cmd("SELECT Scheduled").await;
    assert!(r.iter().any(|l| l == "* 0 EXISTS\r\n"), "bob's Scheduled is his own: {r:?}");
    for cmd in ["UID STORE 1:* +FLAGS (\\Deleted)", "EXPUNGE", "UID MOVE 1:* INBOX", "FETCH 1:* (BODY.PEEK[])"] {
        let r = bob.cmd(cmd).await;
        assert!(!r.iter().any(|l| l.contains("alice held")), "{cmd}: {r:?}");
    }
    let r = bob.append("Scheduled", "", held).await;
    assert!(tagged(&r).contains("NO [CANNOT]") && tagged(&r).contains("is not yours"), "{r:?}");
    // And alice's mail is as she left it.
    let r = alice.cmd("STATUS Secret (MESSAGES)").await;
    assert!(r[0].contains("MESSAGES 1"), "{r:?}");
    let recs = server.store().list_messages(None, None, 10).unwrap();
    assert_eq!(recs.len(), 1, "{recs:?}");
    assert!(recs[0].user == "alice" && recs[0].state == gatepost::store::QueueState::Held && !recs[0].paused);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabling_an_account_ends_its_imap_sessions_idle_included() {
    let server = TestServer::start().await;
    let config = config_file(server.dir.path());
    let addr = imaps(&server);
    let mut idle = Imap::login(addr).await;
    idle.cmd("SELECT INBOX").await;
    idle.send(b"i IDLE\r\n").await;
    assert!(idle.line().await.starts_with('+'));
    let mut busy = Imap::login(addr).await;
    let o = run_gatepost(&config, &["user", "disable", USER]);
    assert!(o.status.success(), "{o:?}");
    let at = Instant::now();
    for c in [&mut idle, &mut busy] {
        let bye = tokio::time::timeout(Duration::from_secs(4), c.line()).await.expect("BYE within 4 s");
        assert!(bye.starts_with("* BYE") && bye.contains("account was changed"), "{bye}");
    }
    assert!(at.elapsed() < Duration::from_secs(3), "{:?}", at.elapsed());
    let (mut c, _) = Imap::tls(addr).await;
    let r = c.cmd(&format!("LOGIN {USER} \"{PASSWORD}\"")).await;
    assert!(tagged(&r).contains("NO [AUTHORIZATIONFAILED]") && tagged(&r).contains("disabled"), "{r:?}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn append_over_the_ceiling_and_on_a_full_disk_store_nothing() {
    let server = TestServer::start_with(
        |t| t + "[quota]\ninitial = \"1000\"\ngrow_when_free_below = \"0\"\ngrow_by = \"1000\"\nceiling = \"1000\"\n",
        Arc::new(SystemClock),
    )
    .await;
    let mut c = Imap::login(imaps(&server)).await;
    let big = [b"Subject: big\r\n\r\n".as_slice(), &vec![b'x'; 1200]].concat();
    let r = c.append("INBOX", "", &big).await;
    assert!(tagged(&r).contains("NO [OVERQUOTA]"), "{r:?}");
    let r = c.cmd("STATUS INBOX (MESSAGES)").await;
    assert!(r[0].contains("MESSAGES 0"), "{r:?}");
    server.stop().await;
    let server = TestServer::start_with(|t| t + "[store]\nmin_free_disk = \"1000TB\"\n", Arc::new(SystemClock)).await;
    let mut c = Imap::login(imaps(&server)).await;
    let r = c.append("INBOX", "", b"Subject: s\r\n\r\nx\r\n").await;
    assert!(tagged(&r).contains("NO [UNAVAILABLE]"), "{r:?}");
    server.stop().await;
}

/// A damaged mail store stops the start with an error naming the file; it is never taken for
/// a new, empty one (the users' mail would look gone).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_mail_store_stops_the_start_and_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let text = config_text(dir.path(), "");
    let config = gatepost::config::Config::from_toml(&text, &[]).unwrap();
    {
        let store = gatepost::store::Store::open(&config.data_dir).unwrap();
        gatepost::accounts::add_user(&store, USER, EMAIL, PASSWORD, jiff::Timestamp::now()).unwrap();
    }
    let mut junk = vec![0u8; 64 * 1024];
    for (i, b) in junk.iter_mut().enumerate() {
        *b = (i * 131 % 251) as u8;
    }
    std::fs::write(config.data_dir.join("mailstore.redb"), &junk).unwrap();
    let err = match gatepost::app::start(&config, Arc::new(SystemClock)).await {
        Ok(_) => panic!("a server started on a damaged mail store"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("mailstore.redb"), "{err}");
    let after = std::fs::read(config.data_dir.join("mailstore.redb")).unwrap();
    assert_eq!(after, junk, "the damaged file is left as it was, for the operator");
}
