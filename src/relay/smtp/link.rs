//! The byte level of the relay client: resolve and connect, read whole replies with size
//! bounds, write with timeouts, and wrap a stream in TLS. Every wait is bounded; every
//! failure is a `LinkError` whose text says at which step the connection was lost.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::ClientConfig;
use rustls_pki_types::ServerName;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::relay::RelayReply;

/// A reply longer than this (all lines together) is refused.
pub(super) const MAX_REPLY_BYTES: usize = 64 * 1024;
/// A reply with more lines than this is refused.
pub(super) const MAX_REPLY_LINES: usize = 100;
/// The body is written in blocks of this size, each under the data timeout.
const DATA_BLOCK: usize = 64 * 1024;

pub(super) trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// The connection can no longer be used; the text is for the record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct LinkError(pub String);

/// One whole reply: the parsed form and each line's text (after `250-`), for EHLO.
#[derive(Debug, Clone)]
pub(super) struct Reply {
    pub parsed: RelayReply,
    pub lines: Vec<String>,
}

impl Reply {
    pub fn code(&self) -> u16 {
        self.parsed.code
    }
    pub fn is_positive(&self) -> bool {
        self.parsed.is_positive()
    }
    /// `250 2.0.0 Ok: queued as 4XYZ`.
    pub fn text(&self) -> String {
        self.parsed.to_string()
    }
    pub fn parsed(&self) -> &RelayReply {
        &self.parsed
    }
}

/// Why a single reply could not be read.
enum ReadError {
    Eof,
    Io(std::io::Error),
    Overlong,
}

pub(super) struct Link {
    io: BufReader<Box<dyn Stream>>,
    pub command_timeout: Duration,
    pub data_timeout: Duration,
}

impl Link {
    pub fn new(stream: Box<dyn Stream>, command_timeout: Duration, data_timeout: Duration) -> Link {
        Link { io: BufReader::new(stream), command_timeout, data_timeout }
    }

    /// Send one command line (without CRLF) and read its reply, each under the command timeout.
    pub async fn command(&mut self, line: &str, what: &str) -> Result<Reply, LinkError> {
        self.write(format!("{line}\r\n").as_bytes(), what).await?;
        self.read_reply(what).await
    }

    /// Read one reply under the command timeout.
    pub async fn read_reply(&mut self, what: &str) -> Result<Reply, LinkError> {
        self.read_reply_within(self.command_timeout, what).await
    }

    /// Read one whole reply (`ddd-` lines up to `ddd `) within `timeout` for all of it.
    pub async fn read_reply_within(&mut self, timeout: Duration, what: &str) -> Result<Reply, LinkError> {
        match tokio::time::timeout(timeout, self.read_lines()).await {
            Err(_) => {
                Err(LinkError(format!("timed out after {} during {what}: the relay did not answer", secs(timeout))))
            }
            Ok(Err(ReadError::Eof)) => {
                Err(LinkError(format!("connection lost during {what}: the relay closed the connection")))
            }
            Ok(Err(ReadError::Io(e))) => Err(LinkError(format!("connection lost during {what}: {e}"))),
            Ok(Err(ReadError::Overlong)) => Err(LinkError(format!(
                "relay sent an overlong reply during {what} (over {MAX_REPLY_LINES} lines or {} KiB)",
                MAX_REPLY_BYTES / 1024
            ))),
            Ok(Ok(lines)) => parse_reply(&lines)
                .ok_or_else(|| LinkError(format!("relay sent a malformed reply during {what}: {:?}", shorten(&lines)))),
        }
    }

    async fn read_lines(&mut self) -> Result<Vec<String>, ReadError> {
        let mut lines = Vec::new();
        let mut total = 0;
        loop {
            let line = read_line(&mut self.io, MAX_REPLY_BYTES - total).await?;
            total += line.len();
            let text = String::from_utf8_lossy(&line).trim_end_matches(['\r', '\n']).to_string();
            let last = text.as_bytes().get(3) != Some(&b'-');
            lines.push(text);
            if last {
                return Ok(lines);
            }
            if lines.len() >= MAX_REPLY_LINES {
                return Err(ReadError::Overlong);
            }
        }
    }

    /// Write bytes (commands) under the command timeout, and flush.
    pub async fn write(&mut self, bytes: &[u8], what: &str) -> Result<(), LinkError> {
        let timeout = self.command_timeout;
        self.write_within(bytes, timeout, what).await
    }

    /// Write the message body in blocks, each under the data timeout, and flush.
    pub async fn write_data(&mut self, bytes: &[u8], what: &str) -> Result<(), LinkError> {
        let timeout = self.data_timeout;
        for block in bytes.chunks(DATA_BLOCK) {
            self.write_within(block, timeout, what).await?;
        }
        Ok(())
    }

    pub async fn write_within(&mut self, bytes: &[u8], timeout: Duration, what: &str) -> Result<(), LinkError> {
        let io = self.io.get_mut();
        let write = async {
            io.write_all(bytes).await?;
            io.flush().await
        };
        match tokio::time::timeout(timeout, write).await {
            Err(_) => {
                Err(LinkError(format!("timed out after {} during {what}: the relay stopped reading", secs(timeout))))
            }
            Ok(Err(e)) => Err(LinkError(format!("connection lost during {what}: {e}"))),
            Ok(Ok(())) => Ok(()),
        }
    }

    /// The stream, for the TLS handshake after STARTTLS. Bytes the relay sent after its 220
    /// would be read as if they came over TLS (the STARTTLS injection attack): refused.
    pub fn into_stream(self) -> Result<Box<dyn Stream>, LinkError> {
        if !self.io.buffer().is_empty() {
            return Err(LinkError("TLS failed: the relay sent data after its STARTTLS reply".into()));
        }
        Ok(self.io.into_inner())
    }

    /// Close our side (TLS close_notify, then FIN), briefly; errors do not matter any more.
    pub async fn shutdown(&mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(2), self.io.get_mut().shutdown()).await;
    }
}

/// Read up to and including `\n`, refusing more than `limit` bytes.
async fn read_line(io: &mut BufReader<Box<dyn Stream>>, limit: usize) -> Result<Vec<u8>, ReadError> {
    let mut line = Vec::new();
    loop {
        let buf = io.fill_buf().await.map_err(ReadError::Io)?;
        if buf.is_empty() {
            return Err(ReadError::Eof);
        }
        let (take, done) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (buf.len(), false),
        };
        line.extend_from_slice(&buf[..take]);
        io.consume(take);
        if line.len() > limit {
            return Err(ReadError::Overlong);
        }
        if done {
            return Ok(line);
        }
    }
}

/// Lines must each be `ddd`, `ddd text` or `ddd-text` with one code throughout.
fn parse_reply(lines: &[String]) -> Option<Reply> {
    let mut texts = Vec::with_capacity(lines.len());
    for line in lines {
        let b = line.as_bytes();
        if b.len() < 3 || !b[..3].iter().all(u8::is_ascii_digit) || !matches!(b.get(3), None | Some(b' ' | b'-')) {
            return None;
        }
        texts.push(line.get(4..).unwrap_or("").to_string());
    }
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    Some(Reply { parsed: RelayReply::parse(&refs)?, lines: texts })
}

fn shorten(lines: &[String]) -> String {
    let first = lines.first().map(String::as_str).unwrap_or("");
    first.chars().take(80).collect()
}

pub(super) fn secs(d: Duration) -> String {
    format!("{:?}", d)
}

/// Resolve with the system resolver (`/etc/hosts`, IP literals, DNS), in its order.
pub(super) async fn resolve(host: &str, port: u16, timeout: Duration) -> Result<Vec<SocketAddr>, String> {
    let fail = |why: String| format!("could not resolve the relay host {host}: {why}");
    let found = match tokio::time::timeout(timeout, tokio::net::lookup_host((host, port))).await {
        Err(_) => return Err(fail(format!("timed out after {}", secs(timeout)))),
        Ok(Err(e)) => return Err(fail(e.to_string())),
        Ok(Ok(found)) => found,
    };
    let mut addrs: Vec<SocketAddr> = Vec::new();
    for a in found {
        if !addrs.contains(&a) {
            addrs.push(a);
        }
    }
    if addrs.is_empty() {
        return Err(fail("no addresses".into()));
    }
    Ok(addrs)
}

/// Try each address in order, each within `timeout`; the first that connects wins.
pub(crate) async fn connect_any(addrs: &[SocketAddr], timeout: Duration) -> Result<TcpStream, String> {
    let mut errors = Vec::new();
    for addr in addrs {
        match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => {
                // Commands are written whole; no need to wait for more.
                let _ = stream.set_nodelay(true);
                return Ok(stream);
            }
            Ok(Err(e)) => errors.push(format!("{addr}: {e}")),
            Err(_) => errors.push(format!("{addr}: timed out after {}", secs(timeout))),
        }
        tracing::info!(%addr, "relay address did not connect: {}", errors.last().map(String::as_str).unwrap_or(""));
    }
    if errors.is_empty() {
        return Err("could not connect to the relay: no address to try".into());
    }
    Err(format!("could not connect to the relay: {}", errors.join("; ")))
}

/// Wrap `stream` in TLS, verifying the certificate for `host` (a name or an IP literal).
pub(super) async fn tls(
    stream: Box<dyn Stream>,
    config: &Arc<ClientConfig>,
    host: &str,
    timeout: Duration,
) -> Result<Box<dyn Stream>, LinkError> {
    let name = ServerName::try_from(host.to_string())
        .map_err(|e| LinkError(format!("TLS failed: {host:?} is not a usable server name: {e}")))?;
    let connector = tokio_rustls::TlsConnector::from(Arc::clone(config));
    match tokio::time::timeout(timeout, connector.connect(name, stream)).await {
        Err(_) => Err(LinkError(format!("TLS failed: the handshake timed out after {}", secs(timeout)))),
        Ok(Err(e)) => Err(LinkError(format!("TLS failed: {e}"))),
        Ok(Ok(s)) => Ok(Box::new(s)),
    }
}
