//! Scheduling: turns `Deliver-On` headers, dated plus-addresses and RFC 4865
//! holds into one release instant per recipient.
//!
//! Everything here is pure (no I/O, no clock): the caller passes `now`, so the
//! SMTP session, the tests and the fuzzer all see identical behaviour. The
//! rules and every error text are written down in `docs/scheduling.md`.
//!
//! The guiding rule is the spec's "a typo must never cause an early send":
//! anything that looks like a schedule but cannot be read exactly is rejected,
//! and a release time is never earlier than the moment that was asked for.

use jiff::{SignedDuration, Timestamp, civil::Time, tz::TimeZone};

mod cursor;
mod deliver_on;
mod error;
mod hold;
mod plus_tag;
mod resolve;
mod rfc5322;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_fuzz;
#[cfg(test)]
mod tests_plan;
#[cfg(test)]
mod tests_zones;

pub use error::{ScheduleError, ScheduleErrorKind};
pub use plus_tag::split_date_tag;

/// How far in the past an explicit date-time may lie and still be accepted
/// (released at once): mail clients' clocks drift, and "send at 09:30" typed
/// at 09:31 should not bounce. Date-only forms and HOLDUNTIL get no grace.
pub const PAST_GRACE: SignedDuration = SignedDuration::from_mins(5);

/// Everything the rules need besides the message itself.
#[derive(Debug, Clone, Copy)]
pub struct ScheduleContext<'a> {
    pub now: Timestamp,
    /// The user's timezone (or the operator's default).
    pub tz: &'a TimeZone,
    /// The operator's release hour for date-only schedules, in `tz`.
    pub daily_hour: Time,
    /// Nothing may be held longer than `now + max_hold`.
    pub max_hold: SignedDuration,
}

impl ScheduleContext<'_> {
    /// `now + max_hold`, saturating at jiff's range ends.
    pub(crate) fn latest_release(&self) -> Timestamp {
        self.now.checked_add(self.max_hold).unwrap_or(if self.max_hold.is_negative() {
            Timestamp::MIN
        } else {
            Timestamp::MAX
        })
    }
}

/// Where a release time came from. Stored in the queue record, so the
/// variants and their `as_str` spellings must stay stable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "&'static str")]
pub enum ScheduleSource {
    Immediate,
    DeliverOnHeader,
    PlusAddress,
    HoldUntil,
    HoldFor,
}

impl ScheduleSource {
    /// All variants, for round-trip tests and storage migrations.
    pub const ALL: [ScheduleSource; 5] = [
        ScheduleSource::Immediate,
        ScheduleSource::DeliverOnHeader,
        ScheduleSource::PlusAddress,
        ScheduleSource::HoldUntil,
        ScheduleSource::HoldFor,
    ];

    /// The stable storage spelling.
    pub fn as_str(&self) -> &'static str {
        match self {
            ScheduleSource::Immediate => "immediate",
            ScheduleSource::DeliverOnHeader => "deliver-on",
            ScheduleSource::PlusAddress => "plus-address",
            ScheduleSource::HoldUntil => "holduntil",
            ScheduleSource::HoldFor => "holdfor",
        }
    }

    /// Inverse of [`as_str`](Self::as_str); exact match only, because the
    /// input comes from our own records, not from users.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

impl TryFrom<String> for ScheduleSource {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Self::parse(&s).ok_or_else(|| format!("unknown schedule source {s:?}"))
    }
}

impl From<ScheduleSource> for &'static str {
    fn from(s: ScheduleSource) -> Self {
        s.as_str()
    }
}

/// RFC 4865 parameters from MAIL FROM, each with its value exactly as the client sent it
/// (every reply about it quotes that text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hold {
    /// `HOLDUNTIL=`: the instant asked for, fractional seconds rounded up.
    Until { at: Timestamp, text: String },
    /// `HOLDFOR=`: seconds from now.
    For { secs: u64, text: String },
}

impl Hold {
    /// Reads a `HOLDUNTIL=` value: an RFC 3339 date-time such as `2027-01-15T10:00:00Z`.
    pub fn parse_until(text: &str) -> Result<Hold, ScheduleError> {
        hold::parse_until(text)
    }

    /// Reads a `HOLDFOR=` value: a number of seconds, digits only.
    pub fn parse_for(text: &str) -> Result<Hold, ScheduleError> {
        hold::parse_for(text)
    }

    /// A HOLDUNTIL of exactly `at` (for tests and callers that already hold an instant).
    pub fn until(at: Timestamp) -> Hold {
        Hold::Until { at, text: at.to_string() }
    }

    /// A HOLDFOR of `secs` seconds.
    pub fn for_secs(secs: u64) -> Hold {
        Hold::For { secs, text: secs.to_string() }
    }
}

/// Validates a MAIL FROM hold at MAIL time, so the client gets its 5xx
/// there and not after sending the whole body. Returns the release instant.
pub fn check_hold(hold: &Hold, ctx: &ScheduleContext) -> Result<Timestamp, ScheduleError> {
    hold::check(hold, ctx)
}

/// The message-level inputs of [`plan`].
#[derive(Debug, Clone, Copy)]
pub struct ScheduleRequest<'a> {
    /// Raw values of every Deliver-On header (unfolded; whitespace allowed).
    pub deliver_on: &'a [String],
    pub hold: Option<&'a Hold>,
    /// Envelope recipients exactly as given in RCPT TO.
    pub recipients: &'a [String],
}

/// When (and to which cleaned-up address) one recipient's copy is released.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecipientRelease {
    /// As given in RCPT TO.
    pub original: String,
    /// Date tag removed (`bob+2026-12-25@x` -> `bob@x`); unchanged otherwise.
    pub address: String,
    pub release_at: Timestamp,
    pub source: ScheduleSource,
}

/// Computes one release per recipient, in the order given. Immediate mail
/// gets `release_at == ctx.now`. Any unreadable, past, too-distant or
/// conflicting schedule rejects the whole message (first problem wins).
///
/// To reject a bad plus tag already at RCPT time, call this with just that
/// recipient, no Deliver-On values and no hold.
pub fn plan(req: &ScheduleRequest, ctx: &ScheduleContext) -> Result<Vec<RecipientRelease>, ScheduleError> {
    resolve::plan(req, ctx)
}

/// The fixed context used by [`fuzz_one`] and the seed replay test.
fn fuzz_context(tz: &TimeZone) -> ScheduleContext<'_> {
    ScheduleContext {
        now: Timestamp::from_second(1_795_428_000).expect("2026-11-23T10:00:00Z is in range"),
        tz,
        daily_hour: Time::constant(8, 0, 0, 0),
        max_hold: SignedDuration::from_hours(400 * 24),
    }
}

/// The HOLDUNTIL/HOLDFOR half of [`fuzz_one`]: an accepted HOLDUNTIL is never earlier than the
/// instant jiff's own RFC 3339 parser reads (and less than a second later: only the fraction
/// rounds up), an accepted HOLDFOR is digits only, and every error text is fit for a reply.
fn fuzz_holds(text: &str, ctx: &ScheduleContext) {
    let reply_ok = |e: &ScheduleError| {
        let msg = e.to_string();
        assert!(msg.len() < 400 && msg.bytes().all(|b| (0x20..0x7f).contains(&b)), "bad reply text: {msg:?}");
    };
    match Hold::parse_until(text) {
        Ok(Hold::Until { at, .. }) => {
            let exact: Timestamp = text.parse().unwrap_or_else(|e| panic!("accepted {text:?}, jiff refuses: {e}"));
            assert!(at >= exact && at.duration_since(exact) < SignedDuration::from_secs(1), "{text:?}: {at}");
        }
        Ok(other) => panic!("HOLDUNTIL read as {other:?}"),
        Err(e) => reply_ok(&e),
    }
    match Hold::parse_for(text) {
        Ok(hold) => {
            assert!(text.bytes().all(|b| b.is_ascii_digit()), "HOLDFOR {text:?} accepted");
            if let Err(e) = check_hold(&hold, ctx) {
                reply_ok(&e);
            }
        }
        Err(e) => reply_ok(&e),
    }
}

/// Fuzz entry point: feeds `data` (lossy UTF-8) to the Deliver-On path, to
/// the plus-tag path, to the HOLDUNTIL/HOLDFOR parsers and to [`split_date_tag`], with a fixed context (UTC,
/// 08:00, 400 days, now = 2026-11-23T10:00:00Z). Panics only when an
/// invariant breaks: an accepted release earlier than `now` or later than
/// `now + max_hold`, a tag split that does not put the address back
/// together, or an error text unfit for an SMTP reply.
pub fn fuzz_one(data: &[u8]) {
    let text = String::from_utf8_lossy(data).into_owned();
    let tz = TimeZone::UTC;
    let ctx = fuzz_context(&tz);
    let limit = ctx.now + ctx.max_hold;
    let one = std::slice::from_ref(&text);
    let plain = ["carol@example.com".to_string()];
    let requests = [
        ScheduleRequest { deliver_on: one, hold: None, recipients: &plain },
        ScheduleRequest { deliver_on: &[], hold: None, recipients: one },
    ];
    for req in &requests {
        match plan(req, &ctx) {
            Ok(list) => {
                assert_eq!(list.len(), req.recipients.len(), "one release per recipient");
                for r in &list {
                    assert!(r.release_at >= ctx.now, "release before now: {r:?}");
                    assert!(r.release_at <= limit, "release beyond max hold: {r:?}");
                }
            }
            Err(e) => {
                let msg = e.to_string();
                assert!(msg.len() < 400, "reply text too long: {msg}");
                assert!(
                    msg.bytes().all(|b| (0x20..0x7f).contains(&b)),
                    "reply text must be one printable ASCII line: {msg:?}"
                );
            }
        }
    }
    fuzz_holds(&text, &ctx);
    if let Some((address, tag)) = split_date_tag(&text) {
        let at = address.rfind('@').expect("split keeps the domain");
        let rebuilt = format!("{}+{}{}", &address[..at], tag, &address[at..]);
        assert_eq!(rebuilt, text, "tag split must be lossless");
    }
}
