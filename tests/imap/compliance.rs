//! Dovecot's imaptest against gatepost: its scripted compliance tests (every group must
//! pass) and a short stress run of its default command mix (no protocol error). `.ci/run`
//! builds imaptest from `../shared/tools/imaptest/` and names it in GATEPOST_IMAPTEST.

use std::path::PathBuf;

use crate::support::{PASSWORD, TestServer, USER, peer};

fn imaptest() -> Option<PathBuf> {
    let dir = std::env::var("GATEPOST_IMAPTEST").map(PathBuf::from).unwrap_or_else(|_| PathBuf::from("/tmp/imaptest"));
    let bin = dir.join("imaptest");
    peer(bin.to_str().unwrap()).then_some(dir)
}

async fn run(args: Vec<String>) -> String {
    let dir = imaptest().expect("checked");
    let out = tokio::task::spawn_blocking(move || std::process::Command::new(dir.join("imaptest")).args(args).output())
        .await
        .unwrap()
        .unwrap();
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

fn base_args(port: u16) -> Vec<String> {
    [
        "host=localhost".into(),
        format!("port={port}"),
        "ssl=any-cert".into(),
        format!("user={USER}"),
        format!("pass={PASSWORD}"),
    ]
    .to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imaptest_compliance_scripts_all_pass() {
    let Some(dir) = imaptest() else { return };
    let server = TestServer::start().await;
    let port = server.running.as_ref().unwrap().imaps_addrs[0].port();
    let mut args = base_args(port);
    args.push(format!("test={}", dir.join("tests").display()));
    let out = run(args).await;
    let summary = out.lines().rev().take(3).collect::<Vec<_>>().join("\n");
    assert!(out.contains("test groups: 0 failed, 0 skipped"), "imaptest compliance failed:\n{out}");
    assert!(
        out.contains("base protocol: 0/") && out.contains("extensions: 0/"),
        "individual commands failed:\n{summary}\n{out}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imaptest_stress_has_no_protocol_errors() {
    let Some(_) = imaptest() else { return };
    let server = TestServer::start().await;
    let port = server.running.as_ref().unwrap().imaps_addrs[0].port();
    let mbox = crate::support::repo().join("tests/imap/stress.mbox");
    let mut args = base_args(port);
    args.extend(["clients=20".into(), "secs=10".into(), format!("mbox={}", mbox.display()), "no_pipelining".into()]);
    let out = run(args).await;
    let errors: Vec<&str> = out.lines().filter(|l| l.starts_with("Error:") || l.contains("Panic")).collect();
    assert!(errors.is_empty(), "imaptest reported protocol errors:\n{}\n---\n{out}", errors.join("\n"));
    assert!(out.lines().any(|l| l.contains("Logi") || l.contains("Fetc")), "no statistics printed:\n{out}");
    server.stop().await;
}
