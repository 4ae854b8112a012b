//! The tokio driver of one SMTP session: reads and writes bytes, keeps the deadlines, does the
//! TLS handshake, asks the shared login door (`accounts::login`) to check passwords, queues
//! messages, and ends the session when its account changes. All protocol decisions are the
//! session's (`session/`).
//!
//! Deadlines (`docs/login.md`, item 11 and 16 of issue 8): a command line, and the idle time
//! before it, must arrive within `command_timeout` of the last reply (bytes of a partial line
//! do not extend it); the whole DATA transfer within `data_timeout` of the 354; and until a
//! login succeeds, everything within `preauth_timeout` of the connection being accepted.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use super::codes;
use super::session::{AuthOutcome, AuthedUser, ConnInfo, Session, SessionSettings, Step};
use crate::accounts::login::{Login, LoginOutcome};
use crate::clock::Clock;
use crate::config::TrustedNetwork;
use crate::net::limits::ConnectionLimits;
use crate::net::quiet::Quiet;
use crate::net::registry::{SessionRegistry, SessionTicket};
use crate::queue::Queue;
use crate::store::space::FreeSpace;
use crate::store::{Store, UserRecord};

/// The time limits of a session.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// To send one command line, counted from our last reply.
    pub command: Duration,
    /// For the whole DATA transfer, counted from the 354.
    pub data: Duration,
    /// From connecting to a successful AUTH (trusted networks are exempt).
    pub preauth: Duration,
}

/// Everything sessions share.
pub struct Shared {
    pub settings: Arc<SessionSettings>,
    pub queue: Arc<Queue>,
    pub store: Arc<Store>,
    pub clock: Arc<dyn Clock>,
    pub tls: Option<TlsAcceptor>,
    pub limits: Arc<ConnectionLimits>,
    pub login: Arc<Login>,
    pub sessions: Arc<SessionRegistry>,
    pub trusted: Vec<TrustedNetwork>,
    /// Log lines any connection could repeat (a trusted network naming a user who may not
    /// submit, a refusal by the connection limits): at most once a minute per key.
    pub quiet_logs: Arc<Quiet>,
    pub timeouts: Timeouts,
    /// Free space on the data file system: below the minimum, MAIL gets 452 4.3.1.
    pub space: Arc<FreeSpace>,
    pub shutdown: watch::Receiver<bool>,
}

/// How a drive over one stream ended.
enum Ended<S> {
    Closed,
    Upgrade(S),
}

/// What the driver knows about the connection beyond the session.
struct Conn {
    /// Until a login succeeds: when the connection must have logged in.
    preauth_deadline: Option<Instant>,
    /// The live-session registration once the session acts for a user.
    ticket: Option<SessionTicket>,
}

/// The user as submission judges them: their own address and the connected accounts' that
/// may send now (read at login; a route checked later counts from the next session). If the
/// accounts cannot be read, only the user's own address: never more than is known.
pub fn authed_user(store: &Store, user: &UserRecord) -> AuthedUser {
    let send_as = store.send_routes(&user.name).unwrap_or_else(|e| {
        tracing::error!(user = %user.name, error = %e, "cannot read the connected accounts: sending as them is refused");
        Vec::new()
    });
    let mut addresses = user.sender_addresses();
    for s in &send_as {
        if !addresses.contains(&s.address) {
            addresses.push(s.address.clone());
        }
    }
    AuthedUser {
        name: user.name.clone(),
        addresses,
        send_as,
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
    let accepted = Instant::now();
    let (trusted_user, ticket) = match trusted_user(&shared, peer) {
        Some((user, ticket)) => (Some(user), Some(ticket)),
        None => (None, None),
    };
    let preauth_deadline = ticket.is_none().then(|| accepted + shared.timeouts.preauth);
    let mut conn = Conn { preauth_deadline, ticket };
    let mut info = ConnInfo { session_id, peer, tls: None, trusted_user };
    let result = if implicit_tls {
        let Some(tls) = handshake(&shared, &conn, tcp).await else { return };
        info.tls = Some(crate::tls::version_name(tls.get_ref().1.protocol_version()));
        let mut session = Session::new(shared.settings.clone(), info);
        drive(&shared, &mut session, &mut conn, tls).await.map(|_| ())
    } else {
        let mut session = Session::new(shared.settings.clone(), info);
        match drive(&shared, &mut session, &mut conn, tcp).await {
            Ok(Ended::Upgrade(tcp)) => {
                let Some(tls) = handshake(&shared, &conn, tcp).await else { return };
                session.tls_started(&crate::tls::version_name(tls.get_ref().1.protocol_version()));
                drive(&shared, &mut session, &mut conn, tls).await.map(|_| ())
            }
            other => other.map(|_| ()),
        }
    };
    if let Err(e) = result {
        tracing::debug!(error = %e, "connection ended with an I/O error");
    }
}

/// The server side of a TLS handshake, bounded by the command timeout and what is left of the
/// pre-login time; failures are logged.
async fn handshake(shared: &Shared, conn: &Conn, tcp: TcpStream) -> Option<tokio_rustls::server::TlsStream<TcpStream>> {
    let acceptor = shared.tls.clone()?;
    let mut deadline = Instant::now() + shared.timeouts.command;
    if let Some(preauth) = conn.preauth_deadline {
        deadline = deadline.min(preauth);
    }
    match tokio::time::timeout_at(deadline.into(), acceptor.accept(tcp)).await {
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

/// The user of a trusted network the peer is in, registered as a live session of theirs.
fn trusted_user(shared: &Shared, peer: SocketAddr) -> Option<(AuthedUser, SessionTicket)> {
    let net = shared.trusted.iter().find(|n| n.network.contains(peer.ip()))?;
    match shared.store.get_user(&net.user) {
        Ok(Some(u)) if u.may_log_in() => {
            Some((authed_user(&shared.store, &u), shared.sessions.register(&u.name, u.generation)))
        }
        Ok(_) => {
            let network = net.network.to_string();
            if let Some(held_back) = shared.quiet_logs.allow(&format!("trusted {network}"), Instant::now()) {
                tracing::warn!(
                    user = %net.user, %network, held_back,
                    "trusted network names a missing, unverified or disabled user (logged at most once a minute per network; held_back = lines not logged since)"
                );
            }
            None
        }
        Err(e) => {
            tracing::error!(error = %e, "reading the trusted network's user");
            None
        }
    }
}

/// When the client must have sent what it owes us next.
struct Deadlines {
    timeouts: Timeouts,
    command: Instant,
    data: Option<Instant>,
}

impl Deadlines {
    fn new(timeouts: Timeouts, now: Instant) -> Self {
        Deadlines { timeouts, command: now + timeouts.command, data: None }
    }

    /// After each step: a reply starts a new command's time; DATA's time starts once.
    fn after_step(&mut self, in_data: bool, replied: bool, now: Instant) {
        if in_data {
            self.data.get_or_insert(now + self.timeouts.data);
        } else {
            self.data = None;
            if replied {
                self.command = now + self.timeouts.command;
            }
        }
    }

    fn next(&self, conn: &Conn) -> Instant {
        let base = self.data.unwrap_or(self.command);
        conn.preauth_deadline.map_or(base, |p| base.min(p))
    }
}

/// Resolves when the session's account changed (never for a session without a user).
async fn account_ended(ticket: Option<&SessionTicket>) {
    match ticket {
        Some(t) => t.ended().await,
        None => std::future::pending().await,
    }
}

async fn drive<S: AsyncRead + AsyncWrite + Unpin>(
    shared: &Shared,
    session: &mut Session,
    conn: &mut Conn,
    mut stream: S,
) -> std::io::Result<Ended<S>> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut shutdown = shared.shutdown.clone();
    let mut deadlines = Deadlines::new(shared.timeouts, Instant::now());
    loop {
        let step = session.step(shared.clock.now());
        let replied = session.has_output();
        if replied {
            let out = session.take_output();
            // A client that stops reading cannot hold the session either.
            match tokio::time::timeout(shared.timeouts.command, stream.write_all(&out)).await {
                Ok(written) => written?,
                Err(_) => return Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "client stopped reading")),
            }
            stream.flush().await?;
        }
        deadlines.after_step(session.in_data(), replied, Instant::now());
        match step {
            Step::NeedInput => {
                if *shutdown.borrow() && session.is_idle() {
                    session.shutting_down();
                    continue;
                }
                let idle = session.is_idle();
                let deadline = deadlines.next(conn);
                let got = tokio::select! {
                    r = tokio::time::timeout_at(deadline.into(), stream.read(&mut buf)) => Some(r),
                    _ = shutdown.changed(), if idle => continue,
                    _ = account_ended(conn.ticket.as_ref()) => None,
                };
                match got {
                    None => account_changed(session),
                    Some(Err(_)) => {
                        tracing::info!("client timed out");
                        session.timed_out();
                    }
                    Some(Ok(Ok(0))) => return Ok(Ended::Closed),
                    // A new transaction starts from an idle session: check the account first.
                    Some(Ok(Ok(_))) if idle && !account_current(shared, conn) => account_changed(session),
                    Some(Ok(Ok(n))) => {
                        session.set_storage_low(shared.space.low(Instant::now()));
                        session.receive(&buf[..n])
                    }
                    Some(Ok(Err(e))) => return Err(e),
                }
            }
            Step::StartTls => return Ok(Ended::Upgrade(stream)),
            Step::Authenticate { username, password } => {
                let outcome = authenticate(shared, conn, session.peer().ip(), username, password).await;
                session.auth_done(outcome);
            }
            Step::Deliver(_) if !account_current(shared, conn) => account_changed(session),
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

/// End the session because its account changed (disabled, new password …).
fn account_changed(session: &mut Session) {
    tracing::info!(user = ?session.authenticated_user(), "account changed on the server: ending the session");
    session.ended_by_server(codes::ACCOUNT_CHANGED, "your account was changed on the server; please log in again");
}

/// Whether the session's account is still the one it logged in as (same generation, still
/// allowed to log in). Read from the store, so a change counts at once, before the follower
/// of the change feed has even seen it.
fn account_current(shared: &Shared, conn: &Conn) -> bool {
    let Some(ticket) = &conn.ticket else { return true };
    if ticket.is_ended() {
        return false;
    }
    match shared.login.current(ticket.user()) {
        Ok(Some((generation, may_log_in))) => generation == ticket.generation() && may_log_in,
        Ok(None) => false,
        Err(e) => {
            // Queueing reads the same store and will report it; the account may be fine.
            tracing::error!(error = %e, "could not read the account to check it is unchanged");
            true
        }
    }
}

async fn authenticate(shared: &Shared, conn: &mut Conn, ip: IpAddr, username: String, password: String) -> AuthOutcome {
    match shared.login.check(ip, &username, &password).await {
        LoginOutcome::Accepted { user, generation } => {
            conn.ticket = Some(shared.sessions.register(&user.name, generation));
            conn.preauth_deadline = None;
            AuthOutcome::Accepted(authed_user(&shared.store, &user))
        }
        LoginOutcome::Refused(refusal) => AuthOutcome::Refused(refusal),
        LoginOutcome::Throttled => AuthOutcome::Throttled,
        LoginOutcome::Busy => AuthOutcome::Busy,
        LoginOutcome::Unavailable => AuthOutcome::Unavailable,
    }
}
