//! The operator CLI, run as a real process: users, queue inspection and cancelling,
//! check-config, and a damaged store.

use std::path::Path;
use std::process::{Command, Output};

use crate::support::*;

fn gatepost(config: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gatepost")).arg("--config").arg(config).args(args).output().unwrap()
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

#[test]
fn users_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("g.toml");
    std::fs::write(&config, config_text(dir.path(), "")).unwrap();
    let pw = dir.path().join("pw");
    std::fs::write(&pw, "a long password\n").unwrap();
    let pw = pw.to_str().unwrap();

    let o = gatepost(&config, &["user", "add", "bob", "--email", "bob@example.org", "--password-file", pw]);
    assert!(o.status.success(), "{}", text(&o));
    let o = gatepost(&config, &["user", "add", "bob", "--email", "bob@example.org", "--password-file", pw]);
    assert!(!o.status.success() && text(&o).contains("already exists"), "{}", text(&o));
    let o = gatepost(&config, &["user", "add", "Bad Name", "--email", "x@example.org", "--password-file", pw]);
    assert!(!o.status.success() && text(&o).contains("user name"), "{}", text(&o));
    let o = gatepost(&config, &["user", "set-timezone", "bob", "Mars/Base"]);
    assert!(!o.status.success() && text(&o).contains("unknown timezone"), "{}", text(&o));
    assert!(gatepost(&config, &["user", "set-timezone", "bob", "Asia/Shanghai"]).status.success());
    assert!(gatepost(&config, &["user", "disable", "bob"]).status.success());
    let list = text(&gatepost(&config, &["user", "list"]));
    let line = list.lines().find(|l| l.starts_with("bob ")).unwrap_or_else(|| panic!("{list}"));
    assert!(line.contains("bob@example.org") && line.contains("Asia/Shanghai"), "{line}");
    assert!(line.split_whitespace().nth(3) == Some("true"), "disabled column: {line}");
    let o = gatepost(&config, &["user", "disable", "nobody"]);
    assert!(!o.status.success() && text(&o).contains("no user"), "{}", text(&o));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_list_show_cancel_while_serving() {
    let server = TestServer::start_with(
        |t| t.replace("[submission]", "[schedule]\ntimezone = \"Asia/Shanghai\"\nmax_hold = \"100y\"\n[submission]"),
        std::sync::Arc::new(gatepost::clock::SystemClock),
    )
    .await;
    let (c, _) = Client::plain(server.submission).await;
    let mut c = c.starttls().await;
    c.login().await;
    let msg = b"From: alice@example.com\r\nSubject: for later\r\nDeliver-On: 2099-01-02\r\n\r\nx\r\n";
    let r = c.submit(EMAIL, &["bob@example.net"], msg).await;
    assert!(r.contains("2099-01-02 08:00 Asia/Shanghai"), "{r}");
    let id = queue_id(&r);
    let config = server.dir.path().join("g.toml");
    std::fs::write(&config, config_text(server.dir.path(), "")).unwrap();

    let list = text(&gatepost(&config, &["queue", "list", "--state", "held"]));
    assert!(list.contains(&id) && list.contains("for later"), "{list}");
    let show = text(&gatepost(&config, &["queue", "show", &id]));
    for want in ["state:        held", "2099-01-02 08:00:00 CST", "submitted", "TLSv1.3", "bob@example.net"] {
        assert!(show.contains(want), "{want:?} missing in\n{show}");
    }
    let o = gatepost(&config, &["queue", "cancel", &id]);
    assert!(o.status.success(), "{}", text(&o));
    let json = text(&gatepost(&config, &["queue", "show", &id, "--json"]));
    assert!(json.contains("\"state\": \"cancelled\"") && json.contains("by operator"), "{json}");
    let o = gatepost(&config, &["queue", "cancel", &id]);
    assert!(!o.status.success() && text(&o).contains("cannot be cancelled"), "{}", text(&o));
    let o = gatepost(&config, &["queue", "list", "--state", "bogus"]);
    assert!(!o.status.success() && text(&o).contains("unknown state"), "{}", text(&o));
    // the running server sees the cancellation
    assert_eq!(server.store().get_message(&id).unwrap().unwrap().state.as_str(), "cancelled");
    server.stop().await;
}

#[test]
fn check_config_reports_every_error_at_once() {
    let example = repo().join("config/gatepost.example.toml");
    let o = gatepost(&example, &["check-config"]);
    assert!(o.status.success(), "example config must be valid: {}", text(&o));
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "data_dirr = \"x\"\n[schedule]\ndaily_hour = \"25:00\"\ntimezone = \"Mars/Base\"\n[relay]\npassword = \"hunter2\"\n",
    )
    .unwrap();
    let o = gatepost(&bad, &["check-config"]);
    let out = text(&o);
    assert!(!o.status.success());
    for key in ["data_dirr", "schedule.daily_hour", "schedule.timezone", "relay.password"] {
        assert!(out.contains(key), "{key} missing in\n{out}");
    }
    assert!(!out.contains("hunter2"), "a secret must never be echoed:\n{out}");
}

#[test]
fn damaged_store_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("g.toml");
    std::fs::write(&config, config_text(dir.path(), "")).unwrap();
    std::fs::write(dir.path().join("gatepost.redb"), vec![0xA5u8; 16384]).unwrap();
    let o = gatepost(&config, &["queue", "list"]);
    let out = text(&o);
    assert!(!o.status.success());
    assert!(out.contains("gatepost.redb") && !out.contains("panicked"), "{out}");
}

#[test]
fn trace_reports_every_bad_filter_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("g.toml");
    std::fs::write(&config, config_text(dir.path(), "")).unwrap();
    let o = gatepost(
        &config,
        &[
            "trace",
            "--since",
            "last tuesday",
            "--client-ip",
            "mail.example.com",
            "--state",
            "lost",
            "--sent-since",
            "2026-02-01",
            "--sent-until",
            "2026-01-01",
        ],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let t = text(&o);
    for want in [
        "--since: \"last tuesday\" is not a time",
        "--client-ip: \"mail.example.com\" is not an IP address",
        "--state: unknown state \"lost\"",
        "--sent-since/--sent-until: the start",
    ] {
        assert!(t.contains(want), "missing {want:?} in:\n{t}");
    }
    // An empty store: a search answers with nothing found, not an error.
    let o = gatepost(&config, &["trace", "--sender", "nobody@example.com", "--json"]);
    assert!(o.status.success(), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["total"], 0);
}
