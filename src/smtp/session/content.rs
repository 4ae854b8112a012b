//! DATA and the end of DATA: the content rules a whole message must pass before it is queued.
//! Everything here reads the message with canonical line ends (`message::lines`) and with the
//! header reader the rewrite uses, so what is checked is what will be relayed; and whatever the
//! release would refuse is refused here, while the client is still connected.

use jiff::Timestamp;

use super::{AuthedUser, Mode, Session, Step, list};
use crate::message::{HeaderSummary, canonical_line_ends, summarize};
use crate::queue::Submission;
use crate::schedule::{self, ScheduleRequest};
use crate::smtp::codes::{self, Code};
use crate::smtp::data::{DataProblem, DataReader};

impl Session {
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
        let body = match self.message_bytes(reader) {
            Ok(body) => body,
            Err((code, text)) => {
                self.error(code, text);
                return None;
            }
        };
        let summary = summarize(&body);
        if let Err((code, text)) = self.check_senders(&summary, &user) {
            self.error(code, text);
            return None;
        }
        let (tz_name, tz) = self.user_zone();
        let ctx = self.ctx(&tz, now);
        let req =
            ScheduleRequest { deliver_on: &summary.deliver_on, hold: tx.hold.as_ref(), recipients: &tx.recipients };
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

    /// The message as it will be stored, checked and relayed: within the limits, with
    /// canonical line ends, and with a header the rewrite can work on.
    fn message_bytes(&self, reader: DataReader) -> Result<Vec<u8>, (Code, String)> {
        let raw = reader.finish().map_err(|problem| match problem {
            DataProblem::TooBig => (
                codes::MESSAGE_TOO_BIG,
                format!("message exceeds the limit of {} octets", self.settings.max_message_size),
            ),
            DataProblem::LineTooLong => {
                (codes::BAD_CONTENT, format!("message has a line longer than {} octets", self.settings.max_line_length))
            }
        })?;
        let canonical = canonical_line_ends(&raw).map(|c| match c {
            std::borrow::Cow::Owned(v) => Some(v),
            std::borrow::Cow::Borrowed(_) => None,
        });
        let body = match canonical {
            Ok(Some(normalised)) => normalised,
            Ok(None) => raw,
            Err(e) => return Err((codes::BAD_CONTENT, format!("{e}; send CRLF line ends"))),
        };
        // The limit is on the message as stored and relayed: bare LFs made CRLF can take a
        // message the reader let through over it (found by fuzzing).
        if body.len() as u64 > self.settings.max_message_size {
            return Err((
                codes::MESSAGE_TOO_BIG,
                format!(
                    "message exceeds the limit of {} octets once its line ends are CRLF",
                    self.settings.max_message_size
                ),
            ));
        }
        // The same check the release's rewrite starts with (one function, not a copy of it).
        if let Err(e) = crate::rewrite::header_of(&body) {
            return Err((
                codes::BAD_CONTENT,
                format!("{e} (an mbox \"From \" line or a blank line before the header?); nothing was queued"),
            ));
        }
        Ok(body)
    }

    /// RFC 5322 §3.6 and the rule that gatepost is never an open relay: exactly one From
    /// field, every address in it the user's; and when From goes out as written (no rewrite),
    /// every Sender, Resent-From and Resent-Sender address the user's too.
    fn check_senders(&self, summary: &HeaderSummary, user: &AuthedUser) -> Result<(), (Code, String)> {
        let allowed = || format!("{} may send as {}", user.name, list(&user.addresses));
        if summary.from_fields > 1 {
            let n = summary.from_fields;
            return Err((codes::BAD_CONTENT, format!("message has {n} From fields; RFC 5322 allows exactly one")));
        }
        if summary.from_addresses.is_empty() {
            return Err((codes::SENDER_NOT_ALLOWED, format!("message has no From address; {}", allowed())));
        }
        if let Some(bad) = summary.from_addresses.iter().find(|a| !user.addresses.contains(a)) {
            return Err((codes::SENDER_NOT_ALLOWED, format!("From <{bad}> is not yours; {}", allowed())));
        }
        if self.settings.rewrite_from {
            return Ok(()); // the rewrite removes them
        }
        for (name, addresses) in &summary.sender_fields {
            if addresses.is_empty() {
                return Err((codes::SENDER_NOT_ALLOWED, format!("{name} field has no address; {}", allowed())));
            }
            if let Some(bad) = addresses.iter().find(|a| !user.addresses.contains(a)) {
                return Err((codes::SENDER_NOT_ALLOWED, format!("{name} <{bad}> is not yours; {}", allowed())));
            }
        }
        Ok(())
    }
}
