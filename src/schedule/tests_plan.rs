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
    plan(&ScheduleRequest { deliver_on: &h, hold: hold.as_ref(), recipients: &r }, &ctx(&tz))
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
    let list = run(&[], Some(Hold::for_secs(3600)), &rcpts[..2]).unwrap();
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
    let until = |s: &str| Some(Hold::until(ts(s)));
    let list = run(&["2026-12-25"], until("2026-12-25T08:00:00Z"), &["b@x.org"]).unwrap();
    assert_eq!(summary(&list), vec![("b@x.org", ts("2026-12-25T08:00:00Z"), Header)]);
    let e = err(&["2026-12-25"], until("2026-12-25T08:00:01Z"), &["b@x.org"]);
    assert_eq!((e.kind, e.source, e.value.as_str()), (Conflict, Header, "2026-12-25"));
    assert!(run(&["+2h"], Some(Hold::for_secs(7200)), &["b@x.org"]).is_ok());
    assert_eq!(err(&["+2h"], Some(Hold::for_secs(7201)), &["b@x.org"]).kind, Conflict);
    // Both "at once": equal.
    assert!(run(&["2026-11-23"], Some(Hold::for_secs(0)), &["b@x.org"]).is_ok());
    // A bad hold is reported before the header is looked at.
    let e = err(&["nonsense"], Some(Hold::for_secs(u64::MAX)), &["b@x.org"]);
    assert_eq!((e.kind, e.source), (Beyond, HoldFor));
}

#[test]
fn holds() {
    let tz = TimeZone::UTC;
    let c = ctx(&tz);
    let now = ts(NOW);
    let limit = ts("2027-12-28T10:00:00Z");
    let secs = |d: SignedDuration| d.as_secs() as u64;
    let ok = |h: Hold| check_hold(&h, &c).unwrap();
    let fail = |h: Hold| check_hold(&h, &c).map(|_| ()).unwrap_err();
    assert_eq!(ok(Hold::until(now)), now);
    assert_eq!(ok(Hold::until(limit)), limit);
    assert_eq!(ok(Hold::for_secs(0)), now);
    assert_eq!(ok(Hold::for_secs(secs(c.max_hold))), limit);
    let e = fail(Hold::until(ts("2026-11-23T09:59:59Z")));
    assert_eq!((e.kind, e.source, e.value.as_str()), (InPast, HoldUntil, "2026-11-23T09:59:59Z"));
    let e = fail(Hold::until(ts("2027-12-28T10:00:01Z")));
    assert_eq!((e.kind, e.source), (Beyond, HoldUntil));
    let e = fail(Hold::for_secs(secs(c.max_hold) + 1));
    assert_eq!((e.kind, e.source, e.value.as_str()), (Beyond, HoldFor, "34560001"));
    assert_eq!(fail(Hold::for_secs(u64::MAX)).kind, Beyond);
    assert_eq!(fail(Hold::for_secs(i64::MAX as u64)).kind, Beyond);

    let list = run(&[], Some(Hold::until(ts("2026-12-01T12:00:00Z"))), &["b@x.org"]).unwrap();
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
    // Stored in queue records under the same spellings.
    for s in ScheduleSource::ALL {
        assert_eq!(serde_json::to_string(&s).unwrap(), format!("\"{}\"", s.as_str()));
        assert_eq!(serde_json::from_str::<ScheduleSource>(&format!("\"{}\"", s.as_str())).unwrap(), s);
    }
    assert!(serde_json::from_str::<ScheduleSource>("\"someday\"").is_err());
}

/// Every reply text, produced through the real code paths.
fn message_table() -> Vec<(ScheduleError, &'static str)> {
    let held = |s: &str| Some(Hold::parse_until(s).unwrap());
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
        (err(&[], held("2026-11-23T10:00:00+01:00"), &[]), "HOLDUNTIL=2026-11-23T10:00:00+01:00 is in the past"),
        (
            err(&[], held("2028-01-01T00:00:00.5Z"), &[]),
            "HOLDUNTIL=2028-01-01T00:00:00.5Z is further ahead than this server's maximum hold",
        ),
        (
            Hold::parse_until("2027-02-30T10:00:00Z").unwrap_err(),
            "HOLDUNTIL=2027-02-30T10:00:00Z names a day that does not exist in the calendar",
        ),
        (
            Hold::parse_until("1795424400").unwrap_err(),
            "HOLDUNTIL=1795424400 is not an RFC 3339 date-time (RFC 4865), such as 2027-01-15T10:00:00Z or 2027-01-15T11:00:00+01:00",
        ),
        (Hold::parse_for("1h").unwrap_err(), "HOLDFOR=1h is not a number of seconds (RFC 4865)"),
        (
            Hold::parse_for("99999999999999999999999").unwrap_err(),
            "HOLDFOR=99999999999999999999999 seconds is further ahead than this server's maximum hold",
        ),
        (
            err(&[], Some(Hold::for_secs(34_560_001)), &[]),
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

/// HOLDUNTIL read from the parameter as sent (RFC 4865 §3, RFC 3339 §5.6): fractions round up,
/// impossible fields are refused as they are in Deliver-On, the value is kept as written.
#[test]
fn holduntil_values() {
    use ScheduleErrorKind::{NonexistentDate as NoDay, Unparseable as Bad};
    let ok: &[(&str, &str)] = &[
        ("2027-01-15T10:00:00Z", "2027-01-15T10:00:00Z"),
        ("2027-01-15t10:00:00z", "2027-01-15T10:00:00Z"),
        ("2027-01-15T11:00:00+01:00", "2027-01-15T10:00:00Z"),
        ("2027-01-15T05:30:00-04:30", "2027-01-15T10:00:00Z"),
        ("2027-01-15T10:00:00-00:00", "2027-01-15T10:00:00Z"),
        // Rounded up, never down: .512 must not send early (smtp-proto truncated it).
        ("2027-01-15T10:00:00.512Z", "2027-01-15T10:00:01Z"),
        ("2027-01-15T10:00:00.000000001Z", "2027-01-15T10:00:01Z"),
        ("2027-01-15T10:00:00.000Z", "2027-01-15T10:00:00Z"),
        ("2027-01-15T23:59:59.9Z", "2027-01-16T00:00:00Z"),
        ("2028-02-29T10:00:00Z", "2028-02-29T10:00:00Z"),
    ];
    for (text, want) in ok {
        let hold = Hold::parse_until(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(hold, Hold::Until { at: ts(want), text: text.to_string() }, "{text}");
    }
    let bad: &[(&str, ScheduleErrorKind)] = &[
        ("2027-02-30T10:00:00Z", NoDay),
        ("2027-02-29T10:00:00Z", NoDay),
        ("2027-04-31T10:00:00Z", NoDay),
        ("2027-01-15T24:00:00Z", Bad),
        ("2027-01-15T10:60:00Z", Bad),
        ("2027-01-15T10:00:60Z", Bad),
        ("2027-13-15T10:00:00Z", Bad),
        ("2027-01-15T10:00:00+24:00", Bad),
        ("2027-01-15T10:00:00", Bad),
        ("2027-01-15T10:00Z", Bad),
        ("2027-01-15 10:00:00Z", Bad),
        ("2027-01-15T10:00:00.Z", Bad),
        ("2027-01-15T10:00:00.0000000001Z", Bad),
        ("2027-01-15T10:00:00+0100", Bad),
        ("2027-01-15T10:00:00Z ", Bad),
        ("2027-01-15", Bad),
        ("1795424400", Bad),
        ("", Bad),
    ];
    for (text, kind) in bad {
        let e = Hold::parse_until(text).expect_err(text);
        assert_eq!((e.kind, e.source, e.value.as_str()), (*kind, HoldUntil, *text), "{text}");
    }
}

#[test]
fn holdfor_values() {
    assert_eq!(Hold::parse_for("3600"), Ok(Hold::For { secs: 3600, text: "3600".into() }));
    assert_eq!(Hold::parse_for("0"), Ok(Hold::For { secs: 0, text: "0".into() }));
    assert_eq!(Hold::parse_for("007"), Ok(Hold::For { secs: 7, text: "007".into() }));
    for text in ["", "-5", "+5", "5s", "1e3", " 5", "0x10"] {
        let e = Hold::parse_for(text).expect_err(text);
        assert_eq!((e.kind, e.source), (ScheduleErrorKind::Unparseable, HoldFor), "{text:?}");
    }
    // Too large for any calendar: the same words as any other too-far schedule.
    let e = Hold::parse_for("99999999999999999999999").unwrap_err();
    assert_eq!((e.kind, e.source), (Beyond, HoldFor));
    let tz = TimeZone::UTC;
    let e = check_hold(&Hold::parse_for("18446744073709551615").unwrap(), &ctx(&tz)).unwrap_err();
    assert_eq!((e.kind, e.value.as_str()), (Beyond, "18446744073709551615"));
}
