//! DATA and the end of DATA: the content rules a whole message must pass before it is queued.
//! Everything here reads the message with canonical line ends (`message::lines`) and with the
//! header reader the rewrite uses, so what is checked is what will be relayed; and whatever the
//! release would refuse is refused here, while the client is still connected.

use jiff::Timestamp;

use super::{Mode, Session, Step};
use crate::message::summarize;
use crate::queue::Submission;
use crate::schedule::{self, ScheduleRequest};
use crate::smtp::codes::{self, Code};
use crate::smtp::data::{DataProblem, DataReader};
use crate::smtp::submission;

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
        if let Err((code, text)) = submission::check_senders(&self.settings, &summary, &user) {
            self.error(code, text);
            return None;
        }
        let route = match submission::route(&user, &summary.from_addresses, &tx.sender) {
            Ok(r) => r,
            Err((code, text)) => {
                self.error(code, text);
                return None;
            }
        };
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
            route,
        })))
    }

    /// The message as it will be stored, checked and relayed (`smtp::submission`).
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
        submission::canonical_message(&self.settings, raw)
    }
}
