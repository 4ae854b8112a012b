//! Shared pieces: the peer-availability rule, child processes that die with the test,
//! messages and relay configs, and a scripted fake relay for faults a real one cannot make.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gatepost::relay::smtp::{SmtpRelay, SmtpRelayConfig, parse_url};
use gatepost::relay::{Delivery, Outgoing, RecipientResult};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

#[allow(unused_imports)] // not every binary that includes this file uses it
pub use crate::ports::free_port;

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn cert_path() -> PathBuf {
    repo().join("certs/localhost-cert.pem")
}

pub fn key_path() -> PathBuf {
    repo().join("certs/localhost-key.pem")
}

/// Whether an external peer program is available. Missing: skip loudly, or fail when
/// `GATEPOST_REQUIRE_PEERS=1` (CI), so peer tests can never silently pass.
pub fn peer(program: &str) -> bool {
    let found = which(program).is_some();
    if !found {
        missing(program);
    }
    found
}

/// Debian's python3 with a module (not a pyenv python on PATH).
pub fn python_peer(module: &str) -> bool {
    let ok = Path::new(PYTHON).is_file()
        && std::process::Command::new(PYTHON)
            .args(["-c", &format!("import {module}")])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
    if !ok {
        missing(&format!("{PYTHON} with {module} (Debian package python3-{module})"));
    }
    ok
}

pub const PYTHON: &str = "/usr/bin/python3";

fn missing(what: &str) {
    if std::env::var("GATEPOST_REQUIRE_PEERS").is_ok_and(|v| v == "1") {
        panic!("required test peer {what:?} is not installed (GATEPOST_REQUIRE_PEERS=1); run .ci/run to install it");
    }
    eprintln!("\n*** SKIPPING: test peer {what:?} is not installed; run .ci/run to install the peers ***\n");
}

pub fn which(program: &str) -> Option<PathBuf> {
    if program.contains('/') {
        return Path::new(program).is_file().then(|| PathBuf::from(program));
    }
    let path = std::env::var("PATH").unwrap_or_default() + ":/usr/sbin:/sbin";
    path.split(':').map(|d| Path::new(d).join(program)).find(|p| p.is_file())
}

/// A child process killed (by its own handle) when the test ends, pass or fail.
pub struct Child(pub std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Wait until something accepts on `port` (a peer starting up).
pub async fn wait_listening(port: u16, child: &mut Child, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return;
        }
        if let Ok(Some(status)) = child.0.try_wait() {
            panic!("{what} exited before listening: {status}");
        }
        assert!(Instant::now() < deadline, "{what} did not start listening on {port}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub fn msg(id: &str, sender: &str, rcpts: &[&str], body: &str) -> Outgoing {
    Outgoing {
        queue_id: id.into(),
        sender: sender.into(),
        recipients: rcpts.iter().map(|r| r.to_string()).collect(),
        body: body.as_bytes().to_vec(),
    }
}

/// A relay for `url` with short test timeouts; `tweak` changes anything else.
pub fn relay(url: &str, tweak: impl FnOnce(&mut SmtpRelayConfig)) -> SmtpRelay {
    let (host, port, security) = parse_url(url).unwrap();
    let mut config = SmtpRelayConfig {
        host,
        port,
        security,
        credentials: None,
        ca_file: None,
        helo_name: "gatepost.test".into(),
        connect_timeout: Duration::from_secs(5),
        command_timeout: Duration::from_secs(5),
        data_timeout: Duration::from_secs(5),
    };
    tweak(&mut config);
    SmtpRelay::new(config).unwrap()
}

pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// One connection to the fake relay, from the relay's side. Every command line it reads is
/// logged as `"<connection> <line>"`.
pub struct Conn {
    io: BufReader<Box<dyn Stream>>,
    pub index: usize,
    log: Arc<Mutex<Vec<String>>>,
}

impl Conn {
    /// Send reply text; `\n` separates lines, CRLF is added.
    pub async fn say(&mut self, text: &str) {
        let mut out = String::new();
        for line in text.split('\n') {
            out.push_str(line);
            out.push_str("\r\n");
        }
        let _ = self.io.get_mut().write_all(out.as_bytes()).await;
        let _ = self.io.get_mut().flush().await;
    }

    /// Raw bytes, no CRLF added.
    pub async fn raw(&mut self, bytes: &[u8]) {
        let _ = self.io.get_mut().write_all(bytes).await;
        let _ = self.io.get_mut().flush().await;
    }

    /// The next command line (without CRLF), logged; empty at EOF.
    pub async fn line(&mut self) -> String {
        let mut buf = Vec::new();
        let _ = self.io.read_until(b'\n', &mut buf).await;
        let line = String::from_utf8_lossy(&buf).trim_end_matches(['\r', '\n']).to_string();
        self.log.lock().unwrap().push(format!("{} {line}", self.index));
        line
    }

    /// The next command line, or `None` when nothing arrives within `wait`.
    pub async fn line_within(&mut self, wait: Duration) -> Option<String> {
        tokio::time::timeout(wait, self.line()).await.ok()
    }

    /// Read a command and check how it starts (case-insensitive).
    pub async fn expect(&mut self, prefix: &str) -> String {
        let line = self.line().await;
        assert!(
            line.to_ascii_uppercase().starts_with(&prefix.to_ascii_uppercase()),
            "expected {prefix:?}, got {line:?}"
        );
        line
    }

    /// Greeting, then EHLO answered with these extensions.
    pub async fn hello(&mut self, extensions: &[&str]) {
        self.say("220 fake.relay ESMTP").await;
        self.expect("EHLO ").await;
        let mut reply = vec!["250-fake.relay".to_string()];
        reply.extend(extensions.iter().map(|e| format!("250-{e}")));
        let last = reply.pop().unwrap();
        reply.push(last.replacen("250-", "250 ", 1));
        self.say(&reply.join("\n")).await;
    }

    /// The data lines up to the lone `.`, as sent (still dot-stuffed).
    pub async fn data(&mut self) -> Vec<u8> {
        let mut all = Vec::new();
        loop {
            let mut line = Vec::new();
            if self.io.read_until(b'\n', &mut line).await.unwrap_or(0) == 0 {
                return all;
            }
            if line == b".\r\n" {
                return all;
            }
            all.extend_from_slice(&line);
        }
    }
}

/// A scripted relay on 127.0.0.1: `script(conn)` runs for each connection it accepts.
pub struct Fake {
    pub addr: SocketAddr,
    log: Arc<Mutex<Vec<String>>>,
    connections: Arc<Mutex<usize>>,
    task: tokio::task::JoinHandle<()>,
}

impl Fake {
    pub async fn start<F, Fut>(script: F) -> Fake
    where
        F: Fn(Conn) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        Self::start_tls(false, script).await
    }

    /// With `implicit_tls`, each connection is TLS from the first byte (smtps).
    pub async fn start_tls<F, Fut>(implicit_tls: bool, script: F) -> Fake
    where
        F: Fn(Conn) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        Self::start_on("127.0.0.1".parse().unwrap(), implicit_tls, script).await
    }

    /// Listening on `ip` (port chosen by the system).
    pub async fn start_on<F, Fut>(ip: std::net::IpAddr, implicit_tls: bool, script: F) -> Fake
    where
        F: Fn(Conn) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let tls = implicit_tls.then(|| (cert_path(), key_path()));
        Self::start_inner(ip, tls, script).await
    }

    /// Implicit TLS (smtps) on 127.0.0.1 with the given certificate and key files.
    pub async fn start_tls_with<F, Fut>(cert: &Path, key: &Path, script: F) -> Fake
    where
        F: Fn(Conn) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let tls = Some((cert.to_path_buf(), key.to_path_buf()));
        Self::start_inner("127.0.0.1".parse().unwrap(), tls, script).await
    }

    async fn start_inner<F, Fut>(ip: std::net::IpAddr, tls: Option<(PathBuf, PathBuf)>, script: F) -> Fake
    where
        F: Fn(Conn) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let tls = tls.map(|(cert, key)| Arc::new(gatepost::tls::server_config(&cert, &key).unwrap()));
        let listener = TcpListener::bind((ip, 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(Mutex::new(0));
        let (log2, count2) = (log.clone(), connections.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else { return };
                let index = {
                    let mut n = count2.lock().unwrap();
                    *n += 1;
                    *n
                };
                let io: Box<dyn Stream> = if let Some(config) = &tls {
                    match tokio_rustls::TlsAcceptor::from(config.clone()).accept(tcp).await {
                        Ok(tls) => Box::new(tls),
                        Err(e) => {
                            log2.lock().unwrap().push(format!("{index} TLS handshake failed: {e}"));
                            continue;
                        }
                    }
                } else {
                    Box::new(tcp)
                };
                let conn = Conn { io: BufReader::new(io), index, log: log2.clone() };
                tokio::spawn(script(conn));
            }
        });
        Fake { addr, log, connections, task }
    }

    pub fn url(&self, scheme: &str) -> String {
        match self.addr {
            SocketAddr::V4(a) => format!("{scheme}://{}:{}", a.ip(), a.port()),
            SocketAddr::V6(a) => format!("{scheme}://[{}]:{}", a.ip(), a.port()),
        }
    }

    /// Every command line received so far, as `"<connection> <line>"`.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// The commands only (verbs), e.g. `["1 EHLO", "1 MAIL", …]`.
    pub fn verbs(&self) -> Vec<String> {
        self.log()
            .iter()
            .map(|l| {
                let mut w = l.split_whitespace();
                let n = w.next().unwrap_or("");
                let verb = w.next().unwrap_or("").split(':').next().unwrap_or("").to_ascii_uppercase();
                format!("{n} {verb}")
            })
            .collect()
    }

    pub fn connections(&self) -> usize {
        *self.connections.lock().unwrap()
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        self.task.abort();
    }
}

// Dialogue helpers for the scripted tests.

pub fn deferred_with(r: &RecipientResult, words: &str) -> bool {
    matches!(r, RecipientResult::Deferred(t) if t.text.contains(words))
}

pub fn failed_with(r: &RecipientResult, words: &str) -> bool {
    matches!(r, RecipientResult::Failed(t) if t.text.contains(words))
}

/// One non-pipelined transaction on the relay side: MAIL → 250, each RCPT gets its reply,
/// DATA when one was accepted, then `end` after the body. Returns the body as received.
pub async fn transaction(c: &mut Conn, rcpt_replies: &[&str], end: &str) -> Vec<u8> {
    c.expect("MAIL FROM:").await;
    c.say("250 2.1.0 Ok").await;
    for r in rcpt_replies {
        c.expect("RCPT TO:").await;
        c.say(r).await;
    }
    if !rcpt_replies.iter().any(|r| r.starts_with('2')) {
        return Vec::new();
    }
    c.expect("DATA").await;
    c.say("354 go ahead").await;
    let body = c.data().await;
    c.say(end).await;
    body
}

pub async fn quit(c: &mut Conn) {
    c.expect("QUIT").await;
    c.say("221 2.0.0 Bye").await;
}

pub fn one(d: &[Delivery]) -> &Delivery {
    assert_eq!(d.len(), 1);
    &d[0]
}

// Certificates made on the spot (rcgen), written as PEM files.

/// A certificate's and its key's PEM files.
pub struct CertFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

fn cert_params(names: &[&str], ca: bool) -> rcgen::CertificateParams {
    let mut p = rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
    p.distinguished_name.push(rcgen::DnType::CommonName, names[0]);
    if ca {
        p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    }
    p
}

fn write_pair(dir: &Path, stem: &str, cert: &rcgen::Certificate, key: &rcgen::KeyPair) -> CertFiles {
    let files = CertFiles { cert: dir.join(format!("{stem}-cert.pem")), key: dir.join(format!("{stem}-key.pem")) };
    std::fs::write(&files.cert, cert.pem()).unwrap();
    std::fs::write(&files.key, key.serialize_pem()).unwrap();
    files
}

/// What `openssl req -x509 -addext subjectAltName=…` makes: self-signed and CA:TRUE.
pub fn self_signed_ca(dir: &Path, stem: &str, names: &[&str]) -> CertFiles {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = cert_params(names, true).self_signed(&key).unwrap();
    write_pair(dir, stem, &cert, &key)
}

/// A private CA (`<stem>-ca-cert.pem`) and a server certificate for `names` it issued.
pub fn private_ca_and_leaf(dir: &Path, stem: &str, names: &[&str]) -> (PathBuf, CertFiles) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let ca_params = cert_params(&["Test Private CA"], true);
    let ca = write_pair(dir, &format!("{stem}-ca"), &ca_params.self_signed(&ca_key).unwrap(), &ca_key);
    let issuer = rcgen::Issuer::new(ca_params, &ca_key);
    let key = rcgen::KeyPair::generate().unwrap();
    let leaf = cert_params(names, false).signed_by(&key, &issuer).unwrap();
    (ca.cert, write_pair(dir, stem, &leaf, &key))
}
