//! The store as an attacker (or a bad disk) leaves it: a truncated database, pages overwritten
//! with random bytes, bodies without their database; a second server on the same data
//! directory; and who may read the data tree. Everything runs the real `gatepost` binary.

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::support::*;

pub fn gatepost(config: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gatepost"))
        .arg("--config")
        .arg(config)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

pub fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// A config for a `gatepost serve` child on fixed free ports; `extra` goes before the tables.
pub fn serve_config(dir: &Path, data: &Path, extra: &str) -> (PathBuf, u16) {
    let port = free_port();
    let text = config_text(data, extra)
        .replace("starttls_listen = \"127.0.0.1:0\"", &format!("starttls_listen = \"127.0.0.1:{port}\""))
        .replace("tls_listen = \"127.0.0.1:0\"", &format!("tls_listen = \"127.0.0.1:{}\"", free_port()));
    let path = dir.join(format!("gatepost-{port}.toml"));
    std::fs::write(&path, text).unwrap();
    (path, port)
}

/// `gatepost serve` as a child, stderr piped.
fn serve_child(config: &Path, stdout: Stdio) -> Child {
    Command::new(env!("CARGO_BIN_EXE_gatepost"))
        .arg("--config")
        .arg(config)
        .arg("serve")
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Start `gatepost serve`; returns once it accepts on `port`, with its stderr being drained.
pub fn spawn_serve(config: &Path, port: u16) -> Child {
    let mut child = serve_child(config, Stdio::null());
    let err = child.stderr.take().unwrap();
    let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = lines.clone();
    std::thread::spawn(move || {
        for l in BufReader::new(err).lines().map_while(Result::ok) {
            sink.lock().unwrap().push(l);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if child.try_wait().unwrap().is_some() {
            std::thread::sleep(Duration::from_millis(100));
            panic!("gatepost serve exited early:\n{}", lines.lock().unwrap().join("\n"));
        }
        assert!(Instant::now() < deadline, "gatepost serve did not start listening");
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

/// SIGTERM, then wait: the clean stop.
pub fn stop(mut child: Child) {
    let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "gatepost serve did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A `serve` that must fail: its exit status and everything it printed.
fn serve_fails(config: &Path) -> (Option<i32>, String) {
    let mut child = serve_child(config, Stdio::piped());
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("gatepost serve kept running on a store it must refuse");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let o = child.wait_with_output().unwrap();
    (o.status.code(), text(&o))
}

/// A date a month from now, for a `Deliver-On` within the default `max_hold`.
pub fn next_month() -> String {
    jiff::Timestamp::now()
        .checked_add(jiff::SignedDuration::from_hours(24 * 30))
        .unwrap()
        .strftime("%Y-%m-%d")
        .to_string()
}

/// A store with mail in it, filled through the real server and stopped cleanly.
async fn store_with_mail(messages: usize) -> tempfile::TempDir {
    let server = TestServer::start().await;
    let later = next_month();
    let (c, _) = Client::plain(server.submission).await;
    let mut c = c.starttls().await;
    c.login().await;
    for i in 0..messages {
        let msg = format!(
            "From: alice@example.com\r\nSubject: message {i} {}\r\nDeliver-On: {later}\r\n\r\nbody {i}\r\n",
            "words ".repeat(i % 50)
        );
        let r = c.submit(EMAIL, &["bob@example.net"], msg.as_bytes()).await;
        assert!(r.starts_with("250"), "{r}");
    }
    server.stop().await
}

/// What every command must do on a store it cannot trust: fail, say which file, never panic.
fn refused(o: &Output, what: &str) {
    let out = text(o);
    assert!(!o.status.success(), "{what} succeeded on a damaged store:\n{out}");
    assert_ne!(o.status.code(), Some(101), "{what} panicked:\n{out}");
    assert!(!out.contains("panicked") && !out.contains("RUST_BACKTRACE"), "{what} printed a panic:\n{out}");
    assert!(out.contains("gatepost.redb"), "{what} does not name the file:\n{out}");
}

const COMMANDS: &[&[&str]] = &[
    &["queue", "list"],
    &["queue", "list", "--json"],
    &["trace"],
    &["trace", "reindex"],
    &["user", "list"],
    &["store", "check"],
];

#[test]
fn a_truncated_database_is_damage_not_a_new_store() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::write(data.join("gatepost.redb"), b"").unwrap();
    let (config, _) = serve_config(dir.path(), &data, "");
    let (code, out) = serve_fails(&config);
    assert!(code.is_some_and(|c| c != 0 && c != 101), "{code:?}\n{out}");
    assert!(out.contains("gatepost.redb is empty") && out.contains("backup"), "{out}");
    for args in COMMANDS {
        refused(&gatepost(&config, args), &args.join(" "));
    }
    assert_eq!(std::fs::metadata(data.join("gatepost.redb")).unwrap().len(), 0, "the empty file was replaced");
}

#[test]
fn bodies_without_a_database_are_damage_not_a_new_store() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let shard = data.join("bodies/01kb/00");
    std::fs::create_dir_all(&shard).unwrap();
    std::fs::write(shard.join("01KB000000000000000000000A.eml"), b"Subject: kept\r\n\r\nx\r\n").unwrap();
    let (config, _) = serve_config(dir.path(), &data, "");
    let (code, out) = serve_fails(&config);
    assert!(code.is_some_and(|c| c != 0 && c != 101), "{code:?}\n{out}");
    assert!(out.contains("bodies/") && out.contains("no gatepost.redb"), "{out}");
    for args in COMMANDS {
        let o = gatepost(&config, args);
        assert!(!o.status.success() && text(&o).contains("no gatepost.redb"), "{args:?}: {}", text(&o));
    }
    assert!(!data.join("gatepost.redb").exists(), "a new database was created beside the bodies");
}

/// Overwrite `pages` random 4 KiB pages that hold something (not the header page, not pages
/// never written) with random bytes.
fn damage(db: &Path, seed: u64, pages: usize) {
    let mut bytes = std::fs::read(db).unwrap();
    let used: Vec<usize> =
        (1..bytes.len() / 4096).filter(|p| bytes[p * 4096..(p + 1) * 4096].iter().any(|b| *b != 0)).collect();
    assert!(used.len() > 2 * pages, "the database is too small to damage meaningfully: {} used pages", used.len());
    let mut rng = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    for _ in 0..pages {
        let page = used[next() as usize % used.len()];
        for b in &mut bytes[page * 4096..(page + 1) * 4096] {
            *b = next() as u8;
        }
    }
    std::fs::write(db, bytes).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_page_damage_is_found_and_never_panics() {
    let pristine = store_with_mail(150).await;
    let db = pristine.path().join("gatepost.redb");
    let mut refused_at_start = 0;
    for seed in 1..=9u64 {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        copy_tree(pristine.path(), &data);
        // The page of one record, a random page, or a dozen random pages.
        match seed {
            1..=2 => damage_a_record(&data.join("gatepost.redb"), &format!("message {} ", 40 + seed * 50), seed),
            3..=5 => damage(&data.join("gatepost.redb"), seed, 1),
            _ => damage(&data.join("gatepost.redb"), seed, 12),
        }
        let (config, _) = serve_config(dir.path(), &data, "");
        // Every command, before and after a start: an error naming the file, or a correct
        // answer from pages the damage missed, but never a panic.
        for args in COMMANDS.iter().chain([&["queue", "show", "01KB000000000000000000000A"][..]].iter()) {
            let o = gatepost(&config, args);
            let out = text(&o);
            assert_ne!(o.status.code(), Some(101), "seed {seed} {args:?} panicked:\n{out}");
            assert!(!out.contains("panicked"), "seed {seed} {args:?}:\n{out}");
            if !o.status.success() && !out.contains("no queued message") {
                assert!(out.contains("gatepost.redb") || out.contains("damaged"), "seed {seed} {args:?}:\n{out}");
            }
        }
        // A start after an unclean stop (no marker: as after a crash) checks every page.
        let _ = std::fs::remove_file(data.join("clean-shutdown"));
        let (code, out) = serve_fails_or_stops(&config);
        assert!(!out.contains("panicked"), "seed {seed}: serve panicked:\n{out}");
        if code != Some(0) {
            assert!(out.contains("gatepost.redb"), "seed {seed}:\n{out}");
            refused_at_start += 1;
        }
    }
    assert!(std::fs::metadata(&db).unwrap().len() > 0);
    assert!(refused_at_start >= 6, "damage to a full store went unnoticed too often: {refused_at_start}/9");
}

/// Overwrite the pages that hold a record's text (the live leaf of the messages table, and any
/// older copy): pages which opening the database never reads; only a command that lists or
/// shows records, or a write into that table, walks into them.
fn damage_a_record(db: &Path, needle: &str, seed: u64) {
    let mut bytes = std::fs::read(db).unwrap();
    let pages: Vec<usize> = bytes
        .windows(needle.len())
        .enumerate()
        .filter(|(_, w)| *w == needle.as_bytes())
        .map(|(at, _)| at / 4096)
        .collect();
    assert!(!pages.is_empty(), "the record is not in the file");
    for page in pages {
        for (i, b) in bytes[page * 4096..(page + 1) * 4096].iter_mut().enumerate() {
            *b = (seed as usize * 31 + i * 7 + (i >> 3)) as u8;
        }
    }
    std::fs::write(db, bytes).unwrap();
}

/// Start `serve`; if it is still up after a moment (the damage missed every live page), stop it.
fn serve_fails_or_stops(config: &Path) -> (Option<i32>, String) {
    let mut child = serve_child(config, Stdio::piped());
    let deadline = Instant::now() + Duration::from_secs(5);
    while child.try_wait().unwrap().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    if child.try_wait().unwrap().is_none() {
        let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
    }
    let o = child.wait_with_output().unwrap();
    (o.status.code(), text(&o))
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_check_finds_missing_and_altered_bodies() {
    let data = store_with_mail(3).await;
    let config = data.path().join("g.toml");
    std::fs::write(&config, config_text(data.path(), "")).unwrap();
    let o = gatepost(&config, &["store", "check", "--bodies"]);
    assert!(o.status.success() && text(&o).contains("3 records, 1 users"), "{}", text(&o));
    let mut bodies = Vec::new();
    walk(&data.path().join("bodies"), &mut |p, _| {
        if p.extension().is_some_and(|e| e == "eml") {
            bodies.push(p.to_path_buf())
        }
    });
    bodies.sort();
    std::fs::remove_file(&bodies[0]).unwrap();
    std::fs::write(&bodies[1], b"Subject: not what was sent\r\n\r\n").unwrap();
    let o = gatepost(&config, &["store", "check"]);
    assert!(!o.status.success() && text(&o).contains("no body at"), "{}", text(&o));
    let o = gatepost(&config, &["store", "check", "--bodies"]);
    let out = text(&o);
    assert!(!o.status.success() && out.contains("does not match") && out.contains("2 problem(s)"), "{out}");
}

/// Damage that appears under a running server (a disk, a tool): the first transaction that
/// meets it panics inside redb. The message is not acknowledged, the server says which file
/// and stops, and the stop is not marked clean (so the next start checks the file and refuses
/// it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_meets_damage_stops_and_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (config, port) = serve_config(dir.path(), &data, "");
    let trusted = "[[submission.trusted_networks]]\nnetwork = \"127.0.0.1/32\"\nuser = \"alice\"\n";
    std::fs::write(&config, std::fs::read_to_string(&config).unwrap() + trusted).unwrap();
    let pw = dir.path().join("pw");
    std::fs::write(&pw, format!("{PASSWORD}\n")).unwrap();
    let o = gatepost(&config, &["user", "add", USER, "--email", EMAIL, "--password-file", pw.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let addr = format!("127.0.0.1:{port}").parse().unwrap();
    let held =
        |n: u32| format!("From: alice@example.com\r\nSubject: marker{n}\r\nDeliver-On: {}\r\n\r\nx\r\n", next_month());
    let first = spawn_serve(&config, port);
    let (mut c, _) = Client::plain(addr).await;
    assert!(c.cmd("EHLO test.client").await.starts_with("250"));
    assert!(c.submit(EMAIL, &["bob@example.net"], held(1).as_bytes()).await.starts_with("250"));
    drop(c);
    // The held message is shown in Scheduled before the stop, so the next start has nothing
    // on that feed to read (its records' page must stay unread until the damage is made).
    let deadline = Instant::now() + Duration::from_secs(30);
    let shown = || {
        let out = gatepost(&config, &["mailbox", "list", USER, "--json"]);
        let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        list.as_array().into_iter().flatten().any(|m| m["name"] == "Scheduled" && m["messages"] == 1)
    };
    while !shown() {
        assert!(Instant::now() < deadline, "the held message never showed in Scheduled");
        std::thread::sleep(Duration::from_millis(50));
    }
    stop(first);
    assert!(data.join("clean-shutdown").exists());

    let mut child = serve_child(&config, Stdio::null());
    let err = child.stderr.take().unwrap();
    let log = std::thread::spawn(move || BufReader::new(err).lines().map_while(Result::ok).collect::<Vec<_>>());
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(child.try_wait().unwrap().is_none(), "a clean start failed before the damage");
        assert!(Instant::now() < deadline, "serve did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    // A fresh server has not read the record's page yet. That page is the whole messages
    // table, so the next insert walks into it.
    damage_a_record(&data.join("gatepost.redb"), "marker1", 7);
    // A background reader (the filer, the indexer) may meet the damage first and stop the
    // server before this client connects: refused either way, never acknowledged.
    if let Ok((mut c, greeting)) = Client::try_plain(addr).await
        && greeting.starts_with("220")
        && c.cmd("EHLO test.client").await.starts_with("250")
    {
        let r = c.submit(EMAIL, &["bob@example.net"], held(2).as_bytes()).await;
        assert!(!r.starts_with("250"), "acknowledged into a damaged store: {r}");
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let log = log.join().unwrap().join("\n");
            panic!("the server kept running on a damaged store:\n{log}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let log = log.join().unwrap().join("\n");
    assert!(!status.success(), "{log}");
    assert!(log.contains("gatepost.redb: redb failed reading it") && log.contains("store check"), "{log}");
    assert!(!log.contains("panicked"), "{log}");
    assert!(!data.join("clean-shutdown").exists(), "a stop on a damaged store was marked clean:\n{log}");
    // The next start checks the file, and refuses it.
    let (code, out) = serve_fails(&config);
    assert!(code.is_some_and(|c| c != 0 && c != 101) && out.contains("integrity check"), "{code:?}\n{out}");
}

#[test]
fn a_second_server_on_the_same_data_touches_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (first_config, first_port) = serve_config(dir.path(), &data, "");
    let first = spawn_serve(&first_config, first_port);
    // Debris as a crash leaves it: a body without a record. A server that ran recovery would
    // move it to orphans/.
    let shard = data.join("bodies/01kb/00");
    std::fs::create_dir_all(&shard).unwrap();
    let planted = shard.join("01KB000000000000000000000A.eml");
    std::fs::write(&planted, b"Subject: in flight\r\n\r\nx\r\n").unwrap();

    let (second_config, second_port) = serve_config(dir.path(), &data, "");
    let (code, out) = serve_fails(&second_config);
    assert!(code.is_some_and(|c| c != 0 && c != 101), "{code:?}\n{out}");
    assert!(out.contains("serve.lock") && out.contains(&format!("pid {}", first.id())), "{out}");
    assert!(planted.exists() && !data.join("orphans").exists(), "the second server ran recovery");
    assert!(TcpStream::connect(("127.0.0.1", second_port)).is_err(), "the second server listens");
    // The operator's commands work beside the running server (decision D4).
    let o = gatepost(&second_config, &["queue", "list"]);
    assert!(o.status.success(), "{}", text(&o));
    stop(first);
}

#[test]
fn a_start_that_cannot_bind_recovers_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (config, port) = serve_config(dir.path(), &data, "");
    assert!(gatepost(&config, &["user", "list"]).status.success()); // a store, never stopped cleanly
    let shard = data.join("bodies/01kb/00");
    std::fs::create_dir_all(&shard).unwrap();
    let planted = shard.join("01KB000000000000000000000A.eml");
    std::fs::write(&planted, b"Subject: debris\r\n\r\nx\r\n").unwrap();
    let busy = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    let (code, out) = serve_fails(&config);
    assert!(code.is_some_and(|c| c != 0 && c != 101), "{code:?}\n{out}");
    assert!(planted.exists() && !data.join("orphans").exists(), "recovery ran before the bind failed:\n{out}");
    drop(busy);
    // Once the port is free, the start recovers and serves.
    let child = spawn_serve(&config, port);
    // The port is bound before recovery and accepted after it: a connect can succeed from the
    // backlog while recovery still runs, so wait for its result rather than for the port.
    let moved = data.join("orphans/01KB000000000000000000000A.eml");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !moved.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!planted.exists() && moved.exists(), "recovery did not move the debris");
    stop(child);
}

/// Run the binary under umask 022, as a shell with the usual umask would.
#[cfg(unix)]
fn under_umask_022(config: &Path, args: &[&str]) -> Command {
    let mut c = Command::new("sh");
    c.arg("-c").arg("umask 022; exec \"$0\" \"$@\"").arg(env!("CARGO_BIN_EXE_gatepost"));
    c.arg("--config").arg(config).args(args).stdin(Stdio::null());
    c
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_data_tree_is_owner_only_whatever_the_umask() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let tls = data.join("tls");
    let (config, port) = serve_config(dir.path(), &data, "");
    let text_now = std::fs::read_to_string(&config).unwrap();
    let cert = repo().join("certs/localhost-cert.pem").display().to_string();
    let key = repo().join("certs/localhost-key.pem").display().to_string();
    // A development certificate generated into the data tree, and local submission without
    // TLS (trusted network), so the client needs no certificate.
    let with_generated = text_now
        .replace(&format!("cert = {cert:?}"), &format!("cert = {:?}", tls.join("cert.pem").display().to_string()))
        .replace(&format!("key = {key:?}"), &format!("key = {:?}", tls.join("key.pem").display().to_string()))
        + "generate_if_missing = true\n[[submission.trusted_networks]]\nnetwork = \"127.0.0.1/32\"\nuser = \"alice\"\n";
    std::fs::write(&config, with_generated).unwrap();
    let pw = dir.path().join("pw");
    std::fs::write(&pw, format!("{PASSWORD}\n")).unwrap();
    let o = under_umask_022(&config, &["user", "add", USER, "--email", EMAIL, "--password-file"])
        .arg(&pw)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    // Debris for recovery to move to orphans/ (made owner-only here: it stands for a body
    // gatepost wrote itself).
    let shard = data.join("bodies/01kb/00");
    std::fs::create_dir_all(&shard).unwrap();
    std::fs::write(shard.join("01KB000000000000000000000A.eml"), b"Subject: debris\r\n\r\nx\r\n").unwrap();
    std::fs::set_permissions(shard.join("01KB000000000000000000000A.eml"), std::fs::Permissions::from_mode(0o600))
        .unwrap();
    std::fs::set_permissions(data.join("bodies/01kb/00"), std::fs::Permissions::from_mode(0o700)).unwrap();
    std::fs::set_permissions(data.join("bodies/01kb"), std::fs::Permissions::from_mode(0o700)).unwrap();
    std::fs::set_permissions(data.join("bodies"), std::fs::Permissions::from_mode(0o700)).unwrap();

    let mut child = under_umask_022(&config, &["serve"]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline && child.try_wait().unwrap().is_none(), "serve did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    // One message through the file relay into the outbox, one held.
    let addr = format!("127.0.0.1:{port}").parse().unwrap();
    let (mut c, _) = Client::plain(addr).await;
    assert!(c.cmd("EHLO test.client").await.starts_with("250"));
    for extra in [String::new(), format!("Deliver-On: {}\r\n", next_month())] {
        let msg = format!("From: alice@example.com\r\nSubject: private\r\n{extra}\r\nfor bob only\r\n");
        let r = c.submit(EMAIL, &["bob@example.net"], msg.as_bytes()).await;
        assert!(r.starts_with("250"), "{r}");
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::fs::read_dir(data.join("outbox")).map_or(0, |d| d.count()) == 0 {
        assert!(Instant::now() < deadline, "nothing reached the outbox");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_secs(3)); // the indexer's first commit
    stop(child);

    let mut seen = Vec::new();
    walk(&data, &mut |path, mode| {
        seen.push(path.strip_prefix(&data).unwrap().display().to_string());
        assert_eq!(mode & 0o077, 0, "{} is mode {mode:04o} under umask 022", path.display());
    });
    for want in ["gatepost.redb", "bodies", "orphans", "trace", "outbox", "tls/key.pem", "serve.lock", "clean-shutdown"]
    {
        assert!(seen.iter().any(|s| s.starts_with(want)), "{want} was not created: {seen:?}");
    }

    // A tree made wider by hand is warned about, at start and by check-config.
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(data.join("gatepost.redb"), std::fs::Permissions::from_mode(0o644)).unwrap();
    let o = gatepost(&config, &["check-config"]);
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert!(out.contains("warning: data_dir") && out.contains("0755") && out.contains("0644"), "{out}");
}

#[cfg(unix)]
fn walk(dir: &Path, each: &mut impl FnMut(&Path, u32)) {
    use std::os::unix::fs::PermissionsExt;
    each(dir, std::fs::metadata(dir).unwrap().permissions().mode() & 0o777);
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            walk(&path, each);
        } else {
            each(&path, std::fs::metadata(&path).unwrap().permissions().mode() & 0o777);
        }
    }
}
