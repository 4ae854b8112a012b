//! The send-as route's check: `account add --smtp` logs in to the account's own SMTP server
//! (aiosmtpd requiring STARTTLS and AUTH) before anything is stored.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::dovecot::{Dovecot, available, cert, repo};
use crate::ports::free_port;
use crate::serve::{Gatepost, LOGIN, PASSWORD, gatepost, text};

const PYTHON: &str = "/usr/bin/python3";

/// aiosmtpd requiring STARTTLS and AUTH with the account's login and password.
const SERVER: &str = r#"
import ssl, sys, time
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
port, cert, key, login, password = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
outdir = sys.argv[6] if len(sys.argv) > 6 else None
ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
ctx.load_cert_chain(cert, key)
def auth(server, session, envelope, mechanism, data):
    ok = isinstance(data, LoginPassword) and data.login == login.encode() and data.password == password.encode()
    return AuthResult(success=ok, handled=False)
class Handler:
    async def handle_DATA(self, server, session, envelope):
        if outdir:
            name = "%s/%d.eml" % (outdir, time.time_ns())
            with open(name + ".tmp", "wb") as f:
                f.write(("X-Envelope: %s %s\r\n" % (envelope.mail_from, " ".join(envelope.rcpt_tos))).encode())
                f.write(envelope.original_content)
            import os
            os.rename(name + ".tmp", name)
        return "250 2.0.0 Ok: queued as ACCOUNT"
c = Controller(Handler(), hostname="127.0.0.1", port=port, tls_context=ctx, require_starttls=True,
               authenticator=auth, auth_required=True, auth_require_tls=True)
c.start()
while True:
    time.sleep(3600)
"#;

pub struct Smtp(std::process::Child, pub u16);

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn aiosmtpd(dir: &std::path::Path, password: &str) -> Option<Smtp> {
    aiosmtpd_into(dir, password, None)
}

/// As `aiosmtpd`, keeping each message it accepts in `outdir` (first line: `X-Envelope:
/// sender recipients`).
pub fn aiosmtpd_into(dir: &std::path::Path, password: &str, outdir: Option<&std::path::Path>) -> Option<Smtp> {
    let ok = Command::new(PYTHON).args(["-c", "import aiosmtpd"]).status().is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var("GATEPOST_REQUIRE_PEERS").map_or(true, |v| v != "1"),
            "required test peer python3-aiosmtpd is not installed (GATEPOST_REQUIRE_PEERS=1)"
        );
        eprintln!("SKIPPED: python3-aiosmtpd is not installed");
        return None;
    }
    let script = dir.join("smtp.py");
    std::fs::write(&script, SERVER).unwrap();
    let port = free_port();
    let child = Command::new(PYTHON)
        .arg(&script)
        .arg(port.to_string())
        .arg(cert())
        .arg(repo().join("certs/localhost-key.pem"))
        .args([LOGIN, password])
        .args(outdir.map(|d| d.display().to_string()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let s = Smtp(child, port);
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "aiosmtpd did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    Some(s)
}

#[test]
fn the_smtp_route_is_stored_only_when_its_login_works() {
    if !available() {
        return;
    }
    let dv = Dovecot::start(&[(LOGIN, PASSWORD)]);
    let g = Gatepost::new("");
    let ca = cert().display().to_string();

    // The SMTP server wants another password than the one given: nothing is stored.
    let Some(other) = aiosmtpd(g.dir.path(), "another password") else { return };
    let url = format!("smtp+starttls://localhost:{}", other.1);
    let o = g.add_account(&dv, &["--smtp", &url, "--ca-file", &ca]);
    assert!(!o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("refused the login") && !text(&o).contains(PASSWORD), "{}", text(&o));
    let o = gatepost(&g.config, &["account", "list", "alice"]);
    assert!(!text(&o).contains("Work"), "{}", text(&o));
    drop(other);

    let Some(good) = aiosmtpd(g.dir.path(), PASSWORD) else { return };
    let url = format!("smtp+starttls://localhost:{}", good.1);
    let o = g.add_account(&dv, &["--smtp", &url, "--ca-file", &ca, "--no-follow"]);
    assert!(o.status.success(), "{}", text(&o));
    let o = gatepost(&g.config, &["account", "show", "alice", "Work", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v["smtp_checked_at"].is_string(), "{v}");
    let o = gatepost(&g.config, &["account", "check", "alice", "Work"]);
    assert!(o.status.success() && text(&o).contains("may send through it"), "{}", text(&o));

    // The route stops working: check says so and the address loses the route.
    drop(good);
    let o = gatepost(&g.config, &["account", "check", "alice", "Work"]);
    assert!(!o.status.success(), "{}", text(&o));
    let o = gatepost(&g.config, &["account", "show", "alice", "Work", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v["smtp_checked_at"].is_null(), "{v}");
}
