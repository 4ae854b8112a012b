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

/// mbsync (isync) syncs the user's mailboxes both ways with a local Maildir: the bytes on
/// each side are the bytes on the other, up to what mbsync itself does to a Maildir file
/// (native LF line ends, its own `X-TUID` tracking header).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mbsync_syncs_both_ways_with_the_same_bytes() {
    if !peer("mbsync") {
        return;
    }
    let server = TestServer::start().await;
    let addr = server.running.as_ref().unwrap().imaps_addrs[0];
    let mut c = crate::client::Imap::login(addr).await;
    let first =
        b"From: bob@example.com\r\nSubject: from the server\r\nMessage-ID: <s1@example.com>\r\n\r\nserver side\r\n";
    c.append("INBOX", "\\Seen", first).await;
    c.cmd("CREATE Projects").await;
    c.append("Projects", "", b"Subject: project\r\n\r\nplan\r\n").await;
    let dir = server.dir.path();
    let maildir = dir.join("maildir");
    std::fs::create_dir_all(&maildir).unwrap();
    let rc = dir.join("mbsyncrc");
    std::fs::write(
        &rc,
        format!(
            "IMAPAccount gp\nHost localhost\nPort {port}\nUser {USER}\nPass \"{PASSWORD}\"\nSSLType IMAPS\n\
             CertificateFile {cert}\n\nIMAPStore gp-remote\nAccount gp\n\n\
             MaildirStore local\nPath {md}/\nInbox {md}/INBOX\nSubFolders Verbatim\n\n\
             Channel gp\nFar :gp-remote:\nNear :local:\nPatterns *\nCreate Both\nSync All\nExpunge Both\nSyncState *\n",
            port = addr.port(),
            cert = cert_path().display(),
            md = maildir.display(),
        ),
    )
    .unwrap();
    let sync = {
        let rc = rc.clone();
        move || std::process::Command::new("mbsync").arg("-c").arg(&rc).arg("-a").output().unwrap()
    };
    let o = tokio::task::spawn_blocking(sync.clone()).await.unwrap();
    assert!(o.status.success(), "mbsync: {}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    let files = |sub: &str| -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for d in ["cur", "new"] {
            if let Ok(entries) = std::fs::read_dir(maildir.join(sub).join(d)) {
                for e in entries {
                    out.push(std::fs::read(e.unwrap().path()).unwrap());
                }
            }
        }
        out
    };
    // mbsync's Maildir form of a message: LF line ends, without its X-TUID line.
    let maildir_form = |b: &[u8]| -> Vec<u8> {
        let text = String::from_utf8_lossy(b).replace("\r\n", "\n");
        text.lines().filter(|l| !l.starts_with("X-TUID: ")).map(|l| format!("{l}\n")).collect::<String>().into_bytes()
    };
    let inbox: Vec<Vec<u8>> = files("INBOX").iter().map(|f| maildir_form(f)).collect();
    assert_eq!(inbox, vec![maildir_form(first)], "the server's INBOX, byte for byte");
    assert_eq!(files("Projects").len(), 1, "folders come along");
    // A message written into the local Maildir goes up to the server unchanged.
    let local = b"From: alice@example.com\r\nSubject: from the laptop\r\n\r\nlocal side\r\n";
    std::fs::write(maildir.join("Projects/new/1700000000.1.laptop"), maildir_form(local)).unwrap();
    let o = tokio::task::spawn_blocking(sync).await.unwrap();
    assert!(o.status.success(), "mbsync: {}", String::from_utf8_lossy(&o.stderr));
    c.cmd("SELECT Projects").await;
    let r = c.cmd("UID FETCH 1:* (BODY.PEEK[])").await;
    assert!(r.iter().any(|l| l.contains("local side")), "{r:?}");
    let fetched = r.iter().find(|l| l.contains("from the laptop")).unwrap();
    let body = &fetched[fetched.find("}\r\n").unwrap() + 3..fetched.len() - 3];
    let without_tuid: String = body.split_inclusive("\r\n").filter(|l| !l.starts_with("X-TUID: ")).collect();
    assert_eq!(without_tuid.as_bytes(), local, "the laptop's bytes on the server (mbsync adds its X-TUID)");
    server.stop().await;
}

/// s-nail (a mailx) in batch mode over implicit TLS with the certificate checked: it lists the
/// INBOX, prints a message, copies one to another folder, deletes one, and its quit expunges.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s_nail_reads_copies_and_deletes_in_batch_mode() {
    if !peer("s-nail") {
        return;
    }
    let server = TestServer::start().await;
    let addr = server.running.as_ref().unwrap().imaps_addrs[0];
    let mut c = crate::client::Imap::login(addr).await;
    c.append("INBOX", "", b"From: bob@example.com\r\nSubject: first one\r\n\r\nthe first body\r\n").await;
    c.append("INBOX", "", b"From: carol@example.com\r\nSubject: second one\r\n\r\nthe second body\r\n").await;
    let home = server.dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let url = format!("imaps://{USER}@localhost:{}", addr.port());
    let script = format!("headers\nprint 1\ncopy 2 {url}/Archive\ndelete 1\nquit\n");
    let port = addr.port();
    let run = move || {
        use std::io::Write;
        let mut child = std::process::Command::new("s-nail")
            .env("HOME", &home)
            .env("MAILRC", "/dev/null")
            .args(["-#", "-n", "-Sv15-compat", "-Sexpandaddr", "-Stls-verify=strict"])
            .arg(format!("-Stls-ca-file={}", cert_path().display()))
            .arg(format!("-Spassword-{USER}@localhost:{port}={PASSWORD}"))
            .arg("-Simap-keepalive=0")
            .args(["-f", &format!("{url}/INBOX")])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(script.as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    };
    let o = tokio::task::spawn_blocking(run).await.unwrap();
    let out = String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr);
    assert!(out.contains("first one") && out.contains("second one"), "headers: {out}");
    assert!(out.contains("the first body"), "print: {out}");
    let r = c.cmd("STATUS INBOX (MESSAGES)").await;
    assert!(r[0].contains("MESSAGES 1"), "deleted and expunged at quit: {r:?} {out}");
    c.cmd("SELECT Archive").await;
    let r = c.cmd("FETCH 1 BODY.PEEK[TEXT]").await;
    assert!(r[0].contains("the second body"), "copied: {r:?} {out}");
    c.cmd("SELECT INBOX").await;
    let r = c.cmd("FETCH 1 (BODY.PEEK[HEADER.FIELDS (SUBJECT)])").await;
    assert!(r[0].contains("second one"), "the right one stayed: {r:?}");
    server.stop().await;
}
