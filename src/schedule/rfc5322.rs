//! RFC 5322 (and 2822) date-time values in a Deliver-On header:
//! `[day-name ","] day month year hh:mm[:ss] zone [(comment)]`.
//!
//! Deliberately narrower than the RFC's obsolete syntax: four-digit years
//! only, and of the obsolete zones only the ones whose meaning is certain
//! (UT, GMT, Z and the US zones). Single-letter military zones and unknown
//! names are refused instead of being read as UTC, which could send up to
//! 14 hours early.

use jiff::Timestamp;

use super::{
    ScheduleErrorKind::{self, BeyondMaxHold, Unparseable},
    cursor::{self, Cursor, checked_offset, weekday_name},
};

const MONTHS: [&str; 12] = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];

/// Obsolete zone names with a fixed meaning (RFC 5322 section 4.3).
const ZONES: [(&str, i32); 11] = [
    ("ut", 0),
    ("gmt", 0),
    ("z", 0),
    ("est", -5),
    ("edt", -4),
    ("cst", -6),
    ("cdt", -5),
    ("mst", -7),
    ("mdt", -6),
    ("pst", -8),
    ("pdt", -7),
];

/// Parses a lower-cased, trimmed value.
pub(super) fn parse(s: &str) -> Result<Timestamp, ScheduleErrorKind> {
    // A trailing comment such as "(CET)" is allowed and ignored.
    let body = match s.find('(') {
        Some(open) if s.ends_with(')') => &s[..open],
        Some(_) => return Err(Unparseable),
        None => s,
    };
    let mut tokens: Vec<&str> =
        body.split(|c: char| c.is_ascii_whitespace() || c == ',').filter(|t| !t.is_empty()).collect();
    let named_day = match tokens.first() {
        Some(t) if t.bytes().all(|b| b.is_ascii_alphabetic()) => {
            Some(weekday_name(tokens.remove(0)).ok_or(Unparseable)?)
        }
        _ => None,
    };
    let [day, month, year, time, zone] = tokens[..] else {
        return Err(Unparseable);
    };

    let day = whole(day, 1, 2).ok_or(Unparseable)?;
    let month = MONTHS.iter().position(|m| *m == month).ok_or(Unparseable)? as u32 + 1;
    let year = whole(year, 4, 4).ok_or(Unparseable)?;
    let (hour, minute, second) = clock(time).ok_or(Unparseable)?;
    let offset = match ZONES.iter().find(|(name, _)| *name == zone) {
        Some(&(_, hours)) => checked_offset((hours.signum(), hours.unsigned_abs(), 0))?,
        None => checked_offset(numeric_zone(zone).ok_or(Unparseable)?)?,
    };

    let time = cursor::time(hour, minute, second, 0)?;
    let date = cursor::date(year, month, day)?;
    // A day name that contradicts the date means one of them is a typo.
    if named_day.is_some_and(|d| d != date.weekday()) {
        return Err(Unparseable);
    }
    offset.to_timestamp(date.to_datetime(time)).map_err(|_| BeyondMaxHold)
}

/// A token of `min..=max` digits and nothing else.
fn whole(token: &str, min: usize, max: usize) -> Option<u32> {
    let mut c = Cursor::new(token);
    let (value, count) = c.digits_upto(max)?;
    (count >= min && c.done()).then_some(value)
}

/// `hh:mm` or `hh:mm:ss`.
fn clock(token: &str) -> Option<(u32, u32, u32)> {
    let mut c = Cursor::new(token);
    let hour = c.digits(2)?;
    c.eat(b':').then_some(())?;
    let minute = c.digits(2)?;
    let second = if c.eat(b':') { c.digits(2)? } else { 0 };
    c.done().then_some((hour, minute, second))
}

/// `+hhmm` / `-hhmm`.
fn numeric_zone(token: &str) -> Option<(i32, u32, u32)> {
    let mut c = Cursor::new(token);
    let sign = if c.eat(b'+') {
        1
    } else if c.eat(b'-') {
        -1
    } else {
        return None;
    };
    let hhmm = c.digits(4)?;
    c.done().then_some((sign, hhmm / 100, hhmm % 100))
}
