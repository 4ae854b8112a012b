//! POP3 accounts (RFC 1939; UIDL; STLS, RFC 2595; response codes, RFC 3206), for providers
//! that offer nothing else: the source's one mailbox goes to `Accounts/<NAME>/INBOX` (and
//! the unified INBOX), by UIDL, through the same map, tombstones and content index as IMAP
//! (`pop3_pass`). Mail stays on the server unless `--pop3-delete-after DAYS`.
//!
//! The reply grammar is pure and fuzzed (`status`, `uidl_line`, `list_line`, `unstuff`); the
//! client is thin: every line is bounded, every read has a deadline, a message is read into
//! memory only up to the size limit.

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use super::connect::{CheckError, Wire, clear_line, escape, reach};
use super::problem::{Problem, Step, classify_login};
use crate::net::server_url::ServerUrl;

/// A status line's text after `+OK`, or the text after `-ERR` as the error.
pub fn status(line: &str) -> Result<&str, &str> {
    let line = line.trim_end_matches(['\r', '\n']);
    if let Some(rest) = line.strip_prefix("+OK") {
        return Ok(rest.trim_start());
    }
    Err(line.strip_prefix("-ERR").map_or(line, str::trim_start))
}

/// A UIDL line: message number and unique id (RFC 1939: 1–70 characters 0x21–0x7E).
pub fn uidl_line(line: &str) -> Option<(u32, String)> {
    let (n, uid) = line.trim_end_matches(['\r', '\n']).split_once(' ')?;
    let uid = uid.trim();
    let ok = !uid.is_empty() && uid.len() <= 70 && uid.bytes().all(|b| (0x21..=0x7e).contains(&b));
    Some((n.parse().ok().filter(|n| *n > 0)?, uid.to_string())).filter(|_| ok)
}

/// A LIST line: message number and size.
pub fn list_line(line: &str) -> Option<(u32, u64)> {
    let mut parts = line.split_whitespace();
    let n = parts.next()?.parse().ok().filter(|n: &u32| *n > 0)?;
    Some((n, parts.next()?.parse().ok()?))
}

/// A line of a multi-line answer without its byte-stuffing (a leading `.` doubled).
pub fn unstuff(line: &[u8]) -> &[u8] {
    if line.starts_with(b"..") { &line[1..] } else { line }
}

/// Lines of a status answer are at most this long (RFC 1939 says 512 with CRLF).
const STATUS_MAX: u64 = 8 << 10;

pub struct Pop3 {
    io: BufReader<Wire>,
    timeout: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum Pop3Error {
    #[error("the server said: {0}")]
    Refused(String),
    #[error("{0}")]
    Io(String),
    #[error("timed out waiting for the server")]
    Timeout,
    #[error("a message is larger than {0} bytes")]
    TooLarge(u64),
}

/// The greeting and STLS in clear, by hand; nothing else passes before TLS.
async fn stls(tcp: TcpStream) -> Result<TcpStream, CheckError> {
    let mut reader = BufReader::new(tcp);
    let mut line = String::new();
    let read = |e: std::io::Error| CheckError::new(Step::StartTls, Problem::Protocol, e);
    clear_line(&mut reader, &mut line).await.map_err(read)?;
    if status(&line).is_err() {
        return Err(CheckError::new(Step::Greeting, Problem::Refused, line.trim_end()));
    }
    reader.get_mut().write_all(b"STLS\r\n").await.map_err(read)?;
    clear_line(&mut reader, &mut line).await.map_err(read)?;
    if let Err(text) = status(&line) {
        return Err(CheckError::new(Step::StartTls, Problem::NoStartTls, text));
    }
    if !reader.buffer().is_empty() {
        return Err(CheckError::new(Step::StartTls, Problem::Protocol, "data after the STLS reply"));
    }
    Ok(reader.into_inner())
}

impl Pop3 {
    /// Reach the server and log in (USER/PASS), each step named as for IMAP.
    pub async fn connect(
        url: &ServerUrl,
        tls: &std::sync::Arc<rustls::ClientConfig>,
        login: &str,
        password: &str,
        timeout: Duration,
    ) -> Result<Pop3, CheckError> {
        let starttls = url.security == crate::net::server_url::Security::StartTls;
        let (wire, _) = reach(url, tls, timeout, stls).await?;
        let mut c = Pop3 { io: BufReader::new(wire), timeout };
        let fail = |step: Step, problem: Problem| move |e: Pop3Error| CheckError::new(step, problem, e);
        if !starttls {
            c.status_line().await.map_err(fail(Step::Greeting, Problem::Refused))?;
        }
        if login.contains(['\r', '\n']) || password.contains(['\r', '\n']) {
            return Err(CheckError::new(Step::Login, Problem::Protocol, "a line break in the login or password"));
        }
        let login_err = |e: Pop3Error| {
            let text = e.to_string();
            CheckError::new(Step::Login, classify_login(&text), text)
        };
        c.command(&format!("USER {login}")).await.map_err(login_err)?;
        c.command(&format!("PASS {password}")).await.map_err(login_err)?;
        Ok(c)
    }

    async fn status_line(&mut self) -> Result<String, Pop3Error> {
        let mut line = String::new();
        let mut limited = (&mut self.io).take(STATUS_MAX);
        match tokio::time::timeout(self.timeout, limited.read_line(&mut line)).await {
            Err(_) => return Err(Pop3Error::Timeout),
            Ok(Err(e)) => return Err(Pop3Error::Io(e.to_string())),
            Ok(Ok(0)) => return Err(Pop3Error::Io("the server closed the connection".into())),
            Ok(Ok(_)) => {}
        }
        match status(&line) {
            Ok(text) => Ok(text.to_string()),
            Err(text) => Err(Pop3Error::Refused(escape(text))),
        }
    }

    /// Send a command, read its status line.
    pub async fn command(&mut self, line: &str) -> Result<String, Pop3Error> {
        let io = self.io.get_mut();
        io.allow(super::connect::COMMAND_BUDGET);
        let write = async {
            io.write_all(line.as_bytes()).await?;
            io.write_all(b"\r\n").await?;
            io.flush().await
        };
        match tokio::time::timeout(self.timeout, write).await {
            Err(_) => return Err(Pop3Error::Timeout),
            Ok(Err(e)) => return Err(Pop3Error::Io(e.to_string())),
            Ok(Ok(())) => {}
        }
        self.status_line().await
    }

    /// The lines of a multi-line answer (after its status line), unstuffed, CRLF kept; at
    /// most `max` bytes.
    async fn body(&mut self, max: u64) -> Result<Vec<u8>, Pop3Error> {
        let mut out = Vec::new();
        let mut line = Vec::new();
        loop {
            line.clear();
            let room = max.saturating_sub(out.len() as u64) + 1024;
            let mut limited = (&mut self.io).take(room);
            match tokio::time::timeout(self.timeout, limited.read_until(b'\n', &mut line)).await {
                Err(_) => return Err(Pop3Error::Timeout),
                Ok(Err(e)) => return Err(Pop3Error::Io(e.to_string())),
                Ok(Ok(0)) => return Err(Pop3Error::Io("the server closed the connection".into())),
                Ok(Ok(_)) => {}
            }
            if line == b".\r\n" || line == b".\n" {
                return Ok(out);
            }
            if !line.ends_with(b"\n") {
                return Err(Pop3Error::TooLarge(max));
            }
            out.extend_from_slice(unstuff(&line));
            if out.len() as u64 > max {
                return Err(Pop3Error::TooLarge(max));
            }
        }
    }

    /// Every message's number and unique id.
    pub async fn uidl(&mut self) -> Result<Vec<(u32, String)>, Pop3Error> {
        self.command("UIDL").await?;
        let text = self.body(64 << 20).await?;
        Ok(String::from_utf8_lossy(&text).lines().filter_map(uidl_line).collect())
    }

    /// Every message's number and size.
    pub async fn list(&mut self) -> Result<Vec<(u32, u64)>, Pop3Error> {
        self.command("LIST").await?;
        let text = self.body(64 << 20).await?;
        Ok(String::from_utf8_lossy(&text).lines().filter_map(list_line).collect())
    }

    /// One message, at most `max` bytes (the server's size plus the stuffing is read).
    pub async fn retr(&mut self, n: u32, max: u64) -> Result<Vec<u8>, Pop3Error> {
        self.io.get_mut().allow(max.saturating_mul(2).saturating_add(1 << 20));
        self.command(&format!("RETR {n}")).await?;
        self.body(max).await
    }

    pub async fn dele(&mut self, n: u32) -> Result<(), Pop3Error> {
        self.command(&format!("DELE {n}")).await.map(|_| ())
    }

    /// QUIT: the server carries out the DELEs only now (RFC 1939 UPDATE state).
    pub async fn quit(mut self) -> Result<(), Pop3Error> {
        self.command("QUIT").await.map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines() {
        assert_eq!(status("+OK 2 messages\r\n"), Ok("2 messages"));
        assert_eq!(status("+OK\r\n"), Ok(""));
        assert_eq!(status("-ERR [AUTH] Authentication failed.\r\n"), Err("[AUTH] Authentication failed."));
        assert_eq!(status("garbage"), Err("garbage"));
    }

    #[test]
    fn uidl_and_list_lines() {
        assert_eq!(uidl_line("1 whqtswO00WBw418f9t5JxYwZ\r\n"), Some((1, "whqtswO00WBw418f9t5JxYwZ".into())));
        assert_eq!(uidl_line("0 x"), None);
        assert_eq!(uidl_line("2 has space"), None);
        assert_eq!(uidl_line(&format!("3 {}", "x".repeat(71))), None);
        assert_eq!(list_line("2 1024"), Some((2, 1024)));
        assert_eq!(list_line("2"), None);
        assert_eq!(unstuff(b"..dot\r\n"), b".dot\r\n");
        assert_eq!(unstuff(b".\r\n"), b".\r\n");
    }
}
