//! The whole path with real peers: swaks submits a message with `Deliver-On`, gatepost
//! holds it, the (manual) clock reaches the daily hour, and the dispatcher relays it to
//! Postfix's smtp-sink. The delivered bytes show the rewrite, the footer and the removed
//! tags; the record shows the relay IP, our local IP and the sink's reply.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use gatepost::clock::ManualClock;
use gatepost::store::QueueState;

use crate::support::*;

/// Kills the child when the test ends, however it ends.
struct Reaper(std::process::Child);
impl Drop for Reaper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn wait_for<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    for _ in 0..500 {
        if let Some(v) = probe() {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting for {what}");
}

fn dumps(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.is_file()).collect())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swaks_to_smtp_sink_through_a_held_release() {
    if !peer("swaks") || !peer("smtp-sink") {
        return;
    }
    let sink_dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(sink_dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let port = free_port();
    let mut args = vec!["-d".to_string(), format!("{}/%Y%m%d%H%M%S.", sink_dir.path().display())];
    if is_root() {
        args.splice(0..0, ["-u".to_string(), "nobody".to_string()]);
    }
    args.extend([format!("127.0.0.1:{port}"), "100".into()]);
    let _sink = Reaper(Command::new(which("smtp-sink").unwrap()).args(&args).stdin(Stdio::null()).spawn().unwrap());
    wait_for("smtp-sink to listen", || std::net::TcpStream::connect(("127.0.0.1", port)).ok()).await;

    let clock = Arc::new(ManualClock::new("2026-11-23T10:00:00Z".parse().unwrap()));
    let relay = format!(
        "[relay]\nurl = \"smtp://127.0.0.1:{port}\"\nfrom_address = \"relay@thirdparty.example\"\n[submission]"
    );
    let server = TestServer::start_with(|t| t.replace("[submission]", &relay), clock.clone()).await;

    let out = tokio::task::spawn_blocking({
        let port = server.submission.port();
        move || {
            Command::new("swaks")
                .args(["-s", &format!("127.0.0.1:{port}"), "-tls", "-a", "PLAIN", "-au", USER, "-ap", PASSWORD])
                .args(["-f", EMAIL, "-t", "bob+2026-12-25@example.net", "--timeout", "20s"])
                .args(["--header", "Subject: Merry Christmas", "--header", "Deliver-On: 2026-12-25"])
                .args([
                    "--header",
                    "From: Alice <alice@example.com>",
                    "--header",
                    "To: Bob <bob+2026-12-25@example.net>",
                ])
                .args(["--header", "Bcc: secret@example.org", "--body", "Ho ho ho."])
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    let transcript = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "swaks failed:\n{transcript}\n{}", String::from_utf8_lossy(&out.stderr));
    let line = transcript.lines().find(|l| l.contains("queued as")).expect("a queued reply");
    assert!(line.contains("will be delivered 2026-12-25 08:00 UTC"), "{line}");
    let id = queue_id(line);

    clock.set("2026-12-25T08:00:00Z".parse().unwrap());
    server.running.as_ref().unwrap().dispatcher_wake.notify_one();
    let file = wait_for("the sink's dump", || dumps(sink_dir.path()).into_iter().next()).await;
    let rec = wait_for("the record to say sent", || {
        server.store().get_message(id.parse().unwrap()).unwrap().filter(|r| r.state == QueueState::Sent)
    })
    .await;

    let dump = String::from_utf8(std::fs::read(&file).unwrap()).unwrap();
    assert!(dump.contains("X-Mail-Args: <relay@thirdparty.example>"), "envelope sender is the relay's:\n{dump}");
    assert!(dump.contains("X-Rcpt-Args: <bob@example.net>"), "date tag removed from the envelope:\n{dump}");
    assert!(dump.contains("From: \"Alice via gatepost\" <relay@thirdparty.example>"), "{dump}");
    assert!(dump.contains("Reply-To: alice@example.com"), "{dump}");
    assert!(dump.contains("To: Bob <bob@example.net>"), "{dump}");
    assert!(!dump.contains("Bcc:") && !dump.contains("secret@example.org"), "Bcc removed:\n{dump}");
    assert!(!dump.contains("Deliver-On"), "Deliver-On removed:\n{dump}");
    assert!(dump.contains("Ho ho ho.") && dump.contains("Sent by alice@example.com through gatepost."), "{dump}");

    let attempt = &rec.attempts[0];
    assert_eq!(attempt.relay_ip, Some("127.0.0.1".parse().unwrap()));
    assert_eq!(attempt.system_ip, Some("127.0.0.1".parse().unwrap()));
    assert!(attempt.reply.as_deref().unwrap_or("").starts_with("250"), "{attempt:?}");
    assert_eq!(attempt.started_at, "2026-12-25T08:00:00Z".parse().unwrap());

    // The audit trail finds it by every field the release recorded, while the server runs
    // (its indexer applies changes every two seconds; the command only reads the index).
    let config = server.dir.path().join("g.toml");
    std::fs::write(&config, crate::support::config_text(server.dir.path(), "")).unwrap();
    let trace = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_gatepost"))
            .arg("--config")
            .arg(&config)
            .arg("trace")
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "trace {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let found = |v: &serde_json::Value| {
        v["records"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap().to_string()).collect::<Vec<_>>()
    };
    let sent = wait_for("the index to show the delivery", || {
        Some(trace(&["--state", "sent", "--json"])).filter(|v| found(v) == vec![id.clone()])
    })
    .await;
    assert_eq!(sent["total"], 1);
    for filter in [
        vec!["--relay-ip", "127.0.0.1"],
        vec!["--system-ip", "127.0.0.1"],
        vec!["--client-ip", "127.0.0.1"],
        vec!["--sender", "alice@example.com"],
        vec!["--recipient", "bob+2026-12-25@example.net"],
        vec!["--recipient", "@example.net"],
        vec!["--subject", "merry"],
        vec!["--text", "ho HO"],
        vec!["--sent-since", "2026-12-25", "--sent-until", "2026-12-25"],
        vec!["--since", "2026-11-23 09:00", "--until", "2026-11-23T11:00:00Z"],
    ] {
        let mut args = filter.clone();
        args.push("--json");
        assert_eq!(found(&trace(&args)), vec![id.clone()], "{filter:?}");
    }
    for filter in [
        vec!["--relay-ip", "192.0.2.1"],
        vec!["--text", "humbug"],
        vec!["--sent-until", "2026-12-24"],
        vec!["--state", "held"],
    ] {
        let mut args = filter.clone();
        args.push("--json");
        assert!(found(&trace(&args)).is_empty(), "{filter:?}");
    }
    let show = Command::new(env!("CARGO_BIN_EXE_gatepost"))
        .arg("--config")
        .arg(&config)
        .args(["trace", "show", &id])
        .output()
        .unwrap();
    let show = String::from_utf8_lossy(&show.stdout);
    for want in
        ["submitted", "held", "released", "attempt", "delivered", "relay 127.0.0.1 from 127.0.0.1", "reply: 250"]
    {
        assert!(show.contains(want), "trace show lacks {want:?}:\n{show}");
    }
    let dir = server.stop().await;

    // Server stopped: `trace reindex` rebuilds the index itself, and search still finds it.
    let out = Command::new(env!("CARGO_BIN_EXE_gatepost"))
        .arg("--config")
        .arg(dir.path().join("g.toml"))
        .args(["trace", "reindex"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("trace index rebuilt: 1 records"), "{out:?}");
    let config = dir.path().join("g.toml");
    let out = Command::new(env!("CARGO_BIN_EXE_gatepost"))
        .arg("--config")
        .arg(&config)
        .args(["trace", "--relay-ip", "127.0.0.1"])
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table
            .lines()
            .nth(1)
            .is_some_and(|l| l.starts_with(&id) && l.contains("sent") && l.contains("2026-12-25 08:00")),
        "{table}"
    );
}

/// smtp-sink refuses to run as root without `-u`.
fn is_root() -> bool {
    std::fs::metadata("/proc/self").map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0).unwrap_or(false)
}
