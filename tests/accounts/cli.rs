//! `gatepost account …` and `gatepost secrets rotate` as an operator runs them, against a
//! private Dovecot: nothing is stored unless the login worked, and no password is ever shown.

use std::path::Path;
use std::process::{Command, Output};

use crate::dovecot::{Dovecot, available, cert};

fn gatepost(config: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gatepost")).arg("--config").arg(config).args(args).output().unwrap()
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn setup(dir: &Path) -> std::path::PathBuf {
    let config = dir.join("g.toml");
    let d = dir.display();
    std::fs::write(
        &config,
        format!(
            "data_dir = \"{d}/data\"\n[relay]\nurl = \"file://{d}/outbox\"\n\
             [secrets]\nkey_file = \"{d}/secrets.key\"\ngenerate_if_missing = true\n"
        ),
    )
    .unwrap();
    std::fs::write(dir.join("own"), "alice's own gatepost pw\n").unwrap();
    let own = dir.join("own").display().to_string();
    let o = gatepost(&config, &["user", "add", "alice", "--email", "alice@example.net", "--password-file", &own]);
    assert!(o.status.success(), "{}", text(&o));
    config
}

#[test]
fn an_account_is_stored_only_after_its_login_worked_and_its_password_never_shows() {
    if !available() {
        return;
    }
    let dv = Dovecot::start(&[("alice@work.example", "the work password")]);
    let dir = tempfile::tempdir().unwrap();
    let config = setup(dir.path());
    let (right, wrong) = (dir.path().join("right"), dir.path().join("wrong"));
    std::fs::write(&right, "the work password\n").unwrap();
    std::fs::write(&wrong, "a guessed password\n").unwrap();
    let url = format!("imaps://localhost:{}", dv.imaps_port);
    let ca = cert().display().to_string();
    let add = |name: &str, pw: &Path| {
        gatepost(
            &config,
            &[
                "account",
                "add",
                "alice",
                "--name",
                name,
                "--address",
                "alice@work.example",
                "--imap",
                &url,
                "--ca-file",
                &ca,
                "--password-file",
                &pw.display().to_string(),
            ],
        )
    };

    // A wrong password: the login step is named, nothing is stored.
    let o = add("Work", &wrong);
    assert!(!o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("login step failed: wrong login or password"), "{}", text(&o));
    assert!(text(&o).contains("AUTHENTICATIONFAILED") && !text(&o).contains("guessed"), "{}", text(&o));
    let o = gatepost(&config, &["account", "list", "alice"]);
    assert!(o.status.success() && !text(&o).contains("Work"), "{}", text(&o));

    // The user's own gatepost password is refused before any connection.
    let o = add("Work", &dir.path().join("own"));
    assert!(!o.status.success() && text(&o).contains("own gatepost password"), "{}", text(&o));

    // The right one: logged in, stored sealed.
    let o = add("Work", &right);
    assert!(o.status.success(), "{}\n{}", text(&o), dv.log());
    assert!(text(&o).contains("added account Work for alice") && text(&o).contains("IDLE"), "{}", text(&o));
    let o = add("Work", &right);
    assert!(!o.status.success() && text(&o).contains("already has an account named"), "{}", text(&o));

    let o = gatepost(&config, &["account", "show", "alice", "Work", "--json"]);
    assert!(o.status.success(), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["incoming"], format!("imaps://localhost:{}", dv.imaps_port));
    assert_eq!(v["state"], "active");
    assert!(v["credential"].as_str().unwrap().starts_with("password (sealed under key"), "{v}");
    let db = std::fs::read(dir.path().join("data/gatepost.redb")).unwrap();
    assert!(!db.windows(b"the work password".len()).any(|w| w == b"the work password"), "sealed at rest");
    assert!(!text(&gatepost(&config, &["account", "show", "alice", "Work"])).contains("work password"));

    let o = gatepost(&config, &["account", "check", "alice", "Work"]);
    assert!(o.status.success() && text(&o).contains("login and capabilities fine"), "{}", text(&o));
    let o = gatepost(&config, &["account", "pause", "alice", "Work"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&gatepost(&config, &["account", "list", "alice"])).contains("paused"));

    // Rotation: the credential opens under the new key only.
    let new_key = dir.path().join("new.key");
    std::fs::write(&new_key, format!("{}\n", "ab".repeat(32))).unwrap();
    let o = gatepost(&config, &["secrets", "rotate", "--new-key-file", &new_key.display().to_string()]);
    assert!(o.status.success() && text(&o).contains("re-sealed 1 credential"), "{}", text(&o));
    let o = gatepost(&config, &["account", "check", "alice", "Work"]);
    assert!(!o.status.success() && text(&o).contains("another key"), "{}", text(&o));
    let rotated = std::fs::read_to_string(&config)
        .unwrap()
        .replace(&format!("{}/secrets.key", dir.path().display()), &new_key.display().to_string());
    std::fs::write(&config, rotated).unwrap();
    let o = gatepost(&config, &["account", "check", "alice", "Work"]);
    assert!(o.status.success(), "{}", text(&o));
}

#[test]
fn bad_input_is_refused_with_a_reason_before_any_connection() {
    let dir = tempfile::tempdir().unwrap();
    let config = setup(dir.path());
    let pw = dir.path().join("pw");
    std::fs::write(&pw, "whatever it is\n").unwrap();
    let pw = pw.display().to_string();
    for (args, want) in [
        (vec!["--name", "a/b", "--address", "a@b.example", "--imap", "imaps://imap.b.example"], "may not contain /"),
        (vec!["--name", "B", "--address", "not-an-address", "--imap", "imaps://imap.b.example"], "not an address"),
        (vec!["--name", "B", "--address", "a@b.example", "--imap", "imap://imap.b.example"], "plain text"),
        (vec!["--name", "B", "--address", "a@b.example", "--imap", "pop3://pop.b.example"], "plain text"),
        (
            vec!["--name", "B", "--address", "a@b.example", "--imap", "imaps://u:p@imap.b.example"],
            "user name or password",
        ),
        (
            vec![
                "--name",
                "B",
                "--address",
                "a@b.example",
                "--imap",
                "imaps://imap.b.example",
                "--smtp",
                "smtp://smtp.b.example",
            ],
            "plain text",
        ),
    ] {
        let mut all = vec!["account", "add", "alice"];
        all.extend(args.iter().copied());
        all.extend(["--password-file", pw.as_str()]);
        let o = gatepost(&config, &all);
        assert!(!o.status.success() && text(&o).contains(want), "{args:?}: {}", text(&o));
    }
    let o = gatepost(
        &config,
        &["account", "add", "nobody", "--name", "B", "--address", "a@b.example", "--imap", "imaps://x.example"],
    );
    assert!(!o.status.success() && text(&o).contains("no user"), "{}", text(&o));
}
