//! Sending as a connected account (SPEC §10) end to end: Python's smtplib submits to a real
//! `gatepost serve`, and the mail leaves through the account's own SMTP server (aiosmtpd with
//! STARTTLS and AUTH) as written — never through the system relay. A paused account's mail
//! waits; a removed account's mail fails with a DSN naming it; an address whose route was
//! never accepted is no sender at all.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::dovecot::{Dovecot, available, cert};
use crate::serve::{Gatepost, LOGIN, PASSWORD, gatepost, text};
use crate::smtp::aiosmtpd_into;

/// One message from `sender` to bob over STARTTLS as alice; prints `SENT` or `REFUSED code text`.
const SUBMIT: &str = r#"
import smtplib, ssl, sys
from email.message import EmailMessage
port, cafile, sender, subject = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
m = EmailMessage()
m["From"] = "Alice <%s>" % sender
m["To"] = "bob@example.org"
m["Subject"] = subject
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
    let script = g.dir.path().join("submit.py");
    std::fs::write(&script, SUBMIT).unwrap();
    let o = Command::new("/usr/bin/python3")
        .arg(&script)
        .arg(g.smtp_port.to_string())
        .arg(cert())
        .args([sender, subject])
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
