//! Real third-party clients against the real server: swaks (STARTTLS, implicit TLS, AUTH
//! PLAIN/LOGIN, PIPELINING, the refusals) and Python's smtplib (certificate verified against
//! certs/localhost-cert.pem, SMTPUTF8). Each test checks the client's own view (exit code,
//! transcript) and the store's (the record and the body), with exact values.

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use gatepost::store::{QueueRecord, QueueState};
use jiff::{SignedDuration, Timestamp, civil, tz::TimeZone};

use crate::support::*;

/// What an external program did.
pub struct Ran {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Ran {
    /// stdout and stderr together (swaks writes its transcript to both).
    pub fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

impl std::fmt::Display for Ran {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}", self.code, self.stdout, self.stderr)
    }
}

/// Run `program` with `args` (stdin closed) under a hard timeout; the child is killed and
/// the test fails if it runs longer. Polls without blocking the runtime, so the in-process
/// server keeps serving while the peer talks to it.
pub async fn run(program: &str, args: &[String], limit: Duration) -> Ran {
    use std::io::Read;
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {program}: {e}"));
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out_reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let err_reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            let so = String::from_utf8_lossy(&out_reader.join().unwrap()).into_owned();
            let se = String::from_utf8_lossy(&err_reader.join().unwrap()).into_owned();
            panic!("{program} {args:?} did not finish within {limit:?}\n{so}\n{se}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let (so, se) =
        tokio::task::spawn_blocking(move || (out_reader.join().unwrap(), err_reader.join().unwrap())).await.unwrap();
    Ran {
        code: status.code(),
        stdout: String::from_utf8_lossy(&so).into_owned(),
        stderr: String::from_utf8_lossy(&se).into_owned(),
    }
}

pub const PEER_TIMEOUT: Duration = Duration::from_secs(60);

/// swaks against `addr` with a 10 s protocol timeout, plus `extra` arguments.
pub async fn swaks(addr: SocketAddr, extra: &[&str]) -> Ran {
    let mut args: Vec<String> = vec!["-s".into(), addr.to_string(), "--timeout".into(), "10s".into()];
    args.extend(extra.iter().map(|s| s.to_string()));
    run("swaks", &args, PEER_TIMEOUT).await
}

/// The server replies in a swaks transcript (`<-` plaintext, `<~` TLS), without the arrow.
pub fn server_lines(transcript: &str) -> Vec<String> {
    transcript
        .lines()
        .filter_map(|l| {
            let t = l.trim_start();
            ["<~*", "<**", "<-", "<~"]
                .iter()
                .find_map(|arrow| t.strip_prefix(arrow))
                .filter(|rest| rest.starts_with(' '))
        })
        .map(|rest| rest.trim_start().to_string())
        .collect()
}

/// The one `250 2.0.0 queued as …` line of a transcript.
pub fn queued_line(transcript: &str) -> String {
    let lines: Vec<String> = server_lines(transcript).into_iter().filter(|l| l.contains("queued as ")).collect();
    assert_eq!(lines.len(), 1, "exactly one acceptance expected in:\n{transcript}");
    assert!(lines[0].starts_with("250 2.0.0 queued as "), "{}", lines[0]);
    lines[0].clone()
}

/// The transcript line right after the first line equal to `line`.
fn line_after<'a>(transcript: &'a str, line: &str) -> &'a str {
    let mut lines = transcript.lines();
    lines.find(|l| *l == line).unwrap_or_else(|| panic!("no {line:?} in:\n{transcript}"));
    lines.next().unwrap_or("")
}

fn record(server: &TestServer, id: &str) -> QueueRecord {
    server.store().get_message(id.parse().unwrap()).unwrap().unwrap_or_else(|| panic!("no record for {id}"))
}

/// 08:00 UTC on the given day: the test config's default daily hour and zone.
fn at_eight_utc(day: civil::Date) -> Timestamp {
    day.at(8, 0, 0, 0).to_zoned(TimeZone::UTC).unwrap().timestamp()
}

/// A day next year that is always inside the default 400-day maximum hold.
fn next_year(month: i8, day: i8) -> civil::Date {
    let year = Timestamp::now().to_zoned(TimeZone::UTC).year() + 1;
    civil::date(year, month, day)
}

const AUTH_PLAIN: &[&str] = &["-a", "PLAIN", "-au", USER, "-ap", PASSWORD];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swaks_starttls_plain_deliver_on_header() {
    if !peer("swaks") {
        return;
    }
    let server = TestServer::start().await;
    let day = next_year(1, 15);
    let header = format!("Deliver-On: {day}");
    let mut args =
        vec!["-tls", "-f", EMAIL, "-t", "bob@example.net", "--header", &header, "--header", "Subject: swaks one"];
    args.extend_from_slice(AUTH_PLAIN);
    let ran = swaks(server.submission, &args).await;
    assert_eq!(ran.code, Some(0), "{ran}");
    let all = ran.all();
    // Really STARTTLS: the EHLO before the upgrade is plaintext, the acceptance is over TLS.
    assert!(all.contains(" -> STARTTLS\n<-  220 2.0.0 "), "{ran}");
    let line = queued_line(&all);
    assert!(all.contains(&format!("<~  {line}")), "acceptance must come over TLS: {ran}");
    assert!(line.ends_with(&format!("; will be delivered {day} 08:00 UTC")), "{line}");
    let id = queue_id(&line);
    let rec = record(&server, &id);
    assert_eq!(rec.tls.as_deref(), Some("TLSv1.3"));
    assert_eq!(rec.user, USER);
    assert_eq!(rec.sender, EMAIL);
    assert_eq!(rec.subject.as_deref(), Some("swaks one"));
    assert_eq!(rec.state, QueueState::Held);
    assert_eq!(rec.recipients.len(), 1);
    let r = &rec.recipients[0];
    assert_eq!((r.original.as_str(), r.address.as_str()), ("bob@example.net", "bob@example.net"));
    assert_eq!(r.release_at, at_eight_utc(day));
    assert_eq!(r.source.as_str(), "deliver-on");
    assert_eq!(r.state, QueueState::Held);
    assert_eq!(rec.client.ip().to_string(), "127.0.0.1");
    let body = server.store().bodies().read(id.parse().unwrap()).unwrap();
    assert_eq!(rec.size, body.len() as u64);
    let text = String::from_utf8(body).unwrap();
    assert!(text.contains(&format!("\r\n{header}\r\n")), "Deliver-On kept in the stored body:\n{text}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swaks_implicit_tls_login_pipelined_plus_address() {
    if !peer("swaks") {
        return;
    }
    let server = TestServer::start().await;
    let day = next_year(2, 1);
    let tagged = format!("bob+{day}@example.net");
    let to = format!("{tagged},carol@example.net");
    let args = [
        "--tls-on-connect",
        "--pipeline",
        "-a",
        "LOGIN",
        "-au",
        USER,
        "-ap",
        PASSWORD,
        "-f",
        EMAIL,
        "-t",
        &to,
        "--header",
        "Subject: swaks two",
    ];
    let before = Timestamp::now();
    let ran = swaks(server.submissions, &args).await;
    let after = Timestamp::now();
    assert_eq!(ran.code, Some(0), "{ran}");
    let all = ran.all();
    assert!(
        !all.contains("-> STARTTLS") && all.contains("\n<~  220 localhost ESMTP"),
        "implicit TLS from the greeting on: {ran}"
    );
    // Pipelined: all four commands written before the first of their replies was read.
    assert!(all.contains(" ~> MAIL FROM:<alice@example.com>\n ~> RCPT TO:<"), "{ran}");
    assert!(line_after(&all, " ~> DATA").starts_with("<~  250 2.1.0"), "{ran}");
    assert!(all.contains("AUTH LOGIN"), "{ran}");
    assert!(server_lines(&all).iter().any(|l| l.contains("PIPELINING")), "{ran}");
    let line = queued_line(&all);
    assert!(line.ends_with(&format!("; will be delivered now and {day} 08:00 UTC")), "{line}");
    let id = queue_id(&line);
    let rec = record(&server, &id);
    assert_eq!(rec.tls.as_deref(), Some("TLSv1.3"));
    assert_eq!(rec.recipients.len(), 2, "{:?}", rec.recipients);
    let bob = &rec.recipients[0];
    assert_eq!(bob.original, tagged);
    assert_eq!(bob.address, "bob@example.net");
    assert_eq!(bob.release_at, at_eight_utc(day));
    assert_eq!(bob.source.as_str(), "plus-address");
    assert_eq!(bob.state, QueueState::Held);
    let carol = &rec.recipients[1];
    assert_eq!((carol.original.as_str(), carol.address.as_str()), ("carol@example.net", "carol@example.net"));
    assert_eq!(carol.source.as_str(), "immediate");
    // Released at once: the dispatcher may already have sent it to the file relay.
    assert!(matches!(carol.state, QueueState::Due | QueueState::Sending | QueueState::Sent), "{:?}", carol.state);
    assert_eq!(carol.release_at, rec.submitted_at);
    assert!(before <= rec.submitted_at && rec.submitted_at <= after, "{} not in [{before}, {after}]", rec.submitted_at);
    // The message is as far as its least-advanced recipient.
    assert_eq!(rec.state, QueueState::Held);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swaks_refusals_store_nothing() {
    if !peer("swaks") {
        return;
    }
    let server = TestServer::start().await;

    // Wrong password: swaks' AUTH failure exit code, and the server's 535.
    let ran = swaks(
        server.submission,
        &["-tls", "-a", "PLAIN", "-au", USER, "-ap", "wrong horse", "-f", EMAIL, "-t", "bob@example.net"],
    )
    .await;
    assert_eq!(ran.code, Some(28), "{ran}");
    let lines = server_lines(&ran.all());
    assert!(lines.iter().any(|l| l.starts_with("535 5.7.8 ") && l.contains("[session ")), "{ran}");

    // Someone else's sender address: refused at MAIL.
    let mut args = vec!["-tls", "-f", "mallory@example.com", "-t", "bob@example.net"];
    args.extend_from_slice(AUTH_PLAIN);
    let ran = swaks(server.submission, &args).await;
    assert_eq!(ran.code, Some(23), "{ran}");
    let lines = server_lines(&ran.all());
    let refusal = lines.iter().find(|l| l.starts_with("550 ")).unwrap_or_else(|| panic!("{ran}"));
    assert!(
        refusal
            .starts_with("550 5.7.1 sender <mallory@example.com> is not yours; alice may send as <alice@example.com>"),
        "{refusal}"
    );

    // AUTH without TLS: not offered, so swaks gives up before MAIL.
    let mut args = vec!["-f", EMAIL, "-t", "bob@example.net"];
    args.extend_from_slice(AUTH_PLAIN);
    let ran = swaks(server.submission, &args).await;
    assert_eq!(ran.code, Some(28), "{ran}");
    let all = ran.all();
    assert!(all.contains("Host did not advertise authentication"), "{ran}");
    let ehlo: Vec<String> = server_lines(&all).into_iter().filter(|l| l.starts_with("250")).collect();
    assert!(
        !ehlo.is_empty() && ehlo.iter().all(|l| !l.contains("AUTH")),
        "AUTH must not be advertised before TLS: {ran}"
    );
    assert!(ehlo.iter().any(|l| l.contains("STARTTLS")), "{ran}");
    assert!(!all.contains("-> MAIL FROM"), "{ran}");

    assert_eq!(server.store().message_count().unwrap(), 0);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swaks_unparseable_deliver_on_is_refused_whole() {
    if !peer("swaks") {
        return;
    }
    let server = TestServer::start().await;
    let mut args = vec!["-tls", "-f", EMAIL, "-t", "bob@example.net", "--header", "Deliver-On: 2026-13-45"];
    args.extend_from_slice(AUTH_PLAIN);
    let ran = swaks(server.submission, &args).await;
    assert_eq!(ran.code, Some(26), "{ran}");
    let lines = server_lines(&ran.all());
    let refusal = lines.iter().find(|l| l.starts_with("554 ")).unwrap_or_else(|| panic!("{ran}"));
    // Quotes the value and lists the accepted forms.
    assert!(refusal.starts_with("554 5.6.0 Deliver-On value \"2026-13-45\" "), "{refusal}");
    assert!(
        refusal.contains("accepted: 2026-12-25, ") && refusal.contains("+2h") && refusal.contains("[session "),
        "{refusal}"
    );
    assert!(!lines.iter().any(|l| l.contains("queued as")), "{ran}");
    assert_eq!(server.store().message_count().unwrap(), 0);
    server.stop().await;
}

/// smtplib over STARTTLS and over implicit TLS, verifying the certificate against the test
/// CA file for the name `localhost`. A third connection with the system trust store must fail
/// verification: proof that the first two really checked the certificate.
const PY_SUBMIT: &str = r#"
import smtplib, ssl, sys
from email.message import EmailMessage

port, tls_port, cafile = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]

class Keep:
    def data(self, msg):
        self.last = super().data(msg)
        return self.last

class SMTP(Keep, smtplib.SMTP): pass
class SMTP_SSL(Keep, smtplib.SMTP_SSL): pass

def message(tag):
    m = EmailMessage()
    m["From"] = "Ålice Ärger <alice@example.com>"
    m["To"] = "Bøb <bob@example.net>"
    m["Subject"] = "Grüße aus Köln — " + tag
    m["Deliver-On"] = "+2h"
    m.set_content("Hallo Bob,\nschöne Grüße, 你好, ¡olé!\n")
    return m

def verified():
    return ssl.create_default_context(cafile=cafile)

with SMTP("localhost", port, timeout=20) as s:
    s.starttls(context=verified())
    s.login("alice", "correct horse")
    refused = s.send_message(message("starttls"))
    assert not refused, refused
    print("STARTTLS", s.last[0], s.last[1].decode(), s.sock.version(), flush=True)

with SMTP_SSL("localhost", tls_port, timeout=20, context=verified()) as s:
    s.login("alice", "correct horse")
    refused = s.send_message(message("implicit"))
    assert not refused, refused
    print("IMPLICIT", s.last[0], s.last[1].decode(), s.sock.version(), flush=True)

try:
    with SMTP("localhost", port, timeout=20) as s:
        s.starttls(context=ssl.create_default_context())
    print("SYSTEM-TRUST-ACCEPTED", flush=True)
except ssl.SSLCertVerificationError as e:
    print("SYSTEM-TRUST-REFUSED", e.verify_message, flush=True)
"#;

async fn python(script: &str, args: &[String]) -> Ran {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("script.py");
    std::fs::write(&path, script).unwrap();
    let mut all = vec![path.display().to_string()];
    all.extend_from_slice(args);
    run("python3", &all, PEER_TIMEOUT).await
}

/// Python's line for `label`: `LABEL 250 2.0.0 queued as …; will be delivered … TLSv1.3`.
fn py_line<'a>(ran: &'a Ran, label: &str) -> &'a str {
    ran.stdout
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{label} ")))
        .unwrap_or_else(|| panic!("no {label} line: {ran}"))
}

fn assert_about(actual: Timestamp, expected: Timestamp, slack: SignedDuration) {
    let diff = actual.duration_since(expected).abs();
    assert!(diff <= slack, "{actual} is {diff:?} away from {expected}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_smtplib_verifies_certificate_and_submits() {
    if !peer("python3") {
        return;
    }
    let server = TestServer::start().await;
    let args = [
        server.submission.port().to_string(),
        server.submissions.port().to_string(),
        cert_path().display().to_string(),
    ];
    let before = Timestamp::now();
    let ran = python(PY_SUBMIT, &args).await;
    assert_eq!(ran.code, Some(0), "{ran}");
    let refused = py_line(&ran, "SYSTEM-TRUST-REFUSED");
    assert!(refused.contains("self-signed") || refused.contains("unable to get local issuer"), "{refused}");
    assert!(!ran.stdout.contains("SYSTEM-TRUST-ACCEPTED"), "{ran}");
    for (label, tag) in [("STARTTLS", "starttls"), ("IMPLICIT", "implicit")] {
        let line = py_line(&ran, label);
        assert!(line.starts_with("250 2.0.0 queued as ") && line.ends_with(" TLSv1.3"), "{line}");
        let id = queue_id(line);
        let rec = record(&server, &id);
        assert_eq!(rec.tls.as_deref(), Some("TLSv1.3"));
        assert_eq!(rec.sender, EMAIL);
        assert_eq!(rec.sender_name.as_deref(), Some("Ålice Ärger"));
        assert_eq!(rec.subject.as_deref(), Some(format!("Grüße aus Köln — {tag}").as_str()));
        assert_eq!(rec.recipients.len(), 1);
        let r = &rec.recipients[0];
        assert_eq!(r.address, "bob@example.net");
        assert_eq!(r.source.as_str(), "deliver-on");
        assert_eq!(r.state, QueueState::Held);
        // +2h from the moment of submission, exactly; and that moment was just now.
        assert_eq!(r.release_at, rec.submitted_at + SignedDuration::from_hours(2));
        assert_about(r.release_at, before + SignedDuration::from_hours(2), SignedDuration::from_mins(1));
        // The reply names the release time in the user's zone (UTC), to the minute.
        let shown = r.release_at.to_zoned(TimeZone::UTC).strftime("%Y-%m-%d %H:%M UTC").to_string();
        assert!(line.contains(&format!("; will be delivered {shown}")), "{line} vs {shown}");
        let body = server.store().bodies().read(id.parse().unwrap()).unwrap();
        assert_eq!(rec.size, body.len() as u64);
        let text = String::from_utf8(body).unwrap();
        assert!(text.contains("\r\nDeliver-On: +2h\r\n"), "{text}");
        // The subject went over the wire RFC 2047-encoded; the record holds it decoded.
        assert!(text.contains("Subject: =?utf-8?"), "{text}");
    }
    assert_eq!(server.store().message_count().unwrap(), 2);
    server.stop().await;
}

const PY_SMTPUTF8: &str = r#"
import smtplib, ssl, sys
port, cafile = int(sys.argv[1]), sys.argv[2]
msg = ("From: José Ñandú <alice@example.com>\r\n"
       "To: José <josé@exämple.net>\r\n"
       "Subject: façade für José\r\n"
       "\r\n"
       "Grüße — 8-bit UTF-8 throughout.\r\n").encode("utf-8")
with smtplib.SMTP("localhost", port, timeout=20) as s:
    s.starttls(context=ssl.create_default_context(cafile=cafile))
    s.login("alice", "correct horse")
    assert s.has_extn("smtputf8"), s.esmtp_features
    s.mail("alice@example.com", ["SMTPUTF8", "BODY=8BITMIME"])
    code, text = s.rcpt("josé@exämple.net")
    print("RCPT", code, text.decode("utf-8"), flush=True)
    code, text = s.data(msg)
    print("DATA", code, text.decode("utf-8"), flush=True)
    # And the one-call form the brief names, on the same connection.
    refused = s.sendmail("alice@example.com", ["josé@exämple.net"], msg, mail_options=["SMTPUTF8"])
    assert not refused, refused
    print("SENDMAIL-OK", flush=True)
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_smtputf8_recipient_kept_exactly() {
    if !peer("python3") {
        return;
    }
    let server = TestServer::start().await;
    let args = [server.submission.port().to_string(), cert_path().display().to_string()];
    let ran = python(PY_SMTPUTF8, &args).await;
    assert_eq!(ran.code, Some(0), "{ran}");
    assert!(py_line(&ran, "RCPT").starts_with("250 2.1.5"), "{ran}");
    let line = py_line(&ran, "DATA");
    assert!(line.starts_with("250 2.0.0 queued as "), "{line}");
    assert!(ran.stdout.contains("SENDMAIL-OK"), "{ran}");
    let ids = server.store().message_ids().unwrap();
    assert_eq!(ids.len(), 2, "{ids:?}");
    assert!(ids.contains(&queue_id(line)));
    let expected_body = "From: José Ñandú <alice@example.com>\r\nTo: José <josé@exämple.net>\r\nSubject: façade für José\r\n\r\nGrüße — 8-bit UTF-8 throughout.\r\n";
    for id in &ids {
        let rec = record(&server, id);
        assert_eq!(rec.recipients.len(), 1);
        let r = &rec.recipients[0];
        assert_eq!(r.original, "josé@exämple.net");
        assert_eq!(r.address, "josé@exämple.net");
        assert!(matches!(r.state, QueueState::Due | QueueState::Sending | QueueState::Sent), "{:?}", r.state);
        assert_eq!(rec.sender_name.as_deref(), Some("José Ñandú"));
        assert_eq!(rec.subject.as_deref(), Some("façade für José"));
        assert_eq!(server.store().bodies().read(id.parse().unwrap()).unwrap(), expected_body.as_bytes());
    }
    server.stop().await;
}
