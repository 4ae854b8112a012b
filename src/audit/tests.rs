//! The index against a real store: every filter, updates replace, the change feed's
//! tokens, rebuild and retention.

use jiff::Timestamp;

use super::index::TraceIndex;
use super::query::TraceQuery;
use crate::store::tests::sample_record;
use crate::store::{Attempt, Event, EventKind, QueueId, QueueRecord, QueueState, Store};

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn put(store: &Store, rec: &QueueRecord, body: &[u8]) {
    let dir = store.bodies().write(rec.id, body).unwrap();
    store.insert_messages(std::slice::from_ref(rec), &[dir]).unwrap();
}

fn q() -> TraceQuery {
    TraceQuery { limit: 100, ..TraceQuery::default() }
}

struct Fixture {
    _dir: tempfile::TempDir,
    store: Store,
    index: TraceIndex,
    ids: Vec<String>,
}

/// Three messages: alice's held one, bob's sent one (relay 192.0.2.7 from 198.51.100.2),
/// carol's cancelled one from an IPv6 client.
fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let index = TraceIndex::open(dir.path(), &store).unwrap();
    let ids: Vec<String> = (0..3).map(|_| ulid::Ulid::new().to_string()).collect();

    let mut a = sample_record(&ids[0], "alice", ts("2026-12-25T08:00:00Z"), QueueState::Held);
    a.subject = Some("Christmas greetings".into());
    a.submitted_at = ts("2026-11-20T09:00:00Z");
    put(&store, &a, b"Subject: Christmas greetings\r\n\r\nSee you under the mistletoe.\r\n");

    let mut b = sample_record(&ids[1], "bob", ts("2026-11-21T08:00:00Z"), QueueState::Sent);
    b.recipients[0].original = "Dave@Example.ORG".into();
    b.recipients[0].address = "Dave@Example.ORG".into();
    b.subject = Some("Invoice 42".into());
    b.submitted_at = ts("2026-11-21T07:00:00Z");
    b.attempts = vec![Attempt {
        started_at: ts("2026-11-21T08:00:01Z"),
        recipients: vec!["Dave@Example.ORG".into()],
        finished_at: Some(ts("2026-11-21T08:00:02Z")),
        relay_ip: Some("192.0.2.7".parse().unwrap()),
        system_ip: Some("198.51.100.2".parse().unwrap()),
        reply: Some("250 2.0.0 Ok: queued as ABC".into()),
        possibly_delivered: vec![],
    }];
    b.events = vec![Event { at: ts("2026-11-21T08:00:02Z"), kind: EventKind::Delivered, detail: String::new() }];
    put(
        &store,
        &b,
        b"Subject: Invoice 42\r\nContent-Type: text/html\r\n\r\n<html><body><p>Amount due: <b>quarterly</b></p></body></html>\r\n",
    );

    let mut c = sample_record(&ids[2], "carol", ts("2026-11-30T08:00:00Z"), QueueState::Cancelled);
    c.sender = "carol@example.net".into();
    c.client = "[2001:db8::5]:40000".parse().unwrap();
    c.subject = None;
    c.submitted_at = ts("2026-11-22T12:00:00Z");
    c.route = Some("Work".into());
    put(&store, &c, b"\r\nno headers, just words\r\n");

    let mut w = index.writer().unwrap();
    assert_eq!(w.catch_up(&store, |_| {}).unwrap(), 3);
    assert_eq!(store.trace_pending_count().unwrap(), 0);
    Fixture { _dir: dir, store, index, ids }
}

#[test]
fn every_filter_finds_what_it_names_and_nothing_else() {
    let f = fixture();
    let (a, b, c) = (f.ids[0].clone(), f.ids[1].clone(), f.ids[2].clone());
    let cases: Vec<(&str, TraceQuery, Vec<&String>)> = vec![
        ("all, newest first", q(), vec![&c, &b, &a]),
        ("user", TraceQuery { user: Some("Bob".into()), ..q() }, vec![&b]),
        ("sender", TraceQuery { sender: Some("ALICE@example.com".into()), ..q() }, vec![&a]),
        ("sender domain", TraceQuery { sender: Some("@example.com".into()), ..q() }, vec![&b, &a]),
        (
            "recipient as typed",
            TraceQuery { recipient: Some("bob+2026-12-25@example.net".into()), ..q() },
            vec![&c, &a],
        ),
        ("recipient without tag", TraceQuery { recipient: Some("bob@example.net".into()), ..q() }, vec![&c, &a]),
        ("recipient any case", TraceQuery { recipient: Some("dave@example.org".into()), ..q() }, vec![&b]),
        ("recipient domain", TraceQuery { recipient: Some("@EXAMPLE.org".into()), ..q() }, vec![&b]),
        ("since", TraceQuery { since: Some(ts("2026-11-21T07:00:00Z")), ..q() }, vec![&c, &b]),
        ("until", TraceQuery { until: Some(ts("2026-11-21T07:00:00Z")), ..q() }, vec![&a]),
        ("sent since", TraceQuery { sent_since: Some(ts("2026-11-21T00:00:00Z")), ..q() }, vec![&b]),
        ("sent until", TraceQuery { sent_until: Some(ts("2026-11-21T08:00:02Z")), ..q() }, vec![]),
        ("client ip", TraceQuery { client_ip: Some("2001:db8::5".into()), ..q() }, vec![&c]),
        ("relay ip", TraceQuery { relay_ip: Some("192.0.2.7".parse().unwrap()), ..q() }, vec![&b]),
        ("system ip", TraceQuery { system_ip: Some("198.51.100.2".parse().unwrap()), ..q() }, vec![&b]),
        ("system ip is not relay ip", TraceQuery { system_ip: Some("192.0.2.7".parse().unwrap()), ..q() }, vec![]),
        ("subject word", TraceQuery { subject: Some("invoice".into()), ..q() }, vec![&b]),
        ("subject words all", TraceQuery { subject: Some("christmas invoice".into()), ..q() }, vec![]),
        ("content word", TraceQuery { text: Some("Mistletoe".into()), ..q() }, vec![&a]),
        ("content of html", TraceQuery { text: Some("quarterly".into()), ..q() }, vec![&b]),
        ("content has subject", TraceQuery { text: Some("greetings".into()), ..q() }, vec![&a]),
        ("state", TraceQuery { state: Some(QueueState::Cancelled), ..q() }, vec![&c]),
        ("route of an account", TraceQuery { route: Some("Work".into()), ..q() }, vec![&c]),
        ("route is the name as written", TraceQuery { route: Some("work".into()), ..q() }, vec![]),
        ("system route", TraceQuery { route: Some("System".into()), ..q() }, vec![&b, &a]),
        (
            "combined",
            TraceQuery { sender: Some("@example.com".into()), state: Some(QueueState::Held), ..q() },
            vec![&a],
        ),
        ("limit keeps the newest", TraceQuery { limit: 1, ..q() }, vec![&c]),
    ];
    for (name, query, want) in cases {
        let hits = f.index.search(&query).unwrap();
        let want: Vec<String> = want.into_iter().cloned().collect();
        assert_eq!(hits.ids, want, "{name}");
        if query.limit >= 3 {
            assert_eq!(hits.total, want.len(), "{name}: total");
        }
    }
    assert_eq!(f.index.search(&TraceQuery { limit: 1, ..q() }).unwrap().total, 3);
    let err = f.index.search(&TraceQuery { text: Some("  ,.; ".into()), ..q() }).unwrap_err();
    assert!(err.to_string().contains("has no words"), "{err}");
}

#[test]
fn a_changed_record_replaces_its_document() {
    let f = fixture();
    let a = f.ids[0].clone();
    f.store
        .update_message(a.parse().unwrap(), |r| {
            r.state = QueueState::Sent;
            r.attempts.push(Attempt {
                started_at: ts("2026-12-25T08:00:00Z"),
                recipients: vec![],
                finished_at: None,
                relay_ip: Some("203.0.113.9".parse().unwrap()),
                system_ip: Some("198.51.100.2".parse().unwrap()),
                reply: None,
                possibly_delivered: vec![],
            });
            Ok(())
        })
        .unwrap();
    // Not yet applied: the index still has the old state.
    assert_eq!(f.index.search(&TraceQuery { state: Some(QueueState::Held), ..q() }).unwrap().ids, vec![a.clone()]);
    assert_eq!(f.store.trace_pending_count().unwrap(), 1);
    f.index.writer().unwrap().catch_up(&f.store, |_| {}).unwrap();
    assert!(f.index.search(&TraceQuery { state: Some(QueueState::Held), ..q() }).unwrap().ids.is_empty());
    assert_eq!(
        f.index.search(&TraceQuery { relay_ip: Some("203.0.113.9".parse().unwrap()), ..q() }).unwrap().ids,
        vec![a]
    );
    assert_eq!(f.index.document_count().unwrap(), 3, "replaced, not added");
}

#[test]
fn a_change_made_while_indexing_stays_pending() {
    let f = fixture();
    let a = f.ids[0].clone();
    f.store
        .update_message(a.parse().unwrap(), |r| {
            r.subject = Some("first".into());
            Ok(())
        })
        .unwrap();
    let read = f.store.trace_pending(10).unwrap();
    assert_eq!(read.len(), 1);
    // The record changes again after the indexer read it.
    f.store
        .update_message(a.parse().unwrap(), |r| {
            r.subject = Some("second".into());
            Ok(())
        })
        .unwrap();
    f.store.trace_done(&[(read[0].id.clone(), read[0].token)]).unwrap();
    assert_eq!(f.store.trace_pending_count().unwrap(), 1, "the newer change must not be forgotten");
    f.index.writer().unwrap().catch_up(&f.store, |_| {}).unwrap();
    assert_eq!(f.index.search(&TraceQuery { subject: Some("second".into()), ..q() }).unwrap().ids, vec![a]);
}

#[test]
fn rebuild_and_a_second_writer() {
    let f = fixture();
    let mut w = f.index.writer().unwrap();
    // One writer at a time: a second (another process, in life) is told the index is busy.
    assert!(matches!(f.index.writer(), Err(super::IndexError::Busy)));
    assert_eq!(f.store.trace_request_rebuild().unwrap(), 3);
    assert_eq!(w.catch_up(&f.store, |_| {}).unwrap(), 3);
    assert_eq!(f.index.document_count().unwrap(), 3);
    assert!(!f.store.trace_rebuild_requested().unwrap());
}

#[test]
fn retention_removes_finished_records_from_store_and_index() {
    let f = fixture();
    let (a, b, c) = (&f.ids[0], &f.ids[1], &f.ids[2]);
    // Everything older than far in the future: only finished messages qualify (b sent, c
    // cancelled), never alice's held one.
    let mut expired = f.store.expired_records(ts("2030-01-01T00:00:00Z"), 100).unwrap();
    expired.sort();
    let mut want: Vec<QueueId> = vec![b.parse().unwrap(), c.parse().unwrap()];
    want.sort();
    assert_eq!(expired, want);
    // A cutoff before b's delivery keeps it.
    assert!(!f.store.expired_records(ts("2026-11-21T08:00:01Z"), 100).unwrap().contains(&b.parse().unwrap()));
    assert_eq!(f.store.remove_messages(&expired).unwrap(), 2);
    assert!(f.store.get_message(b.parse().unwrap()).unwrap().is_none());
    assert!(!f.store.bodies().exists(b.parse().unwrap()));
    f.index.writer().unwrap().catch_up(&f.store, |_| {}).unwrap();
    assert_eq!(f.index.search(&q()).unwrap().ids, vec![a.clone()]);
}

#[test]
fn a_new_schema_version_rebuilds() {
    let f = fixture();
    let dir = f.store.data_dir().join("trace");
    std::fs::write(dir.join("gatepost-schema-version"), "0\n").unwrap();
    drop(f.index);
    let index = TraceIndex::open(f.store.data_dir(), &f.store).unwrap();
    assert_eq!(index.document_count().unwrap(), 0);
    assert_eq!(index.writer().unwrap().catch_up(&f.store, |_| {}).unwrap(), 3);
    assert_eq!(index.search(&q()).unwrap().total, 3);
}

#[test]
fn newest_first_by_full_time_then_id() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let index = TraceIndex::open(dir.path(), &store).unwrap();
    // Four messages within one second, put in an order unlike their times, and two more at
    // the very same microsecond (a manual clock, a busy group commit): whole seconds cannot
    // tell them apart, the full time and then the id can.
    let base = ts("2026-11-23T10:00:00Z");
    let ids: Vec<String> = (0..6).map(|i| format!("01KB000000000000000000000{i}")).collect();
    let offsets_ms = [300, 900, 0, 600, 950, 950];
    for i in [2usize, 0, 3, 1, 5, 4] {
        let ms = offsets_ms[i];
        let mut r = sample_record(&ids[i], "alice", ts("2026-12-25T08:00:00Z"), QueueState::Held);
        r.submitted_at = base.checked_add(jiff::SignedDuration::from_millis(ms)).unwrap();
        put(&store, &r, b"Subject: x\r\n\r\nx\r\n");
    }
    index.writer().unwrap().catch_up(&store, |_| {}).unwrap();
    let all = index.search(&q()).unwrap().ids;
    let want: Vec<String> = [5, 4, 1, 3, 0, 2].iter().map(|&i| ids[i].clone()).collect();
    assert_eq!(all, want);
    assert_eq!(index.search(&TraceQuery { limit: 1, ..q() }).unwrap().ids, vec![ids[5].clone()], "--limit 1");
    // Ranges are as exact as the record: from 10:00:00.600 on.
    let since = TraceQuery { since: Some(base.checked_add(jiff::SignedDuration::from_millis(600)).unwrap()), ..q() };
    assert_eq!(index.search(&since).unwrap().ids, want[..4].to_vec());
}

#[test]
fn a_stopping_server_leaves_the_rest_in_the_feed() {
    let f = fixture();
    f.store.trace_request_rebuild().unwrap();
    let mut w = f.index.writer().unwrap();
    assert_eq!(w.catch_up_until(&f.store, |_| {}, || true).unwrap(), 0);
    assert_eq!(f.store.trace_pending_count().unwrap(), 3, "nothing lost, nothing done");
    assert_eq!(w.catch_up_until(&f.store, |_| {}, || false).unwrap(), 3);
}
