//! Byte-level IMAP behaviour: login rules, errors, IDLE, and what one session sees of
//! another's changes.

use std::time::Duration;

use crate::client::{Imap, tagged};
use crate::support::{PASSWORD, TestServer, USER};

const MSG: &[u8] = b"From: bob@example.com\r\nSubject: hi\r\n\r\nbody\r\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_is_refused_before_tls_and_works_after_starttls() {
    let server = TestServer::start().await;
    let addr = server.running.as_ref().unwrap().imap_addrs[0];
    let (mut c, greeting) = Imap::plain(addr).await;
    assert!(greeting.starts_with("* OK [CAPABILITY ") && greeting.contains("LOGINDISABLED"), "{greeting}");
    assert!(greeting.contains("(session "), "the session id is in the greeting: {greeting}");
    assert!(!greeting.contains("AUTH=PLAIN"), "{greeting}");
    let r = c.cmd(&format!("LOGIN {USER} \"{PASSWORD}\"")).await;
    assert!(tagged(&r).starts_with("t1 NO [PRIVACYREQUIRED]"), "{r:?}");
    let r = c.cmd("STARTTLS").await;
    assert!(tagged(&r).starts_with("t2 OK"), "{r:?}");
    let mut c = c.into_tls().await;
    let r = c.cmd("CAPABILITY").await;
    assert!(r[0].contains("AUTH=PLAIN") && !r[0].contains("STARTTLS"), "{r:?}");
    let r = c.cmd(&format!("LOGIN {USER} \"wrong\"")).await;
    assert!(tagged(&r).starts_with("t4 NO [AUTHENTICATIONFAILED]") && tagged(&r).contains("(session "), "{r:?}");
    let r = c.cmd(&format!("LOGIN alice@example.com \"{PASSWORD}\"")).await;
    assert!(tagged(&r).starts_with("t5 OK [CAPABILITY IMAP4rev1"), "login by email address: {r:?}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authenticate_plain_with_and_without_initial_response() {
    use base64::Engine;
    let server = TestServer::start().await;
    let addr = server.running.as_ref().unwrap().imaps_addrs[0];
    let token = base64::engine::general_purpose::STANDARD.encode(format!("\0{USER}\0{PASSWORD}"));
    let (mut c, _) = Imap::tls(addr).await;
    let r = c.cmd(&format!("AUTHENTICATE PLAIN {token}")).await;
    assert!(tagged(&r).starts_with("t1 OK"), "{r:?}");
    let (mut c, _) = Imap::tls(addr).await;
    c.send(b"a AUTHENTICATE PLAIN\r\n").await;
    let cont = c.line().await;
    assert!(cont.starts_with('+'), "{cont}");
    c.send(format!("{token}\r\n").as_bytes()).await;
    let r = c.until("a").await;
    assert!(tagged(&r).starts_with("a OK"), "{r:?}");
    let r = c.cmd("SELECT INBOX").await;
    assert!(tagged(&r).contains("OK [READ-WRITE]"), "{r:?}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_commands_get_bad_and_the_session_goes_on() {
    let server = TestServer::start().await;
    let addr = server.running.as_ref().unwrap().imaps_addrs[0];
    let (mut c, _) = Imap::tls(addr).await;
    c.send(b"x1 FROBNICATE now\r\n").await;
    let l = c.line().await;
    assert!(l.starts_with("x1 BAD") && l.contains("(session "), "{l}");
    let r = c.cmd("SELECT INBOX").await;
    assert!(tagged(&r).starts_with("t1 BAD"), "select before login: {r:?}");
    let r = c.cmd("NOOP").await;
    assert!(tagged(&r).starts_with("t2 OK"), "{r:?}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_sees_another_sessions_append_and_expunge() {
    let server = TestServer::start().await;
    let addr = server.running.as_ref().unwrap().imaps_addrs[0];
    let mut watcher = Imap::login(addr).await;
    let r = watcher.cmd("SELECT INBOX").await;
    assert!(r.iter().any(|l| l == "* 0 EXISTS\r\n"), "{r:?}");
    watcher.send(b"i1 IDLE\r\n").await;
    let cont = watcher.line().await;
    assert!(cont.starts_with("+ "), "{cont}");
    let mut writer = Imap::login(addr).await;
    let r = writer.append("INBOX", "", MSG).await;
    assert!(tagged(&r).contains("OK [APPENDUID "), "{r:?}");
    let seen = tokio::time::timeout(Duration::from_secs(5), watcher.line()).await.expect("EXISTS within 5 s");
    assert_eq!(seen, "* 1 EXISTS\r\n");
    let recent = watcher.line().await;
    assert_eq!(recent, "* 1 RECENT\r\n");
    writer.cmd("SELECT INBOX").await;
    writer.cmd("STORE 1 +FLAGS (\\Deleted)").await;
    let flags = tokio::time::timeout(Duration::from_secs(5), watcher.line()).await.unwrap();
    assert!(flags.starts_with("* 1 FETCH (FLAGS (\\Deleted\\") || flags.contains("\\Deleted"), "{flags}");
    writer.cmd("EXPUNGE").await;
    let gone = tokio::time::timeout(Duration::from_secs(5), watcher.line()).await.unwrap();
    assert_eq!(gone, "* 1 EXPUNGE\r\n");
    watcher.send(b"DONE\r\n").await;
    let r = watcher.until("i1").await;
    assert!(tagged(&r).starts_with("i1 OK"), "{r:?}");
    server.stop().await;
}

/// A keyword another session just set reaches this one's FETCH before its catch-up: FLAGS
/// must name it first (RFC 3501 §7.2.6; imaptest's stress found the FETCH without it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keyword_set_elsewhere_is_announced_before_a_fetch_shows_it() {
    let server = TestServer::start().await;
    let addr = server.running.as_ref().unwrap().imaps_addrs[0];
    let mut a = Imap::login(addr).await;
    a.append("INBOX", "", MSG).await;
    let r = a.cmd("SELECT INBOX").await;
    assert!(r.iter().any(|l| l.starts_with("* FLAGS (") && !l.contains("$Label4")), "{r:?}");
    let mut b = Imap::login(addr).await;
    b.cmd("SELECT INBOX").await;
    b.cmd("STORE 1 +FLAGS.SILENT ($Label4)").await;
    let r = a.cmd("FETCH 1 (FLAGS)").await;
    let flags = r.iter().position(|l| l.starts_with("* FLAGS (") && l.contains("$Label4"));
    let fetch = r.iter().position(|l| l.starts_with("* 1 FETCH") && l.contains("$Label4"));
    assert!(fetch.is_some() && flags < fetch && flags.is_some(), "FLAGS must come first: {r:?}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_is_held_back_from_expunge_until_allowed() {
    let server = TestServer::start().await;
    let addr = server.running.as_ref().unwrap().imaps_addrs[0];
    let mut a = Imap::login(addr).await;
    for _ in 0..2 {
        a.append("INBOX", "", MSG).await;
    }
    a.cmd("SELECT INBOX").await;
    let mut b = Imap::login(addr).await;
    b.cmd("SELECT INBOX").await;
    b.cmd("STORE 1 +FLAGS.SILENT (\\Deleted)").await;
    b.cmd("EXPUNGE").await;
    // RFC 3501 §7.4.1: no EXPUNGE during FETCH; the message numbers stay as they were.
    let r = a.cmd("FETCH 2 (UID)").await;
    assert!(!r.iter().any(|l| l.contains("EXPUNGE")), "{r:?}");
    assert!(r.iter().any(|l| l.starts_with("* 2 FETCH (UID 2)")), "{r:?}");
    let r = a.cmd("NOOP").await;
    assert!(r.iter().any(|l| l == "* 1 EXPUNGE\r\n"), "{r:?}");
    let r = a.cmd("FETCH 1 (UID)").await;
    assert!(r.iter().any(|l| l.starts_with("* 1 FETCH (UID 2)")), "{r:?}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_selected_mailbox_deleted_by_another_session_ends_the_session_with_bye() {
    let server = TestServer::start().await;
    let addr = server.running.as_ref().unwrap().imaps_addrs[0];
    let mut other = Imap::login(addr).await;
    for name in ["Projects", "Lists"] {
        let r = other.cmd(&format!("CREATE {name}")).await;
        assert!(tagged(&r).contains("OK"), "{r:?}");
    }
    // One session between commands, one in IDLE.
    let mut busy = Imap::login(addr).await;
    let r = busy.cmd("SELECT Projects").await;
    assert!(tagged(&r).contains("OK [READ-WRITE]"), "{r:?}");
    let mut idler = Imap::login(addr).await;
    let r = idler.cmd("SELECT Lists").await;
    assert!(tagged(&r).contains("OK [READ-WRITE]"), "{r:?}");
    idler.send(b"i1 IDLE\r\n").await;
    assert!(idler.line().await.starts_with("+ "));
    for name in ["Projects", "Lists"] {
        let r = other.cmd(&format!("DELETE {name}")).await;
        assert!(tagged(&r).contains("OK"), "{r:?}");
    }
    let bye = tokio::time::timeout(Duration::from_secs(5), idler.line()).await.expect("BYE within 5 s");
    assert!(bye.starts_with("* BYE ") && bye.contains("deleted") && bye.contains("(session "), "{bye}");
    assert_eq!(tokio::time::timeout(Duration::from_secs(5), idler.line()).await.unwrap(), "", "closed after BYE");
    let r = busy.cmd("NOOP").await;
    assert!(r.iter().any(|l| l.starts_with("* BYE ") && l.contains("deleted")), "{r:?}");
    assert_eq!(tokio::time::timeout(Duration::from_secs(5), busy.line()).await.unwrap(), "", "closed after BYE");
    // The session that deleted them goes on.
    let r = other.cmd("LIST \"\" \"*\"").await;
    assert!(tagged(&r).contains("OK") && !r.iter().any(|l| l.contains("Projects")), "{r:?}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_sessions_woken_by_one_change_share_its_answer_and_one_gets_recent() {
    let server = TestServer::start().await;
    let addr = server.running.as_ref().unwrap().imaps_addrs[0];
    let mut idlers = Vec::new();
    for _ in 0..4 {
        let mut c = Imap::login(addr).await;
        c.cmd("SELECT INBOX").await;
        c.send(b"i IDLE\r\n").await;
        assert!(c.line().await.starts_with("+ "));
        idlers.push(c);
    }
    let mut writer = Imap::login(addr).await;
    let r = writer.append("INBOX", "", MSG).await;
    assert!(tagged(&r).contains("OK [APPENDUID "), "{r:?}");
    let mut recent = 0;
    for c in &mut idlers {
        let exists = tokio::time::timeout(Duration::from_secs(5), c.line()).await.expect("EXISTS within 5 s");
        assert_eq!(exists, "* 1 EXISTS\r\n");
        let r = c.line().await;
        assert!(r == "* 1 RECENT\r\n" || r == "* 0 RECENT\r\n", "{r}");
        recent += usize::from(r == "* 1 RECENT\r\n");
    }
    assert_eq!(recent, 1, "\\Recent in exactly one session (RFC 3501 §2.3.2)");
    // A flag change reaches each of them, and each can go on from the shared answer.
    writer.cmd("SELECT INBOX").await;
    writer.cmd("STORE 1 +FLAGS ($Shared)").await;
    for c in &mut idlers {
        let mut lines = Vec::new();
        while !lines.iter().any(|l: &String| l.contains("FETCH")) {
            lines.push(tokio::time::timeout(Duration::from_secs(5), c.line()).await.expect("FETCH within 5 s"));
        }
        assert!(lines.iter().any(|l| l.starts_with("* FLAGS (") && l.contains("$Shared")), "{lines:?}");
        assert!(lines.iter().any(|l| l.starts_with("* 1 FETCH (FLAGS (") && l.contains("$Shared")), "{lines:?}");
        c.send(b"DONE\r\n").await;
        let r = c.until("i").await;
        assert!(tagged(&r).starts_with("i OK"), "{r:?}");
        let r = c.cmd("FETCH 1 (FLAGS)").await;
        assert!(r.iter().any(|l| l.contains("$Shared")), "{r:?}");
    }
    server.stop().await;
}
