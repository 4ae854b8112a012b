//! Table tests with a fixed clock: now = 2026-11-23T10:00:00Z, a Monday;
//! daily hour 08:00; max hold 400 days (limit 2027-12-28T10:00:00Z).

use jiff::{SignedDuration, Timestamp, civil::Time, tz::TimeZone};

use super::ScheduleErrorKind::{BeyondMaxHold as Beyond, InPast, NonexistentDate as NoDay, Unparseable as Bad};
use super::*;

pub(super) const NOW: &str = "2026-11-23T10:00:00Z";

pub(super) fn ts(s: &str) -> Timestamp {
    s.parse().unwrap_or_else(|e| panic!("bad test timestamp {s}: {e}"))
}

pub(super) fn zone(name: &str) -> TimeZone {
    TimeZone::get(name).unwrap()
}

pub(super) fn ctx(tz: &TimeZone) -> ScheduleContext<'_> {
    ScheduleContext {
        now: ts(NOW),
        tz,
        daily_hour: Time::constant(8, 0, 0, 0),
        max_hold: SignedDuration::from_hours(400 * 24),
    }
}

pub(super) type Expect = Result<&'static str, ScheduleErrorKind>;

/// Runs one Deliver-On value through `plan` for one untagged recipient.
fn header(value: &str, c: &ScheduleContext) -> Result<RecipientRelease, ScheduleError> {
    let values = [value.to_string()];
    let rcpt = ["carol@example.com".to_string()];
    let req = ScheduleRequest { deliver_on: &values, hold: None, recipients: &rcpt };
    plan(&req, c).map(|mut v| v.remove(0))
}

pub(super) fn check_header_table(tz_name: &str, c: &ScheduleContext, table: &[(&str, Expect)]) {
    for &(value, expect) in table {
        let got = header(value, c);
        match (expect, got) {
            (Ok(at), Ok(r)) => {
                assert_eq!(r.release_at, ts(at), "{tz_name}: {value:?}");
                assert_eq!(r.source, ScheduleSource::DeliverOnHeader, "{value:?}");
                assert_eq!(r.address, "carol@example.com");
            }
            (Err(kind), Err(e)) => {
                assert_eq!(e.kind, kind, "{tz_name}: {value:?} -> {e}");
                assert_eq!(e.source, ScheduleSource::DeliverOnHeader);
                assert_eq!(e.value, value.trim(), "error quotes the trimmed value");
            }
            (want, got) => panic!("{tz_name}: {value:?}: wanted {want:?}, got {got:?}"),
        }
    }
}

#[test]
fn fixed_now_is_a_monday() {
    assert_eq!(ts(NOW).to_zoned(TimeZone::UTC).weekday(), jiff::civil::Weekday::Monday);
    assert_eq!(fuzz_context(&TimeZone::UTC).now, ts(NOW));
}

#[test]
fn deliver_on_accepted_forms_utc() {
    let tz = TimeZone::UTC;
    check_header_table(
        "UTC",
        &ctx(&tz),
        &[
            ("2026-12-25", Ok("2026-12-25T08:00:00Z")),
            ("  2026-12-25\t", Ok("2026-12-25T08:00:00Z")),
            ("2026-12-25 09:30", Ok("2026-12-25T09:30:00Z")),
            ("2026-12-25T09:30", Ok("2026-12-25T09:30:00Z")),
            ("2026-12-25t09:30:15", Ok("2026-12-25T09:30:15Z")),
            ("2026-12-25T09:30:00+01:00", Ok("2026-12-25T08:30:00Z")),
            ("2026-12-25T09:30:00Z", Ok("2026-12-25T09:30:00Z")),
            ("2026-12-25t09:30:00z", Ok("2026-12-25T09:30:00Z")),
            ("2026-12-25 09:30:00 +0100", Ok("2026-12-25T08:30:00Z")),
            ("2026-12-25T09:30-05:00", Ok("2026-12-25T14:30:00Z")),
            ("2026-12-25T09:30:00.25Z", Ok("2026-12-25T09:30:00.25Z")),
            ("2026-12-25 09:30 UTC", Ok("2026-12-25T09:30:00Z")),
            ("2026-12-25T09:30:00-00:00", Ok("2026-12-25T09:30:00Z")),
            ("Fri, 25 Dec 2026 09:30:00 +0100", Ok("2026-12-25T08:30:00Z")),
            ("25 Dec 2026 09:30:00 +0100", Ok("2026-12-25T08:30:00Z")),
            ("fri, 25 dec 2026 09:30 +0100", Ok("2026-12-25T08:30:00Z")),
            ("Friday, 25 Dec 2026 09:30:00 GMT", Ok("2026-12-25T09:30:00Z")),
            ("Fri, 25 Dec 2026 09:30:00 UT", Ok("2026-12-25T09:30:00Z")),
            ("Fri, 25 Dec 2026 09:30:00 EST", Ok("2026-12-25T14:30:00Z")),
            ("Fri, 25 Dec 2026 09:30:00 PDT", Ok("2026-12-25T16:30:00Z")),
            ("Fri, 25 Dec 2026 09:30:00 +0100 (CET)", Ok("2026-12-25T08:30:00Z")),
            ("Sat, 5 Dec 2026 09:30:00 -0000", Ok("2026-12-05T09:30:00Z")),
            ("tomorrow", Ok("2026-11-24T08:00:00Z")),
            ("ToMoRrOw", Ok("2026-11-24T08:00:00Z")),
            ("+3d", Ok("2026-11-26T08:00:00Z")),
            ("+3D", Ok("2026-11-26T08:00:00Z")),
            ("+0d", Ok(NOW)), // today, daily hour passed: at once
            ("+2h", Ok("2026-11-23T12:00:00Z")),
            ("+90m", Ok("2026-11-23T11:30:00Z")),
            ("+0h", Ok(NOW)),
            ("monday", Ok("2026-11-30T08:00:00Z")), // today is Monday: next week
            ("Mon", Ok("2026-11-30T08:00:00Z")),
            ("tuesday", Ok("2026-11-24T08:00:00Z")),
            ("TUE", Ok("2026-11-24T08:00:00Z")),
            ("wed", Ok("2026-11-25T08:00:00Z")),
            ("thursday", Ok("2026-11-26T08:00:00Z")),
            ("fri", Ok("2026-11-27T08:00:00Z")),
            ("saturday", Ok("2026-11-28T08:00:00Z")),
            ("sun", Ok("2026-11-29T08:00:00Z")),
        ],
    );
}

#[test]
fn deliver_on_errors_utc() {
    let tz = TimeZone::UTC;
    check_header_table(
        "UTC",
        &ctx(&tz),
        &[
            ("", Err(Bad)),
            ("   ", Err(Bad)),
            ("2026-13-45", Err(Bad)),
            ("2026-00-10", Err(Bad)),
            ("2026-12-00", Err(Bad)),
            ("2026-12-25 24:00", Err(Bad)),
            ("2026-12-25T09:60", Err(Bad)),
            ("2026-12-25T09:30:60Z", Err(Bad)),
            ("2026-12-25T09:30+24:00", Err(Bad)),
            ("2026-12-25T09:30+01:60", Err(Bad)),
            ("2026-12-25T09:30:00+01:00[Europe/Berlin]", Err(Bad)),
            ("2026-12-25T09:30:00+01:00 extra", Err(Bad)),
            ("2026-12-25extra", Err(Bad)),
            ("2026-12-5", Err(Bad)),
            ("2026-12-25T9:30", Err(Bad)),
            ("2026/12/25", Err(Bad)),
            ("25.12.2026", Err(Bad)),
            ("20261225", Err(Bad)),
            ("next week", Err(Bad)),
            ("tomorrow morning", Err(Bad)),
            ("today", Err(Bad)),
            ("+3", Err(Bad)),
            ("+d", Err(Bad)),
            ("+3w", Err(Bad)),
            ("+ 3d", Err(Bad)),
            ("-3d", Err(Bad)),
            ("mond", Err(Bad)),
            ("Thu, 25 Dec 2026 09:30:00 +0100", Err(Bad)), // wrong day name
            ("Fri, 25 Dec 2026 09:30:00", Err(Bad)),       // no zone
            ("Fri, 25 Dec 2026 09:30:00 A", Err(Bad)),     // military zone
            ("Fri, 25 Dec 2026 09:30:00 CET", Err(Bad)),   // unknown zone name
            ("Fri, 25 Dec 26 09:30:00 +0100", Err(Bad)),   // two-digit year
            ("Fri, 25 Dec 2026 09:30:00 +0100 (CET", Err(Bad)),
            ("Fri, 25 Dec 2026 09:30:00 +2400", Err(Bad)),
            ("Fri, 25 Dez 2026 09:30:00 +0100", Err(Bad)),
            ("2026-02-30", Err(NoDay)),
            ("2027-02-29", Err(NoDay)),
            ("2027-04-31 09:00", Err(NoDay)),
            ("2027-02-29T09:00:00Z", Err(NoDay)),
            ("Mon, 30 Feb 2027 09:30:00 +0100", Err(NoDay)),
            ("2026-11-22", Err(InPast)),
            ("2025-12-25", Err(InPast)),
            ("0000-01-01", Err(InPast)),
            ("2026-11-23 09:54:59", Err(InPast)),
            ("2026-11-23T09:54:59.999Z", Err(InPast)),
            ("Mon, 23 Nov 2026 09:50:00 +0000", Err(InPast)),
            ("2027-12-28T10:00:01Z", Err(Beyond)),
            ("2027-12-29", Err(Beyond)),
            ("+401d", Err(Beyond)),
            ("+576001m", Err(Beyond)),
            ("+9601h", Err(Beyond)),
            ("+999999999999d", Err(Beyond)),
            ("+9999999999999d", Err(Beyond)),
            ("+999999999999h", Err(Beyond)),
            ("9999-12-31T23:59:59Z", Err(Beyond)),
            ("9999-12-31", Err(Beyond)),
        ],
    );
}

#[test]
fn past_grace_and_today() {
    let tz = TimeZone::UTC;
    check_header_table(
        "UTC",
        &ctx(&tz),
        &[
            ("2026-11-23", Ok(NOW)),       // daily hour 08:00 passed: at once
            ("2026-11-23 09:55", Ok(NOW)), // exactly 5 minutes ago: at once
            ("2026-11-23T09:59:59Z", Ok(NOW)),
            ("2026-11-23T10:00:00Z", Ok(NOW)),
            ("2026-11-23T10:00:01Z", Ok("2026-11-23T10:00:01Z")),
            ("+0000000000000000000001d", Ok("2026-11-24T08:00:00Z")),
        ],
    );
    // Before the daily hour, "today" waits for it.
    let la = zone("America/Los_Angeles"); // 02:00 local
    check_header_table("LA", &ctx(&la), &[("2026-11-23", Ok("2026-11-23T16:00:00Z"))]);
}

#[test]
fn max_hold_edges() {
    let tz = TimeZone::UTC;
    check_header_table(
        "UTC",
        &ctx(&tz),
        &[
            ("2027-12-28T10:00:00Z", Ok("2027-12-28T10:00:00Z")), // exactly at the limit
            ("2027-12-28", Ok("2027-12-28T08:00:00Z")),
            ("+400d", Ok("2027-12-28T08:00:00Z")),
            ("+9600h", Ok("2027-12-28T10:00:00Z")),
            ("+576000m", Ok("2027-12-28T10:00:00Z")),
        ],
    );
}

pub(super) fn plan_tags(rcpts: &[&str], c: &ScheduleContext) -> Result<Vec<RecipientRelease>, ScheduleError> {
    let rcpts: Vec<String> = rcpts.iter().map(|s| s.to_string()).collect();
    plan(&ScheduleRequest { deliver_on: &[], hold: None, recipients: &rcpts }, c)
}

#[test]
fn plus_tags() {
    let tz = TimeZone::UTC;
    let c = ctx(&tz);
    type Row = (&'static str, Result<(&'static str, &'static str, ScheduleSource), ScheduleErrorKind>);
    use ScheduleSource::{Immediate as Now, PlusAddress as Tag};
    let table: &[Row] = &[
        ("bob+2026-12-25@example.com", Ok(("bob@example.com", "2026-12-25T08:00:00Z", Tag))),
        ("bob+20261225@example.com", Ok(("bob@example.com", "2026-12-25T08:00:00Z", Tag))),
        ("bob+20261225T0930@example.com", Ok(("bob@example.com", "2026-12-25T09:30:00Z", Tag))),
        ("bob+20261225t0930@example.com", Ok(("bob@example.com", "2026-12-25T09:30:00Z", Tag))),
        ("Bob+2026-12-25@Example.COM", Ok(("Bob@Example.COM", "2026-12-25T08:00:00Z", Tag))),
        ("bob+news+2026-12-25@x.org", Ok(("bob+news@x.org", "2026-12-25T08:00:00Z", Tag))),
        ("bob+2026-11-23@x.org", Ok(("bob@x.org", NOW, Tag))),
        ("bob+20261123T0955@x.org", Ok(("bob@x.org", NOW, Tag))),
        ("bob+2027-12-28@x.org", Ok(("bob@x.org", "2027-12-28T08:00:00Z", Tag))),
        ("bob+news@x.org", Ok(("bob+news@x.org", NOW, Now))),
        ("bob+2026@x.org", Ok(("bob+2026@x.org", NOW, Now))),
        ("bob+12345678x@x.org", Ok(("bob+12345678x@x.org", NOW, Now))),
        ("bob+2026-12-25x@x.org", Ok(("bob+2026-12-25x@x.org", NOW, Now))),
        ("bob+2026-12-25@", Ok(("bob@", "2026-12-25T08:00:00Z", Tag))),
        ("bob@x.org", Ok(("bob@x.org", NOW, Now))),
        ("\"bob+2026-12-25\"@x.org", Ok(("\"bob+2026-12-25\"@x.org", NOW, Now))),
        ("+2026-12-25@x.org", Ok(("+2026-12-25@x.org", NOW, Now))),
        ("bob+2026-12-25", Ok(("bob+2026-12-25", NOW, Now))),
        ("postmaster", Ok(("postmaster", NOW, Now))),
        ("bob+2026-02-30@x.org", Err(NoDay)),
        ("bob+20270229@x.org", Err(NoDay)),
        ("bob+2026-13-45@x.org", Err(Bad)),
        ("bob+12345678@x.org", Err(Bad)), // 8 digits are always read as a date
        ("bob+20261225T2460@x.org", Err(Bad)),
        ("bob+2026-11-22@x.org", Err(InPast)),
        ("bob+20261123T0954@x.org", Err(InPast)),
        ("bob+2027-12-29@x.org", Err(Beyond)),
    ];
    for &(rcpt, ref want) in table {
        match (want, plan_tags(&[rcpt], &c)) {
            (Ok((addr, at, source)), Ok(got)) => {
                let want = RecipientRelease {
                    original: rcpt.to_string(),
                    address: addr.to_string(),
                    release_at: ts(at),
                    source: *source,
                };
                assert_eq!(got, vec![want], "{rcpt}");
            }
            (Err(kind), Err(e)) => {
                assert_eq!((e.kind, e.source), (*kind, Tag), "{rcpt}: {e}");
                assert_eq!(e.value, rcpt, "the error quotes the whole address");
            }
            (want, got) => panic!("{rcpt}: wanted {want:?}, got {got:?}"),
        }
    }
}

#[test]
fn split_date_tag_shapes() {
    let s = |a: &str| split_date_tag(a);
    let some = |a: &str, t: &str| Some((a.to_string(), t.to_string()));
    assert_eq!(s("bob+2026-12-25@x"), some("bob@x", "2026-12-25"));
    assert_eq!(s("bob+20261225T0930@x"), some("bob@x", "20261225T0930"));
    assert_eq!(s("a+b+20261225@x"), some("a+b@x", "20261225"));
    assert_eq!(s("a+20261225@x@y"), None, "the domain starts at the last @");
    assert_eq!(s("bob+20261225@x"), some("bob@x", "20261225"));
    assert_eq!(s("bob+2026-02-30@x"), some("bob@x", "2026-02-30")); // shape only
    for plain in [
        "bob+news@x",
        "bob+2026@x",
        "bob+12345678x@x",
        "bob+2026_12_25@x",
        "bob+２０２６１２２５@x",
        "\"b+20261225\"@x",
        "+20261225@x",
        "bob+20261225",
        "",
        "@",
        "+@",
        "bob+20261225T093@x",
        "bob+2026-12-25T0930@x",
    ] {
        assert_eq!(s(plain), None, "{plain:?}");
    }
}
