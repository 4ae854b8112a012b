//! Table test of the submission dialogue: every reply path of the session, without sockets.
//! Each case is a script of client lines and the reply each must get (code and enhanced
//! code, plus a fragment of the text where the wording matters).

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use jiff::{SignedDuration, Timestamp};

use super::*;
use crate::queue::Accepted;

pub(super) const NOW: &str = "2026-11-23T10:00:00Z";

pub(super) fn settings() -> Arc<SessionSettings> {
    Arc::new(SessionSettings {
        hostname: "gp.test".into(),
        max_message_size: 2000,
        max_recipients: 3,
        max_line_length: 1000,
        daily_hour: jiff::civil::time(8, 0, 0, 0),
        timezone: jiff::tz::TimeZone::UTC,
        timezone_name: "UTC".into(),
        max_hold: SignedDuration::from_hours(24 * 400),
        starttls_available: true,
        rewrite_from: true,
    })
}

pub(super) fn alice() -> AuthedUser {
    AuthedUser { name: "alice".into(), addresses: vec!["alice@example.com".into()], timezone: None, send_as: vec![] }
}

/// Drives a session like the real driver does, answering its requests from fixed tables.
pub(super) struct Harness {
    pub(super) s: Session,
    pub(super) delivered: Vec<Submission>,
}

impl Harness {
    pub(super) fn new(tls: bool) -> Self {
        Self::with_settings(tls, settings())
    }

    pub(super) fn with_settings(tls: bool, settings: Arc<SessionSettings>) -> Self {
        let conn = ConnInfo {
            session_id: "sid1".into(),
            peer: "192.0.2.7:40000".parse().unwrap(),
            tls: tls.then(|| "TLSv1.3".to_string()),
            trusted_user: None,
        };
        let mut h = Harness { s: Session::new(settings, conn), delivered: Vec::new() };
        let greeting = h.run(b"");
        assert!(greeting.starts_with("220 gp.test ESMTP"), "{greeting}");
        h
    }

    fn trusted() -> Self {
        let conn = ConnInfo {
            session_id: "sid2".into(),
            peer: "127.0.0.1:40000".parse().unwrap(),
            tls: None,
            trusted_user: Some(alice()),
        };
        let mut h = Harness { s: Session::new(settings(), conn), delivered: Vec::new() };
        h.run(b"");
        h
    }

    /// Feed bytes and return everything the session wrote until it wants more input.
    pub(super) fn run(&mut self, input: &[u8]) -> String {
        let now: Timestamp = NOW.parse().unwrap();
        self.s.receive(input);
        let mut out = Vec::new();
        loop {
            let step = self.s.step(now);
            out.extend(self.s.take_output());
            match step {
                Step::NeedInput | Step::Close => break,
                Step::StartTls => self.s.tls_started("TLSv1.3"),
                Step::Authenticate { username, password } => {
                    let outcome = match (username.as_str(), password.as_str()) {
                        ("alice", "secret") => AuthOutcome::Accepted(alice()),
                        ("carol", "secret") => AuthOutcome::Refused(LoginRefusal::Unverified),
                        ("dave", "secret") => AuthOutcome::Refused(LoginRefusal::Disabled),
                        ("eve", _) => AuthOutcome::Throttled,
                        _ => AuthOutcome::Refused(LoginRefusal::BadCredentials),
                    };
                    self.s.auth_done(outcome);
                }
                Step::Deliver(sub) => {
                    if sub.subject.as_deref() == Some("store-fails") {
                        self.s.delivered(Err("disk full".into()));
                    } else {
                        let mut times: Vec<Timestamp> = sub.recipients.iter().map(|r| r.release_at).collect();
                        times.sort();
                        times.dedup();
                        self.s.delivered(Ok(Accepted {
                            id: "01JDTEST000000000000000000".parse().unwrap(),
                            release_times: times,
                        }));
                    }
                    self.delivered.push(*sub);
                }
            }
        }
        String::from_utf8(out).unwrap()
    }

    pub(super) fn login(&mut self) {
        self.run(b"EHLO client.test\r\n");
        let r = self.run(format!("AUTH PLAIN {}\r\n", STANDARD.encode("\0alice\0secret")).as_bytes());
        assert!(r.starts_with("235 2.7.0"), "{r}");
    }
}

pub(super) fn plain(user: &str, pw: &str) -> String {
    format!("AUTH PLAIN {}\r\n", STANDARD.encode(format!("\0{user}\0{pw}")))
}

/// (input, expected reply prefix, fragment the reply must contain)
pub(super) type Script<'a> = &'a [(&'a str, &'a str, &'a str)];

pub(super) fn check(mut h: Harness, script: Script) -> Harness {
    for (input, prefix, fragment) in script {
        let reply = h.run(input.as_bytes());
        assert!(reply.starts_with(prefix), "after {input:?}: expected {prefix:?}, got {reply:?}");
        assert!(reply.contains(fragment), "after {input:?}: expected {fragment:?} in {reply:?}");
        if prefix.as_bytes().first().is_some_and(|c| *c == b'4' || *c == b'5') {
            assert!(reply.contains("[session sid"), "error reply without session id: {reply:?}");
        }
    }
    h
}

pub(super) const MSG: &str =
    "From: Alice <alice@example.com>\r\nTo: bob@example.net\r\nSubject: hi\r\n\r\nhello\r\n.\r\n";

#[test]
fn plaintext_phase() {
    check(
        Harness::new(false),
        &[
            ("MAIL FROM:<alice@example.com>\r\n", "503 5.5.1", "EHLO first"),
            ("EHLO client.test\r\n", "250-gp.test", "STARTTLS"),
            ("AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n", "538 5.7.11", "only offered over TLS"),
            ("MAIL FROM:<alice@example.com>\r\n", "530 5.7.0", "STARTTLS, then AUTH"),
            ("HELO old.client\r\n", "250 gp.test", ""),
            ("NOOP\r\n", "250 2.0.0", ""),
            ("VRFY bob\r\n", "252 2.5.0", ""),
            ("HELP\r\n", "214 2.0.0", "Deliver-On"),
            ("EXPN list\r\n", "502 5.5.1", ""),
            ("BDAT 10 LAST\r\n", "502 5.5.1", "DATA"),
            ("FROB\r\n", "500 5.5.1", "unknown command"),
            ("RSET\r\n", "250 2.0.0", ""),
            ("QUIT\r\n", "221 2.0.0", ""),
        ],
    );
}

#[test]
fn ehlo_advertises_auth_only_after_tls() {
    let mut h = Harness::new(false);
    let before = h.run(b"EHLO c\r\n");
    assert!(before.contains("STARTTLS") && !before.contains("AUTH"), "{before}");
    for ext in [
        "PIPELINING",
        "SIZE 2000",
        "8BITMIME",
        "ENHANCEDSTATUSCODES",
        "SMTPUTF8",
        "FUTURERELEASE 34560000 2027-12-28T10:00:00Z",
    ] {
        assert!(before.contains(ext), "{ext} missing in {before}");
    }
    let r = h.run(b"STARTTLS\r\n");
    assert!(r.starts_with("220 2.0.0"), "{r}");
    let after = h.run(b"EHLO c\r\n");
    assert!(after.contains("AUTH PLAIN LOGIN") && !after.contains("STARTTLS"), "{after}");
    check(h, &[("STARTTLS\r\n", "503 5.5.1", "already")]);
}

#[test]
fn helo_name_is_echoed_printable_only() {
    // found by fuzzing: control characters in EHLO were echoed into the reply
    let mut h = Harness::new(false);
    let r = h.run(b"EHLO client\0\x1b[2J\x07.test\r\n");
    assert!(r.starts_with("250-gp.test greets client??[2J?.test [192.0.2.7]\r\n"), "{r:?}");
    assert!(!r.bytes().any(|b| b.is_ascii_control() && b != b'\r' && b != b'\n'));
}

#[test]
fn starttls_discards_pipelined_plaintext_and_resets() {
    let mut h = Harness::new(false);
    h.run(b"EHLO c\r\n");
    // Command injection (CVE-2011-0411 style): the MAIL after STARTTLS must never be answered.
    let r = h.run(b"STARTTLS\r\nMAIL FROM:<alice@example.com>\r\n");
    assert_eq!(r.matches("\r\n").count(), 1, "{r}");
    check(h, &[("MAIL FROM:<alice@example.com>\r\n", "503 5.5.1", "EHLO first")]);
}

#[test]
fn auth_paths() {
    check(
        Harness::new(true),
        &[
            ("AUTH PLAIN x\r\n", "503 5.5.1", "EHLO first"),
            ("EHLO c\r\n", "250-gp.test", "AUTH PLAIN LOGIN"),
            (&plain("alice", "wrong"), "535 5.7.8", "wrong user name or password"),
            (&plain("carol", "secret"), "535 5.7.8", "not verified"),
            (&plain("dave", "secret"), "535 5.7.8", "disabled"),
            (&plain("eve", "x"), "454 4.7.0", "too many failed logins"),
            ("AUTH CRAM-MD5\r\n", "504 5.5.4", "PLAIN or LOGIN"),
            ("AUTH PLAIN\r\n", "334 ", ""),
            ("*\r\n", "501 5.0.0", "cancelled"),
            ("AUTH PLAIN !!notbase64\r\n", "501 5.5.4", "base64"),
            ("AUTH PLAIN\r\n", "334 ", ""),
            (&format!("{}\r\n", STANDARD.encode("bob\0alice\0secret")), "501 5.5.4", "authorization identity"),
            ("AUTH LOGIN\r\n", "334 VXNlcm5hbWU6", ""),
            (&format!("{}\r\n", STANDARD.encode("alice")), "334 UGFzc3dvcmQ6", ""),
            (&format!("{}\r\n", STANDARD.encode("secret")), "235 2.7.0", ""),
            (&plain("alice", "secret"), "503 5.5.1", "already authenticated"),
        ],
    );
}

#[test]
fn auth_login_with_initial_response() {
    let h = check(Harness::new(true), &[("EHLO c\r\n", "250-", "")]);
    check(
        h,
        &[
            (&format!("AUTH LOGIN {}\r\n", STANDARD.encode("alice")), "334 UGFzc3dvcmQ6", ""),
            (&format!("{}\r\n", STANDARD.encode("secret")), "235 2.7.0", ""),
        ],
    );
}

#[test]
fn sender_rules_never_an_open_relay() {
    let mut h = Harness::new(true);
    h.login();
    check(
        h,
        &[
            ("RCPT TO:<bob@example.net>\r\n", "503 5.5.1", "MAIL first"),
            ("DATA\r\n", "503 5.5.1", "MAIL first"),
            ("MAIL FROM:<mallory@example.com>\r\n", "550 5.7.1", "alice may send as <alice@example.com>"),
            ("MAIL FROM:<>\r\n", "550 5.7.1", "not yours"),
            ("MAIL FROM:<ALICE@example.COM> SIZE=1000\r\n", "250 2.1.0", ""),
            ("MAIL FROM:<alice@example.com>\r\n", "503 5.5.1", "already open"),
            ("DATA\r\n", "554 5.5.1", "no valid recipients"),
            ("RCPT TO:<bob>\r\n", "501 5.1.3", "not valid"),
            ("RCPT TO:<bob@>\r\n", "501 5.1.3", ""),
            ("RCPT TO:<bob@example.net>\r\n", "250 2.1.5", ""),
            ("DATA\r\n", "354 ", "<CR><LF>.<CR><LF>"),
            ("From: mallory@example.com\r\n\r\nx\r\n.\r\n", "550 5.7.1", "From <mallory@example.com> is not yours"),
            ("MAIL FROM:<alice@example.com>\r\n", "250 2.1.0", ""),
            ("RCPT TO:<bob@example.net>\r\n", "250 2.1.5", ""),
            ("DATA\r\n", "354 ", ""),
            ("Subject: no from\r\n\r\nx\r\n.\r\n", "550 5.7.1", "no From address"),
        ],
    );
}

#[test]
fn limits() {
    let mut h = Harness::new(true);
    h.login();
    let long_line = format!("From: alice@example.com\r\n\r\n{}\r\n.\r\n", "x".repeat(1200));
    let big = format!("From: alice@example.com\r\n\r\n{}.\r\n", "0123456789012345678\r\n".repeat(120));
    let h = check(
        h,
        &[
            ("MAIL FROM:<alice@example.com> SIZE=5000\r\n", "552 5.3.4", "limit of 2000"),
            ("MAIL FROM:<alice@example.com>\r\n", "250 2.1.0", ""),
            ("RCPT TO:<a@example.net>\r\n", "250 2.1.5", ""),
            ("RCPT TO:<b@example.net>\r\n", "250 2.1.5", ""),
            ("RCPT TO:<c@example.net>\r\n", "250 2.1.5", ""),
            ("RCPT TO:<d@example.net>\r\n", "452 4.5.3", "limit 3"),
            ("DATA\r\n", "354 ", ""),
            (&long_line, "554 5.6.0", "longer than 1000"),
            ("MAIL FROM:<alice@example.com>\r\n", "250 2.1.0", ""),
            ("RCPT TO:<a@example.net>\r\n", "250 2.1.5", ""),
            ("DATA\r\n", "354 ", ""),
            (&big, "552 5.3.4", "exceeds the limit"),
            (&format!("NOOP {}\r\n", "x".repeat(5000)), "500 5.5.2", "longer than 4096"),
            ("NOOP\r\n", "250 2.0.0", ""),
        ],
    );
    assert!(h.delivered.is_empty(), "nothing over a limit may be queued");
}

#[test]
fn too_many_errors_closes() {
    let mut h = Harness::new(false);
    let r = h.run("FROB\r\n".repeat(MAX_ERRORS as usize + 5).as_bytes());
    assert!(r.contains("421 4.7.0 too many errors"), "{r}");
    assert!(h.s.is_closed());
    assert_eq!(r.matches("500 5.5.1").count(), MAX_ERRORS as usize);
}

#[test]
fn scheduled_submission_names_id_and_release_time() {
    let mut h = Harness::new(true);
    h.login();
    let msg = "From: alice@example.com\r\nDeliver-On: 2026-12-25\r\nSubject: xmas\r\n\r\nho\r\n.\r\n";
    let script = format!("MAIL FROM:<alice@example.com>\r\nRCPT TO:<bob@example.net>\r\nDATA\r\n{msg}");
    // pipelined: all replies in one flush
    let r = h.run(script.as_bytes());
    assert!(
        r.contains("250 2.0.0 queued as 01JDTEST000000000000000000; will be delivered 2026-12-25 08:00 UTC"),
        "{r}"
    );
    let sub = &h.delivered[0];
    assert_eq!(sub.recipients[0].release_at, "2026-12-25T08:00:00Z".parse::<Timestamp>().unwrap());
    assert_eq!(sub.body, msg.trim_end_matches(".\r\n").as_bytes());
    assert_eq!(sub.tls.as_deref(), Some("TLSv1.3"));
    assert_eq!(sub.user, "alice");
}

#[test]
fn schedule_errors_are_5xx_and_quote_the_value() {
    let mut h = Harness::new(true);
    h.login();
    check(
        h,
        &[
            ("MAIL FROM:<alice@example.com> HOLDUNTIL=2020-01-01T00:00:00Z\r\n", "501 5.5.4", "2020"),
            ("MAIL FROM:<alice@example.com> HOLDFOR=99999999\r\n", "501 5.5.4", ""),
            ("MAIL FROM:<alice@example.com>\r\n", "250 2.1.0", ""),
            ("RCPT TO:<bob+2026-02-30@example.net>\r\n", "553 5.1.3", "2026-02-30"),
            ("RCPT TO:<bob+news@example.net>\r\n", "250 2.1.5", ""),
            ("DATA\r\n", "354 ", ""),
            ("From: alice@example.com\r\nDeliver-On: 2026-13-45\r\n\r\nx\r\n.\r\n", "554 5.6.0", "2026-13-45"),
            ("MAIL FROM:<alice@example.com> HOLDFOR=3600\r\n", "250 2.1.0", ""),
            ("RCPT TO:<bob@example.net>\r\n", "250 2.1.5", ""),
            ("DATA\r\n", "354 ", ""),
            ("From: alice@example.com\r\nDeliver-On: 2026-12-25\r\n\r\nx\r\n.\r\n", "554 5.6.0", ""),
        ],
    );
}

#[test]
fn per_recipient_dates_and_immediate() {
    let mut h = Harness::new(true);
    h.login();
    let script = "MAIL FROM:<alice@example.com>\r\nRCPT TO:<bob+2026-12-24@example.net>\r\nRCPT TO:<carol@example.net>\r\nDATA\r\n";
    h.run(script.as_bytes());
    let r = h.run(MSG.as_bytes());
    assert!(r.contains("will be delivered now and 2026-12-24 08:00 UTC"), "{r}");
    let rc = &h.delivered[0].recipients;
    assert_eq!(rc[0].address, "bob@example.net");
    assert_eq!(rc[0].original, "bob+2026-12-24@example.net");
    assert_eq!(rc[1].release_at, NOW.parse::<Timestamp>().unwrap());
}

#[test]
fn store_failure_is_temporary_and_transaction_is_reset() {
    let mut h = Harness::new(true);
    h.login();
    h.run(b"MAIL FROM:<alice@example.com>\r\nRCPT TO:<bob@example.net>\r\nDATA\r\n");
    let r = h.run(b"From: alice@example.com\r\nSubject: store-fails\r\n\r\nx\r\n.\r\n");
    assert!(r.starts_with("451 4.3.0"), "{r}");
    check(h, &[("RCPT TO:<bob@example.net>\r\n", "503 5.5.1", "MAIL first")]);
}

#[test]
fn trusted_network_submits_without_auth() {
    let mut h = Harness::trusted();
    let r = h.run(
        format!("EHLO local\r\nMAIL FROM:<alice@example.com>\r\nRCPT TO:<bob@example.net>\r\nDATA\r\n{MSG}").as_bytes(),
    );
    assert!(r.contains("250 2.0.0 queued as"), "{r}");
    assert_eq!(h.delivered[0].tls, None);
    // A client on a trusted network may still authenticate (Thunderbird always does).
    let mut h = Harness::trusted();
    let r = h.run(b"EHLO local\r\nSTARTTLS\r\n");
    assert!(r.ends_with("220 2.0.0 ready to start TLS\r\n"), "{r}");
    h.run(b"EHLO local\r\n");
    let r = h.run(plain("alice", "secret").as_bytes());
    assert!(r.starts_with("235 2.7.0"), "{r}");
    let r = h.run(plain("alice", "secret").as_bytes());
    assert!(r.starts_with("503 5.5.1"), "{r}");
}

#[test]
fn rset_keeps_authentication() {
    let mut h = Harness::new(true);
    h.login();
    check(
        h,
        &[
            ("MAIL FROM:<alice@example.com>\r\n", "250 2.1.0", ""),
            ("RSET\r\n", "250 2.0.0", ""),
            ("MAIL FROM:<alice@example.com>\r\n", "250 2.1.0", ""),
        ],
    );
}

#[test]
fn timeout_and_shutdown_replies() {
    let mut h = Harness::new(false);
    assert!(matches!(h.s.timed_out(), Step::Close));
    assert!(String::from_utf8(h.s.take_output()).unwrap().starts_with("421 4.4.2"));
    let mut h = Harness::new(false);
    assert!(h.s.is_idle());
    h.s.shutting_down();
    assert!(String::from_utf8(h.s.take_output()).unwrap().starts_with("421 4.3.2"));
}

/// Every split point of a whole pipelined session gives the same replies.
#[test]
fn input_split_anywhere_gives_same_replies() {
    let script = format!(
        "EHLO c\r\n{}MAIL FROM:<alice@example.com>\r\nRCPT TO:<bob@example.net>\r\nDATA\r\n{MSG}QUIT\r\n",
        plain("alice", "secret")
    );
    let bytes = script.as_bytes();
    let whole = Harness::new(true).run(bytes);
    for split in 1..bytes.len() {
        let mut h = Harness::new(true);
        let mut r = h.run(&bytes[..split]);
        r += &h.run(&bytes[split..]);
        assert_eq!(r, whole, "split at {split}");
    }
}
