//! AUTH: the login step of a submission session (MAIL and RCPT are in `transaction.rs`, the
//! end of DATA in `content.rs`).

use smtp_proto::{AUTH_LOGIN, AUTH_PLAIN};

use super::auth::{self, LOGIN_PASS_PROMPT, LOGIN_USER_PROMPT, SaslError};
use super::{AuthOutcome, Mode, Session, Step};
use crate::accounts::LoginRefusal;
use crate::smtp::codes;

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
}
