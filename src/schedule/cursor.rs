//! A tiny byte cursor and the shared field checks for the hand-written
//! parsers. Hand-written rather than jiff's own parsers because those accept
//! far more (week dates, bracketed zones, military zones read as UTC, ...)
//! and "accept only what is documented" is what keeps a typo from being
//! read as some other time.

use jiff::civil::{Date, Time, Weekday};
use jiff::tz::Offset;

use super::ScheduleErrorKind;

pub(super) struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    pub(super) fn new(text: &'a str) -> Self {
        Cursor { bytes: text.as_bytes(), pos: 0 }
    }

    pub(super) fn done(&self) -> bool {
        self.pos == self.bytes.len()
    }

    pub(super) fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    /// Consumes `byte` if it is next.
    pub(super) fn eat(&mut self, byte: u8) -> bool {
        if self.peek() == Some(byte) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// Consumes the ASCII text `word` (already lower case) if it is next.
    pub(super) fn eat_word(&mut self, word: &str) -> bool {
        if self.bytes[self.pos..].starts_with(word.as_bytes()) {
            self.pos += word.len();
            true
        } else {
            false
        }
    }

    /// Consumes spaces and tabs; tells whether there were any.
    pub(super) fn eat_blanks(&mut self) -> bool {
        let start = self.pos;
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.pos += 1;
        }
        self.pos > start
    }

    /// Exactly `n` ASCII digits as a number (n <= 9, so it fits).
    pub(super) fn digits(&mut self, n: usize) -> Option<u32> {
        let end = self.pos.checked_add(n)?;
        let field = self.bytes.get(self.pos..end)?;
        if !field.iter().all(u8::is_ascii_digit) {
            return None;
        }
        self.pos = end;
        Some(field.iter().fold(0, |acc, d| acc * 10 + u32::from(d - b'0')))
    }

    /// One or more digits, at most `max`; returns (value, count).
    pub(super) fn digits_upto(&mut self, max: usize) -> Option<(u32, usize)> {
        let run = self.bytes[self.pos..].iter().take_while(|b| b.is_ascii_digit()).count();
        if run == 0 || run > max {
            return None;
        }
        self.digits(run).map(|v| (v, run))
    }
}

/// A calendar date from already shape-checked fields. Month or day outside
/// 1..=12 / 1..=31 is unreadable; a day past the end of its month (Feb 30,
/// Feb 29 in a common year) is `NonexistentDate`.
pub(super) fn date(year: u32, month: u32, day: u32) -> Result<Date, ScheduleErrorKind> {
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return Err(ScheduleErrorKind::Unparseable);
    }
    let year = i16::try_from(year).map_err(|_| ScheduleErrorKind::Unparseable)?;
    // In range by the checks above, so the only failure is a too-large day.
    Date::new(year, month as i8, day as i8).map_err(|_| ScheduleErrorKind::NonexistentDate)
}

/// A wall-clock time; 24:00 and leap seconds are not accepted.
pub(super) fn time(hour: u32, minute: u32, second: u32, nanos: u32) -> Result<Time, ScheduleErrorKind> {
    if hour > 23 || minute > 59 || second > 59 || nanos > 999_999_999 {
        return Err(ScheduleErrorKind::Unparseable);
    }
    Time::new(hour as i8, minute as i8, second as i8, nanos as i32).map_err(|_| ScheduleErrorKind::Unparseable)
}

/// A UTC offset as written: sign (+1/-1), hours, minutes.
pub(super) type OffsetShape = (i32, u32, u32);

/// `monday` or `mon` (lower case) to a weekday.
pub(super) fn weekday_name(s: &str) -> Option<Weekday> {
    const NAMES: [(&str, Weekday); 7] = [
        ("monday", Weekday::Monday),
        ("tuesday", Weekday::Tuesday),
        ("wednesday", Weekday::Wednesday),
        ("thursday", Weekday::Thursday),
        ("friday", Weekday::Friday),
        ("saturday", Weekday::Saturday),
        ("sunday", Weekday::Sunday),
    ];
    NAMES.iter().find(|(full, _)| s == *full || s == &full[..3]).map(|&(_, day)| day)
}

/// Offsets up to ±23:59 (real ones stop at ±14:00; anything beyond is a typo).
pub(super) fn checked_offset((sign, hours, minutes): OffsetShape) -> Result<Offset, ScheduleErrorKind> {
    if hours > 23 || minutes > 59 {
        return Err(ScheduleErrorKind::Unparseable);
    }
    let seconds = sign * (hours as i32 * 3600 + minutes as i32 * 60);
    Offset::from_seconds(seconds).map_err(|_| ScheduleErrorKind::Unparseable)
}
