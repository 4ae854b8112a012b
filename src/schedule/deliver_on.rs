//! The `Deliver-On` header value grammar (see `docs/scheduling.md`).
//!
//! Parsing only says *what* was asked for; turning that into an instant
//! (daily hour, timezone, DST, past and max-hold rules) is `resolve`'s job,
//! so plus tags and headers share exactly one set of rules.

use jiff::{
    SignedDuration, Timestamp,
    civil::{Date, DateTime, Weekday},
};

use super::{
    ScheduleErrorKind::{self, BeyondMaxHold, Unparseable},
    cursor::{self, Cursor, OffsetShape, checked_offset, weekday_name},
};

/// A requested release, before the context (now, tz, daily hour) applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum When {
    /// A calendar day: released at the daily hour in the user's timezone.
    Day(Date),
    /// A wall-clock date-time in the user's timezone.
    Local(DateTime),
    /// An absolute instant (offset or zone given).
    Instant(Timestamp),
    /// Exactly this long after now (`+2h`, `+90m`).
    After(SignedDuration),
    /// Today plus this many days, at the daily hour (`tomorrow`, `+3d`).
    DaysAhead(i64),
    /// The next such weekday strictly after today, at the daily hour.
    NextWeekday(Weekday),
}

/// Relative amounts with more significant digits than this are refused as
/// too far ahead without doing arithmetic that could overflow.
const MAX_RELATIVE_DIGITS: usize = 12;

/// Parses one Deliver-On value (case-insensitive, surrounding whitespace
/// ignored).
pub(super) fn parse(raw: &str) -> Result<When, ScheduleErrorKind> {
    let lower = raw.trim().to_ascii_lowercase();
    let s = lower.as_str();
    let first = *s.as_bytes().first().ok_or(Unparseable)?;
    if s == "tomorrow" {
        return Ok(When::DaysAhead(1));
    }
    if let Some(rest) = s.strip_prefix('+') {
        return relative(rest);
    }
    if let Some(day) = weekday_name(s) {
        return Ok(When::NextWeekday(day));
    }
    if first.is_ascii_digit() && s.as_bytes().get(4) == Some(&b'-') {
        return iso(s);
    }
    super::rfc5322::parse(s).map(When::Instant)
}

/// `3d`, `2h`, `90m` (the part after `+`).
fn relative(rest: &str) -> Result<When, ScheduleErrorKind> {
    let len = rest.bytes().take_while(u8::is_ascii_digit).count();
    let (number, unit) = rest.split_at(len);
    let unit_secs = match unit {
        _ if len == 0 => return Err(Unparseable),
        "d" => None,
        "h" => Some(3600),
        "m" => Some(60),
        _ => return Err(Unparseable),
    };
    let significant = number.trim_start_matches('0');
    if significant.len() > MAX_RELATIVE_DIGITS {
        return Err(BeyondMaxHold);
    }
    // At most 12 digits: fits i64, and so does the product with 3600.
    let n: i64 = if significant.is_empty() { 0 } else { significant.parse().map_err(|_| Unparseable)? };
    Ok(match unit_secs {
        None => When::DaysAhead(n),
        Some(secs) => When::After(SignedDuration::from_secs(n * secs)),
    })
}

/// The fields of an ISO-like value, collected before any range checks so
/// that trailing garbage is "unreadable" rather than some other error.
struct IsoShape {
    year: u32,
    month: u32,
    day: u32,
    /// Hour, minute, second, nanosecond, and the offset if one was given.
    time: Option<(u32, u32, u32, u32, Option<OffsetShape>)>,
}

/// `2026-12-25`, `2026-12-25 09:30`, `2026-12-25t09:30[:00[.5]]`, each
/// optionally followed by `z`, `utc`, `gmt`, `+01:00`, `+0100` (blank allowed
/// before the offset).
fn iso(s: &str) -> Result<When, ScheduleErrorKind> {
    let shape = iso_shape(s).ok_or(Unparseable)?;
    let Some((hour, minute, second, nanos, offset)) = shape.time else {
        return cursor::date(shape.year, shape.month, shape.day).map(When::Day);
    };
    // Range errors (25:00, month 13) before calendar errors (Feb 30).
    let time = cursor::time(hour, minute, second, nanos)?;
    let offset = offset.map(checked_offset).transpose()?;
    let dt = DateTime::from_parts(cursor::date(shape.year, shape.month, shape.day)?, time);
    match offset {
        None => Ok(When::Local(dt)),
        // Only the far end of year 9999 fails here.
        Some(offset) => offset.to_timestamp(dt).map(When::Instant).map_err(|_| BeyondMaxHold),
    }
}

fn iso_shape(s: &str) -> Option<IsoShape> {
    let mut c = Cursor::new(s);
    let year = c.digits(4)?;
    c.eat(b'-').then_some(())?;
    let month = c.digits(2)?;
    c.eat(b'-').then_some(())?;
    let day = c.digits(2)?;
    if c.done() {
        return Some(IsoShape { year, month, day, time: None });
    }
    (c.eat(b't') || c.eat_blanks()).then_some(())?;
    let hour = c.digits(2)?;
    c.eat(b':').then_some(())?;
    let minute = c.digits(2)?;
    let (mut second, mut nanos) = (0, 0);
    if c.eat(b':') {
        second = c.digits(2)?;
        if c.eat(b'.') || c.eat(b',') {
            let (value, count) = c.digits_upto(9)?;
            nanos = value * 10u32.pow((9 - count) as u32);
        }
    }
    c.eat_blanks();
    let offset = if c.done() { None } else { Some(offset_shape(&mut c)?) };
    c.done().then_some(IsoShape { year, month, day, time: Some((hour, minute, second, nanos, offset)) })
}

fn offset_shape(c: &mut Cursor) -> Option<OffsetShape> {
    if c.eat(b'z') || c.eat_word("utc") || c.eat_word("gmt") {
        return Some((1, 0, 0));
    }
    let sign = if c.eat(b'+') {
        1
    } else if c.eat(b'-') {
        -1
    } else {
        return None;
    };
    let hours = c.digits(2)?;
    c.eat(b':');
    let minutes = c.digits(2)?;
    Some((sign, hours, minutes))
}
