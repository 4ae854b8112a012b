//! A trace query and the forms its command-line values take. Pure: table-tested.
//!
//! Time values (`--since`, `--until`, `--sent-since`, `--sent-until`):
//! - a date `2026-11-23`: the whole day in the operator's timezone (`--since` from its
//!   start, `--until` through its end);
//! - a local date and time `2026-11-23 14:30` or `2026-11-23T14:30[:ss]`;
//! - an instant `2026-11-23T14:30:00Z` / `…+01:00`;
//! - `now`, `today`, `yesterday`, or an age `30m`, `12h`, `7d` (that long ago).

use std::net::IpAddr;

use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;
use jiff::{Span, Timestamp, ToSpan};

use crate::store::QueueState;

/// Every filter is optional; those given must all match.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TraceQuery {
    pub user: Option<String>,
    pub sender: Option<String>,
    pub recipient: Option<String>,
    /// Submission (compose) time, `since <= t < until`.
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
    /// Time of a delivery to the relay, `sent_since <= t < sent_until`.
    pub sent_since: Option<Timestamp>,
    pub sent_until: Option<Timestamp>,
    pub client_ip: Option<String>,
    pub relay_ip: Option<String>,
    pub system_ip: Option<String>,
    /// Every word must be in the subject.
    pub subject: Option<String>,
    /// Every word must be in the subject or a text part.
    pub text: Option<String>,
    pub state: Option<QueueState>,
    /// `system`, or the connected account it was sent as (its name as written).
    pub route: Option<String>,
    /// Only messages some attempt may have delivered without a reply (`--state possibly-delivered`).
    pub possibly_delivered: bool,
    /// The most records returned, newest first.
    pub limit: usize,
}

pub const TIME_FORMS: &str = "2026-11-23 (whole day), 2026-11-23 14:30, 2026-11-23T14:30:00+01:00, now, today, yesterday, or an age like 30m, 12h, 7d";

/// Which end of a range a value is for: a bare date means the day's start for `From` and
/// the next day's start (exclusive) for `To`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    From,
    To,
}

pub fn parse_time(value: &str, end: End, now: Timestamp, tz: &TimeZone) -> Result<Timestamp, String> {
    let v = value.trim();
    let bad = || format!("{value:?} is not a time; use {TIME_FORMS}");
    let day = |d: Date| -> Result<Timestamp, String> {
        let d = if end == End::To { d.tomorrow().map_err(|_| bad())? } else { d };
        d.to_zoned(tz.clone()).map(|z| z.timestamp()).map_err(|_| bad())
    };
    let today = now.to_zoned(tz.clone()).date();
    match v.to_ascii_lowercase().as_str() {
        "now" => return Ok(now),
        "today" => return day(today),
        "yesterday" => return day(today.yesterday().map_err(|_| bad())?),
        _ => {}
    }
    if let Some(age) = parse_age(v) {
        return now.checked_sub(age).map_err(|_| bad());
    }
    if let Ok(ts) = v.parse::<Timestamp>() {
        return Ok(ts);
    }
    // A bare date is ten characters; jiff would also read a date out of a date-time.
    if v.len() == 10
        && let Ok(d) = v.parse::<Date>()
    {
        return day(d);
    }
    if let Ok(dt) = v.replacen(' ', "T", 1).parse::<DateTime>() {
        return tz.to_ambiguous_zoned(dt).compatible().map(|z| z.timestamp()).map_err(|_| bad());
    }
    Err(bad())
}

fn parse_age(v: &str) -> Option<Span> {
    let unit = v.chars().last()?;
    let n: i64 = v[..v.len() - unit.len_utf8()].parse().ok().filter(|n| *n >= 0 && *n <= 100_000)?;
    match unit {
        'm' => Some(n.minutes()),
        'h' => Some(n.hours()),
        'd' => Some((n * 24).hours()),
        _ => None,
    }
}

/// An IP filter must be an IP address (the index holds canonical forms).
pub fn parse_ip(value: &str) -> Result<String, String> {
    let bare = value.trim().trim_start_matches('[').trim_end_matches(']');
    bare.parse::<IpAddr>()
        .map(|_| super::document::ip_term(bare))
        .map_err(|_| format!("{value:?} is not an IP address (IPv4 like 192.0.2.1 or IPv6 like 2001:db8::1)"))
}

/// A range must not be empty: a reversed range is almost always a typo.
pub fn check_range(what: &str, from: Option<Timestamp>, to: Option<Timestamp>) -> Result<(), String> {
    match (from, to) {
        (Some(f), Some(t)) if f >= t => Err(format!("{what}: the start ({f}) is not before the end ({t})")),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn time_forms() {
        let tz = TimeZone::get("Europe/Berlin").unwrap();
        let now = ts("2026-11-23T15:00:00Z");
        let table: &[(&str, End, &str)] = &[
            ("2026-11-20", End::From, "2026-11-19T23:00:00Z"),
            ("2026-11-20", End::To, "2026-11-20T23:00:00Z"),
            ("2026-11-20 08:30", End::From, "2026-11-20T07:30:00Z"),
            ("2026-11-20T08:30", End::To, "2026-11-20T07:30:00Z"),
            ("2026-11-20T08:30:15", End::From, "2026-11-20T07:30:15Z"),
            ("2026-11-20T08:30:00+05:00", End::From, "2026-11-20T03:30:00Z"),
            ("2026-11-20T08:30:00Z", End::To, "2026-11-20T08:30:00Z"),
            ("now", End::To, "2026-11-23T15:00:00Z"),
            ("today", End::From, "2026-11-22T23:00:00Z"),
            ("today", End::To, "2026-11-23T23:00:00Z"),
            ("Yesterday", End::From, "2026-11-21T23:00:00Z"),
            ("30m", End::From, "2026-11-23T14:30:00Z"),
            ("12h", End::From, "2026-11-23T03:00:00Z"),
            ("7d", End::From, "2026-11-16T15:00:00Z"),
            // the spring-forward gap: 02:30 does not exist; later side, like Deliver-On
            ("2026-03-29 02:30", End::From, "2026-03-29T01:30:00Z"),
        ];
        for (input, end, want) in table {
            assert_eq!(parse_time(input, *end, now, &tz), Ok(ts(want)), "{input} {end:?}");
        }
        for bad in ["", "tomorrowish", "2026-13-01", "2026-11-20 25:00", "-3d", "3w", "1000000d", "12"] {
            let err = parse_time(bad, End::From, now, &tz).unwrap_err();
            assert!(err.contains("is not a time") && err.contains("2026-11-23 (whole day)"), "{bad}: {err}");
        }
    }

    #[test]
    fn ip_filters() {
        assert_eq!(parse_ip("192.0.2.1"), Ok("192.0.2.1".into()));
        assert_eq!(parse_ip("[::FFFF:192.0.2.1]"), Ok("192.0.2.1".into()));
        assert_eq!(parse_ip("2001:DB8::1"), Ok("2001:db8::1".into()));
        assert!(parse_ip("mail.example.com").unwrap_err().contains("is not an IP address"));
    }

    #[test]
    fn reversed_ranges_are_refused() {
        let (a, b) = (Some(ts("2026-01-01T00:00:00Z")), Some(ts("2026-02-01T00:00:00Z")));
        assert!(check_range("--since/--until", a, b).is_ok());
        assert!(check_range("--since/--until", b, a).unwrap_err().contains("is not before"));
        assert!(check_range("--since/--until", a, a).is_err());
        assert!(check_range("--since/--until", None, a).is_ok());
    }
}
