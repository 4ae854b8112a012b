//! A scripted IMAP client: send a line, read untagged responses up to the tagged one
//! (literals included, kept as bytes).

use std::net::SocketAddr;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::support::{PASSWORD, Stream, USER, tls_connector};

pub struct Imap {
    io: BufReader<Box<dyn Stream>>,
    next: u32,
}

impl Imap {
    pub async fn plain(addr: SocketAddr) -> (Imap, String) {
        let tcp = TcpStream::connect(addr).await.unwrap();
        let mut c = Imap { io: BufReader::new(Box::new(tcp)), next: 1 };
        let greeting = c.line().await;
        (c, greeting)
    }

    pub async fn tls(addr: SocketAddr) -> (Imap, String) {
        let tcp = TcpStream::connect(addr).await.unwrap();
        let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
        let tls = tls_connector().connect(name, tcp).await.unwrap();
        let mut c = Imap { io: BufReader::new(Box::new(tls)), next: 1 };
        let greeting = c.line().await;
        (c, greeting)
    }

    /// Logged in as the test user over implicit TLS.
    pub async fn login(addr: SocketAddr) -> Imap {
        let (mut c, _) = Imap::tls(addr).await;
        let r = c.cmd(&format!("LOGIN {USER} \"{PASSWORD}\"")).await;
        assert!(r.last().unwrap().contains("OK"), "{r:?}");
        c
    }

    pub async fn into_tls(self) -> Imap {
        let inner = self.io.into_inner();
        let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
        let tls = tls_connector().connect(name, inner).await.unwrap();
        Imap { io: BufReader::new(Box::new(tls)), next: self.next }
    }

    pub async fn send(&mut self, raw: &[u8]) {
        let w = self.io.get_mut();
        w.write_all(raw).await.unwrap();
        w.flush().await.unwrap();
    }

    /// Write without panicking; false when the server has closed the connection.
    pub async fn try_send(&mut self, raw: &[u8]) -> bool {
        let w = self.io.get_mut();
        w.write_all(raw).await.is_ok() && w.flush().await.is_ok()
    }

    /// One response line, literals inlined as their bytes (lossy); empty on EOF.
    pub async fn line(&mut self) -> String {
        let mut out = Vec::new();
        loop {
            let mut line = Vec::new();
            if self.io.read_until(b'\n', &mut line).await.unwrap_or(0) == 0 {
                break;
            }
            out.extend_from_slice(&line);
            let trimmed = line.strip_suffix(b"\r\n").unwrap_or(&line);
            let Some(open) = trimmed.iter().rposition(|&b| b == b'{') else { break };
            if !trimmed.ends_with(b"}") {
                break;
            }
            let Ok(n) = std::str::from_utf8(&trimmed[open + 1..trimmed.len() - 1]).unwrap_or("x").parse::<usize>()
            else {
                break;
            };
            let mut lit = vec![0; n];
            if self.io.read_exact(&mut lit).await.is_err() {
                break;
            }
            out.extend_from_slice(&lit);
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    /// Send `tag command`, return every line up to and including the tagged one.
    pub async fn cmd(&mut self, command: &str) -> Vec<String> {
        let tag = format!("t{}", self.next);
        self.next += 1;
        self.send(format!("{tag} {command}\r\n").as_bytes()).await;
        self.until(&tag).await
    }

    pub async fn until(&mut self, tag: &str) -> Vec<String> {
        let mut lines = Vec::new();
        loop {
            let l = self.line().await;
            if l.is_empty() {
                lines.push("<EOF>".into());
                return lines;
            }
            let done = l.starts_with(&format!("{tag} "));
            lines.push(l);
            if done {
                return lines;
            }
        }
    }

    /// APPEND with a synchronising literal.
    pub async fn append(&mut self, mailbox: &str, flags: &str, msg: &[u8]) -> Vec<String> {
        let tag = format!("t{}", self.next);
        self.next += 1;
        self.send(format!("{tag} APPEND {mailbox} ({flags}) {{{}}}\r\n", msg.len()).as_bytes()).await;
        let cont = self.line().await;
        assert!(cont.starts_with('+'), "{cont}");
        let mut data = msg.to_vec();
        data.extend_from_slice(b"\r\n");
        self.send(&data).await;
        self.until(&tag).await
    }
}

pub fn tagged(lines: &[String]) -> &str {
    lines.last().map(String::as_str).unwrap_or("")
}
