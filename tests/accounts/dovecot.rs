//! A private Dovecot for account tests (package `dovecot-imapd`): its own config and Maildir
//! under a temporary directory, IMAP with STARTTLS and IMAPS on loopback high ports (listening
//! on 127.0.0.1 and 127.0.0.2: the test certificate names only the first), users from a
//! passwd-file with {PLAIN} passwords. Stopped when dropped.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::ports::free_port;

pub struct Dovecot {
    pub dir: tempfile::TempDir,
    pub imap_port: u16,
    pub imaps_port: u16,
    /// POP3 (plain, STLS offered) when dovecot-pop3d is installed.
    pub pop3_port: u16,
    conf: PathBuf,
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn cert() -> PathBuf {
    repo().join("certs/localhost-cert.pem")
}

/// Whether dovecot-pop3d is installed too; as `available`.
pub fn pop3_available() -> bool {
    if !available() {
        return false;
    }
    if Path::new("/usr/lib/dovecot/pop3").exists() {
        return true;
    }
    if std::env::var("GATEPOST_REQUIRE_PEERS").is_ok_and(|v| v == "1") {
        panic!("required test peer dovecot-pop3d is not installed (GATEPOST_REQUIRE_PEERS=1)");
    }
    eprintln!("SKIPPED: dovecot-pop3d is not installed (apt-get install dovecot-pop3d)");
    false
}

/// Whether Dovecot is installed; without it the test skips, unless peers are required (CI).
pub fn available() -> bool {
    if Path::new("/usr/lib/dovecot/imap").exists() && Command::new("dovecot").arg("--version").output().is_ok() {
        return true;
    }
    if std::env::var("GATEPOST_REQUIRE_PEERS").is_ok_and(|v| v == "1") {
        panic!(
            "required test peer dovecot-imapd is not installed (GATEPOST_REQUIRE_PEERS=1); run .ci/run to install it"
        );
    }
    eprintln!("SKIPPED: dovecot-imapd is not installed (apt-get install dovecot-imapd)");
    false
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
}

impl Dovecot {
    pub fn start(users: &[(&str, &str)]) -> Dovecot {
        Dovecot::start_with(users, "")
    }

    /// With `extra` appended to the configuration.
    pub fn start_with(users: &[(&str, &str)], extra_conf: &str) -> Dovecot {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for sub in ["run", "state", "mail"] {
            std::fs::create_dir_all(d.join(sub)).unwrap();
        }
        let root = current_uid() == 0;
        {
            use std::os::unix::fs::PermissionsExt;
            // Dovecot's unprivileged processes must reach their files.
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        if root {
            run(Command::new("chown").args(["nobody:nogroup"]).arg(d.join("mail")));
        }
        let passwd: String = users.iter().map(|(u, p)| format!("{u}:{{PLAIN}}{p}\n")).collect();
        std::fs::write(d.join("passwd"), passwd).unwrap();
        let (imap_port, imaps_port, pop3_port) = (free_port(), free_port(), free_port());
        let pop3 = Path::new("/usr/lib/dovecot/pop3").exists();
        let (protocols, pop3_service) = if pop3 {
            (
                "imap pop3",
                format!(
                    "service pop3-login {{\n  inet_listener pop3 {{\n    port = {pop3_port}\n  }}\n  inet_listener pop3s {{\n    port = 0\n  }}\n}}\n"
                ),
            )
        } else {
            ("imap", String::new())
        };
        let identity = if root {
            "uid=nobody gid=nogroup".to_string()
        } else {
            let user = std::env::var("USER").unwrap_or_else(|_| "nobody".into());
            format!(
                "uid={} gid={}\ndefault_login_user = {user}\ndefault_internal_user = {user}",
                current_uid(),
                current_gid()
            )
        };
        let (userdb_args, extra) = identity.split_once('\n').unwrap_or((&identity, ""));
        let conf = d.join("dovecot.conf");
        let text = format!(
            "base_dir = {d}/run\nstate_dir = {d}/state\ninstance_name = gatepost-test-{imaps_port}\n\
             log_path = {d}/dovecot.log\nprotocols = {protocols}\nlisten = 127.0.0.1, 127.0.0.2\nssl = yes\n\
             ssl_cert = <{cert}\nssl_key = <{key}\nauth_mechanisms = plain\n\
             mail_location = maildir:{d}/mail/%u\n{extra}\n\
             passdb {{\n  driver = passwd-file\n  args = {d}/passwd\n}}\n\
             userdb {{\n  driver = static\n  args = {userdb_args} home={d}/mail/%u\n}}\n\
             service imap-login {{\n  inet_listener imap {{\n    port = {imap_port}\n  }}\n  \
             inet_listener imaps {{\n    port = {imaps_port}\n    ssl = yes\n  }}\n}}\n{pop3_service}{extra_conf}\n",
            d = d.display(),
            cert = cert().display(),
            key = repo().join("certs/localhost-key.pem").display(),
        );
        std::fs::write(&conf, text).unwrap();
        // The master forks and keeps our stdout and stderr if it gets them: give it none.
        let started = Command::new("dovecot")
            .arg("-c")
            .arg(&conf)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .expect("dovecot runs");
        assert!(started.success(), "dovecot -c {}: {started}", conf.display());
        let dv = Dovecot { dir, imap_port, imaps_port, pop3_port, conf };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", imaps_port)).is_err() {
            assert!(std::time::Instant::now() < deadline, "Dovecot did not start: {}", dv.log());
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        dv
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dovecot.log")).unwrap_or_default()
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        let _ = Command::new("doveadm")
            .arg("-c")
            .arg(&self.conf)
            .arg("stop")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
}

fn current_uid() -> u32 {
    id("-u")
}

fn current_gid() -> u32 {
    id("-g")
}

fn id(flag: &str) -> u32 {
    let out = Command::new("id").arg(flag).output().expect("id");
    String::from_utf8_lossy(&out.stdout).trim().parse().expect("a number")
}
