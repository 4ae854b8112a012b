//! Real IMAP clients against gatepost.

use crate::support::{PASSWORD, TestServer, USER, cert_path, peer};

async fn imaplib_flow(mode: &str) {
    if !peer("python3") {
        return;
    }
    let server = TestServer::start().await;
    let running = server.running.as_ref().unwrap();
    let port = if mode == "starttls" { running.imap_addrs[0].port() } else { running.imaps_addrs[0].port() };
    let script = crate::support::repo().join("tests/imap/imaplib_flow.py");
    let args = [
        "localhost".to_string(),
        port.to_string(),
        cert_path().display().to_string(),
        USER.into(),
        PASSWORD.into(),
        mode.into(),
    ];
    let out =
        tokio::task::spawn_blocking(move || std::process::Command::new("python3").arg(script).args(args).output())
            .await
            .unwrap()
            .unwrap();
    assert!(
        out.status.success(),
        "imaplib flow failed:\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imaplib_whole_session_over_implicit_tls() {
    imaplib_flow("tls").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imaplib_whole_session_over_starttls() {
    imaplib_flow("starttls").await;
}
