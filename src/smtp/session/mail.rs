//! AUTH, MAIL, RCPT and the end of DATA: the rules that make gatepost a submission server
//! and never an open relay.

use jiff::Timestamp;
use smtp_proto::{AUTH_LOGIN, AUTH_PLAIN, MAIL_SMTPUTF8, MailFrom};

use super::auth::{self, LOGIN_PASS_PROMPT, LOGIN_USER_PROMPT, SaslError};
use super::{AuthOutcome, Mode, Session, Step, Transaction};
use crate::accounts::LoginRefusal;
use crate::message::summarize;
use crate::queue::Submission;
use crate::schedule::{self, Hold, ScheduleContext, ScheduleRequest};
use crate::smtp::codes;
use crate::smtp::data::{DataProblem, DataReader};

impl Session {
    pub(super) fn auth(&mut self, mechanism: u64, initial: &str) -> Option<Step> {
        if self.conn.tls.is_none() {
            self.error(codes::ENCRYPTION_REQUIRED, "authentication is only offered over TLS: use STARTTLS or port 465");
            return None;
        }
        if !self.esmtp {
            self.error(codes::BAD_SEQUENCE, "say EHLO first");
            return None;
        }
        if self.authenticated {
            self.error(codes::BAD_SEQUENCE, "already authenticated");
            return None;
        }
        if self.tx.is_some() {
            self.error(codes::BAD_SEQUENCE, "AUTH is not allowed during a mail transaction");
            return None;
        }
        match mechanism {
            AUTH_PLAIN if initial.is_empty() => {
                self.reply(codes::AUTH_CONTINUE, "");
                self.mode = Mode::AuthPlain;
                None
            }
            AUTH_PLAIN => self.auth_plain_response(initial.as_bytes()),
            AUTH_LOGIN if initial.is_empty() => {
                self.reply(codes::AUTH_CONTINUE, LOGIN_USER_PROMPT);
                self.mode = Mode::AuthLoginUser;
                None
            }
            AUTH_LOGIN => self.auth_login_user(initial.as_bytes()),
            _ => {
                self.error(codes::UNSUPPORTED_MECHANISM, "unsupported mechanism; use PLAIN or LOGIN");
                None
            }
        }
    }

    fn sasl_failed(&mut self, e: SaslError) -> Option<Step> {
        match e {
            SaslError::Cancelled => self.error(codes::AUTH_CANCELLED, "authentication cancelled"),
            SaslError::Malformed(why) => self.error(codes::SYNTAX_ERROR, why),
        }
        None
    }

    pub(super) fn auth_plain_response(&mut self, line: &[u8]) -> Option<Step> {
        let decoded = auth::decode_response(&String::from_utf8_lossy(line)).and_then(|raw| auth::decode_plain(&raw));
        match decoded {
            Ok((username, password)) => {
                self.mode = Mode::Waiting;
                Some(Step::Authenticate { username, password })
            }
            Err(e) => self.sasl_failed(e),
        }
    }

    pub(super) fn auth_login_user(&mut self, line: &[u8]) -> Option<Step> {
        match auth::decode_response(&String::from_utf8_lossy(line)).and_then(auth::utf8) {
            Ok(username) => {
                self.reply(codes::AUTH_CONTINUE, LOGIN_PASS_PROMPT);
                self.mode = Mode::AuthLoginPass { username };
                None
            }
            Err(e) => self.sasl_failed(e),
        }
    }

    pub(super) fn auth_login_pass(&mut self, username: String, line: &[u8]) -> Option<Step> {
        match auth::decode_response(&String::from_utf8_lossy(line)).and_then(auth::utf8) {
            Ok(password) => {
                self.mode = Mode::Waiting;
                Some(Step::Authenticate { username, password })
            }
            Err(e) => self.sasl_failed(e),
        }
    }

    /// Answer to `Step::Authenticate`.
    pub fn auth_done(&mut self, outcome: AuthOutcome) {
        self.mode = Mode::Command;
        match outcome {
            AuthOutcome::Accepted(user) => {
                tracing::info!(user = %user.name, "authenticated");
                self.user = Some(user);
                self.authenticated = true;
                self.reply(codes::AUTH_OK, "authentication succeeded");
            }
            AuthOutcome::Refused(LoginRefusal::BadCredentials) => {
                self.error(codes::AUTH_FAILED, "authentication failed: wrong user name or password")
            }
            AuthOutcome::Refused(LoginRefusal::Unverified) => self
                .error(codes::AUTH_FAILED, "authentication refused: this account's email address is not verified yet"),
            AuthOutcome::Refused(LoginRefusal::Disabled) => {
                self.error(codes::AUTH_FAILED, "authentication refused: this account is disabled")
            }
            AuthOutcome::Throttled => {
                self.error(codes::AUTH_THROTTLED, "too many failed logins from your address, try again later")
            }
            AuthOutcome::Busy => {
                self.reply(codes::AUTH_THROTTLED, "too many logins being checked, try again in a moment")
            }
            AuthOutcome::Unavailable => {
                self.reply(codes::STORE_FAILED, "authentication is temporarily unavailable, try again later")
            }
        }
    }

    pub(super) fn mail(&mut self, from: MailFrom<std::borrow::Cow<'_, str>>, now: Timestamp) {
        if self.helo.is_none() {
            return self.error(codes::BAD_SEQUENCE, "say EHLO first");
        }
        if self.tx.is_some() {
            return self.error(codes::BAD_SEQUENCE, "a transaction is already open; RSET first");
        }
        let Some(user) = self.user.clone() else {
            let how = if self.conn.tls.is_some() { "AUTH" } else { "STARTTLS, then AUTH" };
            return self.error(codes::AUTH_REQUIRED, format!("authentication required: use {how}"));
        };
        let sender = from.address.to_lowercase();
        if !user.addresses.contains(&sender) {
            return self.error(
                codes::SENDER_NOT_ALLOWED,
                format!("sender <{}> is not yours; {} may send as {}", from.address, user.name, list(&user.addresses)),
            );
        }
        if from.size as u64 > self.settings.max_message_size {
            return self.error(
                codes::MESSAGE_TOO_BIG,
                format!("message size {} exceeds the limit of {} octets", from.size, self.settings.max_message_size),
            );
        }
        if from.flags & MAIL_SMTPUTF8 != 0 && !self.esmtp {
            return self.error(codes::BAD_SEQUENCE, "SMTPUTF8 needs EHLO");
        }
        let hold = match (from.hold_until, from.hold_for) {
            (0, 0) => None,
            (0, secs) => Some(Hold::For(secs)),
            (until, 0) => match Timestamp::from_second(until as i64) {
                Ok(t) => Some(Hold::Until(t)),
                Err(_) => return self.error(codes::BAD_HOLD, "HOLDUNTIL is out of range"),
            },
            _ => return self.error(codes::BAD_HOLD, "use HOLDUNTIL or HOLDFOR, not both"),
        };
        if let Some(h) = hold {
            let (_, tz) = self.user_zone();
            let ctx = self.ctx(&tz, now);
            if let Err(e) = schedule::check_hold(h, &ctx) {
                return self.error(codes::BAD_HOLD, e.to_string());
            }
        }
        self.tx = Some(Transaction { sender: from.address.to_string(), hold, recipients: Vec::new() });
        self.reply(codes::SENDER_OK, "sender OK");
    }

    fn ctx<'a>(&self, tz: &'a jiff::tz::TimeZone, now: Timestamp) -> ScheduleContext<'a> {
        ScheduleContext { now, tz, daily_hour: self.settings.daily_hour, max_hold: self.settings.max_hold }
    }

    pub(super) fn rcpt(&mut self, address: &str, now: Timestamp) {
        let Some(count) = self.tx.as_ref().map(|t| t.recipients.len()) else {
            return self.error(codes::BAD_SEQUENCE, "MAIL first");
        };
        if count >= self.settings.max_recipients {
            return self.reply(
                codes::TOO_MANY_RECIPIENTS,
                format!(
                    "too many recipients (limit {}); send the rest in another message",
                    self.settings.max_recipients
                ),
            );
        }
        let well_formed =
            address.rsplit_once('@').is_some_and(|(local, domain)| !local.is_empty() && !domain.is_empty());
        if !well_formed {
            return self.error(codes::BAD_RECIPIENT_SYNTAX, "recipient must be a full address like bob@example.com");
        }
        // A dated plus-address is checked now, so a bad date is refused for this recipient only.
        let (_, tz) = self.user_zone();
        let ctx = self.ctx(&tz, now);
        let one = [address.to_string()];
        let req = ScheduleRequest { deliver_on: &[], hold: None, recipients: &one };
        if let Err(e) = schedule::plan(&req, &ctx) {
            return self.error(codes::BAD_RECIPIENT_DATE, e.to_string());
        }
        if let Some(tx) = self.tx.as_mut() {
            tx.recipients.push(address.to_string());
        }
        self.reply(codes::RECIPIENT_OK, "recipient OK");
    }

    pub(super) fn data(&mut self) {
        match &self.tx {
            None => self.error(codes::BAD_SEQUENCE, "MAIL first"),
            Some(tx) if tx.recipients.is_empty() => self.error(codes::NO_VALID_RECIPIENTS, "no valid recipients"),
            Some(_) => {
                self.reply(codes::START_DATA, "end data with <CR><LF>.<CR><LF>");
                self.mode = Mode::Data(DataReader::new(self.settings.max_message_size, self.settings.max_line_length));
            }
        }
    }

    /// The whole message is in: check it and hand it to the queue, or refuse it whole.
    pub(super) fn end_of_data(&mut self, reader: DataReader, now: Timestamp) -> Option<Step> {
        let tx = self.tx.take()?;
        let user = self.user.clone()?;
        let body = match reader.finish() {
            Ok(b) => b,
            Err(DataProblem::TooBig) => {
                self.error(
                    codes::MESSAGE_TOO_BIG,
                    format!("message exceeds the limit of {} octets", self.settings.max_message_size),
                );
                return None;
            }
            Err(DataProblem::LineTooLong) => {
                self.error(
                    codes::BAD_CONTENT,
                    format!("message has a line longer than {} octets", self.settings.max_line_length),
                );
                return None;
            }
        };
        let summary = summarize(&body);
        if summary.from_addresses.is_empty() {
            self.error(
                codes::SENDER_NOT_ALLOWED,
                format!("message has no From address; {} may send as {}", user.name, list(&user.addresses)),
            );
            return None;
        }
        if let Some(bad) = summary.from_addresses.iter().find(|a| !user.addresses.contains(a)) {
            self.error(
                codes::SENDER_NOT_ALLOWED,
                format!("From <{bad}> is not yours; {} may send as {}", user.name, list(&user.addresses)),
            );
            return None;
        }
        if summary.hidden_deliver_on {
            self.error(
                codes::BAD_CONTENT,
                "a Deliver-On header stands after a bare-LF blank line; send the header with CRLF line ends",
            );
            return None;
        }
        let (tz_name, tz) = self.user_zone();
        let ctx = self.ctx(&tz, now);
        let req = ScheduleRequest { deliver_on: &summary.deliver_on, hold: tx.hold, recipients: &tx.recipients };
        let recipients = match schedule::plan(&req, &ctx) {
            Ok(r) => r,
            Err(e) => {
                self.error(codes::BAD_CONTENT, e.to_string());
                return None;
            }
        };
        self.mode = Mode::Waiting;
        Some(Step::Deliver(Box::new(Submission {
            session_id: self.conn.session_id.clone(),
            user: user.name,
            sender: tx.sender,
            sender_name: summary.from_name,
            recipients,
            subject: summary.subject,
            message_id: summary.message_id,
            client: self.conn.peer,
            tls: self.conn.tls.clone(),
            helo: self.helo.clone().unwrap_or_default(),
            submitted_at: now,
            timezone: tz_name,
            body,
            notice_of: None,
        })))
    }
}

fn list(addresses: &[String]) -> String {
    addresses.iter().map(|a| format!("<{a}>")).collect::<Vec<_>>().join(", ")
}
