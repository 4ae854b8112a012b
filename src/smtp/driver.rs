//! The tokio driver of one SMTP session: reads and writes bytes, applies timeouts, does the
//! TLS handshake, checks passwords off the runtime and queues messages. All decisions are the
//! session's (`session.rs`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use super::limits::{AuthThrottle, ConnectionLimits};
use super::session::{AuthOutcome, AuthedUser, ConnInfo, Session, SessionSettings, Step};
use crate::accounts;
use crate::clock::Clock;
use crate::config::TrustedNetwork;
use crate::queue::Queue;
use crate::store::{Store, UserRecord};

/// Everything sessions share.
pub struct Shared {
    pub settings: Arc<SessionSettings>,
    pub queue: Arc<Queue>,
    pub store: Arc<Store>,
    pub clock: Arc<dyn Clock>,
    pub tls: Option<TlsAcceptor>,
    pub limits: Arc<ConnectionLimits>,
    pub throttle: AuthThrottle,
    pub trusted: Vec<TrustedNetwork>,
    pub command_timeout: Duration,
    pub data_timeout: Duration,
    pub shutdown: watch::Receiver<bool>,
}

/// How a drive over one stream ended.
enum Ended<S> {
    Closed,
    Upgrade(S),
}

pub fn authed_user(user: &UserRecord) -> AuthedUser {
    AuthedUser {
        name: user.name.clone(),
        addresses: user.sender_addresses(),
        timezone: user
            .timezone
            .as_ref()
            .and_then(|name| jiff::tz::TimeZone::get(name).ok().map(|tz| (name.clone(), tz))),
    }
}

/// Serve one accepted connection to the end. `implicit_tls` is the 465 listener.
pub async fn serve_connection(
    shared: Arc<Shared>,
    tcp: TcpStream,
    peer: SocketAddr,
    implicit_tls: bool,
    session_id: String,
) {
    let trusted_user = trusted_user(&shared, peer);
    let mut conn = ConnInfo { session_id, peer, tls: None, trusted_user };
    let result = if implicit_tls {
        let Some(acceptor) = shared.tls.clone() else { return };
        let Some(tls) = handshake(&shared, acceptor, tcp).await else { return };
        conn.tls = Some(crate::tls::version_name(tls.get_ref().1.protocol_version()));
        let mut session = Session::new(shared.settings.clone(), conn);
        drive(&shared, &mut session, tls).await.map(|_| ())
    } else {
        let mut session = Session::new(shared.settings.clone(), conn);
        match drive(&shared, &mut session, tcp).await {
            Ok(Ended::Upgrade(tcp)) => {
                let Some(acceptor) = shared.tls.clone() else { return };
                let Some(tls) = handshake(&shared, acceptor, tcp).await else { return };
                session.tls_started(&crate::tls::version_name(tls.get_ref().1.protocol_version()));
                drive(&shared, &mut session, tls).await.map(|_| ())
            }
            other => other.map(|_| ()),
        }
    };
    if let Err(e) = result {
        tracing::debug!(error = %e, "connection ended with an I/O error");
    }
}

/// The server side of a TLS handshake, bounded by the command timeout; failures are logged.
async fn handshake(
    shared: &Shared,
    acceptor: TlsAcceptor,
    tcp: TcpStream,
) -> Option<tokio_rustls::server::TlsStream<TcpStream>> {
    match tokio::time::timeout(shared.command_timeout, acceptor.accept(tcp)).await {
        Ok(Ok(tls)) => Some(tls),
        Ok(Err(e)) => {
            tracing::info!(error = %e, "TLS handshake failed");
            None
        }
        Err(_) => {
            tracing::info!("TLS handshake timed out");
            None
        }
    }
}

fn trusted_user(shared: &Shared, peer: SocketAddr) -> Option<AuthedUser> {
    let net = shared.trusted.iter().find(|n| n.network.contains(peer.ip()))?;
    match shared.store.get_user(&net.user) {
        Ok(Some(u)) if u.verified && !u.disabled => Some(authed_user(&u)),
        Ok(_) => {
            tracing::warn!(user = %net.user, "trusted network names a missing, unverified or disabled user");
            None
        }
        Err(e) => {
            tracing::error!(error = %e, "reading the trusted network's user");
            None
        }
    }
}

async fn drive<S: AsyncRead + AsyncWrite + Unpin>(
    shared: &Shared,
    session: &mut Session,
    mut stream: S,
) -> std::io::Result<Ended<S>> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut shutdown = shared.shutdown.clone();
    loop {
        let step = session.step(shared.clock.now());
        if session.has_output() {
            stream.write_all(&session.take_output()).await?;
            stream.flush().await?;
        }
        match step {
            Step::NeedInput => {
                if *shutdown.borrow() && session.is_idle() {
                    session.shutting_down();
                    continue;
                }
                let limit = if session.in_data() { shared.data_timeout } else { shared.command_timeout };
                let read = async { tokio::time::timeout(limit, stream.read(&mut buf)).await };
                let got = if session.is_idle() {
                    tokio::select! {
                        r = read => r,
                        _ = shutdown.changed() => continue,
                    }
                } else {
                    read.await
                };
                match got {
                    Err(_) => {
                        tracing::info!("client timed out");
                        session.timed_out();
                    }
                    Ok(Ok(0)) => return Ok(Ended::Closed),
                    Ok(Ok(n)) => session.receive(&buf[..n]),
                    Ok(Err(e)) => return Err(e),
                }
            }
            Step::StartTls => return Ok(Ended::Upgrade(stream)),
            Step::Authenticate { username, password } => {
                let outcome = authenticate(shared, session, username, password).await;
                session.auth_done(outcome);
            }
            Step::Deliver(sub) => {
                let recipients = sub.recipients.len();
                let result = shared.queue.submit(*sub).await;
                match &result {
                    Ok(acc) => tracing::info!(queue_id = %acc.id, recipients, "queued"),
                    Err(e) => tracing::error!(error = %e, "queueing failed"),
                }
                session.delivered(result.map_err(|e| e.to_string()));
            }
            Step::Close => {
                let _ = stream.shutdown().await;
                return Ok(Ended::Closed);
            }
        }
    }
}

async fn authenticate(shared: &Shared, session: &Session, username: String, password: String) -> AuthOutcome {
    let ip = session.peer().ip();
    if shared.throttle.is_locked(ip, Instant::now()) {
        tracing::warn!(%ip, "AUTH refused: address is locked out");
        return AuthOutcome::Throttled;
    }
    let store = shared.store.clone();
    let name = username.clone();
    let checked = tokio::task::spawn_blocking(move || accounts::login(&store, &name, &password)).await;
    match checked {
        Ok(Ok(Ok(user))) => {
            shared.throttle.succeeded(ip);
            AuthOutcome::Accepted(authed_user(&user))
        }
        Ok(Ok(Err(refusal))) => {
            let delay = shared.throttle.failed(ip, Instant::now());
            tracing::warn!(user = %username, reason = ?refusal, "AUTH failed");
            tokio::time::sleep(delay).await;
            AuthOutcome::Refused(refusal)
        }
        Ok(Err(e)) => {
            tracing::error!(error = %e, "AUTH could not read the user store");
            AuthOutcome::Unavailable
        }
        Err(_) => AuthOutcome::Unavailable,
    }
}
