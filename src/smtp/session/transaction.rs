//! MAIL and RCPT: opening a transaction and adding recipients, read from the raw command line
//! by `smtp::envelope` (addresses exactly as sent, every parameter at most once).

use jiff::Timestamp;

use super::{Session, Transaction, list};
use crate::schedule::{self, Hold, ScheduleRequest};
use crate::smtp::codes::{self, Code};
use crate::smtp::envelope::{self, EnvelopeCommand, EnvelopeError, Verb};

/// RFC 1870 §3: `size-value ::= 1*20DIGIT`.
const MAX_SIZE_DIGITS: usize = 20;

/// What the MAIL parameters ask for.
#[derive(Debug, Default)]
struct MailParams {
    /// SIZE=, read without overflow (20 digits fit a u128).
    size: Option<u128>,
    smtputf8: bool,
    hold: Option<Hold>,
}

impl Session {
    /// Whether free disk space is below `store.min_free_disk`: the driver says so before
    /// each input, the session refuses new transactions while it is.
    pub fn set_storage_low(&mut self, low: bool) {
        self.storage_low = low;
    }

    pub(super) fn mail(&mut self, line: &[u8], now: Timestamp) {
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
        if self.storage_low {
            // Not counted as a client error: nothing the client did.
            return self.reply(codes::INSUFFICIENT_STORAGE, "insufficient system storage; please try again later");
        }
        let cmd = match envelope::parse(line, Verb::Mail, false) {
            Ok(cmd) => cmd,
            Err(e) => return self.envelope_error(e, Verb::Mail),
        };
        let params = match mail_params(&cmd) {
            Ok(p) => p,
            Err((code, text)) => return self.error(code, text),
        };
        if !user.addresses.contains(&cmd.address.to_lowercase()) {
            return self.error(
                codes::SENDER_NOT_ALLOWED,
                format!("sender <{}> is not yours; {} may send as {}", cmd.address, user.name, list(&user.addresses)),
            );
        }
        let limit = self.settings.max_message_size;
        if let Some(size) = params.size.filter(|&s| s > u128::from(limit)) {
            return self
                .error(codes::MESSAGE_TOO_BIG, format!("message size {size} exceeds the limit of {limit} octets"));
        }
        if params.smtputf8 && !self.esmtp {
            return self.error(codes::BAD_SEQUENCE, "SMTPUTF8 needs EHLO");
        }
        if let Some(h) = &params.hold {
            let (_, tz) = self.user_zone();
            if let Err(e) = schedule::check_hold(h, &self.ctx(&tz, now)) {
                return self.error(codes::BAD_HOLD, e.to_string());
            }
        }
        self.tx = Some(Transaction {
            sender: cmd.address,
            hold: params.hold,
            recipients: Vec::new(),
            smtputf8: params.smtputf8,
        });
        self.reply(codes::SENDER_OK, "sender OK");
    }

    pub(super) fn rcpt(&mut self, line: &[u8], now: Timestamp) {
        let Some((count, smtputf8)) = self.tx.as_ref().map(|t| (t.recipients.len(), t.smtputf8)) else {
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
        let cmd = match envelope::parse(line, Verb::Rcpt, smtputf8) {
            Ok(cmd) => cmd,
            Err(e) => return self.envelope_error(e, Verb::Rcpt),
        };
        // RFC 3461 DSN parameters are accepted and ignored: gatepost writes its own notices.
        if let Some(p) = cmd.params.iter().find(|p| !matches!(p.keyword.as_str(), "NOTIFY" | "ORCPT")) {
            return self.error(codes::PARAM_NOT_SUPPORTED, format!("parameter {} is not supported", p.keyword));
        }
        if let Some(p) = cmd.params.iter().find(|p| p.value.is_none()) {
            return self.error(codes::SYNTAX_ERROR, format!("{} needs a value", p.keyword));
        }
        // A dated plus-address is checked now, so a bad date is refused for this recipient only.
        let (_, tz) = self.user_zone();
        let ctx = self.ctx(&tz, now);
        let one = [cmd.address];
        let req = ScheduleRequest { deliver_on: &[], hold: None, recipients: &one };
        if let Err(e) = schedule::plan(&req, &ctx) {
            return self.error(codes::BAD_RECIPIENT_DATE, e.to_string());
        }
        let [address] = one;
        if let Some(tx) = self.tx.as_mut() {
            tx.recipients.push(address);
        }
        self.reply(codes::RECIPIENT_OK, "recipient OK");
    }

    fn envelope_error(&mut self, e: EnvelopeError, verb: Verb) {
        let (who, syntax, bad_address, non_ascii) = match verb {
            Verb::Mail => {
                ("sender", "MAIL FROM:<address> [parameters]", codes::BAD_SENDER_SYNTAX, codes::NON_ASCII_SENDER)
            }
            Verb::Rcpt => {
                ("recipient", "RCPT TO:<address> [parameters]", codes::BAD_RECIPIENT_SYNTAX, codes::NON_ASCII_RECIPIENT)
            }
        };
        let (code, text): (Code, String) = match e {
            EnvelopeError::Syntax => (codes::SYNTAX_ERROR, format!("syntax: {syntax}")),
            EnvelopeError::BadAddress(why) => (bad_address, format!("{who} address is not valid: {why}")),
            EnvelopeError::EightBit => (
                non_ascii,
                format!("the {who} address has non-ASCII characters; send SMTPUTF8 with MAIL FROM (RFC 6531)"),
            ),
            EnvelopeError::NotUtf8 => (bad_address, format!("the {who} address is not valid UTF-8")),
            EnvelopeError::Duplicate(name) => (codes::SYNTAX_ERROR, format!("parameter {name} is given twice")),
            EnvelopeError::BadParameter(name) => (codes::SYNTAX_ERROR, format!("invalid {name} parameter")),
        };
        self.error(code, text)
    }
}

/// Reads the MAIL parameters gatepost knows; anything else is 555 (RFC 5321 §4.1.1.11).
fn mail_params(cmd: &EnvelopeCommand) -> Result<MailParams, (Code, String)> {
    let mut out = MailParams::default();
    for p in &cmd.params {
        let value = p.value.as_deref();
        let needs_value = || (codes::SYNTAX_ERROR, format!("{} needs a value", p.keyword));
        match (p.keyword.as_str(), value) {
            ("SMTPUTF8", None) => out.smtputf8 = true,
            ("SMTPUTF8", Some(_)) => return Err((codes::SYNTAX_ERROR, "SMTPUTF8 takes no value".into())),
            ("SIZE", Some(v)) => out.size = Some(size(v)?),
            ("BODY", Some(v)) if v.eq_ignore_ascii_case("7BIT") || v.eq_ignore_ascii_case("8BITMIME") => {}
            ("BODY", Some(v)) if v.eq_ignore_ascii_case("BINARYMIME") => {
                return Err((
                    codes::PARAM_NOT_SUPPORTED,
                    "BODY=BINARYMIME needs CHUNKING, which is not offered".into(),
                ));
            }
            ("BODY", Some(_)) => return Err((codes::SYNTAX_ERROR, "BODY must be 7BIT or 8BITMIME".into())),
            ("HOLDUNTIL", Some(v)) => {
                out.hold = Some(Hold::parse_until(v).map_err(|e| (codes::BAD_HOLD, e.to_string()))?)
            }
            ("HOLDFOR", Some(v)) => out.hold = Some(Hold::parse_for(v).map_err(|e| (codes::BAD_HOLD, e.to_string()))?),
            // RFC 4954 §5 AUTH=, RFC 3461 RET= and ENVID=: accepted and ignored.
            ("AUTH" | "RET" | "ENVID", Some(_)) => {}
            ("SIZE" | "BODY" | "HOLDUNTIL" | "HOLDFOR" | "AUTH" | "RET" | "ENVID", None) => return Err(needs_value()),
            (other, _) => return Err((codes::PARAM_NOT_SUPPORTED, format!("parameter {other} is not supported"))),
        }
    }
    if cmd.param("HOLDUNTIL").is_some() && cmd.param("HOLDFOR").is_some() {
        return Err((codes::BAD_HOLD, "use HOLDUNTIL or HOLDFOR, not both".into()));
    }
    Ok(out)
}

/// RFC 1870 §3: digits only, at most 20 of them. A well-formed size over any limit (even one
/// beyond 64 bits) is for the caller to refuse with 552.
fn size(value: &str) -> Result<u128, (Code, String)> {
    if value.is_empty() || value.len() > MAX_SIZE_DIGITS || !value.bytes().all(|b| b.is_ascii_digit()) {
        let shown: String = value.chars().take(24).collect();
        return Err((codes::SYNTAX_ERROR, format!("SIZE={shown} is not a size: at most 20 digits (RFC 1870)")));
    }
    value.parse().map_err(|_| (codes::SYNTAX_ERROR, "SIZE is not a number".into()))
}
