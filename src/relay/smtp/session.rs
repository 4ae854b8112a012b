//! Opening a relay session — connect, greeting, EHLO (HELO fallback), STARTTLS, AUTH — and
//! the commands between and after messages (RSET, QUIT).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use rustls::ClientConfig;

use super::link::{self, Link, LinkError, Reply, Stream};
use super::{Security, SmtpRelayConfig};
use crate::relay::{Delivery, RecipientResult, Refusal};

/// What the relay said it can do (EHLO keywords).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Caps {
    pub pipelining: bool,
    pub starttls: bool,
    pub smtputf8: bool,
    pub eight_bit_mime: bool,
    /// `SIZE` was offered (with its limit, 0 = none stated).
    pub size: Option<u64>,
    /// AUTH mechanisms, upper case.
    pub auth: Vec<String>,
}

impl Caps {
    /// From the EHLO reply lines' texts; the first line is the greeting name.
    pub fn parse(lines: &[String]) -> Caps {
        let mut caps = Caps::default();
        for line in lines.iter().skip(1) {
            let mut words = line.split_whitespace();
            let Some(keyword) = words.next() else { continue };
            match keyword.to_ascii_uppercase().as_str() {
                "PIPELINING" => caps.pipelining = true,
                "STARTTLS" => caps.starttls = true,
                "SMTPUTF8" => caps.smtputf8 = true,
                "8BITMIME" => caps.eight_bit_mime = true,
                "SIZE" => caps.size = Some(words.next().and_then(|n| n.parse().ok()).unwrap_or(0)),
                "AUTH" => {
                    for m in words {
                        let m = m.to_ascii_uppercase();
                        if !caps.auth.contains(&m) {
                            caps.auth.push(m);
                        }
                    }
                }
                _ => {}
            }
        }
        caps
    }
}

/// The session could not be set up; every message of the batch gets this result.
#[derive(Debug, Clone)]
pub(super) struct SetupFailure {
    /// Failed for good (no setup step is treated so today; kept for refusals that are).
    pub permanent: bool,
    pub text: String,
    /// Relay and system IP, when a connection was made.
    pub ips: Option<(IpAddr, IpAddr)>,
}

impl SetupFailure {
    fn deferred(text: impl Into<String>, ips: Option<(IpAddr, IpAddr)>) -> SetupFailure {
        SetupFailure { permanent: false, text: text.into(), ips }
    }

    pub fn delivery(&self, recipients: usize) -> Delivery {
        let result = if self.permanent {
            RecipientResult::Failed(Refusal::why(self.text.clone()))
        } else {
            RecipientResult::Deferred(Refusal::why(self.text.clone()))
        };
        let mut d = Delivery::all(recipients, result, self.text.clone());
        if let Some((relay, system)) = self.ips {
            d.relay_ip = Some(relay);
            d.system_ip = Some(system);
        }
        d
    }
}

/// A connection ready for mail transactions.
pub(super) struct Session {
    pub link: Link,
    pub caps: Caps,
    peer: SocketAddr,
    local: SocketAddr,
}

impl Session {
    pub async fn open(config: &SmtpRelayConfig, tls: Option<&Arc<ClientConfig>>) -> Result<Session, SetupFailure> {
        let addrs = link::resolve(&config.host, config.port, config.connect_timeout)
            .await
            .map_err(|e| SetupFailure::deferred(e, None))?;
        let tcp =
            link::connect_any(&addrs, config.connect_timeout).await.map_err(|e| SetupFailure::deferred(e, None))?;
        let (peer, local) = match (tcp.peer_addr(), tcp.local_addr()) {
            (Ok(p), Ok(l)) => (p, l),
            (Err(e), _) | (_, Err(e)) => {
                return Err(SetupFailure::deferred(format!("connection lost at once: {e}"), None));
            }
        };
        tracing::debug!(relay = %peer, local = %local, "connected to the relay");
        let ips = Some((peer.ip(), local.ip()));
        match setup(config, tls, Box::new(tcp), peer).await {
            Ok((link, caps)) => Ok(Session { link, caps, peer, local }),
            Err(Setup::Lost(e)) => Err(SetupFailure::deferred(e.0, ips)),
            Err(Setup::Refused { permanent, text }) => Err(SetupFailure { permanent, text, ips }),
        }
    }

    pub fn relay_ip(&self) -> IpAddr {
        self.peer.ip()
    }

    pub fn system_ip(&self) -> IpAddr {
        self.local.ip()
    }

    /// RSET between messages; anything but 2xx means the connection is not to be trusted.
    pub async fn reset(&mut self) -> Result<(), String> {
        match self.link.command("RSET", "RSET").await {
            Ok(r) if r.is_positive() => Ok(()),
            Ok(r) => Err(format!("relay refused RSET: {}", r.text())),
            Err(LinkError(e)) => Err(e),
        }
    }

    /// QUIT politely (briefly), then close.
    pub async fn quit(mut self) {
        let wait = self.link.command_timeout.min(Duration::from_secs(5));
        if self.link.write_within(b"QUIT\r\n", wait, "QUIT").await.is_ok() {
            let _ = self.link.read_reply_within(wait, "QUIT").await;
        }
        self.link.shutdown().await;
    }
}

enum Setup {
    /// The connection broke or timed out (always Deferred).
    Lost(LinkError),
    /// The relay (or our own policy) said no.
    Refused { permanent: bool, text: String },
}

impl From<LinkError> for Setup {
    fn from(e: LinkError) -> Setup {
        Setup::Lost(e)
    }
}

fn refused(text: impl Into<String>) -> Setup {
    Setup::Refused { permanent: false, text: text.into() }
}

async fn setup(
    config: &SmtpRelayConfig,
    tls: Option<&Arc<ClientConfig>>,
    tcp: Box<dyn Stream>,
    peer: SocketAddr,
) -> Result<(Link, Caps), Setup> {
    let (ct, dt) = (config.command_timeout, config.data_timeout);
    let tls_config = || tls.ok_or_else(|| refused("TLS failed: no TLS configuration (internal error)"));
    let mut stream = tcp;
    if config.security == Security::Implicit {
        stream = link::tls(stream, tls_config()?, &config.host, ct).await?;
    }
    let mut link = Link::new(stream, ct, dt);
    let greeting = link.read_reply("the greeting").await?;
    if !(200..300).contains(&greeting.code()) {
        // A 5xx greeting refuses *us* (an IP on a blocklist, a relay not yet opened for us):
        // an operator problem, so the mail waits and is retried until its lifetime runs out.
        return Err(Setup::Refused { permanent: false, text: greeting.text() });
    }
    let mut caps = hello(&mut link, &config.helo_name).await?;
    if config.security == Security::StartTls {
        if !caps.starttls {
            return Err(refused(
                "TLS failed: the relay does not offer STARTTLS, which smtp+starttls:// requires (nothing was sent in clear)",
            ));
        }
        let r = link.command("STARTTLS", "STARTTLS").await?;
        if r.code() != 220 {
            return Err(refused(format!("TLS failed: the relay refused STARTTLS: {}", r.text())));
        }
        let stream = link::tls(link.into_stream()?, tls_config()?, &config.host, ct).await?;
        link = Link::new(stream, ct, dt);
        caps = hello(&mut link, &config.helo_name).await?;
    }
    if let Some((user, password)) = &config.credentials {
        let encrypted = config.security != Security::Plain;
        authenticate(&mut link, &caps, user, password, encrypted, peer).await?;
    }
    Ok((link, caps))
}

/// EHLO, or HELO when the relay does not know EHLO (5xx).
async fn hello(link: &mut Link, name: &str) -> Result<Caps, Setup> {
    let r = link.command(&format!("EHLO {name}"), "EHLO").await?;
    if r.is_positive() {
        return Ok(Caps::parse(&r.lines));
    }
    if r.code() < 500 {
        return Err(refused(format!("the relay refused EHLO: {}", r.text())));
    }
    let r = link.command(&format!("HELO {name}"), "HELO").await?;
    if r.is_positive() { Ok(Caps::default()) } else { Err(refused(format!("the relay refused HELO: {}", r.text()))) }
}

/// AUTH PLAIN, or LOGIN when only LOGIN is offered. A refusal is deferred, never failed:
/// wrong credentials are the operator's to fix, and no message should be lost over them.
async fn authenticate(
    link: &mut Link,
    caps: &Caps,
    user: &str,
    password: &str,
    encrypted: bool,
    peer: SocketAddr,
) -> Result<(), Setup> {
    if !encrypted && !peer.ip().is_loopback() {
        return Err(refused(format!(
            "refusing to send the relay password in clear to {}: use smtp+starttls:// or smtps://",
            peer.ip()
        )));
    }
    let offers = |m: &str| caps.auth.iter().any(|a| a == m);
    let reply = if offers("PLAIN") {
        let token = B64.encode(format!("\0{user}\0{password}"));
        link.command(&format!("AUTH PLAIN {token}"), "AUTH").await?
    } else if offers("LOGIN") {
        login(link, user, password).await?
    } else if caps.auth.is_empty() {
        let hint = if encrypted { "" } else { " without TLS (use smtp+starttls:// or smtps://)" };
        return Err(refused(format!(
            "the relay does not offer AUTH{hint}; cannot log in with the configured credentials"
        )));
    } else {
        return Err(refused(format!(
            "the relay offers AUTH {} but gatepost speaks only PLAIN and LOGIN",
            caps.auth.join(" ")
        )));
    };
    match reply.code() {
        235 => Ok(()),
        334 => {
            // An unexpected challenge: cancel the exchange; the session is not usable.
            let _ = link.command("*", "AUTH").await;
            Err(refused(format!("relay refused our credentials: unexpected challenge {}", reply.text())))
        }
        400..=499 => Err(refused(format!("the relay could not check our credentials now: {}", reply.text()))),
        _ => Err(refused(format!("relay refused our credentials: {}", reply.text()))),
    }
}

async fn login(link: &mut Link, user: &str, password: &str) -> Result<Reply, Setup> {
    let r = link.command("AUTH LOGIN", "AUTH").await?;
    if r.code() != 334 {
        return Ok(r);
    }
    let r = link.command(&B64.encode(user), "AUTH").await?;
    if r.code() != 334 {
        return Ok(r);
    }
    Ok(link.command(&B64.encode(password), "AUTH").await?)
}
