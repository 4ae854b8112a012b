//! What the operator's terminal shows. A client puts terminal escapes (ESC, BEL), C1 controls
//! and bidi overrides into the Subject, the display name and the Message-ID; the real
//! `gatepost` binary's `queue list/show` and `trace`/`trace show`, tables and `--json`, must
//! show them as text and never pass them to the terminal. And a reader that stops reading
//! (`| head`) ends a command quietly.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::store::{gatepost, text};
use crate::support::*;

/// The operator output rule, restated independently of gatepost's own function.
fn unsafe_char(c: char) -> bool {
    c != '\n' && (c.is_control() || ('\u{202a}'..='\u{202e}').contains(&c) || ('\u{2066}'..='\u{2069}').contains(&c))
}

fn assert_terminal_safe(what: &str, out: &str) {
    if let Some(c) = out.chars().find(|c| unsafe_char(*c)) {
        panic!("{what} printed {c:?} raw:\n{}", out.escape_debug());
    }
}

const SUBJECT_RAW: &str = "Invoice \u{1b}]0;pwned\u{7}\u{1b}[2J paid\u{202e}fdp.exe";

fn hostile_message() -> Vec<u8> {
    // Raw ESC/BEL and a bidi override in the Subject (UTF-8), C1 controls in the display name
    // (raw, and through an encoded word), ESC in the Message-ID.
    format!(
        "From: \"Boss\u{9b}31m \u{85}Name\" <alice@example.com>\r\nTo: bob@example.net\r\nSubject: {SUBJECT_RAW} =?UTF-8?Q?=1B=5B5m?=\r\nMessage-ID: <evil\u{1b}[8m@example.com>\r\nDeliver-On: {}\r\n\r\nhello\r\n",
        crate::store::next_month()
    )
    .into_bytes()
}

fn write_config(dir: &Path) -> PathBuf {
    let config = dir.join("g.toml");
    std::fs::write(&config, config_text(dir, "")).unwrap();
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_text_never_reaches_the_terminal_raw() {
    let server = TestServer::start().await;
    let (c, _) = Client::plain(server.submission).await;
    let mut c = c.starttls().await;
    c.login().await;
    let r = c.submit(EMAIL, &["bob@example.net"], &hostile_message()).await;
    assert!(r.starts_with("250"), "{r}");
    let id = queue_id(&r);
    // The record keeps what the client sent: the test is about showing it.
    let rec = server.store().get_message(id.parse().unwrap()).unwrap().unwrap();
    let subject = rec.subject.clone().unwrap();
    assert!(subject.contains('\u{1b}') && subject.contains('\u{7}') && subject.contains('\u{202e}'), "{subject:?}");
    let name = rec.sender_name.clone().unwrap_or_default();
    assert!(name.chars().any(|c| ('\u{80}'..='\u{9f}').contains(&c)), "{name:?}");
    assert!(rec.message_id.as_deref().unwrap_or_default().contains('\u{1b}'), "{:?}", rec.message_id);

    let config = write_config(server.dir.path());
    // The running server's indexer takes the record within seconds.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let o = gatepost(&config, &["trace", "--json"]);
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
        if v["total"] == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "trace never found the message: {}", text(&o));
        std::thread::sleep(Duration::from_millis(200));
    }
    for args in [
        vec!["queue", "list"],
        vec!["queue", "show", &id],
        vec!["trace"],
        vec!["trace", "show", &id],
        vec!["trace", "--subject", "invoice"],
    ] {
        let o = gatepost(&config, &args);
        let out = text(&o);
        assert!(o.status.success(), "{args:?}: {out}");
        assert_terminal_safe(&format!("{args:?}"), &out);
        assert!(out.contains("\\u{1b}]0;pwned\\u{7}") && out.contains("\\u{202e}"), "{args:?} shows no escape:\n{out}");
    }
    let o = gatepost(&config, &["queue", "show", &id]);
    let show = text(&o);
    assert!(show.contains("\\u{9b}31m \\u{85}Name") && show.contains("evil\\u{1b}[8m@example.com"), "{show}");
    // JSON: escaped the JSON way, and a script still gets exactly the stored text back.
    for (args, pointer) in [
        (vec!["queue", "list", "--json"], "/0"),
        (vec!["queue", "show", &id, "--json"], ""),
        (vec!["trace", "--json"], "/records/0"),
        (vec!["trace", "show", &id, "--json"], ""),
    ] {
        let o = gatepost(&config, &args);
        let out = text(&o);
        assert!(o.status.success(), "{args:?}: {out}");
        assert_terminal_safe(&format!("{args:?}"), &out);
        assert!(out.contains("\\u001b") && out.contains("\\u202e") && out.contains("\\u0085"), "{args:?}:\n{out}");
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let rec = v.pointer(pointer).unwrap_or_else(|| panic!("{args:?}: no {pointer}"));
        assert_eq!(rec["subject"].as_str(), Some(subject.as_str()), "{args:?}");
        assert_eq!(rec["sender_name"].as_str(), Some(name.as_str()), "{args:?}");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_that_goes_away_ends_every_command_quietly() {
    let server = TestServer::start().await;
    let (c, _) = Client::plain(server.submission).await;
    let mut c = c.starttls().await;
    c.login().await;
    let later = crate::store::next_month();
    // Enough output to fill a pipe (64 KiB) many times over.
    for i in 0..60 {
        let msg = format!(
            "From: alice@example.com\r\nSubject: {i} {}\r\nDeliver-On: {later}\r\n\r\nx\r\n",
            "long subject ".repeat(100)
        );
        assert!(c.submit(EMAIL, &["bob@example.net"], msg.as_bytes()).await.starts_with("250"));
    }
    let dir = server.stop().await;
    let config = write_config(dir.path());
    for args in [
        &["queue", "list"][..],
        &["queue", "list", "--json"],
        &["trace", "--limit", "100"],
        &["trace", "--json", "--limit", "100"],
    ] {
        // Like `gatepost queue list | head -c 100`: read a little, then close the pipe.
        let mut child = Command::new(env!("CARGO_BIN_EXE_gatepost"))
            .arg("--config")
            .arg(&config)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut head = [0u8; 100];
        child.stdout.take().unwrap().read_exact(&mut head).unwrap();
        let o = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "{args:?}: {:?}\n{err}", o.status);
        assert!(!err.contains("panicked") && !err.contains("Broken pipe"), "{args:?}:\n{err}");
    }
}
