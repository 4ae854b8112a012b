//! The SMTP relay client: hands released messages to the operator's third-party relay.
//!
//! gatepost resolves the relay host itself and connects to each address in turn, so the
//! record can name the relay server's IP and our own (system) IP of the connection that
//! carried the message. One connection carries a whole batch (RSET between messages,
//! PIPELINING when offered); MAIL, RCPT and DATA are driven one by one so that every
//! recipient's result is known. A small linear client over any byte stream, so the same
//! code runs over TCP and TLS. See docs/relay.md.
//!
//! - `link`: the byte level — connecting, bounded reply reading, timed writes, TLS.
//! - `session`: greeting, EHLO/HELO, STARTTLS, AUTH, RSET, QUIT.
//! - `transaction`: one message — MAIL, RCPT, DATA, the dot-stuffed body, classification.

mod link;
mod session;
#[cfg(test)]
mod tests;
mod transaction;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rustls::ClientConfig;

use super::{BoxFuture, Delivery, Outgoing, RecipientResult, Refusal, Relay};
use crate::net::server_url::{Protocol, ServerUrl};

/// How the connection to the relay is protected (the same three ways as an account's servers).
pub use crate::net::server_url::Security;

#[derive(Debug, Clone)]
pub struct SmtpRelayConfig {
    pub host: String,
    pub port: u16,
    pub security: Security,
    /// User name and password (the caller reads the password from its file or variable).
    pub credentials: Option<(String, String)>,
    /// Extra certificates (PEM) to trust: a private CA, or the relay's own (self-signed)
    /// certificate, which is then trusted as exactly itself (`relay::trust`).
    pub ca_file: Option<PathBuf>,
    /// The name we give in EHLO/HELO.
    pub helo_name: String,
    /// Per address tried (TCP connect), and for name resolution.
    pub connect_timeout: Duration,
    /// Waiting for any reply, and writing any command (also the TLS handshake).
    pub command_timeout: Duration,
    /// Writing each block of the body, and waiting for the reply after the final `.`.
    pub data_timeout: Duration,
}

/// The system CA bundle trusted when verifying the relay's certificate (Debian's path).
pub use super::trust::SYSTEM_CA_BUNDLE;

/// Parse `smtp://host[:port]` (25, plain), `smtp+starttls://host[:port]` (587, STARTTLS
/// required) or `smtps://host[:port]` (465, implicit TLS); the grammar is `net::server_url`'s.
pub fn parse_url(url: &str) -> Result<(String, u16, Security), String> {
    let u = ServerUrl::parse(url, &[Protocol::Smtp], "relay")?;
    Ok((u.host, u.port, u.security))
}

/// The relay client. Cheap to share: the TLS configuration is built once.
pub struct SmtpRelay {
    config: SmtpRelayConfig,
    tls: Option<Arc<ClientConfig>>,
}

impl SmtpRelay {
    /// Checks the configuration and loads the trusted certificates (for the TLS schemes).
    pub fn new(config: SmtpRelayConfig) -> Result<SmtpRelay, String> {
        if config.host.is_empty() || config.port == 0 {
            return Err("the relay host and port must be set".into());
        }
        if config.helo_name.is_empty() || config.helo_name.contains(|c: char| c.is_whitespace() || c.is_control()) {
            return Err(format!("{:?} is not a usable EHLO name", config.helo_name));
        }
        if let Some((user, password)) = &config.credentials
            && (user.is_empty() || user.contains('\0') || password.contains('\0'))
        {
            return Err("the relay user name must be non-empty, and neither it nor the password may hold NUL".into());
        }
        let tls = match config.security {
            Security::Plain => None,
            Security::StartTls | Security::Implicit => {
                Some(Arc::new(super::trust::client_config(config.ca_file.as_deref(), "relay.ca_file")?))
            }
        };
        Ok(SmtpRelay { config, tls })
    }

    /// As `new`, trusting what `tls` trusts (a connected account's own route: its extra
    /// certificate is kept in its record, not in a file).
    pub fn with_tls(config: SmtpRelayConfig, tls: Arc<ClientConfig>) -> Result<SmtpRelay, String> {
        let plain = SmtpRelayConfig { security: Security::Plain, ..config };
        let checked = SmtpRelay::new(plain)?;
        let config = SmtpRelayConfig { security: config.security, ..checked.config };
        let tls = (config.security != Security::Plain).then_some(tls);
        Ok(SmtpRelay { config, tls })
    }

    pub fn config(&self) -> &SmtpRelayConfig {
        &self.config
    }

    /// Deliver several messages over as few connections as possible: one normally, RSET
    /// between messages. When the connection dies, the message in flight is deferred and the
    /// rest get one fresh connection; if that dies too, what remains is deferred.
    /// One `Delivery` per message, in the same order.
    pub async fn deliver_batch(&self, msgs: &[Outgoing]) -> Vec<Delivery> {
        let mut out: Vec<Delivery> = Vec::with_capacity(msgs.len());
        let mut connections = 0;
        while out.len() < msgs.len() {
            // Messages with no recipients never need the relay.
            if msgs[out.len()].recipients.is_empty() {
                out.push(Delivery::all(0, RecipientResult::Delivered, "no recipients: nothing to send"));
                continue;
            }
            if connections == 2 {
                let why = "the relay connection was lost twice in this batch; will retry later";
                out.extend(msgs[out.len()..].iter().map(|m| deferred(m, why)));
                break;
            }
            connections += 1;
            let mut session = match session::Session::open(&self.config, self.tls.as_ref()).await {
                Ok(s) => s,
                Err(f) => {
                    out.extend(msgs[out.len()..].iter().map(|m| f.delivery(m.recipients.len())));
                    break;
                }
            };
            let mut alive = true;
            let mut first = true;
            while alive && out.len() < msgs.len() {
                let msg = &msgs[out.len()];
                if !first
                    && !msg.recipients.is_empty()
                    && let Err(why) = session.reset().await
                {
                    tracing::info!(relay = %session.relay_ip(), "RSET failed, reconnecting: {why}");
                    alive = false;
                    break;
                }
                first = false;
                let (delivery, still) = if msg.recipients.is_empty() {
                    (Delivery::all(0, RecipientResult::Delivered, "no recipients: nothing to send"), true)
                } else {
                    transaction::send(&mut session, msg).await
                };
                alive = still;
                out.push(delivery);
            }
            if alive {
                session.quit().await;
            }
        }
        out
    }
}

impl Relay for SmtpRelay {
    fn deliver_batch<'a>(&'a self, msgs: &'a [Outgoing]) -> BoxFuture<'a, Vec<Delivery>> {
        Box::pin(SmtpRelay::deliver_batch(self, msgs))
    }
}

fn deferred(msg: &Outgoing, why: &str) -> Delivery {
    Delivery::all(msg.recipients.len(), RecipientResult::Deferred(Refusal::why(why.to_string())), why)
}

/// Connect, say EHLO, secure and log in, then QUIT: whether an SMTP route (a connected
/// account's own server, SPEC §10) accepts these credentials. The reason when not.
pub async fn check_login(config: &SmtpRelayConfig, tls: &Arc<rustls::ClientConfig>) -> Result<(), String> {
    match session::Session::open(config, Some(tls)).await {
        Ok(s) => {
            s.quit().await;
            Ok(())
        }
        Err(f) => Err(f.text),
    }
}
