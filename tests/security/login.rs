//! The login door under attack, over real sockets and TLS: AUTH before TLS, brute force, the
//! "log in as someone else to reset the counter" trick, guesses at one user from many
//! addresses, a storm of parallel wrong logins, a busy pool, and account changes reaching the
//! sessions already open (issue 8 items 5, 6 and 7).

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use gatepost::clock::SystemClock;

use crate::support::*;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

async fn server_with(submission: &str, login: &str) -> TestServer {
    let (submission, login) = (submission.to_string(), login.to_string());
    TestServer::start_with(
        move |t| t.replace("[submission]\n", &format!("[login]\n{login}\n[submission]\n{submission}\n")),
        Arc::new(SystemClock),
    )
    .await
}

/// One implicit-TLS connection from `from`, EHLO, AUTH PLAIN; the client and the AUTH reply.
async fn attempt(server: &TestServer, from: IpAddr, user: &str, password: &str) -> (Client, String) {
    let (mut c, greeting) = Client::implicit_tls_from(server.submissions, from).await;
    assert!(greeting.starts_with("220"), "{greeting}");
    c.cmd("EHLO attacker.example").await;
    let reply = c.auth_plain(user, password).await;
    (c, reply)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_before_tls_is_refused() {
    let server = TestServer::start().await;
    let (mut c, _) = Client::plain(server.submission).await;
    let ehlo = c.cmd("EHLO t").await;
    assert!(!ehlo.contains("AUTH"), "AUTH is not offered in plaintext: {ehlo}");
    let r = c.auth_plain(USER, PASSWORD).await;
    assert!(r.starts_with("538 5.7.11"), "{r}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn brute_force_locks_the_address() {
    let server = server_with("", "failures_before_lockout = 3").await;
    let from = ip("127.0.0.1");
    let (mut c, _) = attempt(&server, from, USER, "guess 1").await;
    for n in 2..=3 {
        let r = c.auth_plain(USER, &format!("guess {n}")).await;
        assert!(r.starts_with("535 5.7.8"), "{r}");
    }
    let r = c.auth_plain(USER, "guess 4").await;
    assert!(r.starts_with("454 4.7.0") && r.contains("failed logins"), "{r}");
    let (_, r) = attempt(&server, from, USER, PASSWORD).await;
    assert!(r.starts_with("454 4.7.0"), "even the right password waits out the lockout: {r}");
    let (_, r) = attempt(&server, ip("127.0.0.2"), USER, PASSWORD).await;
    assert!(r.starts_with("235"), "another address is not affected: {r}");
    server.stop().await;
}

/// Item 6: logging in as carol every 9 guesses does not reset the guesses at alice, and
/// guesses made at the same time all count (the limit is 10).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logging_in_as_another_user_does_not_reset_the_count() {
    let server = server_with("", "failures_before_lockout = 10").await;
    server.add_user("carol", "carol's password");
    let from = ip("127.0.0.1");
    let mut guesses = Vec::new();
    for n in 0..9 {
        let server = &server;
        guesses.push(async move { attempt(server, from, USER, &format!("guess {n}")).await.1 });
    }
    for r in futures_join(guesses).await {
        assert!(r.starts_with("535"), "{r}");
    }
    let (_, r) = attempt(&server, from, "carol", "carol's password").await;
    assert!(r.starts_with("235"), "{r}");
    let (_, r) = attempt(&server, from, USER, "guess 10").await;
    assert!(r.starts_with("535"), "{r}");
    let (_, r) = attempt(&server, from, USER, "guess 11").await;
    assert!(r.starts_with("454 4.7.0"), "locked out after ten guesses despite carol's login: {r}");
    server.stop().await;
}

/// Item 6: 30 simultaneous wrong logins from one address: only 10 are checked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simultaneous_guesses_count_before_they_are_checked() {
    let server = server_with("", "failures_before_lockout = 10").await;
    let mut clients = Vec::new();
    for _ in 0..30 {
        let (mut c, _) = Client::implicit_tls_from(server.submissions, ip("127.0.0.1")).await;
        c.cmd("EHLO t").await;
        clients.push(c);
    }
    let replies = futures_join(clients.iter_mut().map(|c| c.auth_plain(USER, "wrong"))).await;
    let checked = replies.iter().filter(|r| r.starts_with("535")).count();
    let throttled = replies.iter().filter(|r| r.starts_with("454 4.7.0")).count();
    assert_eq!((checked, throttled), (10, 20), "{replies:?}");
    server.stop().await;
}

/// Item 6: guesses at alice from many addresses slow her failure replies down (at most 5 s)
/// but never lock her out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guesses_at_one_user_delay_but_never_lock_her_out() {
    let server = server_with("", "failures_before_lockout = 10").await;
    let mut guesses = Vec::new();
    for n in 0..11 {
        let server = &server;
        guesses.push(async move { attempt(server, ip(&format!("127.0.1.{}", n + 1)), USER, "guess").await.1 });
    }
    for r in futures_join(guesses).await {
        assert!(r.starts_with("535"), "{r}");
    }
    let started = Instant::now();
    let (_, r) = attempt(&server, ip("127.0.1.100"), USER, "guess").await;
    assert!(r.starts_with("535"), "{r}");
    assert!(
        started.elapsed() >= Duration::from_millis(2900),
        "12th failure at alice waits 3 s: {:?}",
        started.elapsed()
    );
    let (_, r) = attempt(&server, ip("127.0.1.101"), USER, PASSWORD).await;
    assert!(r.starts_with("235"), "alice is never locked out: {r}");
    server.stop().await;
}

/// Item 5: 200 parallel wrong logins from 20 addresses never run more password checks at once
/// than the limit nor let more wait than the waiting room; every one is answered 535 or 454.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storm_of_wrong_logins_is_bounded() {
    let server = server_with("", "max_parallel_verifications = 2\nmax_waiting_verifications = 32").await;
    let mut clients = Vec::new();
    for n in 0..200 {
        let (mut c, _) = Client::implicit_tls_from(server.submissions, ip(&format!("127.0.2.{}", n % 20 + 1))).await;
        c.cmd("EHLO t").await;
        clients.push(c);
    }
    // Each a different guess: the same password checked at once waits at one gate (one
    // argon2 for all), which would keep this storm out of the pool altogether.
    let guesses: Vec<String> = (0..200).map(|n| format!("wrong {n}")).collect();
    let replies = futures_join(clients.iter_mut().zip(&guesses).map(|(c, g)| c.auth_plain(USER, g))).await;
    let refused = replies.iter().filter(|r| r.starts_with("535 5.7.8")).count();
    let busy = replies.iter().filter(|r| r.starts_with("454 4.7.0") && r.contains("being checked")).count();
    assert_eq!(refused + busy, 200, "{replies:?}");
    let stats = server.running().login.pool_stats();
    assert!(stats.most_running <= 2, "{stats:?}");
    assert!(stats.most_waiting_other <= 32, "{stats:?}");
    assert_eq!(stats.served as usize, refused, "{stats:?}");
    assert!(busy > 0, "a storm this size finds the pool full: {stats:?}");
    server.stop().await;
}

/// Item 5: while a storm keeps the strangers' waiting room full, an (IP, user) pair that logged
/// in successfully before waits in its own lane and gets in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_known_pair_gets_in_during_a_storm() {
    let server = server_with(
        "",
        "failures_before_lockout = 1000\nmax_parallel_verifications = 1\nmax_waiting_verifications = 4\ncache_ttl = \"0s\"",
    )
    .await;
    let home = ip("127.0.4.1");
    let (_, r) = attempt(&server, home, USER, PASSWORD).await;
    assert!(r.starts_with("235"), "{r}");
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut storm = Vec::new();
    for n in 0..20 {
        let (mut c, _) = Client::implicit_tls_from(server.submissions, ip(&format!("127.0.5.{}", n + 1))).await;
        c.cmd("EHLO t").await;
        let stop = stop.clone();
        storm.push(tokio::spawn(async move {
            let mut busy = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let r = c.auth_plain("mallory", "wrong").await;
                busy += usize::from(r.contains("being checked"));
                if r.is_empty() || r.starts_with("421") {
                    break;
                }
            }
            busy
        }));
    }
    while server.running().login.pool_stats().waiting_other < 4 {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let (mut alice, _) = Client::implicit_tls_from(server.submissions, home).await;
    alice.cmd("EHLO t").await;
    let mine = alice.auth_plain(USER, PASSWORD).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut busy = 0;
    for t in storm {
        busy += t.await.unwrap();
    }
    assert!(busy > 0, "the storm found the pool full");
    assert!(mine.starts_with("235"), "the known pair got in: {mine}");
    let stats = server.running().login.pool_stats();
    assert_eq!((stats.most_running, stats.most_waiting_other), (1, 4), "{stats:?}");
    server.stop().await;
}

/// Item 5: a login refused because the pool is busy is a 454 and does not count as a failure
/// (with one failure allowed, the same address logs in right after).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_refusal_is_454_and_not_a_failure() {
    let server = server_with(
        "",
        "failures_before_lockout = 1\nmax_parallel_verifications = 1\nmax_waiting_verifications = 0\ncache_ttl = \"0s\"",
    )
    .await;
    let mut clients = Vec::new();
    for n in 0..30 {
        let from = ip(&format!("127.0.3.{}", n + 1));
        let (mut c, _) = Client::implicit_tls_from(server.submissions, from).await;
        c.cmd("EHLO t").await;
        clients.push((from, c));
    }
    let replies = futures_join(clients.iter_mut().map(|(_, c)| c.auth_plain(USER, PASSWORD))).await;
    let busy: Vec<IpAddr> = clients
        .iter()
        .zip(&replies)
        .filter(|(_, r)| r.starts_with("454 4.7.0") && r.contains("being checked"))
        .map(|((from, _), _)| *from)
        .collect();
    assert!(!busy.is_empty(), "30 logins at once with one slot and no waiting room: {replies:?}");
    for from in busy.into_iter().take(3) {
        let (_, r) = attempt(&server, from, USER, PASSWORD).await;
        assert!(r.starts_with("235"), "a busy refusal did not count as a failure: {r}");
    }
    server.stop().await;
}

/// Item 7: `user disable` run by the CLI ends alice's open sessions within 2 s, idle or in the
/// middle of DATA, with 421 4.7.0; nothing is queued; a new login is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disable_ends_open_sessions() {
    let server = TestServer::start().await;
    let config = config_file(server.dir.path());
    let (mut idle, _) = Client::implicit_tls(server.submissions).await;
    idle.login().await;
    let (mut in_data, _) = Client::implicit_tls(server.submissions).await;
    in_data.login().await;
    for line in ["MAIL FROM:<alice@example.com>", "RCPT TO:<bob@example.net>", "DATA"] {
        assert!(!in_data.cmd(line).await.starts_with('5'));
    }
    in_data.send(b"From: alice@example.com\r\nSubject: half a message\r\n").await;
    let o = run_gatepost(&config, &["user", "disable", USER]);
    assert!(o.status.success(), "{o:?}");
    let disabled_at = Instant::now();
    for c in [&mut idle, &mut in_data] {
        let r = c.reply_within(Duration::from_secs(3)).await.expect("a reply");
        assert!(r.starts_with("421 4.7.0") && r.contains("account was changed"), "{r}");
        assert!(disabled_at.elapsed() < Duration::from_secs(2), "{:?}", disabled_at.elapsed());
        assert_eq!(c.read_reply().await, "", "and the connection is closed");
    }
    assert_eq!(server.store().message_count().unwrap(), 0, "nothing was queued");
    let (mut c, _) = Client::implicit_tls(server.submissions).await;
    c.cmd("EHLO t").await;
    let r = c.auth_plain(USER, PASSWORD).await;
    assert!(r.starts_with("535") && r.contains("disabled"), "{r}");
    server.stop().await;
}

/// Item 7: after `user passwd` an open session cannot submit (checked at MAIL, before the
/// change feed is even polled), the old password fails and the new one works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passwd_ends_open_sessions_and_the_old_password() {
    let server = TestServer::start().await;
    let config = config_file(server.dir.path());
    let (mut c, _) = Client::implicit_tls(server.submissions).await;
    c.login().await;
    let pw = server.dir.path().join("new-password");
    std::fs::write(&pw, "a brand new password\n").unwrap();
    let o = run_gatepost(&config, &["user", "passwd", USER, "--password-file", pw.to_str().unwrap()]);
    assert!(o.status.success(), "{o:?}");
    let r = c.submit(EMAIL, &["bob@example.net"], b"From: alice@example.com\r\n\r\nx\r\n").await;
    assert!(r.starts_with("421 4.7.0"), "{r}");
    assert_eq!(server.store().message_count().unwrap(), 0);
    let (_, r) = attempt(&server, ip("127.0.0.1"), USER, PASSWORD).await;
    assert!(r.starts_with("535"), "old password: {r}");
    let (_, r) = attempt(&server, ip("127.0.0.1"), USER, "a brand new password").await;
    assert!(r.starts_with("235"), "new password: {r}");
    server.stop().await;
}

/// Run futures at once and collect their outputs in order (no extra dependency).
async fn futures_join<F: std::future::Future>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    let mut pinned: Vec<_> = futures.into_iter().map(Box::pin).collect();
    let mut out: Vec<Option<F::Output>> = pinned.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (f, slot) in pinned.iter_mut().zip(out.iter_mut()) {
            if slot.is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => *slot = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending { std::task::Poll::Pending } else { std::task::Poll::Ready(()) }
    })
    .await;
    out.into_iter().map(|o| o.expect("every future finished")).collect()
}
