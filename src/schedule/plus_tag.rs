//! Dated plus-addresses: `bob+2026-12-25@example.com`.
//!
//! "Date-shaped" is decided by the characters alone (digits where digits
//! go), never by whether the digits make a valid date: otherwise a typo
//! like `bob+20261325@` would silently stop being a schedule and go out at
//! once. The price is that an all-digit 8-character tag (`orders+12345678@`)
//! is always read as a date; quoting the local part opts out.

use super::{
    ScheduleErrorKind::{self, Unparseable},
    cursor,
    deliver_on::When,
};

/// Splits a dated plus tag off an address. `Some((address_without_tag,
/// tag_text))` only when the text after the last `+` of the local part is
/// exactly `YYYY-MM-DD`, `YYYYMMDD` or `YYYYMMDDTHHMM` (`T` in either case).
/// Quoted local parts, addresses without `@`, and an empty part before the
/// `+` are left alone.
pub fn split_date_tag(address: &str) -> Option<(String, String)> {
    let at = address.rfind('@')?;
    let (local, domain) = address.split_at(at);
    if local.contains('"') {
        return None;
    }
    let plus = local.rfind('+')?;
    let (base, tag) = (&local[..plus], &local[plus + 1..]);
    if base.is_empty() || !date_shaped(tag) {
        return None;
    }
    Some((format!("{base}{domain}"), tag.to_string()))
}

/// Whether `tag` has one of the three tag shapes.
fn date_shaped(tag: &str) -> bool {
    let b = tag.as_bytes();
    let digits = |from: usize, to: usize| b[from..to].iter().all(u8::is_ascii_digit);
    match b.len() {
        10 => digits(0, 4) && b[4] == b'-' && digits(5, 7) && b[7] == b'-' && digits(8, 10),
        8 => digits(0, 8),
        13 => digits(0, 8) && matches!(b[8], b't' | b'T') && digits(9, 13),
        _ => false,
    }
}

/// Reads a tag returned by [`split_date_tag`]: a day (released at the daily
/// hour) or a local date-time. Field ranges and calendar checks are the same
/// as for Deliver-On, so `2026-02-30` is `NonexistentDate` here too.
pub(super) fn parse_tag(tag: &str) -> Result<When, ScheduleErrorKind> {
    if !date_shaped(tag) {
        return Err(Unparseable);
    }
    // Shape checked: every slice below is ASCII digits.
    let num = |from: usize, to: usize| tag[from..to].parse::<u32>().map_err(|_| Unparseable);
    let (year, month, day) =
        if tag.len() == 10 { (num(0, 4)?, num(5, 7)?, num(8, 10)?) } else { (num(0, 4)?, num(4, 6)?, num(6, 8)?) };
    if tag.len() == 13 {
        let time = cursor::time(num(9, 11)?, num(11, 13)?, 0, 0)?;
        let date = cursor::date(year, month, day)?;
        Ok(When::Local(date.to_datetime(time)))
    } else {
        cursor::date(year, month, day).map(When::Day)
    }
}
