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
    assert_eq!(server.store().get_message(id.parse().unwrap()).unwrap().unwrap().state.as_str(), "cancelled");
    server.stop().await;
}

#[test]
fn check_config_reports_every_error_at_once() {
    // The example's text is valid; what it names under /etc/gatepost does not exist here, and
    // check-config says so, as `serve` would.
    let example = repo().join("config/gatepost.example.toml");
    let o = gatepost(&example, &["check-config"]);
    let out = text(&o);
    let errors: Vec<&str> = out.lines().filter(|l| !l.starts_with("warning: ") && !l.contains("error(s)")).collect();
    assert!(!errors.is_empty(), "{out}");
    for e in errors {
        assert!(e.contains("/etc/gatepost/") && (e.starts_with("tls.") || e.starts_with("relay.")), "{e}\n{out}");
    }
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

/// `user add` in a script, a cron job or a service: there is no terminal to ask on.
#[test]
fn user_add_without_a_terminal_says_what_to_use() {
    let Some(setsid) = which("setsid") else {
        eprintln!("*** SKIPPING: setsid (util-linux) is not installed ***");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("g.toml");
    std::fs::write(&config, config_text(dir.path(), "")).unwrap();
    // setsid: a new session without a controlling terminal, as under cron or systemd.
    let o = Command::new(setsid)
        .arg(env!("CARGO_BIN_EXE_gatepost"))
        .arg("--config")
        .arg(&config)
        .args(["user", "add", "bob", "--email", "bob@example.org"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let out = text(&o);
    assert!(!o.status.success(), "{out}");
    assert!(out.contains("--password-file") && !out.contains("os error 6"), "{out}");
    let o = Command::new(which("setsid").unwrap())
        .arg(env!("CARGO_BIN_EXE_gatepost"))
        .arg("--config")
        .arg(&config)
        .args(["user", "passwd", "nobody"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(!o.status.success() && text(&o).contains("no user"), "asked for a password first: {}", text(&o));
}

/// Drives `gatepost user add` on a pseudo-terminal (Python's pty module): it asks twice, and
/// two different answers change nothing.
const PTY_SCRIPT: &str = r#"
import os, pty, sys
binary, config, first, second = sys.argv[1:5]
pid, fd = pty.fork()
if pid == 0:
    os.execv(binary, [binary, "--config", config, "user", "add", "bob", "--email", "bob@example.org"])
seen = b""
def until(marker):
    global seen
    while marker not in seen:
        chunk = os.read(fd, 1024)
        if not chunk:
            raise SystemExit("gatepost ended before asking: %r" % seen)
        seen += chunk
until(b"Password for bob: ")
os.write(fd, first.encode() + b"\n")
until(b"The same again: ")
os.write(fd, second.encode() + b"\n")
while True:
    try:
        chunk = os.read(fd, 1024)
    except OSError:
        break
    if not chunk:
        break
    seen += chunk
_, status = os.waitpid(pid, 0)
sys.stdout.write(seen.decode(errors="replace"))
sys.exit(os.waitstatus_to_exitcode(status))
"#;

#[test]
fn passwords_are_asked_twice_on_a_terminal() {
    if !peer("python3") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("g.toml");
    std::fs::write(&config, config_text(dir.path(), "")).unwrap();
    let add = |first: &str, second: &str| {
        Command::new("python3")
            .args(["-c", PTY_SCRIPT, env!("CARGO_BIN_EXE_gatepost"), config.to_str().unwrap(), first, second])
            .output()
            .unwrap()
    };
    let o = add("a long password", "a long passwort");
    assert!(!o.status.success() && text(&o).contains("differ"), "{}", text(&o));
    assert!(!text(&gatepost(&config, &["user", "list"])).contains("bob@example.org"), "a user was added");
    let o = add("a long password", "a long password");
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&gatepost(&config, &["user", "list"])).contains("bob@example.org"));
}

#[test]
fn check_config_checks_the_files_it_names() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    let write = |name: &str, body: String| {
        let p = dir.path().join(name);
        std::fs::write(&p, body).unwrap();
        p
    };
    // `serve` refuses a certificate that is not there; so must check-config.
    let missing = write(
        "missing.toml",
        format!("data_dir = \"{d}/data\"\n[tls]\ncert = \"{d}/nope.pem\"\nkey = \"{d}/nope-key.pem\"\n"),
    );
    let o = gatepost(&missing, &["check-config"]);
    assert!(!o.status.success() && text(&o).contains("tls.cert") && text(&o).contains("nope.pem"), "{}", text(&o));
    // Both missing and generated at the first start: fine.
    let generated = write(
        "generated.toml",
        format!(
            "data_dir = \"{d}/data\"\n[tls]\ncert = \"{d}/c.pem\"\nkey = \"{d}/k.pem\"\ngenerate_if_missing = true\n"
        ),
    );
    let o = gatepost(&generated, &["check-config"]);
    assert!(o.status.success(), "{}", text(&o));
    // The relay password would cross the network in clear: a warning, not an error.
    std::fs::write(dir.path().join("pw"), "secret\n").unwrap();
    let plain = write(
        "plain.toml",
        config_text(dir.path(), "")
            + &format!(
                "[relay]\nurl = \"smtp://smtp.example.net:25\"\nusername = \"u\"\npassword_file = \"{d}/pw\"\nfrom_address = \"r@example.net\"\n"
            ),
    );
    let o = gatepost(&plain, &["check-config"]);
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert!(out.contains("warning: relay.url") && out.contains("in clear") && !out.contains("secret"), "{out}");
}

#[test]
fn trace_text_without_words_is_a_bad_filter() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("g.toml");
    std::fs::write(&config, config_text(dir.path(), "")).unwrap();
    let o = gatepost(&config, &["trace", "--text", "!!!"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("--text \"!!!\" has no words"), "{}", text(&o));
}

#[test]
fn a_new_data_directory_is_called_new() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = dir.path().join("g.toml");
    let text = config_text(&dir.path().join("data"), "").replacen(
        "starttls_listen = \"127.0.0.1:0\"",
        &format!("starttls_listen = \"127.0.0.1:{port}\""),
        1,
    );
    std::fs::write(&config, text).unwrap();
    // `keep_reading: false`: the log's reader goes away while the server runs (`serve 2>&1 |
    // head`); the server must still stop cleanly.
    let start = |keep_reading: bool| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_gatepost"))
            .arg("--config")
            .arg(&config)
            .arg("serve")
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut log = String::new();
        let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
        for line in lines.by_ref() {
            let line = line.unwrap();
            log += &line;
            log.push('\n');
            if line.contains("gatepost listening") {
                break;
            }
        }
        let rest = keep_reading.then_some(lines); // else the read end closes here
        Command::new("kill").arg("-TERM").arg(child.id().to_string()).status().unwrap();
        if let Some(lines) = rest {
            log.extend(lines.map_while(Result::ok).map(|l| l + "\n"));
        }
        let status = child.wait().unwrap();
        assert!(status.success(), "{status:?}\n{log}");
        log
    };
    let first = start(true);
    assert!(first.contains("new data directory") && !first.contains("did not stop cleanly"), "{first}");
    let second = start(true); // after a clean stop: neither
    assert!(!second.contains("new data directory") && !second.contains("did not stop cleanly"), "{second}");
    start(false);
    let after = start(true); // and that stop was clean too
    assert!(!after.contains("did not stop cleanly"), "{after}");
}
