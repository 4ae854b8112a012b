//! Real relays: Postfix's smtp-sink (dumps each message with its envelope) and Python's
//! aiosmtpd requiring STARTTLS and AUTH. Each test checks gatepost's view (the Delivery)
//! and the relay's (what it stored), with exact values.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use gatepost::relay::RecipientResult::{self, Delivered};

use crate::support::*;

/// Files in `dir` (not dot-files), sorted, waiting until there are `n`.
pub async fn wait_files(dir: &Path, n: usize) -> Vec<PathBuf> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_file() && !p.file_name().unwrap().to_string_lossy().starts_with('.'))
            .collect();
        files.sort();
        if files.len() >= n {
            return files;
        }
        assert!(Instant::now() < deadline, "expected {n} files in {}, found {files:?}", dir.display());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// An smtp-sink dump: its `X-` envelope headers, and the message after its own Received.
struct Dump {
    envelope: Vec<String>,
    message: String,
}

fn read_dump(path: &Path) -> Dump {
    let text = String::from_utf8(std::fs::read(path).unwrap()).unwrap();
    let mut envelope = Vec::new();
    let mut rest = text.as_str();
    loop {
        let (line, tail) = rest.split_once('\n').unwrap_or_else(|| panic!("no Received in dump {text:?}"));
        rest = tail;
        if line.starts_with("Received:") {
            break;
        }
        envelope.push(line.to_string());
    }
    while rest.starts_with('\t') {
        rest = rest.split_once('\n').unwrap().1;
    }
    Dump { envelope, message: rest.to_string() }
}

#[tokio::test]
async fn smtp_sink_receives_a_batch_over_one_connection() {
    if !peer("smtp-sink") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // smtp-sink writes as `nobody`, which must be able to enter the dump directory.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let port = free_port();
    let mut args: Vec<String> = Vec::new();
    if std::fs::metadata("/proc/self").map(|m| m.uid()).unwrap_or(1) == 0 {
        args.extend(["-u".into(), "nobody".into()]);
    }
    args.extend([
        "-d".into(),
        format!("{}/%Y%m%d%H%M%S.", dir.path().display()),
        format!("127.0.0.1:{port}"),
        "100".into(),
    ]);
    let mut sink = Child(
        Command::new(which("smtp-sink").unwrap())
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_listening(port, &mut sink, "smtp-sink").await;

    let bodies = [
        "From: Alice <alice@example.com>\r\nSubject: one\r\n\r\nHello Bob.\r\n.a line starting with a dot\r\n.\r\nend\r\n",
        "Subject: two\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nCafé crème for two.\r\n",
        "Subject: three\r\n\r\nno final newline",
    ];
    let msgs = [
        msg("Q1", "relay@gatepost.test", &["bob@example.net"], bodies[0]),
        msg("Q2", "relay@gatepost.test", &["carol@example.net", "dave@example.org"], bodies[1]),
        msg("Q3", "relay@gatepost.test", &["erin@example.net"], bodies[2]),
    ];
    let relay = relay(&format!("smtp://127.0.0.1:{port}"), |_| {});
    let started = Instant::now();
    let out = relay.deliver_batch(&msgs).await;
    eprintln!("smtp-sink batch of 3 took {:?}", started.elapsed());
    assert_eq!(out.len(), 3);
    for (d, m) in out.iter().zip(&msgs) {
        assert_eq!(d.recipients, vec![Delivered; m.recipients.len()], "{d:?}");
        assert_eq!(d.relay_ip, Some("127.0.0.1".parse().unwrap()));
        assert_eq!(d.system_ip, Some("127.0.0.1".parse().unwrap()));
        assert!(d.reply.starts_with("250 2.0.0"), "{d:?}");
    }

    let files = wait_files(dir.path(), 3).await;
    assert_eq!(files.len(), 3, "{files:?}");
    let mut dumps: Vec<Dump> = files.iter().map(|f| read_dump(f)).collect();
    // Put the dumps in message order by their first recipient.
    dumps.sort_by_key(|d| {
        let first = d.envelope.iter().find(|l| l.starts_with("X-Rcpt-Args:")).cloned().unwrap_or_default();
        msgs.iter().position(|m| first.contains(&m.recipients[0])).unwrap_or(99)
    });
    for (i, (dump, m)) in dumps.iter().zip(&msgs).enumerate() {
        let field = |name: &str| -> Vec<String> {
            dump.envelope.iter().filter_map(|l| l.strip_prefix(name)).map(|v| v.trim().to_string()).collect()
        };
        assert_eq!(field("X-Helo-Args:"), ["gatepost.test"]);
        let mail_args = if i == 1 { "<relay@gatepost.test> BODY=8BITMIME" } else { "<relay@gatepost.test>" };
        assert_eq!(field("X-Mail-Args:"), [mail_args], "message {}", i + 1);
        let rcpts: Vec<String> = m.recipients.iter().map(|r| format!("<{r}>")).collect();
        assert_eq!(field("X-Rcpt-Args:"), rcpts);
        // The dump has LF line ends, and smtp-sink ends each dump with one empty line.
        let mut want = bodies[i].replace("\r\n", "\n");
        if !want.ends_with('\n') {
            want.push('\n');
        }
        want.push('\n');
        assert_eq!(dump.message, want, "message {}", i + 1);
    }
}

const AIOSMTPD_SCRIPT: &str = r#"
import os, ssl, sys, time
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

port, cert, key, out = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
ctx.load_cert_chain(cert, key)

def authenticator(server, session, envelope, mechanism, auth_data):
    ok = (isinstance(auth_data, LoginPassword)
          and auth_data.login == b"relayuser" and auth_data.password == b"relay secret")
    return AuthResult(success=ok, handled=False)

class Handler:
    n = 0
    async def handle_DATA(self, server, session, envelope):
        Handler.n += 1
        path = os.path.join(out, "%d.msg" % Handler.n)
        with open(path + ".tmp", "wb") as f:
            f.write(("MAIL %s\n" % envelope.mail_from).encode())
            for r in envelope.rcpt_tos:
                f.write(("RCPT %s\n" % r).encode())
            f.write(("AUTH %s\n\n" % session.authenticated).encode())
            f.write(envelope.original_content)
        os.rename(path + ".tmp", path)
        return "250 2.0.0 Ok: queued as AIO%d" % Handler.n

c = Controller(Handler(), hostname="127.0.0.1", port=port, tls_context=ctx, require_starttls=True,
               authenticator=authenticator, auth_required=True, auth_require_tls=True)
c.start()
print("READY", flush=True)
while True:
    time.sleep(3600)
"#;

/// aiosmtpd requiring STARTTLS (with `cert`/`key`) and AUTH (relayuser / "relay secret"),
/// storing each message in `dir/out/N.msg`, its stderr in `dir/stderr.log`.
pub async fn start_aiosmtpd(dir: &Path, cert: &Path, key: &Path) -> (Child, u16) {
    let out_dir = dir.join("out");
    std::fs::create_dir_all(&out_dir).unwrap();
    let script = dir.join("relay.py");
    std::fs::write(&script, AIOSMTPD_SCRIPT).unwrap();
    let port = free_port();
    let stderr = std::fs::File::create(dir.join("stderr.log")).unwrap();
    let mut server = Child(
        Command::new(PYTHON)
            .arg(&script)
            .arg(port.to_string())
            .arg(cert)
            .arg(key)
            .arg(&out_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap(),
    );
    wait_listening(port, &mut server, "aiosmtpd").await;
    (server, port)
}

#[tokio::test]
async fn aiosmtpd_requiring_starttls_and_auth() {
    if !python_peer("aiosmtpd") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("out");
    let (_server, port) = start_aiosmtpd(dir.path(), &cert_path(), &key_path()).await;
    let log = || std::fs::read_to_string(dir.path().join("stderr.log")).unwrap_or_default();

    let body = "From: Alice <alice@example.com>\r\nSubject: via aiosmtpd\r\n\r\n.dot\r\nbody\r\n";
    let m = msg("A1", "relay@gatepost.test", &["bob@example.net", "carol@example.net"], body);
    let url = format!("smtp+starttls://localhost:{port}");
    let good = relay(&url, |c| {
        c.ca_file = Some(cert_path());
        c.credentials = Some(("relayuser".into(), "relay secret".into()));
    });
    let out = good.deliver_batch(std::slice::from_ref(&m)).await;
    assert_eq!(out[0].recipients, [Delivered, Delivered], "{out:?}\n{}", log());
    assert_eq!(out[0].reply, "250 2.0.0 Ok: queued as AIO1");
    assert_eq!(out[0].relay_ip, Some("127.0.0.1".parse().unwrap()));
    let files = wait_files(&out_dir, 1).await;
    let stored = std::fs::read_to_string(&files[0]).unwrap();
    assert_eq!(
        stored,
        format!("MAIL relay@gatepost.test\nRCPT bob@example.net\nRCPT carol@example.net\nAUTH True\n\n{body}")
    );

    let wrong = relay(&url, |c| {
        c.ca_file = Some(cert_path());
        c.credentials = Some(("relayuser".into(), "wrong".into()));
    });
    let out = wrong.deliver_batch(std::slice::from_ref(&m)).await;
    for r in &out[0].recipients {
        assert!(
            matches!(r, RecipientResult::Deferred(t) if t.text.contains("relay refused our credentials: 535")),
            "{out:?}"
        );
    }

    // Plain smtp:// to the same relay: it offers no AUTH without TLS, so nothing is sent.
    let plain = relay(&format!("smtp://localhost:{port}"), |c| {
        c.credentials = Some(("relayuser".into(), "relay secret".into()));
    });
    let out = plain.deliver_batch(std::slice::from_ref(&m)).await;
    for r in &out[0].recipients {
        assert!(
            matches!(r, RecipientResult::Deferred(t) if t.text.contains("does not offer AUTH without TLS")),
            "{out:?}"
        );
    }
    // Only the first delivery reached the handler.
    assert_eq!(wait_files(&out_dir, 1).await.len(), 1);
}
