//! Accounts synced by a real `gatepost serve`, as an operator and a mail client see it:
//! `account add` follows the first import, gatepost's own IMAP server shows the account's
//! tree and the unified INBOX, and new mail at the source is pushed to an IDLE client.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use gatepost::net::server_url::{Protocol, ServerUrl};
use gatepost::sync::connect::{Session, Target, connect};

use crate::dovecot::{Dovecot, available, cert, repo};
use crate::ports::free_port;
use crate::sync::{append, message, session};

pub const LOGIN: &str = "alice@work.example";
pub const PASSWORD: &str = "the work password";

pub struct Gatepost {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    pub imap_port: u16,
    pub smtp_port: u16,
    child: Option<Child>,
}

pub fn gatepost(config: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gatepost")).arg("--config").arg(config).args(args).output().unwrap()
}

pub fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

impl Gatepost {
    /// Configured, with user alice (password "alice's own"), not yet serving.
    pub fn new(extra: &str) -> Gatepost {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let (imap_port, smtp_port) = (free_port(), free_port());
        let certs = repo().join("certs");
        let config = d.join("g.toml");
        std::fs::write(
            &config,
            format!(
                "data_dir = \"{d}/data\"\n[relay]\nurl = \"file://{d}/outbox\"\n\
                 [submission]\nstarttls_listen = \"127.0.0.1:{smtp_port}\"\ntls_listen = []\n\
                 [imap]\nstarttls_listen = []\ntls_listen = \"127.0.0.1:{imap_port}\"\n\
                 [tls]\ncert = {cert:?}\nkey = {key:?}\n\
                 [secrets]\nkey_file = \"{d}/secrets.key\"\ngenerate_if_missing = true\n[log]\nlevel = \"info\"\n{extra}\n",
                d = d.display(),
                cert = certs.join("localhost-cert.pem").display().to_string(),
                key = certs.join("localhost-key.pem").display().to_string(),
            ),
        )
        .unwrap();
        std::fs::write(d.join("own"), "alice's own\n").unwrap();
        let own = d.join("own").display().to_string();
        let o = gatepost(&config, &["user", "add", "alice", "--email", "alice@example.net", "--password-file", &own]);
        assert!(o.status.success(), "{}", text(&o));
        std::fs::write(d.join("work-pw"), format!("{PASSWORD}\n")).unwrap();
        Gatepost { dir, config, imap_port, smtp_port, child: None }
    }

    pub fn serve(&mut self) {
        let log = std::fs::File::create(self.dir.path().join("serve.log")).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_gatepost"))
            .arg("--config")
            .arg(&self.config)
            .arg("serve")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", self.imap_port)).is_err() {
            assert!(Instant::now() < deadline, "gatepost did not start: {}", self.log());
            std::thread::sleep(Duration::from_millis(20));
        }
        self.child = Some(child);
    }

    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("serve.log")).unwrap_or_default()
    }

    pub fn add_account(&self, dv: &Dovecot, extra: &[&str]) -> Output {
        let url = format!("imap://127.0.0.1:{}", dv.imap_port);
        let pw = self.dir.path().join("work-pw").display().to_string();
        let mut args = vec![
            "account",
            "add",
            "alice",
            "--name",
            "Work",
            "--address",
            LOGIN,
            "--imap",
            &url,
            "--password-file",
            &pw,
        ];
        args.extend_from_slice(extra);
        gatepost(&self.config, &args)
    }

    /// A logged-in IMAP session to gatepost itself (async-imap over TLS).
    pub async fn imap(&self) -> Session {
        let url = ServerUrl::parse(&format!("imaps://localhost:{}", self.imap_port), &[Protocol::Imap], "x").unwrap();
        let tls = Arc::new(gatepost::relay::trust::client_config(Some(&cert()), "--ca-file").unwrap());
        let t =
            Target { url: &url, login: "alice", password: "alice's own", tls, step_timeout: Duration::from_secs(5) };
        connect(&t).await.unwrap_or_else(|e| panic!("{e}\n{}", self.log())).session
    }
}

impl Drop for Gatepost {
    fn drop(&mut self) {
        self.kill();
    }
}

async fn exists(s: &mut Session, mailbox: &str) -> u32 {
    s.select(mailbox).await.unwrap_or_else(|e| panic!("SELECT {mailbox}: {e}")).exists
}

#[tokio::test]
async fn an_added_account_is_imported_served_and_pushed() {
    if !available() {
        return;
    }
    let dv = Dovecot::start_with(
        &[(LOGIN, PASSWORD)],
        "namespace inbox {\n  inbox = yes\n  mailbox Sent {\n    special_use = \\Sent\n    auto = create\n  }\n}\n",
    );
    let mut src = session(&dv).await;
    src.create("Lists").await.unwrap();
    for n in 1..=3 {
        append(&mut src, "INBOX", &message(n, "in"), None).await;
    }
    for n in 4..=5 {
        append(&mut src, "Lists", &message(n, "list"), Some("(\\Seen)")).await;
    }
    let mut g = Gatepost::new("[sync]\npoll_interval = \"3s\"\n");

    // Without a server, add stores the account and says the import waits for serve.
    let o = g.add_account(&dv, &[]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("the import starts when gatepost serve runs"), "{}", text(&o));
    let o = gatepost(&g.config, &["account", "show", "alice", "Work"]);
    assert!(text(&o).contains("not started: sync runs in gatepost serve"), "{}", text(&o));

    g.serve();
    let o = gatepost(&g.config, &["account", "show", "alice", "Work", "--follow"]);
    assert!(o.status.success(), "{}\n{}", text(&o), g.log());
    assert!(text(&o).contains("first import done, 5 messages"), "{}", text(&o));

    let mut c = g.imap().await;
    let names: Vec<String> =
        c.list(Some(""), Some("*")).await.unwrap().map(|n| n.unwrap().name().to_string()).collect().await;
    for want in ["Accounts/Work", "Accounts/Work/INBOX", "Accounts/Work/Lists", "Accounts/Work/Sent"] {
        assert!(names.iter().any(|n| n == want), "{want} in {names:?}");
    }
    assert_eq!(exists(&mut c, "Accounts/Work/INBOX").await, 3);
    assert_eq!(exists(&mut c, "Accounts/Work/Lists").await, 2);
    assert_eq!(exists(&mut c, "INBOX").await, 3, "the unified INBOX holds the source INBOX");
    // Imported messages get their structure parsed when first wanted, and served.
    c.select("Accounts/Work/Lists").await.unwrap();
    let f: Vec<_> = c.fetch("1:*", "(BODYSTRUCTURE ENVELOPE)").await.unwrap().collect().await;
    assert_eq!(f.len(), 2);
    for m in &f {
        let m = m.as_ref().unwrap();
        assert!(m.bodystructure().is_some() && m.envelope().is_some(), "{m:?}");
    }
    // The user cannot reshape the account's tree.
    assert!(c.create("Accounts/Work/Mine").await.is_err());
    assert!(c.delete("Accounts/Work/Lists").await.is_err());
    assert!(c.rename("Accounts/Work/Lists", "Mine").await.is_err());
    assert!(c.rename("Archive", "Accounts/Work/Archive").await.is_err());
    // The source's roles are shown to the operator, not advertised to clients.
    let sent: Vec<_> = c
        .list(Some(""), Some("Accounts/Work/Sent"))
        .await
        .unwrap()
        .map(|n| format!("{:?}", n.unwrap().attributes()))
        .collect()
        .await;
    assert!(sent.len() == 1 && !sent[0].contains("Sent"), "{sent:?}");
    let o = gatepost(&g.config, &["mailbox", "list", "alice"]);
    let row = text(&o).lines().find(|l| l.starts_with("Accounts/Work/Sent")).map(str::to_string);
    assert!(row.as_deref().is_some_and(|r| r.contains("(\\Sent)")), "{}", text(&o));

    // Push: a gatepost client in IDLE on INBOX sees a message APPENDed at the source.
    c.select("INBOX").await.unwrap();
    let mut idle = c.idle();
    idle.init().await.unwrap();
    let sent = Instant::now();
    append(&mut src, "INBOX", &message(6, "pushed"), None).await;
    let (wait, _stop) = idle.wait_with_timeout(Duration::from_secs(20));
    let woke = wait.await.unwrap();
    let latency = sent.elapsed();
    assert!(
        matches!(woke, async_imap::extensions::idle::IdleResponse::NewData(_)),
        "no EXISTS within 20 s: {woke:?}\n{}",
        g.log()
    );
    assert!(latency < Duration::from_secs(5), "push took {latency:?}");
    let mut c = idle.done().await.unwrap();
    assert_eq!(exists(&mut c, "Accounts/Work/INBOX").await, 4);

    // A flag set in gatepost reaches the source.
    c.select("Accounts/Work/INBOX").await.unwrap();
    c.uid_store("1", "+FLAGS (\\Flagged)").await.unwrap().collect::<Vec<_>>().await;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        src.select("INBOX").await.unwrap();
        let f: Vec<_> = src.uid_fetch("1", "FLAGS").await.unwrap().collect().await;
        let flags: Vec<String> = f[0].as_ref().unwrap().flags().map(|f| format!("{f:?}")).collect();
        if flags.iter().any(|f| f == "Flagged") {
            break;
        }
        assert!(Instant::now() < deadline, "the flag never reached the source: {flags:?}\n{}", g.log());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let o = gatepost(&g.config, &["account", "show", "alice", "Work", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&o)));
    assert_eq!(v["sync"]["imported_messages"], 6, "{v}");
    assert_eq!(v["sync"]["first_import_done"], true, "{v}");
    assert!(!text(&o).contains(PASSWORD));

    // Paused within two seconds: a message at the source stays there.
    let o = gatepost(&g.config, &["account", "pause", "alice", "Work"]);
    assert!(o.status.success(), "{}", text(&o));
    tokio::time::sleep(Duration::from_secs(3)).await;
    append(&mut src, "INBOX", &message(7, "while paused"), None).await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(exists(&mut c, "Accounts/Work/INBOX").await, 4);
    let o = gatepost(&g.config, &["account", "resume", "alice", "Work"]);
    assert!(o.status.success(), "{}", text(&o));
    let deadline = Instant::now() + Duration::from_secs(15);
    while exists(&mut c, "Accounts/Work/INBOX").await < 5 {
        assert!(Instant::now() < deadline, "resumed, but nothing came\n{}", g.log());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Removed with its mail: the tree goes and the name is free again.
    let _ = c.logout().await;
    let o = gatepost(&g.config, &["account", "remove", "alice", "Work", "--delete-mail"]);
    assert!(o.status.success(), "{}", text(&o));
    let mut c = g.imap().await;
    assert!(c.select("Accounts/Work/INBOX").await.is_err());
    assert_eq!(exists(&mut c, "INBOX").await, 0, "the INBOX pair went with the tree");
    let o = gatepost(&g.config, &["account", "list", "alice"]);
    assert!(!text(&o).contains("Work"), "{}", text(&o));
    g.kill();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_stays_within_a_provider_connection_limit() {
    if !available() {
        return;
    }
    // One connection per user and address: a second one is refused by Dovecot.
    let dv = Dovecot::start_with(&[(LOGIN, PASSWORD)], "protocol imap {\n  mail_max_userip_connections = 1\n}\n");
    {
        let mut src = session(&dv).await;
        src.create("Lists").await.unwrap();
        for n in 1..=3 {
            append(&mut src, "INBOX", &message(n, "in"), None).await;
            append(&mut src, "Lists", &message(n + 10, "list"), None).await;
        }
        src.logout().await.unwrap();
    }
    let mut g = Gatepost::new("[sync]\npoll_interval = \"2s\"\n");
    let o = g.add_account(&dv, &[]);
    assert!(o.status.success(), "{}", text(&o));
    g.serve();
    let o = gatepost(&g.config, &["account", "show", "alice", "Work", "--follow"]);
    assert!(o.status.success() && text(&o).contains("first import done, 6 messages"), "{}\n{}", text(&o), g.log());
    // Several polls and an IDLE later, the server never needed a second connection.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let log = dv.log();
    assert!(!log.contains("Maximum number of connections"), "{log}");
    let o = gatepost(&g.config, &["account", "show", "alice", "Work", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["sync"]["problem"], serde_json::Value::Null, "{v}");
}

/// A server without IDLE (Dovecot told to advertise none): new mail at the source INBOX is
/// found by the NOOP every 15 s, long before the next poll.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_idle_a_noop_finds_new_mail() {
    if !available() {
        return;
    }
    let dv = Dovecot::start_with(
        &[(LOGIN, PASSWORD)],
        "protocol imap {\n  imap_capability = IMAP4rev1 LITERAL+ SASL-IR ID ENABLE UIDPLUS\n}\n",
    );
    let mut src = session(&dv).await;
    append(&mut src, "INBOX", &message(1, "first"), None).await;
    let mut g = Gatepost::new("[sync]\npoll_interval = \"10m\"\n");
    let o = g.add_account(&dv, &[]);
    assert!(o.status.success(), "{}", text(&o));
    g.serve();
    let o = gatepost(&g.config, &["account", "show", "alice", "Work", "--follow"]);
    assert!(o.status.success(), "{}\n{}", text(&o), g.log());
    let mut c = g.imap().await;
    assert_eq!(exists(&mut c, "Accounts/Work/INBOX").await, 1);
    let sent = Instant::now();
    append(&mut src, "INBOX", &message(2, "no idle"), None).await;
    while exists(&mut c, "Accounts/Work/INBOX").await < 2 {
        assert!(sent.elapsed() < Duration::from_secs(25), "not found by NOOP within 25 s\n{}", g.log());
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let caps = src.capabilities().await.unwrap();
    assert!(!caps.has_str("IDLE") && caps.has_str("UIDPLUS"), "the source offers no IDLE");
}
