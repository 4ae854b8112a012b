//! Shared test harness: a real gatepost on 127.0.0.1:0 with the fixed test certificate, a
//! user, a tiny SMTP client over real sockets (with TLS), and the peer-availability rule.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use gatepost::app::{self, Running};
use gatepost::clock::{Clock, SystemClock};
use gatepost::config::Config;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

#[allow(unused_imports)]
pub use crate::ports::free_port;

pub const USER: &str = "alice";
pub const PASSWORD: &str = "correct horse";
pub const EMAIL: &str = "alice@example.com";

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn cert_path() -> PathBuf {
    repo().join("certs/localhost-cert.pem")
}

/// Config text for a test server in `dir`; `extra` is appended (TOML).
pub fn config_text(dir: &Path, extra: &str) -> String {
    let certs = repo().join("certs");
    format!(
        "data_dir = {dir:?}\n{extra}\n[submission]\nstarttls_listen = \"127.0.0.1:0\"\ntls_listen = \"127.0.0.1:0\"\nshutdown_grace = \"5s\"\n[imap]\nstarttls_listen = [\"127.0.0.1:0\"]\ntls_listen = [\"127.0.0.1:0\"]\n[tls]\ncert = {cert:?}\nkey = {key:?}\n",
        dir = dir.display().to_string(),
        cert = certs.join("localhost-cert.pem").display().to_string(),
        key = certs.join("localhost-key.pem").display().to_string(),
    )
}

pub struct TestServer {
    pub running: Option<Running>,
    pub dir: tempfile::TempDir,
    pub submission: SocketAddr,
    pub submissions: SocketAddr,
}

impl TestServer {
    /// Start with the default test config and user alice.
    pub async fn start() -> TestServer {
        Self::start_with(|t| t, Arc::new(SystemClock)).await
    }

    /// Start with the config text changed by `tweak` and the given clock.
    pub async fn start_with(tweak: impl FnOnce(String) -> String, clock: Arc<dyn Clock>) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let text = tweak(config_text(dir.path(), ""));
        let config = Config::from_toml(&text, &[]).unwrap_or_else(|e| panic!("test config invalid:\n{e}\n{text}"));
        {
            let store = gatepost::store::Store::open(&config.data_dir).unwrap();
            gatepost::accounts::add_user(&store, USER, EMAIL, PASSWORD, jiff::Timestamp::now()).unwrap();
        }
        let running = app::start(&config, clock).await.expect("server starts");
        TestServer {
            submission: running.submission_addrs[0],
            submissions: running.submissions_addrs[0],
            running: Some(running),
            dir,
        }
    }

    pub fn store(&self) -> &gatepost::store::Store {
        &self.running.as_ref().unwrap().store
    }

    pub async fn stop(mut self) -> tempfile::TempDir {
        if let Some(r) = self.running.take() {
            r.shutdown().await;
        }
        self.dir
    }
}

/// Whether an external peer program is available. Missing: skip loudly, or fail when
/// `GATEPOST_REQUIRE_PEERS=1` (CI), so peer tests can never silently pass.
pub fn peer(program: &str) -> bool {
    let found = which(program).is_some();
    if !found {
        if std::env::var("GATEPOST_REQUIRE_PEERS").is_ok_and(|v| v == "1") {
            panic!(
                "required test peer {program:?} is not installed (GATEPOST_REQUIRE_PEERS=1); run .ci/run to install it"
            );
        }
        eprintln!("\n*** SKIPPING: test peer {program:?} is not installed; run .ci/run to install the peers ***\n");
    }
    found
}

pub fn which(program: &str) -> Option<PathBuf> {
    if program.contains('/') {
        return Path::new(program).is_file().then(|| PathBuf::from(program));
    }
    let path = std::env::var("PATH").unwrap_or_default() + ":/usr/sbin:/sbin";
    path.split(':').map(|d| Path::new(d).join(program)).find(|p| p.is_file())
}

pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// A minimal SMTP client for black-box tests: send a line, read one whole reply.
pub struct Client {
    io: BufReader<Box<dyn Stream>>,
}

pub fn tls_connector() -> tokio_rustls::TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    use rustls_pki_types::pem::PemObject;
    for cert in rustls_pki_types::CertificateDer::pem_file_iter(cert_path()).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

impl Client {
    /// Connect in plaintext (port 587 style) and read the greeting.
    pub async fn plain(addr: SocketAddr) -> (Client, String) {
        let tcp = TcpStream::connect(addr).await.unwrap();
        let mut c = Client { io: BufReader::new(Box::new(tcp)) };
        let greeting = c.read_reply().await;
        (c, greeting)
    }

    /// As `plain`, for a server that may have stopped: the connection's error instead of a panic.
    #[allow(dead_code)]
    pub async fn try_plain(addr: SocketAddr) -> std::io::Result<(Client, String)> {
        let tcp = TcpStream::connect(addr).await?;
        let mut c = Client { io: BufReader::new(Box::new(tcp)) };
        let greeting = c.read_reply().await;
        Ok((c, greeting))
    }

    /// Connect with implicit TLS (port 465 style) and read the greeting.
    pub async fn implicit_tls(addr: SocketAddr) -> (Client, String) {
        let tcp = TcpStream::connect(addr).await.unwrap();
        let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
        let tls = tls_connector().connect(name, tcp).await.unwrap();
        let mut c = Client { io: BufReader::new(Box::new(tls)) };
        let greeting = c.read_reply().await;
        (c, greeting)
    }

    /// EHLO and STARTTLS on a plaintext connection (RFC 3207: STARTTLS comes after EHLO);
    /// returns the upgraded client.
    pub async fn starttls(mut self) -> Client {
        let r = self.cmd("EHLO starttls.client").await;
        assert!(r.starts_with("250"), "{r}");
        let r = self.cmd("STARTTLS").await;
        assert!(r.starts_with("220"), "{r}");
        self.into_tls().await
    }

    /// The TLS handshake on this connection, once the server has said 220 to a STARTTLS the
    /// test sent itself (bytes still buffered from the plaintext side are dropped).
    pub async fn into_tls(self) -> Client {
        let inner: Box<dyn Stream> = self.io.into_inner();
        let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
        let tls = tls_connector().connect(name, inner).await.unwrap();
        Client { io: BufReader::new(Box::new(tls)) }
    }

    /// Write bytes. A dead server shows as an empty reply on the next read, so tests that
    /// kill the server (crash.rs) see it as "not acknowledged" rather than a panic.
    pub async fn send(&mut self, raw: &[u8]) {
        let w = self.io.get_mut();
        if w.write_all(raw).await.is_ok() {
            let _ = w.flush().await;
        }
    }

    /// Read one complete (possibly multi-line) reply; empty string on EOF.
    pub async fn read_reply(&mut self) -> String {
        let mut out = String::new();
        loop {
            let mut line = String::new();
            if self.io.read_line(&mut line).await.unwrap_or(0) == 0 {
                return out;
            }
            out.push_str(&line);
            if line.len() < 4 || line.as_bytes()[3] != b'-' {
                return out;
            }
        }
    }

    pub async fn cmd(&mut self, line: &str) -> String {
        self.send(format!("{line}\r\n").as_bytes()).await;
        self.read_reply().await
    }

    /// EHLO + AUTH PLAIN as alice (the connection must already be TLS).
    pub async fn login(&mut self) {
        use base64::Engine;
        let r = self.cmd("EHLO test.client").await;
        assert!(r.contains("AUTH PLAIN LOGIN"), "{r}");
        let token = base64::engine::general_purpose::STANDARD.encode(format!("\0{USER}\0{PASSWORD}"));
        let r = self.cmd(&format!("AUTH PLAIN {token}")).await;
        assert!(r.starts_with("235 2.7.0"), "{r}");
    }

    /// MAIL/RCPT/DATA a message; returns the final reply.
    pub async fn submit(&mut self, from: &str, rcpts: &[&str], message: &[u8]) -> String {
        let r = self.cmd(&format!("MAIL FROM:<{from}>")).await;
        if !r.starts_with("250") {
            return r;
        }
        for rc in rcpts {
            let r = self.cmd(&format!("RCPT TO:<{rc}>")).await;
            if !r.starts_with("250") {
                return r;
            }
        }
        let r = self.cmd("DATA").await;
        if !r.starts_with("354") {
            return r;
        }
        self.send(&dot_stuff(message)).await;
        self.send(b".\r\n").await;
        self.read_reply().await
    }
}

/// RFC 5321 §4.5.2 transparency, and a final CRLF if the message lacks one.
pub fn dot_stuff(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + 16);
    let mut at_line_start = true;
    for &b in message {
        if at_line_start && b == b'.' {
            out.push(b'.');
        }
        out.push(b);
        at_line_start = b == b'\n' && out.len() >= 2 && out[out.len() - 2] == b'\r';
    }
    if !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// The queue id in a `250 2.0.0 queued as ID; …` reply.
pub fn queue_id(reply: &str) -> String {
    let rest = reply.split("queued as ").nth(1).unwrap_or_else(|| panic!("no queue id in {reply:?}"));
    rest.split(';').next().unwrap().trim().to_string()
}

// --- Additions for the login and connection tests (tests/security/login.rs, connections.rs) ---

/// Write `g.toml` for the server in `dir` (as `config_text` makes it) so the real `gatepost`
/// binary can run commands beside the running server.
#[allow(dead_code)]
pub fn config_file(dir: &Path) -> PathBuf {
    let path = dir.join("g.toml");
    std::fs::write(&path, config_text(dir, "")).unwrap();
    path
}

/// Run the real `gatepost` binary with `--config config`.
#[allow(dead_code)]
pub fn run_gatepost(config: &Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_gatepost")).arg("--config").arg(config).args(args).output().unwrap()
}

#[allow(dead_code)]
impl TestServer {
    /// Add a verified user `name` <name@example.com> with `password`.
    pub fn add_user(&self, name: &str, password: &str) {
        let email = format!("{name}@example.com");
        gatepost::accounts::add_user(self.store(), name, &email, password, jiff::Timestamp::now()).unwrap();
    }

    pub fn running(&self) -> &Running {
        self.running.as_ref().unwrap()
    }
}

/// A TCP connection to `addr` from the local address `from` (all of 127.0.0.0/8 is loopback on
/// Linux, so tests can play many client addresses).
#[allow(dead_code)]
pub async fn tcp_from(addr: SocketAddr, from: std::net::IpAddr) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(from, 0)).unwrap();
    socket.connect(addr).await.unwrap()
}

#[allow(dead_code)]
impl Client {
    /// Plaintext from the local address `from`; returns the client and its greeting.
    pub async fn plain_from(addr: SocketAddr, from: std::net::IpAddr) -> (Client, String) {
        let mut c = Client { io: BufReader::new(Box::new(tcp_from(addr, from).await)) };
        let greeting = c.read_reply().await;
        (c, greeting)
    }

    /// Implicit TLS from the local address `from`; returns the client and its greeting.
    pub async fn implicit_tls_from(addr: SocketAddr, from: std::net::IpAddr) -> (Client, String) {
        let tcp = tcp_from(addr, from).await;
        let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
        let tls = tls_connector().connect(name, tcp).await.unwrap();
        let mut c = Client { io: BufReader::new(Box::new(tls)) };
        let greeting = c.read_reply().await;
        (c, greeting)
    }

    /// `AUTH PLAIN` as `user` with `password` (after EHLO, over TLS); returns the reply.
    pub async fn auth_plain(&mut self, user: &str, password: &str) -> String {
        use base64::Engine;
        let token = base64::engine::general_purpose::STANDARD.encode(format!("\0{user}\0{password}"));
        self.cmd(&format!("AUTH PLAIN {token}")).await
    }

    /// Read one reply, or `None` if none comes within `limit`.
    pub async fn reply_within(&mut self, limit: std::time::Duration) -> Option<String> {
        tokio::time::timeout(limit, self.read_reply()).await.ok()
    }
}
