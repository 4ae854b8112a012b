//! Schedule errors and their reply texts. The texts go verbatim into an
//! SMTP reply, so they are one line of printable ASCII and bounded in length
//! whatever the client sent; `docs/scheduling.md` lists every one of them.

use std::fmt;

use super::{ScheduleSource, split_date_tag};

/// Why a schedule was refused. The SMTP layer picks the reply code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScheduleErrorKind {
    /// Not one of the accepted forms, or a field out of range (month 13).
    Unparseable,
    /// Earlier than allowed (see `docs/scheduling.md`, "Past").
    InPast,
    /// Later than `now + max_hold`.
    BeyondMaxHold,
    /// Two schedules of one message name different instants.
    Conflict,
    /// Well-formed, but the day is not in the calendar (2026-02-30).
    NonexistentDate,
}

/// A refused schedule: what was wrong, the offending value, where it was.
///
/// `value` is the trimmed Deliver-On value, the full recipient address for
/// a plus tag, or the HOLDUNTIL / HOLDFOR parameter value exactly as sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleError {
    pub kind: ScheduleErrorKind,
    pub value: String,
    pub source: ScheduleSource,
}

impl ScheduleError {
    pub(super) fn new(kind: ScheduleErrorKind, value: &str, source: ScheduleSource) -> Self {
        ScheduleError { kind, value: value.to_string(), source }
    }
}

/// The Deliver-On forms, listed in every "cannot read it" reply.
pub const DELIVER_ON_FORMS: &str = "accepted: 2026-12-25, 2026-12-25 09:30, 2026-12-25T09:30, \
     2026-12-25T09:30:00+01:00, RFC 5322 date, tomorrow, +3d, +2h, monday";

/// The plus-address tag forms, listed when a date tag cannot be read.
pub const TAG_FORMS: &str = "accepted tags: +2026-12-25, +20261225, +20261225T0930";

/// Longest piece of client input echoed back; keeps replies well under the
/// SMTP line limit even for a megabyte-long header.
const MAX_ECHO: usize = 80;

impl fmt::Display for ScheduleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use ScheduleErrorKind as K;
        let v = echo(&self.value);
        match self.source {
            ScheduleSource::DeliverOnHeader => write!(f, "Deliver-On value \"{v}\"")?,
            ScheduleSource::Immediate => write!(f, "Schedule value \"{v}\"")?,
            ScheduleSource::PlusAddress => {
                let tag = split_date_tag(&self.value).map(|(_, t)| echo(&t));
                let tag = tag.unwrap_or_else(|| v.clone());
                write!(f, "Date tag \"{tag}\" of recipient \"{v}\"")?
            }
            ScheduleSource::HoldUntil => write!(f, "HOLDUNTIL={v}")?,
            ScheduleSource::HoldFor if self.kind == K::Unparseable => write!(f, "HOLDFOR={v}")?,
            ScheduleSource::HoldFor => write!(f, "HOLDFOR={v} seconds")?,
        }
        let what = match (self.kind, self.source) {
            (K::Unparseable, ScheduleSource::PlusAddress) => {
                return write!(f, " is not a valid date; {TAG_FORMS}");
            }
            (K::Unparseable, ScheduleSource::HoldUntil) => {
                " is not an RFC 3339 date-time (RFC 4865), such as 2027-01-15T10:00:00Z or 2027-01-15T11:00:00+01:00"
            }
            (K::Unparseable, ScheduleSource::HoldFor) => " is not a number of seconds (RFC 4865)",
            (K::Unparseable, _) => return write!(f, " is not a date; {DELIVER_ON_FORMS}"),
            (K::NonexistentDate, _) => " names a day that does not exist in the calendar",
            (K::InPast, ScheduleSource::HoldUntil) => " is in the past",
            (K::InPast, ScheduleSource::PlusAddress) => " is in the past",
            (K::InPast, _) => " is in the past (a date must be today or later, a time at most 5 minutes ago)",
            (K::BeyondMaxHold, _) => " is further ahead than this server's maximum hold",
            (K::Conflict, _) => {
                " disagrees with another schedule of this message (an earlier Deliver-On header \
                 or HOLDUNTIL/HOLDFOR); give one release time"
            }
        };
        f.write_str(what)
    }
}

impl std::error::Error for ScheduleError {}

/// Client text made safe for a reply: printable ASCII only (everything else
/// as `\u{..}`), quotes and backslashes escaped, long values cut.
fn echo(raw: &str) -> String {
    let mut out = String::new();
    for c in raw.chars() {
        let piece = match c {
            '"' => "\\\"".to_string(),
            '\\' => "\\\\".to_string(),
            ' '..='~' => c.to_string(),
            _ => format!("\\u{{{:x}}}", c as u32),
        };
        if out.len() + piece.len() > MAX_ECHO {
            out.push_str("...");
            break;
        }
        out.push_str(&piece);
    }
    out
}
