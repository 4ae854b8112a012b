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

/// curl's IMAP client, as the README's quick start uses it: APPEND a file, SEARCH, fetch it
/// back by UID (byte-identical), list the folders.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_appends_searches_and_reads_back() {
    if !peer("curl") {
        return;
    }
    let server = TestServer::start().await;
    let port = server.running.as_ref().unwrap().imaps_addrs[0].port();
    let msg = b"From: alice@example.com\r\nSubject: via curl\r\n\r\nfirst message\r\n";
    let file = server.dir.path().join("m.eml");
    std::fs::write(&file, msg).unwrap();
    let curl = move |extra: Vec<String>, url: String| {
        let mut args = vec![
            "-sS".to_string(),
            "--cacert".into(),
            cert_path().display().to_string(),
            "--user".into(),
            format!("{USER}:{PASSWORD}"),
        ];
        args.extend(extra);
        args.push(url);
        std::process::Command::new("curl").args(args).output().unwrap()
    };
    let base = format!("imaps://localhost:{port}");
    let (c, b, f) = (curl, base.clone(), file.display().to_string());
    let o = tokio::task::spawn_blocking(move || c(vec!["-T".into(), f], format!("{b}/INBOX"))).await.unwrap();
    assert!(o.status.success(), "APPEND: {}", String::from_utf8_lossy(&o.stderr));
    let (c, b) = (curl, base.clone());
    let o = tokio::task::spawn_blocking(move || c(vec![], format!("{b}/INBOX?SUBJECT%20curl"))).await.unwrap();
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "* SEARCH 1");
    let (c, b) = (curl, base.clone());
    let o = tokio::task::spawn_blocking(move || c(vec![], format!("{b}/INBOX;UID=1"))).await.unwrap();
    assert_eq!(o.stdout, msg, "the bytes curl appended are the bytes it reads");
    let (c, b) = (curl, base.clone());
    let o = tokio::task::spawn_blocking(move || c(vec![], format!("{b}/"))).await.unwrap();
    let list = String::from_utf8_lossy(&o.stdout);
    assert!(list.contains("\\Sent) \"/\" Sent") && list.contains("Scheduled"), "{list}");
    server.stop().await;
}
