//! The submission session as a sans-IO state machine. The driver feeds it bytes and the
//! current time, writes out what it produces, and answers its requests (TLS handshake,
//! password check, durable queueing). Everything a client can do to gatepost over SMTP is
//! decided here, so it is tested without sockets (`tests/smtp_dialogue.rs`) and fuzzed.

mod auth;
mod content;
mod mail;
mod transaction;

use std::net::SocketAddr;
use std::sync::Arc;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use smtp_proto::Request;

use super::codes::{self, Code, Reply};
use super::data::DataReader;
use crate::accounts::LoginRefusal;
use crate::queue::{Accepted, Submission};
use crate::schedule::{Hold, ScheduleContext};
use crate::smtp::envelope::Verb;

pub use auth::{SaslError, decode_plain, decode_response};

/// Longest command line we buffer (RFC 5321 §4.5.3.1.4 says 512; extensions need more).
pub const MAX_COMMAND_LINE: usize = 4096;
/// Bad commands tolerated before the connection is closed.
pub const MAX_ERRORS: u32 = 20;

pub use super::settings::{AuthedUser, SessionSettings};

/// Facts about the connection the driver knows before the first byte.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    pub session_id: String,
    pub peer: SocketAddr,
    /// Set from the start on an implicit-TLS listener.
    pub tls: Option<String>,
    /// Set when the peer is in a trusted network: it submits as this user without AUTH.
    pub trusted_user: Option<AuthedUser>,
}

/// What the session needs from the outside world next.
#[derive(Debug)]
pub enum Step {
    /// Write the pending output, then read more input.
    NeedInput,
    /// Write the pending output, then do the TLS handshake and call `tls_started`.
    StartTls,
    /// Check these credentials and call `auth_done`.
    Authenticate { username: String, password: String },
    /// Queue this message durably and call `delivered`.
    Deliver(Box<Submission>),
    /// Write the pending output and close the connection.
    Close,
}

/// The answer to `Step::Authenticate`.
#[derive(Debug, Clone)]
pub enum AuthOutcome {
    Accepted(AuthedUser),
    Refused(LoginRefusal),
    /// Too many failures from this address: try later.
    Throttled,
    /// Too many password checks at once: try again in a moment (not a failed login).
    Busy,
    /// The store could not be read.
    Unavailable,
}

#[derive(Debug)]
enum Mode {
    Command,
    /// Discarding the rest of an overlong command line.
    SkipLine,
    AuthPlain,
    AuthLoginUser,
    AuthLoginPass {
        username: String,
    },
    Data(DataReader),
    /// Waiting for the driver to answer a request.
    Waiting,
    Closed,
}

/// The envelope being built between MAIL and the end of DATA.
#[derive(Debug, Clone, Default)]
struct Transaction {
    /// As sent in MAIL FROM (quotes and case kept).
    sender: String,
    hold: Option<Hold>,
    /// As sent in RCPT TO.
    recipients: Vec<String>,
    /// MAIL FROM carried SMTPUTF8: 8-bit (UTF-8) addresses are allowed (RFC 6531).
    smtputf8: bool,
}

pub struct Session {
    settings: Arc<SessionSettings>,
    conn: ConnInfo,
    input: Vec<u8>,
    out: Vec<u8>,
    mode: Mode,
    helo: Option<String>,
    esmtp: bool,
    user: Option<AuthedUser>,
    /// The user came from AUTH (not from a trusted network): a second AUTH is an error.
    authenticated: bool,
    tx: Option<Transaction>,
    errors: u32,
    /// The data file system is below its free-space minimum (told by the driver).
    storage_low: bool,
    /// The time of the current step (the session never reads a clock itself).
    now: Timestamp,
}

impl Session {
    pub fn new(settings: Arc<SessionSettings>, conn: ConnInfo) -> Session {
        let user = conn.trusted_user.clone();
        let mut s = Session {
            settings,
            conn,
            input: Vec::new(),
            out: Vec::new(),
            mode: Mode::Command,
            helo: None,
            esmtp: false,
            user,
            authenticated: false,
            tx: None,
            errors: 0,
            storage_low: false,
            now: Timestamp::UNIX_EPOCH,
        };
        let greeting = format!("{} ESMTP gatepost ready", s.settings.hostname);
        s.reply(codes::READY, greeting);
        s
    }

    pub fn session_id(&self) -> &str {
        &self.conn.session_id
    }

    pub fn peer(&self) -> SocketAddr {
        self.conn.peer
    }

    /// Bytes to send to the client; the driver writes them at every step.
    pub fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }

    pub fn has_output(&self) -> bool {
        !self.out.is_empty()
    }

    pub fn receive(&mut self, bytes: &[u8]) {
        self.input.extend_from_slice(bytes);
    }

    /// True while reading a message body (the driver applies the DATA timeout).
    pub fn in_data(&self) -> bool {
        matches!(self.mode, Mode::Data(_))
    }

    /// True between transactions with nothing buffered: a safe point to close on shutdown.
    pub fn is_idle(&self) -> bool {
        matches!(self.mode, Mode::Command) && self.tx.is_none() && self.input.is_empty()
    }

    pub fn is_closed(&self) -> bool {
        matches!(self.mode, Mode::Closed)
    }

    pub fn authenticated_user(&self) -> Option<&str> {
        self.user.as_ref().map(|u| u.name.as_str())
    }

    fn reply(&mut self, code: Code, text: impl Into<String>) {
        let reply = Reply::new(code, text);
        reply.write_to(&mut self.out, &self.conn.session_id);
    }

    /// An error reply that also counts towards the bad-command limit.
    fn error(&mut self, code: Code, text: impl Into<String>) {
        self.reply(code, text);
        self.errors += 1;
        if self.errors >= MAX_ERRORS {
            self.reply(codes::TOO_MANY_ERRORS, "too many errors, closing the connection");
            self.mode = Mode::Closed;
        }
    }

    fn close(&mut self, code: Code, text: &str) -> Step {
        self.reply(code, text);
        self.mode = Mode::Closed;
        Step::Close
    }

    /// The client was silent for too long.
    pub fn timed_out(&mut self) -> Step {
        self.close(codes::TIMEOUT, "timeout waiting for the client, closing the connection")
    }

    /// The server ends the session for its own reason (the account changed): say why, close.
    pub fn ended_by_server(&mut self, code: Code, text: &str) -> Step {
        self.close(code, text)
    }

    /// The server is stopping: say so (only called when the session is idle).
    pub fn shutting_down(&mut self) -> Step {
        self.close(codes::SHUTTING_DOWN, "gatepost is shutting down, please try again later")
    }

    /// Process buffered input until something from outside is needed.
    pub fn step(&mut self, now: Timestamp) -> Step {
        self.now = now;
        loop {
            match &mut self.mode {
                Mode::Closed => return Step::Close,
                Mode::Waiting => return Step::NeedInput,
                Mode::Data(reader) => {
                    let (used, done) = reader.feed(&self.input);
                    self.input.drain(..used);
                    if !done {
                        return Step::NeedInput;
                    }
                    let Mode::Data(reader) = std::mem::replace(&mut self.mode, Mode::Command) else { unreachable!() };
                    if let Some(step) = self.end_of_data(reader, now) {
                        return step;
                    }
                }
                Mode::SkipLine => match self.input.iter().position(|&b| b == b'\n') {
                    Some(pos) => {
                        self.input.drain(..=pos);
                        self.mode = Mode::Command;
                    }
                    None => {
                        self.input.clear();
                        return Step::NeedInput;
                    }
                },
                _ => {
                    let Some(pos) = self.input.iter().position(|&b| b == b'\n') else {
                        if self.input.len() > MAX_COMMAND_LINE {
                            self.input.clear();
                            self.mode = Mode::SkipLine;
                            self.error(
                                codes::LINE_TOO_LONG,
                                format!("command line longer than {MAX_COMMAND_LINE} octets"),
                            );
                            continue;
                        }
                        return Step::NeedInput;
                    };
                    let line: Vec<u8> = self.input.drain(..=pos).collect();
                    if line.len() > MAX_COMMAND_LINE {
                        self.error(codes::LINE_TOO_LONG, format!("command line longer than {MAX_COMMAND_LINE} octets"));
                        continue;
                    }
                    if let Some(step) = self.line(&line, now) {
                        return step;
                    }
                }
            }
        }
    }

    fn line(&mut self, line: &[u8], now: Timestamp) -> Option<Step> {
        match std::mem::replace(&mut self.mode, Mode::Command) {
            Mode::AuthPlain => self.auth_plain_response(line),
            Mode::AuthLoginUser => self.auth_login_user(line),
            Mode::AuthLoginPass { username } => self.auth_login_pass(username, line),
            _ => self.command(line, now),
        }
    }

    fn command(&mut self, line: &[u8], now: Timestamp) -> Option<Step> {
        // MAIL and RCPT are read from the raw bytes by our own parser (`smtp::envelope`).
        match envelope_verb(line) {
            Some(Verb::Mail) => {
                self.mail(line, now);
                return None;
            }
            Some(Verb::Rcpt) => {
                self.rcpt(line, now);
                return None;
            }
            None => {}
        }
        let request = match Request::parse(&mut line.iter()) {
            Ok(r) => r,
            Err(e) => {
                self.parse_error(e);
                return None;
            }
        };
        match request {
            Request::Ehlo { host } => self.hello(host.as_ref(), true, now),
            Request::Helo { host } => self.hello(host.as_ref(), false, now),
            Request::StartTls => return self.starttls(line),
            Request::Auth { mechanism, initial_response } => return self.auth(mechanism, initial_response.as_ref()),
            Request::Mail { .. } => self.mail(line, now),
            Request::Rcpt { .. } => self.rcpt(line, now),
            Request::Data => self.data(),
            Request::Rset => {
                self.tx = None;
                self.reply(codes::OK, "reset");
            }
            Request::Noop { .. } => self.reply(codes::OK, "OK"),
            Request::Quit => return Some(self.close(codes::CLOSING, "bye")),
            Request::Vrfy { .. } => self.reply(codes::CANNOT_VRFY, "cannot VRFY, but will accept the message and try"),
            Request::Help { .. } => self.reply(
                codes::HELP,
                "gatepost submission: EHLO, STARTTLS, AUTH, MAIL, RCPT, DATA, RSET, NOOP, QUIT; schedule with a Deliver-On header",
            ),
            Request::Bdat { .. } => self.error(codes::NOT_IMPLEMENTED, "BDAT (CHUNKING) is not offered, use DATA"),
            other => self.error(codes::NOT_IMPLEMENTED, format!("{} is not implemented", other.name())),
        }
        None
    }

    fn parse_error(&mut self, e: smtp_proto::Error) {
        use smtp_proto::Error as E;
        match e {
            E::UnknownCommand => self.error(codes::UNKNOWN_COMMAND, "unknown command"),
            E::InvalidSenderAddress => self.error(codes::BAD_SENDER_SYNTAX, "sender address is not valid"),
            E::InvalidRecipientAddress => self.error(codes::BAD_RECIPIENT_SYNTAX, "recipient address is not valid"),
            E::SyntaxError { syntax } => self.error(codes::SYNTAX_ERROR, format!("syntax: {syntax}")),
            E::InvalidParameter { param } => self.error(codes::SYNTAX_ERROR, format!("invalid {param} parameter")),
            E::UnsupportedParameter { param } => {
                self.error(codes::PARAM_NOT_SUPPORTED, format!("parameter {param} is not supported"))
            }
            E::ResponseTooLong => self.error(codes::LINE_TOO_LONG, "command line too long"),
            _ => self.error(codes::SYNTAX_ERROR, "malformed command"),
        }
    }

    fn hello(&mut self, host: &str, esmtp: bool, now: Timestamp) {
        self.tx = None;
        // The name is echoed in our reply and kept in the record: printable ASCII only, so a
        // client cannot put control characters (terminal escapes, NUL) into either.
        let host: String = host.chars().take(255).map(|c| if c.is_ascii_graphic() { c } else { '?' }).collect();
        let host = host.as_str();
        self.helo = Some(host.to_string());
        self.esmtp = esmtp;
        let s = self.settings.clone();
        let first = format!("{} greets {} [{}]", s.hostname, host, self.conn.peer.ip());
        if !esmtp {
            self.reply(codes::HELLO, first);
            return;
        }
        let mut lines = vec![first, "PIPELINING".into(), format!("SIZE {}", s.max_message_size)];
        lines.extend(["8BITMIME".into(), "ENHANCEDSTATUSCODES".into(), "SMTPUTF8".into()]);
        if self.conn.tls.is_none() && s.starttls_available {
            lines.push("STARTTLS".into());
        }
        if self.conn.tls.is_some() {
            lines.push("AUTH PLAIN LOGIN".into());
        }
        // RFC 4865 §3: the longest interval and the latest date-time a client may ask for.
        let latest = now.saturating_add(s.max_hold).unwrap_or(now);
        lines.push(format!("FUTURERELEASE {} {}", s.max_hold.as_secs(), latest.strftime("%Y-%m-%dT%H:%M:%SZ")));
        lines.push("HELP".into());
        self.reply(codes::HELLO, lines.join("\n"));
    }

    fn starttls(&mut self, line: &[u8]) -> Option<Step> {
        if self.conn.tls.is_some() {
            self.error(codes::BAD_SEQUENCE, "TLS is already active");
            return None;
        }
        if !self.settings.starttls_available {
            self.error(codes::TLS_UNAVAILABLE, "TLS is not available");
            return None;
        }
        // RFC 3207 §4: "STARTTLS" CRLF, no parameters; and an ESMTP verb, so after EHLO.
        if !line.trim_ascii().eq_ignore_ascii_case(b"STARTTLS") {
            self.error(codes::SYNTAX_ERROR, "STARTTLS takes no parameters");
            return None;
        }
        if !self.esmtp {
            self.error(codes::BAD_SEQUENCE, "say EHLO first");
            return None;
        }
        // RFC 3207 §6: anything pipelined after STARTTLS was sent in plaintext and is dropped.
        self.input.clear();
        self.reply(codes::TLS_READY, "ready to start TLS");
        self.mode = Mode::Waiting;
        Some(Step::StartTls)
    }

    /// The handshake succeeded: the session starts over (RFC 3207 §4.2), keeping nothing the
    /// client said in plaintext.
    pub fn tls_started(&mut self, version: &str) {
        self.conn.tls = Some(version.to_string());
        self.helo = None;
        self.esmtp = false;
        self.tx = None;
        self.user = self.conn.trusted_user.clone();
        self.authenticated = false;
        self.input.clear();
        self.mode = Mode::Command;
    }

    /// Answer to `Step::Deliver`.
    pub fn delivered(&mut self, result: Result<Accepted, String>) {
        self.mode = Mode::Command;
        self.tx = None;
        match result {
            Ok(acc) => {
                let when = self.describe_release(&acc);
                self.reply(codes::OK, format!("queued as {}; will be delivered {when}", acc.id));
            }
            Err(why) => {
                tracing::error!(error = %why, "queueing failed");
                self.reply(codes::STORE_FAILED, "could not store the message, please try again later");
            }
        }
    }

    /// Release times in the user's zone, e.g. `2026-12-25 08:00 Asia/Shanghai`.
    fn describe_release(&self, acc: &Accepted) -> String {
        let (name, tz) = self.user_zone();
        let fmt = |t: &Timestamp| t.to_zoned(tz.clone()).strftime("%Y-%m-%d %H:%M").to_string();
        let now_ish = |t: &Timestamp| *t <= self.now;
        match acc.release_times.as_slice() {
            [] => "now".to_string(),
            [one] if now_ish(one) => "now".to_string(),
            [one] => format!("{} {name}", fmt(one)),
            [first, .., last] if acc.release_times.len() > 3 => {
                format!("between {} and {} {name} ({} release times)", fmt(first), fmt(last), acc.release_times.len())
            }
            many => {
                let parts: Vec<String> = many.iter().map(|t| if now_ish(t) { "now".into() } else { fmt(t) }).collect();
                format!("{} {name}", parts.join(" and "))
            }
        }
    }

    fn ctx<'a>(&self, tz: &'a TimeZone, now: Timestamp) -> ScheduleContext<'a> {
        super::submission::context(&self.settings, tz, now)
    }

    /// The zone schedules are read in: the user's own, else the operator's.
    fn user_zone(&self) -> (String, TimeZone) {
        super::submission::user_zone(&self.settings, self.user.as_ref())
    }
}

/// `MAIL` or `RCPT` followed by a space or the line end, in any case.
fn envelope_verb(line: &[u8]) -> Option<Verb> {
    let verb = match line.get(..4) {
        Some(v) if v.eq_ignore_ascii_case(b"MAIL") => Verb::Mail,
        Some(v) if v.eq_ignore_ascii_case(b"RCPT") => Verb::Rcpt,
        _ => return None,
    };
    matches!(line.get(4), None | Some(b' ' | b'\r' | b'\n')).then_some(verb)
}

use super::submission::list;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_rules;
