//! Faults a real server does not produce on demand, from a scripted proxy in front of the
//! private Dovecot: the connection cut in the middle of a FETCH, and a server that stops
//! answering. Each pass fails with a clear error and the next one, over a good connection,
//! finishes the import with nothing lost and nothing twice.

use std::time::{Duration, Instant};

use gatepost::net::server_url::{Protocol, ServerUrl};
use gatepost::sync::account::full_pass;
use gatepost::sync::connect::{Target, connect};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::dovecot::{Dovecot, available, cert};
use crate::sync::{LOGIN, PASSWORD, append, local, pass, rule, session};

#[derive(Clone, Copy)]
enum Fault {
    /// Close both sides once this many bytes came from the server.
    Cut(usize),
    /// Stop passing the server's bytes on (and keep the connection open) after this many.
    Stall(usize),
}

/// A proxy to `port` for one connection, with `fault`; returns its port.
async fn proxy(port: u16, fault: Fault) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let own = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let (mut client, _) = listener.accept().await.unwrap();
        let mut server = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let (mut cr, mut cw) = client.split();
        let (mut sr, mut sw) = server.split();
        let up = async {
            let _ = tokio::io::copy(&mut cr, &mut sw).await;
        };
        let down = async {
            let mut passed = 0usize;
            let mut buf = vec![0u8; 16 << 10];
            loop {
                let n = match sr.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                let limit = match fault {
                    Fault::Cut(l) | Fault::Stall(l) => l,
                };
                if passed + n > limit {
                    match fault {
                        Fault::Cut(_) => return,
                        Fault::Stall(_) => {
                            tokio::time::sleep(Duration::from_secs(3600)).await;
                            return;
                        }
                    }
                }
                passed += n;
                if cw.write_all(&buf[..n]).await.is_err() {
                    return;
                }
            }
        };
        tokio::select! { _ = up => {}, _ = down => {} }
    });
    own
}

fn big(n: usize) -> Vec<u8> {
    let mut m =
        format!("From: bob@example.org\r\nSubject: big {n}\r\nMessage-ID: <big{n}@example.org>\r\n\r\n").into_bytes();
    // ~600 KB of varied text (compressible only so far), so a batch is many megabytes.
    let mut x = n as u64 * 2_654_435_761 + 1;
    while m.len() < 600_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        m.extend_from_slice(format!("{x:016x} line of message {n}\r\n").as_bytes());
    }
    m
}

#[tokio::test]
async fn a_cut_and_a_stall_mid_fetch_fail_the_pass_and_the_next_one_finishes_the_job() {
    if !available() {
        return;
    }
    let dv = Dovecot::start(&[(LOGIN, PASSWORD)]);
    let mut src = session(&dv).await;
    const N: usize = 60;
    for n in 0..N {
        append(&mut src, "INBOX", &big(n), None).await;
    }
    let l = local(rule());
    for fault in [Fault::Cut(20 << 20), Fault::Stall(8 << 20)] {
        let port = proxy(dv.imap_port, fault).await;
        let url = ServerUrl::parse(&format!("imap://127.0.0.1:{port}"), &[Protocol::Imap], "x").unwrap();
        let tls = std::sync::Arc::new(gatepost::relay::trust::client_config(Some(&cert()), "--ca-file").unwrap());
        let t = Target { url: &url, login: LOGIN, password: PASSWORD, tls, step_timeout: Duration::from_secs(5) };
        let mut s = connect(&t).await.unwrap().session;
        let started = Instant::now();
        let e = full_pass(&mut s, &l.ctx).await.expect_err("the pass cannot finish through this proxy");
        let text = e.to_string();
        match fault {
            Fault::Cut(_) => assert!(!text.contains("timed out"), "a cut is not a timeout: {text}"),
            Fault::Stall(_) => {
                assert!(text.contains("timed out"), "{text}");
                assert!(started.elapsed() < Duration::from_secs(30), "the stall was noticed late");
            }
        }
        let filed = l.messages("Accounts/Work/INBOX").len();
        assert!(filed < N, "{filed} filed before the fault");
    }
    let partial = l.messages("Accounts/Work/INBOX").len();
    assert!(partial > 0, "whole batches before the faults are kept");
    let r = pass(&l, &dv).await;
    assert_eq!(r.filed as usize, N - partial, "only what was missing: {r:?}");
    let mut bodies = l.bodies("Accounts/Work/INBOX");
    assert_eq!(bodies.len(), N);
    bodies.dedup();
    assert_eq!(bodies.len(), N, "nothing twice");
    assert_eq!(bodies, {
        let mut b: Vec<Vec<u8>> = (0..N).map(big).collect();
        b.sort();
        b
    });
}

/// A proxy to `port` for any number of connections, passing the server's bytes at most
/// `rate` bytes a second (so an import takes long enough to be killed in the middle).
pub async fn slow_proxy(port: u16, rate: usize) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let own = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((mut client, _)) = listener.accept().await else { return };
            tokio::spawn(async move {
                let Ok(mut server) = TcpStream::connect(("127.0.0.1", port)).await else { return };
                let (mut cr, mut cw) = client.split();
                let (mut sr, mut sw) = server.split();
                let up = async {
                    let _ = tokio::io::copy(&mut cr, &mut sw).await;
                };
                let down = async {
                    let mut buf = vec![0u8; 16 << 10];
                    loop {
                        let n = match sr.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => n,
                        };
                        if cw.write_all(&buf[..n]).await.is_err() {
                            return;
                        }
                        tokio::time::sleep(Duration::from_secs_f64(n as f64 / rate as f64)).await;
                    }
                };
                tokio::select! { _ = up => {}, _ = down => {} }
            });
        }
    });
    own
}

// Multi-threaded: the proxy runs while this thread waits for the CLI.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_during_import_resumes_it_with_nothing_lost_or_twice() {
    if !available() {
        return;
    }
    use crate::serve::{Gatepost, gatepost, text};
    let dv = Dovecot::start(&[(LOGIN, PASSWORD)]);
    let mut src = session(&dv).await;
    const N: usize = 600;
    let body = |n: usize| {
        let mut m = crate::sync::message(n, "kill");
        m.extend(std::iter::repeat_n(b'x', 10_000));
        m.extend_from_slice(b"\r\n");
        m
    };
    for n in 0..N {
        append(&mut src, "INBOX", &body(n), None).await;
    }
    let port = slow_proxy(dv.imap_port, 1 << 20).await;
    let mut g = Gatepost::new("");
    let pw = g.dir.path().join("work-pw").display().to_string();
    let url = format!("imap://127.0.0.1:{port}");
    let o = gatepost(
        &g.config,
        &["account", "add", "alice", "--name", "Work", "--address", LOGIN, "--imap", &url, "--password-file", &pw],
    );
    assert!(o.status.success(), "{}", text(&o));
    let imported = |g: &Gatepost| {
        let o = gatepost(&g.config, &["account", "show", "alice", "Work", "--json"]);
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        v["sync"]["imported_messages"].as_u64().unwrap_or(0)
    };
    let mut mid_import = 0;
    // The first batch (500 messages, 5 MB) takes about 5 s through the proxy.
    for wait in [6000, 1000, 2500] {
        g.serve();
        tokio::time::sleep(Duration::from_millis(wait)).await;
        g.kill(); // SIGKILL
        let n = imported(&g);
        if n > 0 && (n as usize) < N {
            mid_import += 1;
        }
    }
    assert!(mid_import > 0, "no kill landed in the middle of the import");
    g.serve();
    let o = gatepost(&g.config, &["account", "show", "alice", "Work", "--follow"]);
    assert!(o.status.success() && text(&o).contains("first import done"), "{}\n{}", text(&o), g.log());
    let mut c = g.imap().await;
    let m = c.select("Accounts/Work/INBOX").await.unwrap();
    assert_eq!(m.exists as usize, N, "every message once");
    use futures_util::StreamExt;
    let f: Vec<_> = c.uid_fetch("1:*", "BODY.PEEK[]").await.unwrap().collect().await;
    let mut bodies: Vec<Vec<u8>> = f.iter().map(|f| f.as_ref().unwrap().body().unwrap().to_vec()).collect();
    bodies.sort();
    bodies.dedup();
    assert_eq!(bodies.len(), N, "no message twice");
    let o = gatepost(&g.config, &["store", "verify"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(imported(&g) as usize, N);
}

/// A scripted IMAP server that announces a 100-byte message and then sends a literal of
/// 200 MiB for it: the budget of the batch stops the read long before.
async fn lying_server() -> (u16, tokio::task::JoinHandle<usize>) {
    use tokio::io::AsyncBufReadExt;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        let (sock, _) = listener.accept().await.unwrap();
        let (r, mut w) = sock.into_split();
        let mut lines = tokio::io::BufReader::new(r).lines();
        w.write_all(b"* OK [CAPABILITY IMAP4rev1 IDLE] liar ready\r\n").await.unwrap();
        let mut sent = 0usize;
        while let Ok(Some(line)) = lines.next_line().await {
            let (tag, rest) = line.split_once(' ').unwrap_or((&line, ""));
            let upper = rest.to_ascii_uppercase();
            let reply: String = if upper.starts_with("CAPABILITY") {
                format!("* CAPABILITY IMAP4rev1 IDLE\r\n{tag} OK done\r\n")
            } else if upper.starts_with("LIST") {
                format!("* LIST () \"/\" INBOX\r\n{tag} OK done\r\n")
            } else if upper.starts_with("EXAMINE") || upper.starts_with("SELECT") {
                format!("* 1 EXISTS\r\n* OK [UIDVALIDITY 7] v\r\n* OK [UIDNEXT 2] n\r\n{tag} OK [READ-ONLY] done\r\n")
            } else if upper.contains("BODY.PEEK[]") {
                w.write_all(
                    b"* 1 FETCH (UID 1 FLAGS () INTERNALDATE \"01-Dec-2026 10:00:00 +0000\" BODY[] {209715200}\r\n",
                )
                .await
                .unwrap();
                let chunk = vec![b'x'; 1 << 16];
                while sent < 200 << 20 {
                    if w.write_all(&chunk).await.is_err() {
                        return sent;
                    }
                    sent += chunk.len();
                }
                return sent;
            } else if upper.contains("RFC822.SIZE") {
                format!("* 1 FETCH (UID 1 RFC822.SIZE 100)\r\n{tag} OK done\r\n")
            } else if upper.starts_with("UID FETCH") {
                format!("* 1 FETCH (UID 1 FLAGS ())\r\n{tag} OK done\r\n")
            } else if upper.starts_with("LOGOUT") {
                format!("* BYE\r\n{tag} OK done\r\n")
            } else {
                format!("{tag} OK done\r\n")
            };
            if w.write_all(reply.as_bytes()).await.is_err() {
                break;
            }
        }
        sent
    });
    (port, task)
}

#[tokio::test]
async fn a_server_sending_more_than_it_announced_is_cut_off_within_the_budget() {
    let (port, server) = lying_server().await;
    let l = local(rule());
    let url = ServerUrl::parse(&format!("imap://127.0.0.1:{port}"), &[Protocol::Imap], "x").unwrap();
    let tls = std::sync::Arc::new(gatepost::relay::trust::client_config(Some(&cert()), "--ca-file").unwrap());
    let t = Target { url: &url, login: "a", password: "b", tls, step_timeout: Duration::from_secs(5) };
    let mut s = connect(&t).await.unwrap().session;
    let e = full_pass(&mut s, &l.ctx).await.expect_err("a lying server cannot finish a pass");
    assert!(e.to_string().contains("sent more than the command could need"), "{e}");
    drop(s);
    let sent = server.await.unwrap();
    assert!(sent < 64 << 20, "read far past the budget: {sent} bytes");
    assert!(l.messages("Accounts/Work/INBOX").is_empty());
}
