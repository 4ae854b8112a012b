//! Holding connections open as an attack, over real sockets: slowloris in DATA and in a
//! command line, idling before AUTH, and a few addresses filling every slot (issue 8 items
//! 11 and 16).

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use gatepost::clock::SystemClock;

use crate::support::*;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

async fn server_with(submission: &str) -> TestServer {
    let submission = submission.to_string();
    TestServer::start_with(
        move |t| t.replace("[submission]\n", &format!("[submission]\n{submission}\n")),
        Arc::new(SystemClock),
    )
    .await
}

/// Send `byte` every `every` until a reply comes (or `give_up` passes); the reply and when.
async fn trickle(c: &mut Client, byte: &[u8], every: Duration, give_up: Duration) -> (String, Duration) {
    let started = Instant::now();
    while started.elapsed() < give_up {
        c.send(byte).await;
        if let Some(r) = c.reply_within(every).await {
            return (r, started.elapsed());
        }
    }
    (String::new(), started.elapsed())
}

/// Item 11: `data_timeout` is the time for the whole DATA, not per read: a byte every 300 ms
/// does not keep a session in DATA past it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_in_data_is_cut_at_the_data_timeout() {
    let server = server_with("data_timeout = \"2s\"\ncommand_timeout = \"1m\"").await;
    let (mut c, _) = Client::implicit_tls(server.submissions).await;
    c.login().await;
    for line in ["MAIL FROM:<alice@example.com>", "RCPT TO:<bob@example.net>", "DATA"] {
        assert!(!c.cmd(line).await.starts_with('5'));
    }
    c.send(b"From: alice@example.com\r\n\r\n").await;
    let (r, after) = trickle(&mut c, b"x", Duration::from_millis(300), Duration::from_secs(8)).await;
    assert!(r.starts_with("421 4.4.2"), "{r:?} after {after:?}");
    assert!(after < Duration::from_secs(4), "{after:?}");
    assert_eq!(server.store().message_count().unwrap(), 0);
    server.stop().await;
}

/// Item 11: `command_timeout` covers sending one command line: a line trickled a byte at a
/// time is cut at the timeout although bytes keep coming.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_in_a_command_line_is_cut_at_the_command_timeout() {
    let server = server_with("command_timeout = \"2s\"\npreauth_timeout = \"1m\"").await;
    let (mut c, _) = Client::plain(server.submission).await;
    c.send(b"EHLO ").await;
    let (r, after) = trickle(&mut c, b"a", Duration::from_millis(300), Duration::from_secs(8)).await;
    assert!(r.starts_with("421 4.4.2"), "{r:?} after {after:?}");
    assert!(after < Duration::from_secs(4), "{after:?}");
    // Complete commands, each in time, keep a session alive past the timeout.
    let (mut c, _) = Client::implicit_tls(server.submissions).await;
    c.login().await;
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(800)).await;
        assert!(c.cmd("NOOP").await.starts_with("250"));
    }
    server.stop().await;
}

/// Item 16: before AUTH a connection has `preauth_timeout` in all, busy or not; after AUTH
/// only the command timeout applies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_must_log_in_within_the_preauth_timeout() {
    let server = server_with("preauth_timeout = \"2s\"\ncommand_timeout = \"1m\"").await;
    let started = Instant::now();
    let (mut c, _) = Client::plain(server.submission).await;
    let mut last = String::new();
    while started.elapsed() < Duration::from_secs(8) {
        last = c.cmd("NOOP").await;
        if !last.starts_with("250") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(last.starts_with("421 4.4.2"), "{last:?}");
    assert!(started.elapsed() < Duration::from_secs(4), "{:?}", started.elapsed());
    let (mut c, _) = Client::implicit_tls(server.submissions).await;
    c.login().await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(c.cmd("NOOP").await.starts_with("250"), "logged in: the pre-login time no longer applies");
    server.stop().await;
}

/// Item 16 with limits 100/50: two addresses taking all the connections they can do not stop
/// a third from getting its 220.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_greedy_addresses_do_not_lock_out_a_third() {
    let server = server_with("max_connections = 100\nmax_connections_per_ip = 50").await;
    let mut held = Vec::new();
    let mut refused = Vec::new();
    for greedy in ["127.0.0.2", "127.0.0.3"] {
        for _ in 0..50 {
            let (c, greeting) = Client::plain_from(server.submission, ip(greedy)).await;
            if greeting.starts_with("220") {
                held.push(c);
            } else {
                refused.push(greeting);
            }
        }
    }
    assert!(held.len() < 100, "the greedy pair did not get every slot");
    assert!(refused.iter().all(|r| r.starts_with("421 4.7.0") && r.contains("nearly full")), "{refused:?}");
    let (mut third, greeting) = Client::plain_from(server.submission, ip("127.0.0.4")).await;
    assert!(greeting.starts_with("220"), "{greeting}");
    assert!(third.cmd("EHLO third.example").await.starts_with("250"));
    server.stop().await;
}
