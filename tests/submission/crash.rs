//! Crash test: a child `gatepost serve` under concurrent submission load is killed with
//! SIGKILL at random moments and restarted on the same data directory. Every message that
//! got 250 must be there, byte-identical, and nothing partial may remain.

use std::collections::HashMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gatepost::store::{QueueState, Store, sha256_hex};

use crate::support::*;

const KILLS: usize = 5;
const CLIENTS: usize = 8;

fn write_config(dir: &Path, port: u16, tls_port: u16) -> std::path::PathBuf {
    let certs = repo().join("certs");
    let text = format!(
        "data_dir = {data:?}\n[submission]\nstarttls_listen = \"127.0.0.1:{port}\"\ntls_listen = \"127.0.0.1:{tls_port}\"\nmax_connections_per_ip = 100\n\
         [[submission.trusted_networks]]\nnetwork = \"127.0.0.1/32\"\nuser = \"crash\"\n\
         [imap]\nstarttls_listen = []\ntls_listen = []\n[tls]\ncert = {cert:?}\nkey = {key:?}\n[log]\nlevel = \"warn\"\n",
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
        .arg("--config")
        .arg(config)
        .arg("serve")
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

/// A message of a size and content that differ per (client, n), up to ~300 KB.
fn message(client: usize, n: usize) -> Vec<u8> {
    let seed = (client * 7919 + n * 104_729) as u64;
    let lines = (seed % 4000) as usize + 1;
    let mut m =
        format!("From: crash@example.com\r\nTo: bob@example.net\r\nSubject: c{client} n{n}\r\n\r\n").into_bytes();
    for i in 0..lines {
        m.extend_from_slice(format!("{seed:016x} line {i} .{}\r\n", "x".repeat(i % 60)).as_bytes());
    }
    m
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_under_load_loses_no_acknowledged_message() {
    let dir = tempfile::tempdir().unwrap();
    let (port, tls_port) = (free_port(), free_port());
    let config = write_config(dir.path(), port, tls_port);
    let pw = dir.path().join("pw");
    std::fs::write(&pw, "crash-test-password\n").unwrap();
    let status = Command::new(env!("CARGO_BIN_EXE_gatepost"))
        .args([
            "--config",
            config.to_str().unwrap(),
            "user",
            "add",
            "crash",
            "--email",
            "crash@example.com",
            "--password-file",
        ])
        .arg(&pw)
        .status()
        .unwrap();
    assert!(status.success());

    let acked: Arc<Mutex<HashMap<String, Vec<u8>>>> = Arc::default();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut rng = 0x2545F4914F6CDD1Du64;
    for round in 0..KILLS {
        let mut child = spawn(&config, port);
        let mut clients = Vec::new();
        for c in 0..CLIENTS {
            let acked = acked.clone();
            clients.push(tokio::spawn(async move {
                let Ok(Ok(tcp)) =
                    tokio::time::timeout(Duration::from_secs(5), tokio::net::TcpStream::connect(addr)).await
                else {
                    return;
                };
                drop(tcp);
                let (mut client, _) = Client::plain(addr).await;
                if !client.cmd("EHLO crash").await.starts_with("250") {
                    return;
                }
                for n in 0.. {
                    let msg = message(c + round * CLIENTS, n);
                    let reply = client.submit("crash@example.com", &["bob@example.net"], &msg).await;
                    if !reply.starts_with("250 2.0.0 queued as") {
                        return; // killed mid-transaction: this one was never acknowledged
                    }
                    acked.lock().unwrap().insert(queue_id(&reply), msg);
                }
            }));
        }
        // xorshift: a different kill moment each round, reproducible across runs
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        tokio::time::sleep(Duration::from_millis(150 + rng % 900)).await;
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        for c in clients {
            let _ = tokio::time::timeout(Duration::from_secs(10), c).await;
        }
        verify(&dir.path().join("data"), &acked.lock().unwrap(), round);
    }
    let total = acked.lock().unwrap().len();
    assert!(total > KILLS * 5, "too little load to mean anything: {total} acknowledged");
    eprintln!("crash test: {total} acknowledged messages survived {KILLS} SIGKILLs");
}

/// Restart-equivalent check on the dead server's data: the database passes redb's integrity
/// check (as the next start requires after a crash), recovery, then every acknowledged
/// message present and identical, every record's body intact, no temp files left.
fn verify(data: &Path, acked: &HashMap<String, Vec<u8>>, round: usize) {
    let config = data.parent().unwrap().join("gatepost.toml");
    let check = Command::new(env!("CARGO_BIN_EXE_gatepost"))
        .arg("--config")
        .arg(&config)
        .args(["store", "check"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let report = format!("{}{}", String::from_utf8_lossy(&check.stdout), String::from_utf8_lossy(&check.stderr));
    assert!(check.status.success(), "round {round}: a SIGKILL left a store that fails its check:\n{report}");
    let store = Store::open(data).unwrap();
    let report = gatepost::queue::recover(&store, jiff::Timestamp::now()).unwrap();
    assert!(report.records_without_body.is_empty(), "round {round}: records lost their bodies: {report:?}");
    for (id, body) in acked {
        let rec = store
            .get_message(id.parse().unwrap())
            .unwrap()
            .unwrap_or_else(|| panic!("round {round}: acknowledged {id} is missing"));
        assert_eq!(&store.bodies().read(id.parse().unwrap()).unwrap(), body, "round {round}: body of {id} differs");
        assert_eq!(rec.body_sha256, sha256_hex(body));
        // Immediate mail: the dispatcher may have sent it to the file relay, or been killed
        // while sending (then it is retried at the next start).
        assert!(matches!(rec.state, QueueState::Due | QueueState::Sending | QueueState::Sent), "{:?}", rec.state);
    }
    for id in store.message_ids().unwrap() {
        let rec = store.get_message(id.parse().unwrap()).unwrap().unwrap();
        let body = store
            .bodies()
            .read(id.parse().unwrap())
            .unwrap_or_else(|_| panic!("round {round}: record {id} has no body"));
        assert_eq!(rec.body_sha256, sha256_hex(&body), "round {round}: {id} body damaged");
    }
    let mut temps = 0;
    store
        .bodies()
        .scan(|shard| {
            temps += shard.temps.len();
            Ok(())
        })
        .unwrap();
    assert_eq!(temps, 0, "round {round}: temp files left after recovery");
}
