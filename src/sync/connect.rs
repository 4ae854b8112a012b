//! Connecting to an account's IMAP server, one named step at a time (docs/accounts.md,
//! "Checking an account"): DNS, TCP, TLS (implicit or STARTTLS), the greeting, the login, the
//! capabilities. Each step has its own deadline, and a failure names its step and what the
//! user can do about it: `account add` reports it at once, and the sync reports it as the
//! account's status ("auth failed since …").

use std::fmt;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use rustls::ClientConfig;
use rustls_pki_types::ServerName;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader, ReadBuf};
use tokio::net::TcpStream;

use super::problem::{Problem, Step, classify_login, classify_tls};
use crate::net::server_url::{Protocol, Security, ServerUrl};

/// A failed step: which, what went wrong, and the server's or system's words (escaped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckError {
    pub step: Step,
    pub problem: Problem,
    pub detail: String,
}

impl fmt::Display for CheckError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} ({})", self.step, self.problem, self.detail)
    }
}

impl CheckError {
    pub(super) fn new(step: Step, problem: Problem, detail: impl fmt::Display) -> CheckError {
        CheckError { step, problem, detail: escape(&detail.to_string()) }
    }
}

/// What a server says goes to a terminal and a log: control characters escaped, bounded.
pub fn escape(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars().take(300) {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    if text.chars().count() > 300 {
        out.push('…');
    }
    out
}

/// The server's words in a refusal: async-imap formats a NO or BAD as `code: …, info:
/// Some("…")`; the text inside is what the server said (unknown response codes included).
pub fn server_words(e: &async_imap::error::Error) -> String {
    const MARK: &str = "info: Some(\"";
    let text = e.to_string();
    match (text.find(MARK), text.rfind("\")")) {
        (Some(start), Some(end)) if start + MARK.len() <= end => text[start + MARK.len()..end].replace("\\\"", "\""),
        _ => text,
    }
}

/// The connection under an IMAP session: TLS, or plain to a loopback address only — with
/// a byte budget. async-imap buffers each response whole (up to 512 MiB) and a batch of
/// them, so a hostile server's literal would cost that much memory; every command is given
/// what it may read ([`Wire::allow`]) and reading past it fails the connection.
pub struct Wire {
    io: Io,
    left: u64,
}

enum Io {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

/// What a command may read unless told otherwise (greeting, LIST, SELECT, SEARCH, flags).
pub const COMMAND_BUDGET: u64 = 64 << 20;

impl Wire {
    fn new(io: Io) -> Wire {
        Wire { io, left: COMMAND_BUDGET }
    }

    /// From now on, at most `bytes` more may be read.
    pub fn allow(&mut self, bytes: u64) {
        self.left = bytes;
    }
}

impl fmt::Debug for Wire {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.io {
            Io::Plain(_) => "Wire::Plain",
            Io::Tls(_) => "Wire::Tls",
        })
    }
}

impl AsyncRead for Wire {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        if this.left == 0 {
            return Poll::Ready(Err(std::io::Error::other(
                "the server sent more than the command could need (a hostile or broken server)",
            )));
        }
        let before = buf.filled().len();
        let r = match &mut this.io {
            Io::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        };
        this.left = this.left.saturating_sub((buf.filled().len() - before) as u64);
        r
    }
}

impl AsyncWrite for Wire {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        match &mut self.get_mut().io {
            Io::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match &mut self.get_mut().io {
            Io::Plain(s) => Pin::new(s).poll_flush(cx),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match &mut self.get_mut().io {
            Io::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

pub type Session = async_imap::Session<Wire>;

/// How to reach an account's IMAP server.
pub struct Target<'a> {
    pub url: &'a ServerUrl,
    pub login: &'a str,
    pub password: &'a str,
    pub tls: Arc<ClientConfig>,
    /// Deadline of each step.
    pub step_timeout: Duration,
}

/// A logged-in session and the server's capabilities (upper case).
pub struct Connected {
    pub session: Session,
    pub capabilities: Vec<String>,
    pub peer: SocketAddr,
}

async fn step<T>(step: Step, limit: Duration, f: impl Future<Output = Result<T, CheckError>>) -> Result<T, CheckError> {
    match tokio::time::timeout(limit, f).await {
        Ok(r) => r,
        Err(_) => Err(CheckError::new(step, Problem::Timeout, format!("no answer within {} s", limit.as_secs()))),
    }
}

/// Connect, log in and read the capabilities.
pub async fn connect(t: &Target<'_>) -> Result<Connected, CheckError> {
    let url = t.url;
    if url.protocol != Protocol::Imap {
        return Err(CheckError::new(Step::Dns, Problem::Unsupported, format!("{url} is not an IMAP server")));
    }
    let limit = t.step_timeout;
    let (wire, peer) = reach(url, &t.tls, limit, starttls).await?;
    let mut client = async_imap::Client::new(wire);
    if url.security != Security::StartTls {
        step(Step::Greeting, limit, async {
            match client.read_response().await {
                Ok(Some(r)) => match r.parsed() {
                    async_imap::imap_proto::Response::Data { status: async_imap::imap_proto::Status::Ok, .. } => Ok(()),
                    other => Err(CheckError::new(Step::Greeting, Problem::Refused, format!("{other:?}"))),
                },
                Ok(None) => Err(CheckError::new(Step::Greeting, Problem::Refused, "closed before greeting")),
                Err(e) => Err(CheckError::new(Step::Greeting, Problem::Protocol, e)),
            }
        })
        .await?;
    }
    let mut session = step(Step::Login, limit, async {
        client.login(t.login, t.password).await.map_err(|(e, _)| {
            let text = server_words(&e);
            CheckError::new(Step::Login, classify_login(&text), text)
        })
    })
    .await?;
    let capabilities = step(Step::Capabilities, limit, async {
        let caps =
            session.capabilities().await.map_err(|e| CheckError::new(Step::Capabilities, Problem::Protocol, e))?;
        let mut names: Vec<String> = caps
            .iter()
            .map(|c| match c {
                async_imap::types::Capability::Imap4rev1 => "IMAP4REV1".to_string(),
                async_imap::types::Capability::Auth(a) => format!("AUTH={}", a.to_ascii_uppercase()),
                async_imap::types::Capability::Atom(a) => a.to_ascii_uppercase(),
            })
            .collect();
        names.sort();
        if !names.iter().any(|n| n == "IMAP4REV1" || n == "IMAP4REV2") {
            return Err(CheckError::new(Step::Capabilities, Problem::Unsupported, "not an IMAP4rev1 server"));
        }
        Ok(names)
    })
    .await?;
    Ok(Connected { session, capabilities, peer })
}

/// DNS, TCP and TLS — implicit, or after `clear` has spoken the protocol's STARTTLS in clear
/// (IMAP's here, POP3's STLS in `pop3.rs`): the wire and the server's address.
pub(super) async fn reach<F, Fut>(
    url: &ServerUrl,
    tls: &Arc<ClientConfig>,
    limit: Duration,
    clear: F,
) -> Result<(Wire, SocketAddr), CheckError>
where
    F: FnOnce(TcpStream) -> Fut,
    Fut: Future<Output = Result<TcpStream, CheckError>>,
{
    // Plain text leaves this machine for no protocol: refused before a byte is sent.
    if url.security == Security::Plain && !url.is_loopback() {
        return Err(CheckError::new(Step::Dns, Problem::PlainText, url));
    }
    let addrs: Vec<SocketAddr> = step(Step::Dns, limit, async {
        let found = tokio::net::lookup_host((url.host.as_str(), url.port))
            .await
            .map_err(|e| CheckError::new(Step::Dns, Problem::NoSuchHost, format!("{}: {e}", url.host)))?;
        Ok(found.collect())
    })
    .await?;
    let tcp = step(Step::Tcp, limit, async {
        let mut last = None;
        for addr in &addrs {
            match TcpStream::connect(addr).await {
                Ok(s) => return Ok(s),
                Err(e) => last = Some(format!("{addr}: {e}")),
            }
        }
        Err(CheckError::new(Step::Tcp, Problem::Unreachable, last.unwrap_or_else(|| "no address".into())))
    })
    .await?;
    let peer = tcp.peer_addr().map_err(|e| CheckError::new(Step::Tcp, Problem::Unreachable, e))?;
    let _ = tcp.set_nodelay(true);
    let wire = match url.security {
        Security::Plain => Wire::new(Io::Plain(tcp)),
        Security::Implicit => step(Step::Tls, limit, handshake(tcp, url, tls)).await?,
        Security::StartTls => {
            let tcp = step(Step::StartTls, limit, clear(tcp)).await?;
            step(Step::Tls, limit, handshake(tcp, url, tls)).await?
        }
    };
    Ok((wire, peer))
}

async fn handshake(tcp: TcpStream, url: &ServerUrl, tls: &Arc<ClientConfig>) -> Result<Wire, CheckError> {
    let name = ServerName::try_from(url.host.clone())
        .map_err(|e| CheckError::new(Step::Tls, Problem::TlsOther, format!("{}: {e}", url.host)))?;
    let connector = tokio_rustls::TlsConnector::from(tls.clone());
    match connector.connect(name, tcp).await {
        Ok(s) => Ok(Wire::new(Io::Tls(Box::new(s)))),
        Err(e) => {
            let problem =
                e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()).map_or(Problem::TlsOther, classify_tls);
            Err(CheckError::new(Step::Tls, problem, e))
        }
    }
}

/// A line in clear is at most this long: a hostile server cannot grow our memory with one.
const CLEAR_LINE_MAX: u64 = 8 << 10;

/// One line in clear, bounded.
pub(super) async fn clear_line(reader: &mut BufReader<TcpStream>, line: &mut String) -> std::io::Result<usize> {
    line.clear();
    let n = (&mut *reader).take(CLEAR_LINE_MAX).read_line(line).await?;
    if n as u64 == CLEAR_LINE_MAX && !line.ends_with('\n') {
        return Err(std::io::Error::other("a line longer than 8 KiB before TLS"));
    }
    Ok(n)
}

/// The greeting and STARTTLS in clear, by hand: nothing but these two lines passes before TLS.
async fn starttls(tcp: TcpStream) -> Result<TcpStream, CheckError> {
    let mut reader = BufReader::new(tcp);
    let mut line = String::new();
    let read = |e: std::io::Error| CheckError::new(Step::StartTls, Problem::Protocol, e);
    clear_line(&mut reader, &mut line).await.map_err(read)?;
    if !line.starts_with("* OK") {
        return Err(CheckError::new(Step::Greeting, Problem::Refused, line.trim_end()));
    }
    reader.get_mut().write_all(b"s1 STARTTLS\r\n").await.map_err(read)?;
    loop {
        if clear_line(&mut reader, &mut line).await.map_err(read)? == 0 {
            return Err(CheckError::new(Step::StartTls, Problem::Protocol, "closed during STARTTLS"));
        }
        if let Some(rest) = line.strip_prefix("s1 ") {
            if rest.to_ascii_uppercase().starts_with("OK") {
                break;
            }
            return Err(CheckError::new(Step::StartTls, Problem::NoStartTls, rest.trim_end()));
        }
    }
    if !reader.buffer().is_empty() {
        // Bytes after the OK, before our handshake: an injection attempt (CVE-2011-0411 style).
        return Err(CheckError::new(Step::StartTls, Problem::Protocol, "data after the STARTTLS reply"));
    }
    Ok(reader.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_words_are_escaped_and_bounded() {
        assert_eq!(escape("NO [ALERT] bad\r\n\x1b[31mred"), "NO [ALERT] bad\\r\\n\\u{1b}[31mred");
        let long = "x".repeat(1000);
        assert_eq!(escape(&long).chars().count(), 301);
        let e = async_imap::error::Error::No(
            "code: None, info: Some(\"[AUTHENTICATIONFAILED] Authentication failed.\")".into(),
        );
        assert_eq!(server_words(&e), "[AUTHENTICATIONFAILED] Authentication failed.");
        assert_eq!(server_words(&async_imap::error::Error::ConnectionLost), "connection lost");
    }
}
