//! Sending as a connected account (SPEC §10) end to end: Python's smtplib submits to a real
//! `gatepost serve`, and the mail leaves through the account's own SMTP server (aiosmtpd with
//! STARTTLS and AUTH) as written — never through the system relay. A paused account's mail
//! waits; a removed account's mail fails with a DSN naming it; an address whose route was
//! never accepted is no sender at all.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use futures_util::StreamExt;

use crate::dovecot::{Dovecot, available, cert};
use crate::serve::{Gatepost, LOGIN, PASSWORD, gatepost, text};
use crate::smtp::aiosmtpd_into;
use crate::sync::{append, session};

/// One message from `sender` to bob over STARTTLS as alice; prints `SENT` or `REFUSED code text`.
const SUBMIT: &str = r#"
import smtplib, ssl, sys
from email.message import EmailMessage
port, cafile, sender, subject = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
m = EmailMessage()
m["From"] = "Alice <%s>" % sender
m["To"] = "bob@example.org"
m["Subject"] = subject
if len(sys.argv) > 5:
    m["Message-ID"] = sys.argv[5]
m.set_content("Hello Bob.\n")
try:
    with smtplib.SMTP("localhost", port, timeout=20) as s:
        s.starttls(context=ssl.create_default_context(cafile=cafile))
        s.login("alice", "alice's own")
        s.send_message(m)
        print("SENT", flush=True)
except (smtplib.SMTPSenderRefused, smtplib.SMTPDataError) as e:
    print("REFUSED", e.smtp_code, e.smtp_error.decode(), flush=True)
"#;

fn submit(g: &Gatepost, sender: &str, subject: &str) -> String {
    submit_with_id(g, sender, subject, None)
}

fn submit_with_id(g: &Gatepost, sender: &str, subject: &str, message_id: Option<&str>) -> String {
    let script = g.dir.path().join("submit.py");
    std::fs::write(&script, SUBMIT).unwrap();
    let o = Command::new("/usr/bin/python3")
        .arg(&script)
        .arg(g.smtp_port.to_string())
        .arg(cert())
        .args([sender, subject])
        .args(message_id)
        .output()
        .unwrap();
    text(&o)
}

/// Files in `dir` whose text contains `needle`.
fn files_with(dir: &Path, needle: &str) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    entries
        .filter_map(|e| std::fs::read(e.ok()?.path()).ok())
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .filter(|t| t.contains(needle))
        .collect()
}

fn wait_for<T>(what: &str, g: &Gatepost, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "{what} did not happen:\n{}", g.log());
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The one record whose subject is `subject`, as `trace --json` gives it.
fn record(g: &Gatepost, subject: &str) -> Option<serde_json::Value> {
    let o = gatepost(&g.config, &["trace", "--subject", subject, "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).ok()?;
    v["records"].as_array()?.first().cloned()
}

fn replies(rec: &serde_json::Value) -> String {
    rec["attempts"].as_array().map(|a| a.iter().map(|x| x["reply"].to_string()).collect()).unwrap_or_default()
}

#[test]
fn mail_from_an_account_leaves_through_its_own_server_as_written() {
    if !available() {
        return;
    }
    let dv = Dovecot::start(&[(LOGIN, PASSWORD)]);
    let mut g = Gatepost::new("[delivery]\nretry_first = \"1s\"\nretry_max_interval = \"1s\"\n");
    let (sent_there, outbox): (PathBuf, PathBuf) = (g.dir.path().join("account-out"), g.dir.path().join("outbox"));
    std::fs::create_dir_all(&sent_there).unwrap();
    let Some(smtp) = aiosmtpd_into(g.dir.path(), PASSWORD, Some(&sent_there)) else { return };
    let (ca, url) = (cert().display().to_string(), format!("smtp+starttls://localhost:{}", smtp.1));
    let o = g.add_account(&dv, &["--smtp", &url, "--ca-file", &ca, "--no-follow"]);
    assert!(o.status.success(), "{}", text(&o));
    // An account without an SMTP route: its address is no sender.
    let (imap, pw) = (format!("imap://127.0.0.1:{}", dv.imap_port), g.dir.path().join("work-pw"));
    let o = gatepost(
        &g.config,
        &[
            "account",
            "add",
            "alice",
            "--name",
            "Old",
            "--address",
            "al@old.example",
            "--login",
            LOGIN,
            "--imap",
            &imap,
            "--password-file",
            &pw.display().to_string(),
            "--no-follow",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let o = gatepost(&g.config, &["account", "show", "alice", "Work"]);
    assert!(text(&o).contains("yes, through its own server"), "{}", text(&o));
    let o = gatepost(&g.config, &["account", "show", "alice", "Old"]);
    assert!(text(&o).contains("no (no SMTP route whose login was accepted)"), "{}", text(&o));
    g.serve();

    let said = submit(&g, LOGIN, "as work");
    assert!(said.starts_with("SENT"), "{said}");
    let got = wait_for("delivery through the account's server", &g, || files_with(&sent_there, "as work").pop());
    assert!(got.starts_with(&format!("X-Envelope: {LOGIN} bob@example.org\r\n")), "{got}");
    assert!(got.contains(&format!("\r\nFrom: Alice <{LOGIN}>\r\n")), "From as written: {got}");
    assert!(!got.contains("via gatepost") && !got.contains("Reply-To:"), "{got}");
    assert!(got.ends_with("\r\n\r\nHello Bob.\r\n"), "no footer: {got}");
    assert!(files_with(&outbox, "as work").is_empty(), "never through the system relay");
    let rec = wait_for("the delivery's record", &g, || record(&g, "work").filter(|r| r["state"] == "sent"));
    assert_eq!(rec["route"], "Work");
    assert!(replies(&rec).contains("queued as ACCOUNT"), "{rec}");
    assert_eq!(rec["attempts"][0]["relay_ip"], "127.0.0.1", "{rec}");
    let id = rec["id"].as_str().unwrap().to_string();
    let o = gatepost(&g.config, &["trace", "--route", "Work"]);
    assert!(text(&o).contains(&id), "{}", text(&o));
    let o = gatepost(&g.config, &["trace", "--route", "system"]);
    assert!(!text(&o).contains(&id), "{}", text(&o));
    let o = gatepost(&g.config, &["trace", "show", &id]);
    assert!(text(&o).contains("route:        account Work"), "{}", text(&o));

    let said = submit(&g, "al@old.example", "as old");
    assert!(said.starts_with("REFUSED 550") && said.contains("not yours"), "{said}");

    // Paused: the mail waits (deferred, the reason recorded), and goes once resumed.
    let o = gatepost(&g.config, &["account", "pause", "alice", "Work"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(submit(&g, LOGIN, "while paused").starts_with("SENT"));
    wait_for("a deferral naming the pause", &g, || record(&g, "paused").filter(|r| replies(r).contains("is paused")));
    assert!(files_with(&sent_there, "while paused").is_empty());
    let o = gatepost(&g.config, &["account", "resume", "alice", "Work"]);
    assert!(o.status.success(), "{}", text(&o));
    wait_for("delivery after resume", &g, || files_with(&sent_there, "while paused").pop());

    // Removed while its mail waits: the mail fails with a DSN naming the account.
    let o = gatepost(&g.config, &["account", "pause", "alice", "Work"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(submit(&g, LOGIN, "before removal").starts_with("SENT"));
    wait_for("a deferral", &g, || record(&g, "removal").filter(|r| replies(r).contains("is paused")));
    let o = gatepost(&g.config, &["account", "remove", "alice", "Work"]);
    assert!(o.status.success(), "{}", text(&o));
    let rec = wait_for("failure", &g, || record(&g, "removal").filter(|r| r["state"] == "failed"));
    assert!(replies(&rec).contains("was removed"), "{rec}");
    let dsn = wait_for("the DSN", &g, || files_with(&outbox, "Undelivered").pop());
    assert!(dsn.contains("before removal") && dsn.contains("\"Work\" was removed"), "{dsn}");
    assert!(files_with(&sent_there, "before removal").is_empty());
    let said = submit(&g, LOGIN, "after removal");
    assert!(said.starts_with("REFUSED 550"), "a removed account's address is no sender: {said}");
}

/// Messages in a folder of a session (a gatepost or the source), by subject.
async fn subjects(s: &mut gatepost::sync::connect::Session, folder: &str) -> Vec<String> {
    let exists = s.select(folder).await.unwrap_or_else(|e| panic!("SELECT {folder}: {e}")).exists;
    if exists == 0 {
        return Vec::new();
    }
    let f: Vec<_> = s.fetch("1:*", "BODY.PEEK[HEADER.FIELDS (SUBJECT)]").await.unwrap().collect().await;
    f.iter()
        .map(|m| String::from_utf8_lossy(m.as_ref().unwrap().header().unwrap_or_default()).trim().to_string())
        .collect()
}

#[tokio::test]
async fn the_sent_copy_is_in_the_accounts_sent_here_and_at_the_source_once() {
    if !available() {
        return;
    }
    let dv = Dovecot::start_with(
        &[(LOGIN, PASSWORD)],
        "namespace inbox {\n  inbox = yes\n  mailbox Sent {\n    special_use = \\Sent\n    auto = create\n  }\n}\n",
    );
    let mut g = Gatepost::new("[sync]\npoll_interval = \"2s\"\n");
    let Some(smtp) = aiosmtpd_into(g.dir.path(), PASSWORD, None) else { return };
    let (ca, url) = (cert().display().to_string(), format!("smtp+starttls://localhost:{}", smtp.1));
    let o = g.add_account(&dv, &["--smtp", &url, "--ca-file", &ca, "--no-follow"]);
    assert!(o.status.success(), "{}", text(&o));
    g.serve();
    let o = gatepost(&g.config, &["account", "show", "alice", "Work", "--follow"]);
    assert!(o.status.success(), "{}\n{}", text(&o), g.log());

    // --sent-copy auto (a server that does not file its own): appended at the source, and
    // that copy is the local one, not a second.
    assert!(submit_with_id(&g, LOGIN, "appended", Some("<appended@work.example>")).starts_with("SENT"));
    let mut src = session(&dv).await;
    let mut c = g.imap().await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while subjects(&mut src, "Sent").await.is_empty() {
        assert!(Instant::now() < deadline, "no copy at the source:\n{}", g.log());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(subjects(&mut src, "Sent").await, ["Subject: appended"]);
    // Polls of every folder come and go (2 s): still one copy on each side.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(subjects(&mut src, "Sent").await, ["Subject: appended"], "appended once");
    assert_eq!(subjects(&mut c, "Accounts/Work/Sent").await, ["Subject: appended"], "{}", g.log());
    assert_eq!(subjects(&mut c, "Sent").await, ["Subject: appended"]);
    // One message in both: a flag set in one is seen in the other.
    c.select("Accounts/Work/Sent").await.unwrap();
    let _: Vec<_> = c.store("1", "+FLAGS (\\Flagged)").await.unwrap().collect().await;
    c.select("Sent").await.unwrap();
    let f: Vec<_> = c.fetch("1", "FLAGS").await.unwrap().collect().await;
    assert!(format!("{:?}", f[0].as_ref().unwrap().flags().collect::<Vec<_>>()).contains("Flagged"), "{f:?}");

    // --sent-copy none, and the provider files its own copy (other bytes, same Message-ID):
    // mapped to the local copy by Message-ID, not filed a second time.
    let o = gatepost(&g.config, &["account", "set", "alice", "Work", "--sent-copy", "none"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(submit_with_id(&g, LOGIN, "filed by them", Some("<theirs@work.example>")).starts_with("SENT"));
    let deadline = Instant::now() + Duration::from_secs(30);
    while subjects(&mut c, "Accounts/Work/Sent").await.len() < 2 {
        assert!(Instant::now() < deadline, "no local copy:\n{}", g.log());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(subjects(&mut src, "Sent").await.len(), 1, "none: nothing appended");
    let theirs = b"Received: by smtp.work.example\r\nFrom: Alice <alice@work.example>\r\nTo: bob@example.org\r\n\
Subject: filed by them\r\nMessage-ID: <theirs@work.example>\r\n\r\nHello Bob.\r\n";
    append(&mut src, "Sent", theirs, Some("(\\Seen)")).await;
    tokio::time::sleep(Duration::from_secs(6)).await;
    let mut mine = subjects(&mut c, "Accounts/Work/Sent").await;
    mine.sort();
    assert_eq!(mine, ["Subject: appended", "Subject: filed by them"], "{}", g.log());
}
