//! SIGKILL during an IMAP load of APPEND, COPY, MOVE, STORE and EXPUNGE, five times. After each
//! restart: every message whose APPENDUID/COPYUID came back, and that was not later expunged or
//! moved away, is in its mailbox at its UID, byte-identical and exactly once; what a killed
//! command touched may be either way; `store verify` (blob hashes, refcounts, counters, quota
//! usage) is clean.

use std::collections::HashMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::client::{Imap, tagged};
use crate::ports::free_port;
use crate::support::{PASSWORD, USER, repo};

const KILLS: usize = 5;
const CLIENTS: usize = 4;

/// (mailbox, uid) → bytes, for what is certain; keys a killed command touched are uncertain.
#[derive(Default)]
struct Model {
    certain: HashMap<(String, u32), Vec<u8>>,
    uncertain: Vec<(String, u32)>,
}

fn write_config(dir: &Path, port: u16, smtp: u16) -> std::path::PathBuf {
    let certs = repo().join("certs");
    let text = format!(
        "data_dir = {data:?}\n[submission]\nstarttls_listen = \"127.0.0.1:{smtp}\"\ntls_listen = []\n\
         [imap]\nstarttls_listen = []\ntls_listen = \"127.0.0.1:{port}\"\n\
         [tls]\ncert = {cert:?}\nkey = {key:?}\n[log]\nlevel = \"warn\"\n",
        data = dir.join("data").display().to_string(),
        cert = certs.join("localhost-cert.pem").display().to_string(),
        key = certs.join("localhost-key.pem").display().to_string(),
    );
    let path = dir.join("gatepost.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn spawn(config: &Path, port: u16) -> Child {
    let child = Command::new(env!("CARGO_BIN_EXE_gatepost"))
        .args(["--config", config.to_str().unwrap(), "serve"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "gatepost did not start listening");
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

fn message(round: usize, client: usize, n: usize) -> Vec<u8> {
    let seed = (round * 1_000_003 + client * 7919 + n * 104_729) as u64;
    let mut m = format!("From: crash@example.com\r\nSubject: r{round} c{client} n{n}\r\n\r\n").into_bytes();
    for i in 0..(seed % 2000) as usize + 1 {
        m.extend_from_slice(format!("{seed:016x} line {i} {}\r\n", "y".repeat(i % 50)).as_bytes());
    }
    m
}

/// `[COPYUID v src dst]` → the destination UID (single message).
fn copyuid(lines: &[String]) -> Option<u32> {
    let l = lines.iter().find(|l| l.contains("[COPYUID "))?;
    let rest = &l[l.find("[COPYUID ")? + 9..];
    rest.split(']').next()?.split(' ').nth(2)?.parse().ok()
}

async fn client_load(addr: std::net::SocketAddr, round: usize, c: usize, model: Arc<Mutex<Model>>) {
    let Ok(Ok(_)) = tokio::time::timeout(Duration::from_secs(5), tokio::net::TcpStream::connect(addr)).await else {
        return;
    };
    let (mut imap, _) = Imap::tls(addr).await;
    let r = imap.cmd(&format!("LOGIN {USER} \"{PASSWORD}\"")).await;
    if !tagged(&r).contains("OK") {
        return;
    }
    imap.cmd("SELECT INBOX").await;
    let mut mine: Vec<u32> = Vec::new();
    for n in 0.. {
        let msg = message(round, c, n);
        let r = imap.append("INBOX", "", &msg).await;
        let Some(uid) = tagged(&r).split("APPENDUID ").nth(1).and_then(|s| s.split([' ', ']']).nth(1)?.parse().ok())
        else {
            return; // killed: never acknowledged
        };
        model.lock().unwrap().certain.insert(("INBOX".into(), uid), msg.clone());
        mine.push(uid);
        if n % 3 == 1 {
            let src = mine[mine.len() / 2];
            let r = imap.cmd(&format!("UID COPY {src} Archive")).await;
            let Some(dst) = copyuid(&r) else {
                model.lock().unwrap().uncertain.push(("INBOX".into(), src));
                return;
            };
            let mut m = model.lock().unwrap();
            if let Some(bytes) = m.certain.get(&("INBOX".to_string(), src)).cloned() {
                m.certain.insert(("Archive".into(), dst), bytes);
            }
        }
        if n % 4 == 2 {
            let src = mine.remove(0);
            model.lock().unwrap().uncertain.push(("INBOX".into(), src));
            let r = imap.cmd(&format!("UID MOVE {src} Trash")).await;
            let Some(dst) = copyuid(&r) else { return };
            let mut m = model.lock().unwrap();
            if let Some(bytes) = m.certain.remove(&("INBOX".to_string(), src)) {
                m.certain.insert(("Trash".into(), dst), bytes);
            }
        }
        if n % 5 == 3 {
            let src = mine.remove(0);
            model.lock().unwrap().uncertain.push(("INBOX".into(), src));
            let r = imap.cmd(&format!("UID STORE {src} +FLAGS.SILENT (\\Deleted)")).await;
            if !tagged(&r).contains("OK") {
                return;
            }
            let r = imap.cmd(&format!("UID EXPUNGE {src}")).await;
            if !tagged(&r).contains("OK") {
                return;
            }
            model.lock().unwrap().certain.remove(&("INBOX".to_string(), src));
        }
    }
}

/// Every UID and its bytes in `mailbox`.
async fn contents(imap: &mut Imap, mailbox: &str) -> HashMap<u32, Vec<u8>> {
    imap.cmd(&format!("SELECT {mailbox}")).await;
    let r = imap.cmd("UID FETCH 1:* (UID BODY.PEEK[])").await;
    assert!(tagged(&r).contains("OK"), "{r:?}");
    let mut out = HashMap::new();
    for l in r.iter().filter(|l| l.starts_with("* ")) {
        let uid: u32 = l.split("UID ").nth(1).unwrap().split(' ').next().unwrap().parse().unwrap();
        let start = l.find("}\r\n").unwrap() + 3;
        let body = l.as_bytes()[start..l.len() - 3].to_vec(); // ")\r\n"
        assert!(out.insert(uid, body).is_none(), "UID {uid} twice in {mailbox}");
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_under_imap_load_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = write_config(dir.path(), port, free_port());
    let pw = dir.path().join("pw");
    std::fs::write(&pw, format!("{PASSWORD}\n")).unwrap();
    let add = Command::new(env!("CARGO_BIN_EXE_gatepost"))
        .args(["--config", config.to_str().unwrap(), "user", "add", USER, "--email", "alice@example.com"])
        .arg("--password-file")
        .arg(&pw)
        .output()
        .unwrap();
    assert!(add.status.success(), "{add:?}");
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let model: Arc<Mutex<Model>> = Arc::default();
    let mut rng = 0x9E3779B97F4A7C15u64;
    for round in 0..KILLS {
        let mut child = spawn(&config, port);
        let clients: Vec<_> = (0..CLIENTS).map(|c| tokio::spawn(client_load(addr, round, c, model.clone()))).collect();
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        tokio::time::sleep(Duration::from_millis(300 + rng % 1200)).await;
        child.kill().unwrap();
        child.wait().unwrap();
        for c in clients {
            let _ = tokio::time::timeout(Duration::from_secs(10), c).await;
        }
        let mut child = spawn(&config, port);
        let mut imap = Imap::login(addr).await;
        let m = model.lock().unwrap().certain.clone();
        let uncertain = model.lock().unwrap().uncertain.clone();
        for mailbox in ["INBOX", "Archive", "Trash"] {
            let have = contents(&mut imap, mailbox).await;
            for ((mb, uid), bytes) in m.iter().filter(|((mb, _), _)| mb == mailbox) {
                if uncertain.contains(&(mb.clone(), *uid)) {
                    continue;
                }
                let got = have.get(uid).unwrap_or_else(|| panic!("round {round}: {mb} UID {uid} lost"));
                assert!(got == bytes, "round {round}: {mb} UID {uid} differs");
                let copies = have.values().filter(|b| *b == bytes).count();
                assert_eq!(copies, 1, "round {round}: {mb} UID {uid} is there {copies} times");
            }
        }
        imap.cmd("LOGOUT").await;
        child.kill().unwrap();
        child.wait().unwrap();
        let verify = Command::new(env!("CARGO_BIN_EXE_gatepost"))
            .args(["--config", config.to_str().unwrap(), "store", "verify"])
            .output()
            .unwrap();
        let out = format!("{}{}", String::from_utf8_lossy(&verify.stdout), String::from_utf8_lossy(&verify.stderr));
        assert!(verify.status.success() && out.contains("mail store verify: OK"), "round {round}:\n{out}");
    }
    let total = model.lock().unwrap().certain.len();
    assert!(total > KILLS * 5, "too little load to mean anything: {total} messages");
    eprintln!("IMAP crash test: {total} acknowledged messages checked across {KILLS} SIGKILLs");
}
