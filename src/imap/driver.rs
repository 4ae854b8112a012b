//! The tokio driver of one IMAP connection: TLS (implicit, or STARTTLS with the plaintext
//! buffer discarded), deadlines, the login door, IDLE, and the end of a session whose account
//! changed (`* BYE`, IDLE included). Every session handler runs on the blocking pool (store
//! commits fsync); output goes out after the handler returns, so no store transaction is open
//! while a client reads (see `imap/mod.rs`).
//!
//! Memory before login is bounded: a command (with its literals) larger than 64 KiB from a
//! client that has not logged in ends the connection.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use imap_next::server::{Error as ServerError, Event, Options, Server};
use imap_next::{Interrupt, Io, State};
use imap_types::auth::{AuthMechanism, AuthenticateData};
use imap_types::response::{CommandContinuationRequest, Greeting, Status};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use super::session::{Env, Idle, Session, Step};
use super::wire::{Out, code};
use crate::accounts::LoginRefusal;
use crate::accounts::login::{Login, LoginOutcome};
use crate::net::registry::{SessionRegistry, SessionTicket};

/// Bytes a client may send toward one command before it has logged in.
const PREAUTH_COMMAND_LIMIT: usize = 64 * 1024;

pub struct Shared {
    pub env: Arc<Env>,
    pub tls: TlsAcceptor,
    pub login: Arc<Login>,
    pub sessions: Arc<SessionRegistry>,
    pub shutdown: watch::Receiver<bool>,
}

enum Ended<S> {
    Closed,
    Upgrade(S),
}

struct Conn {
    peer: SocketAddr,
    accepted: Instant,
    ticket: Option<SessionTicket>,
    changes: Option<watch::Receiver<u64>>,
}

pub async fn serve_connection(shared: Arc<Shared>, tcp: TcpStream, peer: SocketAddr, implicit_tls: bool, id: String) {
    let mut conn = Conn { peer, accepted: Instant::now(), ticket: None, changes: None };
    let mut session = Box::new(Session::new(shared.env.clone(), id, implicit_tls));
    session.peer = Some(peer);
    let result = if implicit_tls {
        let Some(tls) = handshake(&shared, &conn, tcp).await else { return };
        drive(&shared, session, &mut conn, tls, true).await.map(|_| ())
    } else {
        match drive(&shared, session, &mut conn, tcp, true).await {
            Ok((Ended::Upgrade(tcp), mut session)) => {
                let Some(tls) = handshake(&shared, &conn, tcp).await else { return };
                session.tls = true;
                drive(&shared, session, &mut conn, tls, false).await.map(|_| ())
            }
            other => other.map(|_| ()),
        }
    };
    if let Err(e) = result {
        tracing::debug!(error = %e, "connection ended with an I/O error");
    }
}

async fn handshake(shared: &Shared, conn: &Conn, tcp: TcpStream) -> Option<tokio_rustls::server::TlsStream<TcpStream>> {
    let deadline = conn.accepted + shared.env.settings.preauth_timeout;
    match tokio::time::timeout_at(deadline.into(), shared.tls.accept(tcp)).await {
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

fn server(settings: &super::ImapSettings) -> Server {
    let mut options = Options::default();
    options.max_literal_size = settings.max_append_size;
    options.max_command_size = settings.max_append_size.saturating_add(64 * 1024);
    let greeting = Greeting::ok(None, "gatepost").expect("a valid greeting");
    Server::new(options, greeting)
}

async fn write<S: AsyncWrite + Unpin>(stream: &mut S, bytes: &[u8], limit: Duration) -> std::io::Result<()> {
    match tokio::time::timeout(limit, async {
        stream.write_all(bytes).await?;
        stream.flush().await
    })
    .await
    {
        Ok(r) => r,
        Err(_) => Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "client did not read")),
    }
}

/// Run a session handler on the blocking pool.
async fn blocking<T: Send + 'static>(
    session: Box<Session>,
    f: impl FnOnce(&mut Session) -> T + Send + 'static,
) -> (Box<Session>, T) {
    let joined = tokio::task::spawn_blocking(move || {
        let mut s = session;
        let t = f(&mut s);
        (s, t)
    })
    .await;
    match joined {
        Ok(r) => r,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

/// The read buffer of a connection between commands, and the one IDLE reads DONE with.
const READ_BUFFER: usize = 8 * 1024;
const IDLE_READ_BUFFER: usize = 64;

async fn drive<S: AsyncRead + AsyncWrite + Unpin>(
    shared: &Arc<Shared>,
    mut session: Box<Session>,
    conn: &mut Conn,
    mut stream: S,
    greet: bool,
) -> std::io::Result<(Ended<S>, Box<Session>)> {
    let settings = shared.env.settings.clone();
    let write_limit = settings.command_timeout;
    let mut server = server(&settings);
    // imap-next's own greeting is dropped: ours names the capabilities and the session.
    let mut skip_greeting = true;
    if greet {
        let mut out = Out::default();
        let caps = session.capabilities();
        out.untagged("OK", Some(&format!("CAPABILITY {caps}")), &format!("gatepost ready (session {})", session.id));
        write(&mut stream, &out.buf, write_limit).await?;
    }
    // One read buffer per connection for commands; given back while IDLE, which reads into a
    // small one: 10,000 idle sessions are the case to size for (docs/benchmarks.md, IDLE
    // fan-out).
    let mut buf = vec![0u8; READ_BUFFER];
    let mut pending_bytes = 0usize;
    let mut shutdown = shared.shutdown.clone();
    loop {
        let event = server.next();
        match event {
            Err(Interrupt::Io(Io::Output(bytes))) => {
                if std::mem::take(&mut skip_greeting) {
                    continue;
                }
                write(&mut stream, &bytes, write_limit).await?;
            }
            Err(Interrupt::Io(Io::NeedMoreInput)) => {
                let deadline = match session.user {
                    None => conn.accepted + settings.preauth_timeout,
                    Some(_) => Instant::now() + settings.command_timeout,
                };
                let read = tokio::select! {
                    r = tokio::time::timeout_at(deadline.into(), stream.read(&mut buf)) => r,
                    _ = account_ended(conn.ticket.as_ref()) => {
                        bye(&mut stream, "Your account was changed on the server; please log in again", write_limit).await;
                        return Ok((Ended::Closed, session));
                    }
                    _ = shutdown.changed() => {
                        bye(&mut stream, "gatepost is shutting down", write_limit).await;
                        return Ok((Ended::Closed, session));
                    }
                };
                let n = match read {
                    Ok(r) => r?,
                    Err(_) => {
                        let why = if session.user.is_none() { "Log in sooner" } else { "Autologout: idle too long" };
                        bye(&mut stream, why, write_limit).await;
                        return Ok((Ended::Closed, session));
                    }
                };
                if n == 0 {
                    return Ok((Ended::Closed, session));
                }
                pending_bytes += n;
                if session.user.is_none() && pending_bytes > PREAUTH_COMMAND_LIMIT {
                    bye(&mut stream, "Command too long before login", write_limit).await;
                    return Ok((Ended::Closed, session));
                }
                server.enqueue_input(&buf[..n]);
            }
            Err(Interrupt::Error(e)) => {
                pending_bytes = 0;
                let (tag, text) = match &e {
                    ServerError::MalformedMessage { discarded_bytes }
                    | ServerError::ExpectedCrlfGotLf { discarded_bytes } => {
                        (tag_of(discarded_bytes.declassify()), None)
                    }
                    ServerError::CommandTooLong { discarded_bytes } => {
                        (tag_of(discarded_bytes.declassify()), Some("Command too long"))
                    }
                    // imap-next has answered the literal itself (BAD); nothing more to say.
                    ServerError::LiteralTooLong { .. } => continue,
                };
                let mut out = Out::default();
                match text {
                    Some(t) => {
                        out.tagged(
                            tag.as_deref().unwrap_or("*"),
                            "BAD",
                            Some(code::TOOBIG),
                            &format!("{t} (session {})", session.id),
                        );
                    }
                    None => session.malformed(tag.as_deref()),
                }
                out.buf.extend(session.out.take());
                write(&mut stream, &out.buf, write_limit).await?;
            }
            Ok(Event::GreetingSent { .. }) | Ok(Event::ResponseSent { .. }) => {}
            Ok(Event::CommandReceived { command }) => {
                pending_bytes = 0;
                let (s, step) = blocking(session, move |s| s.handle(command)).await;
                session = s;
                let out = session.out.take();
                write(&mut stream, &out, write_limit).await?;
                match step {
                    Step::Next => {}
                    Step::More => loop {
                        let (s, step) = blocking(session, |s| s.resume()).await;
                        session = s;
                        let out = session.out.take();
                        write(&mut stream, &out, write_limit).await?;
                        if !matches!(step, Step::More) {
                            break;
                        }
                    },
                    Step::Login { tag, login, password } => {
                        session = login_step(shared, session, conn, &tag, &login, &password).await;
                        let out = session.out.take();
                        write(&mut stream, &out, write_limit).await?;
                    }
                    Step::StartTls => return Ok((Ended::Upgrade(stream), session)),
                    Step::Logout => {
                        let _ = stream.shutdown().await;
                        return Ok((Ended::Closed, session));
                    }
                }
            }
            Ok(Event::CommandAuthenticateReceived { command_authenticate }) => {
                pending_bytes = 0;
                let tag = command_authenticate.tag.as_ref().to_string();
                let plain = matches!(command_authenticate.mechanism, AuthMechanism::Plain);
                let refusal = if session.user.is_some() {
                    Some("Already logged in")
                } else if !session.tls {
                    Some("Log in only after STARTTLS")
                } else if !plain {
                    Some("Only AUTHENTICATE PLAIN is offered")
                } else {
                    None
                };
                if let Some(why) = refusal {
                    finish(&mut server, &tag, false, &format!("{why} (session {})", session.id));
                    continue;
                }
                match command_authenticate.initial_response {
                    Some(ir) => {
                        session = sasl_plain(shared, &mut server, session, conn, &tag, ir.declassify()).await;
                    }
                    None => {
                        let _ = server.authenticate_continue(CommandContinuationRequest::base64(Vec::new()));
                        conn_pending_auth(&mut session, tag);
                    }
                }
            }
            Ok(Event::AuthenticateDataReceived { authenticate_data }) => {
                let tag = session_take_auth(&mut session).unwrap_or_else(|| "*".into());
                match authenticate_data {
                    AuthenticateData::Continue(data) => {
                        session = sasl_plain(shared, &mut server, session, conn, &tag, data.declassify()).await;
                    }
                    AuthenticateData::Cancel => {
                        let text = format!("AUTHENTICATE cancelled (session {})", session.id);
                        let status = Status::bad(tag_of(tag.as_bytes()).and_then(|t| t.try_into().ok()), None, text)
                            .unwrap_or_else(|_| Status::bad(None, None, "cancelled").expect("valid"));
                        let _ = server.authenticate_finish(status);
                    }
                }
            }
            Ok(Event::IdleCommandReceived { tag }) => {
                pending_bytes = 0;
                let tag = tag.as_ref().to_string();
                if session.user.is_none() {
                    let text = format!("Log in first (session {})", session.id);
                    let status = Status::bad(Some(tag.clone().try_into().expect("a tag")), None, text).expect("valid");
                    let _ = server.idle_reject(status);
                    continue;
                }
                let cont = CommandContinuationRequest::basic(None, "idling").expect("valid");
                let _ = server.idle_accept(cont);
                let ended;
                drop(std::mem::take(&mut buf));
                (session, ended) = idle(shared, &mut server, session, conn, &mut stream, &tag).await?;
                buf = vec![0u8; READ_BUFFER];
                if ended {
                    return Ok((Ended::Closed, session));
                }
            }
            Ok(Event::IdleDoneReceived) => {}
        }
    }
}

fn tag_of(bytes: &[u8]) -> Option<String> {
    let end = bytes.iter().position(|&b| b == b' ' || b == b'\r' || b == b'\n')?;
    let tag = std::str::from_utf8(&bytes[..end]).ok()?;
    (!tag.is_empty() && tag.len() <= 64 && imap_types::core::Tag::try_from(tag).is_ok()).then(|| tag.to_string())
}

/// The tag of an AUTHENTICATE waiting for its data (kept in the session's output scratch).
fn conn_pending_auth(session: &mut Session, tag: String) {
    session.auth_tag = Some(tag);
}

fn session_take_auth(session: &mut Session) -> Option<String> {
    session.auth_tag.take()
}

fn finish(server: &mut Server, tag: &str, ok: bool, text: &str) {
    let tag = imap_types::core::Tag::try_from(tag.to_string()).ok();
    let status = if ok { Status::ok(tag, None, text.to_string()) } else { Status::no(tag, None, text.to_string()) };
    if let Ok(status) = status {
        let _ = server.authenticate_finish(status);
    }
}

async fn sasl_plain(
    shared: &Arc<Shared>,
    server: &mut Server,
    session: Box<Session>,
    conn: &mut Conn,
    tag: &str,
    data: &[u8],
) -> Box<Session> {
    let mut parts = data.splitn(3, |&b| b == 0);
    let (_authz, authn, password) = (parts.next(), parts.next(), parts.next());
    let (Some(authn), Some(password)) = (authn, password) else {
        let text = format!("Not a PLAIN response (session {})", session.id);
        let status = Status::bad(imap_types::core::Tag::try_from(tag.to_string()).ok(), None, text).expect("valid");
        let _ = server.authenticate_finish(status);
        return session;
    };
    let (login, password) =
        (String::from_utf8_lossy(authn).into_owned(), String::from_utf8_lossy(password).into_owned());
    let mut session = login_step(shared, session, conn, tag, &login, &password).await;
    // The tagged reply went into `out`; it must go through imap-next to end the exchange.
    let out = session.out.take();
    let line = String::from_utf8_lossy(&out).into_owned();
    let ok = line.starts_with(&format!("{tag} OK"));
    let text = line.splitn(3, ' ').nth(2).unwrap_or("").trim_end().to_string();
    let text = text.strip_prefix('[').and_then(|t| t.split_once("] ")).map_or(text.clone(), |(_, t)| t.to_string());
    let tag_v = imap_types::core::Tag::try_from(tag.to_string()).ok();
    let status = if ok { Status::ok(tag_v, None, text) } else { Status::no(tag_v, None, text) };
    if let Ok(status) = status {
        let _ = server.authenticate_finish(status);
    }
    session
}

/// One login attempt through the shared door; the reply goes into the session's output.
async fn login_step(
    shared: &Arc<Shared>,
    session: Box<Session>,
    conn: &mut Conn,
    tag: &str,
    login: &str,
    password: &str,
) -> Box<Session> {
    let outcome = shared.login.check(conn.peer.ip(), login, password).await;
    let mut session = session;
    let id = session.id.clone();
    let no = |s: &mut Session, code: &str, text: &str| {
        s.out.tagged(tag, "NO", Some(code), &format!("{text} (session {id})"));
    };
    match outcome {
        LoginOutcome::Accepted { user, generation } => {
            let max = shared.env.settings.max_connections_per_user;
            if shared.sessions.sessions_of(&user.name) >= max {
                no(&mut session, code::LIMIT, "Too many sessions for this user");
                return session;
            }
            let ticket = shared.sessions.register(&user.name, generation);
            let (name, tag) = (user.name.clone(), tag.to_string());
            let (s, ok) = blocking(session, move |s| s.login_done(&tag, &name)).await;
            session = s;
            if ok {
                tracing::info!(session = %session.id, user = %user.name, "IMAP login");
                conn.changes = session.user_id().map(|u| shared.env.store.signals.subscribe(u));
                conn.ticket = Some(ticket);
            }
        }
        LoginOutcome::Refused(LoginRefusal::BadCredentials) => {
            no(&mut session, code::AUTHENTICATIONFAILED, "Wrong user name or password")
        }
        LoginOutcome::Refused(LoginRefusal::Disabled) => {
            no(&mut session, code::AUTHORIZATIONFAILED, "This account is disabled")
        }
        LoginOutcome::Refused(LoginRefusal::Unverified) => {
            no(&mut session, code::AUTHORIZATIONFAILED, "This account's email address is not verified yet")
        }
        LoginOutcome::Throttled => {
            no(&mut session, code::UNAVAILABLE, "Too many failed logins from your address; try later")
        }
        LoginOutcome::Busy => no(&mut session, code::UNAVAILABLE, "Too many logins at once; try again in a moment"),
        LoginOutcome::Unavailable => no(&mut session, code::UNAVAILABLE, "Accounts cannot be read right now"),
    }
    session
}

async fn account_ended(ticket: Option<&SessionTicket>) {
    match ticket {
        Some(t) => t.ended().await,
        None => std::future::pending().await,
    }
}

async fn changed(rx: Option<&mut watch::Receiver<u64>>) {
    match rx {
        Some(rx) => {
            if rx.changed().await.is_err() {
                std::future::pending::<()>().await
            }
        }
        None => std::future::pending().await,
    }
}

async fn bye<S: AsyncWrite + Unpin>(stream: &mut S, text: &str, limit: Duration) {
    let mut out = Out::default();
    out.untagged("BYE", None, text);
    let _ = write(stream, &out.buf, limit.min(Duration::from_secs(5))).await;
    let _ = stream.shutdown().await;
}

/// IDLE until DONE, announcing changes as they commit. Returns whether the connection ends.
async fn idle<S: AsyncRead + AsyncWrite + Unpin>(
    shared: &Arc<Shared>,
    server: &mut Server,
    mut session: Box<Session>,
    conn: &mut Conn,
    stream: &mut S,
    tag: &str,
) -> std::io::Result<(Box<Session>, bool)> {
    // DONE is six bytes; anything longer is read in pieces.
    let mut buf = [0u8; IDLE_READ_BUFFER];
    let settings = shared.env.settings.clone();
    let limit = settings.command_timeout;
    let deadline = Instant::now() + settings.idle_timeout;
    let mut shutdown = shared.shutdown.clone();
    // Anything committed between the last command and now.
    let (s, ()) = blocking(session, |s| s.catch_up(true)).await;
    session = s;
    loop {
        match server.next() {
            Err(Interrupt::Io(Io::Output(bytes))) => {
                write(stream, &bytes, limit).await?;
                let out = session.out.take();
                write(stream, &out, limit).await?;
                if session.ending {
                    let _ = stream.shutdown().await;
                    return Ok((session, true));
                }
                continue;
            }
            Ok(Event::IdleDoneReceived) => {
                let (s, ()) = blocking(session, |s| s.catch_up(true)).await;
                session = s;
                session.out.tagged(tag, "OK", None, "IDLE terminated");
                let out = session.out.take();
                write(stream, &out, limit).await?;
                let ending = session.ending;
                return Ok((session, ending));
            }
            Err(Interrupt::Io(Io::NeedMoreInput)) => {}
            Ok(_) => continue,
            Err(Interrupt::Error(_)) => {
                bye(stream, "IDLE expects DONE", limit).await;
                return Ok((session, true));
            }
        }
        tokio::select! {
            r = stream.read(&mut buf) => {
                let n = r?;
                if n == 0 {
                    return Ok((session, true));
                }
                server.enqueue_input(&buf[..n]);
            }
            _ = changed(conn.changes.as_mut()) => {
                // The signal seen now; an answer read after it covers it.
                let signal = conn.changes.as_ref().map_or(0, |rx| *rx.borrow());
                let reader = match session.idle_changes_shared(signal) {
                    Idle::Done => None,
                    Idle::Read(reader) => Some(reader),
                    Idle::Wait(mut promise) => {
                        // The reader is one blocking read away; past a few seconds, read here.
                        let waited = tokio::time::timeout(Duration::from_secs(5), promise.wait_for(Option::is_some));
                        let answer = waited.await.ok().and_then(|r| r.ok().and_then(|a| a.clone()));
                        match answer {
                            Some(answer) if session.apply_shared(&answer) => None,
                            _ => Some(tokio::sync::watch::channel(None).0),
                        }
                    }
                };
                if let Some(reader) = reader {
                    let (s, ()) = blocking(session, move |s| s.idle_changes(reader)).await;
                    session = s;
                }
                let out = session.out.take();
                write(stream, &out, limit).await?;
                if session.ending {
                    let _ = stream.shutdown().await;
                    return Ok((session, true));
                }
            }
            _ = tokio::time::sleep_until(deadline.into()) => {
                bye(stream, "IDLE timed out; please reconnect", limit).await;
                return Ok((session, true));
            }
            _ = account_ended(conn.ticket.as_ref()) => {
                bye(stream, "Your account was changed on the server; please log in again", limit).await;
                return Ok((session, true));
            }
            _ = shutdown.changed() => {
                bye(stream, "gatepost is shutting down", limit).await;
                return Ok((session, true));
            }
        }
    }
}
