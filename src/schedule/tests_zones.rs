//! Timezone-dependent cases: "today" in the user's zone, leap days, and
//! daylight-saving gaps and overlaps (Europe/Berlin, America/New_York).

use jiff::{SignedDuration, civil::Time, tz::TimeZone};

use super::ScheduleErrorKind::{InPast, NonexistentDate as NoDay};
use super::tests::{NOW, check_header_table, ctx, plan_tags, ts, zone};
use super::*;

#[test]
fn today_depends_on_the_users_timezone() {
    let tokyo = zone("Asia/Tokyo"); // 19:00 local on the 23rd
    check_header_table(
        "Tokyo",
        &ctx(&tokyo),
        &[
            ("2026-11-23", Ok(NOW)),
            ("2026-11-24", Ok("2026-11-23T23:00:00Z")),
            ("2026-12-25 09:30", Ok("2026-12-25T00:30:00Z")),
            ("tomorrow", Ok("2026-11-23T23:00:00Z")),
        ],
    );
    let kiritimati = zone("Pacific/Kiritimati"); // +14: already 00:00 on the 24th
    check_header_table(
        "Kiritimati",
        &ctx(&kiritimati),
        &[
            ("2026-11-23", Err(InPast)),
            ("2026-11-24", Ok("2026-11-23T18:00:00Z")),
            ("tomorrow", Ok("2026-11-24T18:00:00Z")),
            ("tuesday", Ok("2026-11-30T18:00:00Z")), // Tuesday there: next one, 2026-12-01 08:00 +14
        ],
    );
}

#[test]
fn leap_days() {
    let tz = TimeZone::UTC;
    let mut c = ctx(&tz);
    c.max_hold = SignedDuration::from_hours(1000 * 24);
    check_header_table(
        "UTC",
        &c,
        &[
            ("2028-02-29", Ok("2028-02-29T08:00:00Z")),
            ("Tue, 29 Feb 2028 12:00:00 +0000", Ok("2028-02-29T12:00:00Z")),
            ("2027-02-29", Err(NoDay)),
            ("2100-02-29", Err(NoDay)),
        ],
    );
    let r = plan_tags(&["bob+20280229@x.org"], &c).unwrap();
    assert_eq!(r[0].release_at, ts("2028-02-29T08:00:00Z"));
    let e = plan_tags(&["bob+2027-02-29@x.org"], &c).unwrap_err();
    assert_eq!((e.kind, e.source), (NoDay, ScheduleSource::PlusAddress));
}

#[test]
fn dst_europe_berlin() {
    let berlin = zone("Europe/Berlin");
    check_header_table(
        "Berlin",
        &ctx(&berlin),
        &[
            // 2027-03-28: 02:00 CET jumps to 03:00 CEST; 02:30 moves on by the gap.
            ("2027-03-28 01:59", Ok("2027-03-28T00:59:00Z")),
            ("2027-03-28 02:30", Ok("2027-03-28T01:30:00Z")),
            ("2027-03-28 03:30", Ok("2027-03-28T01:30:00Z")),
            // 2027-10-31: 03:00 CEST falls back to 02:00 CET; 02:30 twice, take the first.
            ("2027-10-31 02:30", Ok("2027-10-31T00:30:00Z")),
            ("2027-10-31 03:00", Ok("2027-10-31T02:00:00Z")),
            ("2027-10-31T02:30:00+01:00", Ok("2027-10-31T01:30:00Z")), // offset wins
            ("2026-12-25", Ok("2026-12-25T07:00:00Z")),
            ("2027-07-01", Ok("2027-07-01T06:00:00Z")),
        ],
    );
    let mut c = ctx(&berlin);
    c.daily_hour = Time::constant(2, 30, 0, 0);
    check_header_table(
        "Berlin 02:30",
        &c,
        &[("2027-03-28", Ok("2027-03-28T01:30:00Z")), ("2027-10-31", Ok("2027-10-31T00:30:00Z"))],
    );
    let r = plan_tags(&["bob+20270328T0230@x.org"], &ctx(&berlin)).unwrap();
    assert_eq!(r[0].release_at, ts("2027-03-28T01:30:00Z"));
}

#[test]
fn dst_america_new_york() {
    let ny = zone("America/New_York");
    check_header_table(
        "New York",
        &ctx(&ny),
        &[
            // 2027-03-14: 02:00 EST jumps to 03:00 EDT.
            ("2027-03-14 02:30", Ok("2027-03-14T07:30:00Z")),
            ("2027-03-14 01:30", Ok("2027-03-14T06:30:00Z")),
            // 2027-11-07: 02:00 EDT falls back to 01:00 EST; 01:30 twice.
            ("2027-11-07 01:30", Ok("2027-11-07T05:30:00Z")),
            ("2027-11-07 02:30", Ok("2027-11-07T07:30:00Z")),
            ("2027-03-14T02:30:00-05:00", Ok("2027-03-14T07:30:00Z")),
            ("2026-12-25", Ok("2026-12-25T13:00:00Z")),
        ],
    );
    let r = plan_tags(&["bob+20271107T0130@x.org"], &ctx(&ny)).unwrap();
    assert_eq!(r[0].release_at, ts("2027-11-07T05:30:00Z"));
}
