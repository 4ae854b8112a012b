//! RFC 4865 FUTURERELEASE: `HOLDUNTIL=` and `HOLDFOR=` on MAIL FROM.
//!
//! Both are parsed here from the parameter value exactly as the client sent it, and every
//! reply about one quotes that text. HOLDUNTIL is an RFC 3339 `date-time`
//! (`2027-01-15T10:00:00Z`, `2027-01-15T11:00:00.5+01:00`): fractional seconds are rounded
//! up, never down (a release is never earlier than asked), and a day or time that does not
//! exist is refused as it is for Deliver-On. HOLDFOR is a number of seconds, digits only.
//!
//! Checked at MAIL time so the client gets its 5xx before sending a body. HOLDUNTIL gets no
//! past grace (unlike Deliver-On date-times): the client computed it from its own clock for
//! the server, and RFC 4865 treats a past value as an error, so a past HOLDUNTIL is refused
//! rather than guessed at.

use jiff::civil::DateTime;
use jiff::{SignedDuration, Timestamp};

use super::{
    Hold, ScheduleContext, ScheduleError,
    ScheduleErrorKind::{self, BeyondMaxHold, InPast, Unparseable},
    ScheduleSource, cursor,
    cursor::{Cursor, checked_offset},
};

/// Reads a `HOLDUNTIL=` value; errors quote `text`.
pub(super) fn parse_until(text: &str) -> Result<Hold, ScheduleError> {
    let fail = |kind| ScheduleError::new(kind, text, ScheduleSource::HoldUntil);
    let at = rfc3339(text).map_err(fail)?;
    Ok(Hold::Until { at, text: text.to_string() })
}

/// Reads a `HOLDFOR=` value; errors quote `text`. A number too large for any calendar is
/// "beyond the maximum hold", like every other schedule that reaches too far.
pub(super) fn parse_for(text: &str) -> Result<Hold, ScheduleError> {
    let fail = |kind| ScheduleError::new(kind, text, ScheduleSource::HoldFor);
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(fail(Unparseable));
    }
    let secs = text.parse::<u64>().map_err(|_| fail(BeyondMaxHold))?;
    Ok(Hold::For { secs, text: text.to_string() })
}

/// RFC 3339 §5.6 `date-time` (`T`/`Z` in either case, `-00:00` read as UTC, at most 9
/// fraction digits), with the fields checked like every other date gatepost reads: no hour
/// 24, no leap second, no 30 February.
fn rfc3339(text: &str) -> Result<Timestamp, ScheduleErrorKind> {
    let lower = text.to_ascii_lowercase();
    let c = &mut Cursor::new(&lower);
    let (year, month, day) = (num(c, 4, Some(b'-'))?, num(c, 2, Some(b'-'))?, num(c, 2, Some(b't'))?);
    let (hour, minute, second) = (num(c, 2, Some(b':'))?, num(c, 2, Some(b':'))?, num(c, 2, None)?);
    // Any non-zero fraction rounds up to the next whole second. Nanoseconds are the finest
    // any clock gives, so more than 9 digits is refused rather than read.
    let round_up = c.eat(b'.') && c.digits_upto(9).ok_or(Unparseable)?.0 > 0;
    let offset = if c.eat(b'z') {
        (1, 0, 0)
    } else if c.eat(b'+') {
        (1, num(c, 2, Some(b':'))?, num(c, 2, None)?)
    } else if c.eat(b'-') {
        (-1, num(c, 2, Some(b':'))?, num(c, 2, None)?)
    } else {
        return Err(Unparseable);
    };
    if !c.done() {
        return Err(Unparseable);
    }
    // Range errors (25:00, month 13) before calendar errors (30 February), as for Deliver-On.
    let time = cursor::time(hour, minute, second, 0)?;
    let offset = checked_offset(offset)?;
    let date = cursor::date(year, month, day)?;
    let at = offset.to_timestamp(DateTime::from_parts(date, time)).map_err(|_| BeyondMaxHold)?;
    if round_up { at.checked_add(SignedDuration::from_secs(1)).map_err(|_| BeyondMaxHold) } else { Ok(at) }
}

pub(super) fn check(hold: &Hold, ctx: &ScheduleContext) -> Result<Timestamp, ScheduleError> {
    let limit = ctx.latest_release();
    match hold {
        Hold::Until { at, text } => {
            let fail = |kind| ScheduleError::new(kind, text, ScheduleSource::HoldUntil);
            if *at < ctx.now {
                return Err(fail(InPast));
            }
            if *at > limit {
                return Err(fail(BeyondMaxHold));
            }
            Ok(*at)
        }
        Hold::For { secs, text } => {
            let fail = || ScheduleError::new(BeyondMaxHold, text, ScheduleSource::HoldFor);
            let secs = i64::try_from(*secs).map_err(|_| fail())?;
            let at = ctx.now.checked_add(SignedDuration::from_secs(secs)).map_err(|_| fail())?;
            if at > limit {
                return Err(fail());
            }
            Ok(at)
        }
    }
}

/// Exactly `n` digits, then the separator `sep` if one is given.
fn num(c: &mut Cursor, n: usize, sep: Option<u8>) -> Result<u32, ScheduleErrorKind> {
    let v = c.digits(n).ok_or(Unparseable)?;
    match sep {
        Some(sep) if !c.eat(sep) => Err(Unparseable),
        _ => Ok(v),
    }
}
