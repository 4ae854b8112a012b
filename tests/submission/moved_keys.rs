//! The throttle keys moved from `[submission]` to `[login]` (issue 8 item 6): the old ones
//! still work for one release, and both `check-config` and `serve` name the key to use instead.

use std::io::BufRead;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::*;

const WARNING: &str = "submission.auth_lockout: is deprecated: use login.lockout";

fn config_with_old_key(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("g.toml");
    let text = config_text(dir, "").replace("[submission]\n", "[submission]\nauth_lockout = \"1h\"\n");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn check_config_names_the_new_key() {
    let dir = tempfile::tempdir().unwrap();
    let o = run_gatepost(&config_with_old_key(dir.path()), &["check-config"]);
    let (out, err) = (String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert!(o.status.success() && out.contains(": OK"), "{out}{err}");
    assert!(err.contains(&format!("warning: {WARNING}")), "{err}");
}

#[test]
fn serve_logs_the_new_key() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_gatepost"))
        .arg("--config")
        .arg(config_with_old_key(dir.path()))
        .arg("serve")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    let found = loop {
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(line) if line.contains(WARNING) => break true,
            Ok(line) if line.contains("gatepost listening") => {
                seen.push(line);
                break false;
            }
            Ok(line) => seen.push(line),
            Err(_) => break false,
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    assert!(found, "serve did not log the warning before listening:\n{}", seen.join("\n"));
}
