//! Combining sources: per-recipient dates, conflicts, RFC 4865 holds, the
//! stored source names, and the exact reply texts (which must match
//! `docs/scheduling.md`).

use jiff::{SignedDuration, Timestamp, tz::TimeZone};

use super::ScheduleErrorKind::{BeyondMaxHold as Beyond, Conflict, InPast};
use super::ScheduleSource::{DeliverOnHeader as Header, HoldFor, HoldUntil, Immediate, PlusAddress as Tag};
use super::tests::{NOW, ctx, ts};
use super::*;

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn run(headers: &[&str], hold: Option<Hold>, rcpts: &[&str]) -> Result<Vec<RecipientRelease>, ScheduleError> {
    let tz = TimeZone::UTC;
    let (h, r) = (strings(headers), strings(rcpts));
    plan(&ScheduleRequest { deliver_on: &h, hold, recipients: &r }, &ctx(&tz))
}

/// (address, release, source) of each recipient.
fn summary(list: &[RecipientRelease]) -> Vec<(&str, Timestamp, ScheduleSource)> {
    list.iter().map(|r| (r.address.as_str(), r.release_at, r.source)).collect()
}

fn err(headers: &[&str], hold: Option<Hold>, rcpts: &[&str]) -> ScheduleError {
    run(headers, hold, rcpts).expect_err("should be refused")
}

#[test]
fn per_recipient_dates() {
    let rcpts = ["a+2026-12-25@x.org", "b@x.org", "c+20270105T0700@y.org", "d+news@x.org"];
    let list = run(&["2026-12-01"], None, &rcpts).unwrap();
    assert_eq!(
        summary(&list),
        vec![
            ("a@x.org", ts("2026-12-25T08:00:00Z"), Tag),
            ("b@x.org", ts("2026-12-01T08:00:00Z"), Header),
            ("c@y.org", ts("2027-01-05T07:00:00Z"), Tag),
            ("d+news@x.org", ts("2026-12-01T08:00:00Z"), Header),
        ]
    );
    let originals: Vec<&str> = list.iter().map(|r| r.original.as_str()).collect();
    assert_eq!(originals, rcpts, "order and originals kept");

    let list = run(&[], None, &rcpts).unwrap();
    assert_eq!(list[1].release_at, ts(NOW));
    assert_eq!(list[1].source, Immediate);
    assert_eq!(list[0].source, Tag);

    // The tag wins over a hold too; untagged recipients follow the hold.
    let list = run(&[], Some(Hold::For(3600)), &rcpts[..2]).unwrap();
    assert_eq!(
        summary(&list),
        vec![("a@x.org", ts("2026-12-25T08:00:00Z"), Tag), ("b@x.org", ts("2026-11-23T11:00:00Z"), HoldFor),]
    );
    // An earlier tag than the header still wins for its recipient.
    let list = run(&["2026-12-25"], None, &["a+2026-11-30@x.org", "b@x.org"]).unwrap();
    assert_eq!(list[0].release_at, ts("2026-11-30T08:00:00Z"));
    assert_eq!(list[1].release_at, ts("2026-12-25T08:00:00Z"));

    assert_eq!(run(&[], None, &[]).unwrap(), vec![]);
}

#[test]
fn one_bad_tag_refuses_the_message() {
    let e = err(&[], None, &["a@x.org", "b+2026-02-30@x.org", "c+2025-01-01@x.org"]);
    assert_eq!((e.kind, e.source, e.value.as_str()), (ScheduleErrorKind::NonexistentDate, Tag, "b+2026-02-30@x.org"));
}

#[test]
fn conflicts() {
    let e = err(&["2026-12-25", "2026-12-26"], None, &["b@x.org"]);
    assert_eq!((e.kind, e.source, e.value.as_str()), (Conflict, Header, "2026-12-26"));
    // Same instant written differently: fine.
    let same = ["2026-12-25", " 2026-12-25T08:00:00Z ", "Fri, 25 Dec 2026 09:00:00 +0100", "2026-12-25 08:00"];
    let list = run(&same, None, &["b@x.org"]).unwrap();
    assert_eq!(summary(&list), vec![("b@x.org", ts("2026-12-25T08:00:00Z"), Header)]);
    // An unreadable header is reported as such, not as a conflict.
    let e = err(&["2026-12-25", "soon"], None, &["b@x.org"]);
    assert_eq!((e.kind, e.value.as_str()), (ScheduleErrorKind::Unparseable, "soon"));
    let e = err(&["soon", "2026-12-25"], None, &["b@x.org"]);
    assert_eq!(e.value, "soon");

    // Header and HOLDUNTIL/HOLDFOR.
    let until = |s: &str| Some(Hold::Until(ts(s)));
    let list = run(&["2026-12-25"], until("2026-12-25T08:00:00Z"), &["b@x.org"]).unwrap();
    assert_eq!(summary(&list), vec![("b@x.org", ts("2026-12-25T08:00:00Z"), Header)]);
    let e = err(&["2026-12-25"], until("2026-12-25T08:00:01Z"), &["b@x.org"]);
    assert_eq!((e.kind, e.source, e.value.as_str()), (Conflict, Header, "2026-12-25"));
    assert!(run(&["+2h"], Some(Hold::For(7200)), &["b@x.org"]).is_ok());
    assert_eq!(err(&["+2h"], Some(Hold::For(7201)), &["b@x.org"]).kind, Conflict);
    // Both "at once": equal.
    assert!(run(&["2026-11-23"], Some(Hold::For(0)), &["b@x.org"]).is_ok());
    // A bad hold is reported before the header is looked at.
    let e = err(&["nonsense"], Some(Hold::For(u64::MAX)), &["b@x.org"]);
    assert_eq!((e.kind, e.source), (Beyond, HoldFor));
}

#[test]
fn holds() {
    let tz = TimeZone::UTC;
    let c = ctx(&tz);
    let now = ts(NOW);
    let limit = ts("2027-12-28T10:00:00Z");
    let secs = |d: SignedDuration| d.as_secs() as u64;
    let ok = |h| check_hold(h, &c).unwrap();
    let fail = |h| check_hold(h, &c).map(|_| ()).unwrap_err();
    assert_eq!(ok(Hold::Until(now)), now);
    assert_eq!(ok(Hold::Until(limit)), limit);
    assert_eq!(ok(Hold::For(0)), now);
    assert_eq!(ok(Hold::For(secs(c.max_hold))), limit);
    let e = fail(Hold::Until(ts("2026-11-23T09:59:59Z")));
    assert_eq!((e.kind, e.source, e.value.as_str()), (InPast, HoldUntil, "1795427999"));
    let e = fail(Hold::Until(ts("2027-12-28T10:00:01Z")));
    assert_eq!((e.kind, e.source), (Beyond, HoldUntil));
    let e = fail(Hold::For(secs(c.max_hold) + 1));
    assert_eq!((e.kind, e.source, e.value.as_str()), (Beyond, HoldFor, "34560001"));
    assert_eq!(fail(Hold::For(u64::MAX)).kind, Beyond);
    assert_eq!(fail(Hold::For(i64::MAX as u64)).kind, Beyond);

    let list = run(&[], Some(Hold::Until(ts("2026-12-01T12:00:00Z"))), &["b@x.org"]).unwrap();
    assert_eq!(summary(&list), vec![("b@x.org", ts("2026-12-01T12:00:00Z"), HoldUntil)]);
}

#[test]
fn source_names_are_stable() {
    let names: Vec<&str> = ScheduleSource::ALL.iter().map(|s| s.as_str()).collect();
    assert_eq!(names, ["immediate", "deliver-on", "plus-address", "holduntil", "holdfor"]);
    for s in ScheduleSource::ALL {
        assert_eq!(ScheduleSource::parse(s.as_str()), Some(s));
    }
    assert_eq!(ScheduleSource::parse("Immediate"), None);
    assert_eq!(ScheduleSource::parse(""), None);
}

/// Every reply text, produced through the real code paths.
fn message_table() -> Vec<(ScheduleError, &'static str)> {
    let until = |s: &str| Some(Hold::Until(ts(s)));
    let tag = |a: &str| err(&[], None, &[a]);
    let head = |v: &str| err(&[v], None, &["b@x.org"]);
    vec![
        (
            head("2026-13-45"),
            "Deliver-On value \"2026-13-45\" is not a date; accepted: 2026-12-25, 2026-12-25 09:30, 2026-12-25T09:30, 2026-12-25T09:30:00+01:00, RFC 5322 date, tomorrow, +3d, +2h, monday",
        ),
        (head("2026-02-30"), "Deliver-On value \"2026-02-30\" names a day that does not exist in the calendar"),
        (
            head("2026-11-22 09:00"),
            "Deliver-On value \"2026-11-22 09:00\" is in the past (a date must be today or later, a time at most 5 minutes ago)",
        ),
        (head("+401d"), "Deliver-On value \"+401d\" is further ahead than this server's maximum hold"),
        (
            err(&["2026-12-25", "2026-12-26"], None, &[]),
            "Deliver-On value \"2026-12-26\" disagrees with another schedule of this message (an earlier Deliver-On header or HOLDUNTIL/HOLDFOR); give one release time",
        ),
        (
            tag("bob+2026-13-45@example.com"),
            "Date tag \"2026-13-45\" of recipient \"bob+2026-13-45@example.com\" is not a valid date; accepted tags: +2026-12-25, +20261225, +20261225T0930",
        ),
        (
            tag("bob+2026-02-30@example.com"),
            "Date tag \"2026-02-30\" of recipient \"bob+2026-02-30@example.com\" names a day that does not exist in the calendar",
        ),
        (
            tag("bob+2026-11-22@example.com"),
            "Date tag \"2026-11-22\" of recipient \"bob+2026-11-22@example.com\" is in the past",
        ),
        (
            tag("bob+2027-12-29@example.com"),
            "Date tag \"2027-12-29\" of recipient \"bob+2027-12-29@example.com\" is further ahead than this server's maximum hold",
        ),
        (err(&[], until("2026-11-23T09:00:00Z"), &[]), "HOLDUNTIL=1795424400 (2026-11-23T09:00:00Z) is in the past"),
        (
            err(&[], until("2028-01-01T00:00:00Z"), &[]),
            "HOLDUNTIL=1830297600 (2028-01-01T00:00:00Z) is further ahead than this server's maximum hold",
        ),
        (
            err(&[], Some(Hold::For(34_560_001)), &[]),
            "HOLDFOR=34560001 seconds is further ahead than this server's maximum hold",
        ),
        (
            head("\"now\"\r\n250 OK \u{fc}\\"),
            "Deliver-On value \"\\\"now\\\"\\u{d}\\u{a}250 OK \\u{fc}\\\\\" is not a date; accepted: 2026-12-25, 2026-12-25 09:30, 2026-12-25T09:30, 2026-12-25T09:30:00+01:00, RFC 5322 date, tomorrow, +3d, +2h, monday",
        ),
    ]
}

#[test]
fn messages_are_exact_and_documented() {
    let docs = include_str!("../../docs/scheduling.md");
    for (error, want) in message_table() {
        let got = error.to_string();
        assert_eq!(got, want);
        assert!(got.len() < 400 && got.bytes().all(|b| (0x20..0x7f).contains(&b)), "{got:?}");
        // The docs show the texts as Markdown code spans, where a backslash is literal.
        assert!(docs.contains(&format!("`{want}`")), "docs/scheduling.md lacks: {want}");
    }
}

#[test]
fn long_values_are_cut_in_replies() {
    let long = "9".repeat(100_000);
    let e = run(&[&long], None, &[]).unwrap_err();
    assert_eq!(e.value.len(), 100_000, "the struct keeps the full value");
    let text = e.to_string();
    assert!(text.len() < 400, "{}", text.len());
    assert!(text.contains("99999...\""), "{text}");
    let wide = "\u{1f600}".repeat(50);
    let text = run(&[&wide], None, &[]).unwrap_err().to_string();
    assert!(text.len() < 400 && text.is_ascii(), "{text}");
    let addr = format!("{}+20261325@{}", "\u{e9}".repeat(40), "x".repeat(300));
    let text = run(&[], None, &[&addr]).unwrap_err().to_string();
    assert!(text.len() < 400 && text.is_ascii(), "{text}");
}
