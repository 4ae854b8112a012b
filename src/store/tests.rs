use std::net::SocketAddr;

use jiff::Timestamp;

use super::*;

pub(crate) fn sample_record(id: &str, user: &str, release: Timestamp, state: QueueState) -> QueueRecord {
    QueueRecord {
        version: RECORD_VERSION,
        id: id.parse().expect("a queue id"),
        user: user.to_string(),
        sender: format!("{user}@example.com"),
        sender_name: Some("Alice".into()),
        recipients: vec![RecipientRecord {
            original: "bob+2026-12-25@example.net".into(),
            address: "bob@example.net".into(),
            release_at: release,
            source: crate::schedule::ScheduleSource::PlusAddress,
            state,
            next_attempt_at: None,
            attempts: 0,
            last_error: None,
            possibly_delivered: 0,
        }],
        subject: Some("hi".into()),
        message_id: Some("m1@example.com".into()),
        size: 10,
        body_sha256: sha256_hex(b"0123456789"),
        client: "127.0.0.1:5000".parse::<SocketAddr>().unwrap(),
        origin: Origin::Client,
        tls: Some("TLSv1.3".into()),
        helo: "client.example".into(),
        submitted_at: "2026-11-23T10:00:00Z".parse().unwrap(),
        session_id: "s1".into(),
        timezone: "UTC".into(),
        state,
        notice_of: None,
        route: None,
        paused: false,
        attempts: vec![],
        events: vec![],
    }
}

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

#[test]
fn due_index_orders_by_time_then_id_and_stops_at_future() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let ids: Vec<String> = (0..4).map(|_| QueueId::new().to_string()).collect();
    let recs = vec![
        sample_record(&ids[0], "alice", ts("2026-12-25T08:00:00Z"), QueueState::Held),
        sample_record(&ids[1], "alice", ts("2026-11-24T08:00:00Z"), QueueState::Held),
        sample_record(&ids[2], "bob", ts("1969-12-31T23:59:59Z"), QueueState::Due),
        sample_record(&ids[3], "bob", ts("2027-01-01T00:00:00Z"), QueueState::Sent),
    ];
    store.insert_messages(&recs, &[]).unwrap();
    let due = store.due_until(ts("2026-12-01T00:00:00Z"), 100).unwrap();
    assert_eq!(
        due,
        vec![
            (ts("1969-12-31T23:59:59Z"), ids[2].parse().unwrap()),
            (ts("2026-11-24T08:00:00Z"), ids[1].parse().unwrap())
        ]
    );
    assert_eq!(store.next_due().unwrap(), Some(ts("1969-12-31T23:59:59Z")));
    // a sent message is not in the due index
    assert_eq!(store.due_until(ts("2030-01-01T00:00:00Z"), 100).unwrap().len(), 3);

    let alice = store.list_messages(Some("alice"), None, 100).unwrap();
    assert_eq!(alice.len(), 2);
    assert!(store.list_messages(Some("ali"), None, 100).unwrap().is_empty());
    assert_eq!(store.list_messages(None, Some(QueueState::Sent), 100).unwrap().len(), 1);
    assert_eq!(store.message_count().unwrap(), 4);
}

#[test]
fn update_keeps_due_index_in_step() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let id = QueueId::new();
    store
        .insert_messages(&[sample_record(&id.to_string(), "alice", ts("2026-12-25T08:00:00Z"), QueueState::Held)], &[])
        .unwrap();
    let rec = store
        .update_message(id, |r| {
            r.recipients[0].state = QueueState::Cancelled;
            r.state = r.derive_state();
            Ok(())
        })
        .unwrap();
    assert_eq!(rec.state, QueueState::Cancelled);
    assert!(store.due_until(ts("2030-01-01T00:00:00Z"), 10).unwrap().is_empty());
    assert_eq!(store.get_message(id).unwrap().unwrap().state, QueueState::Cancelled);
    let missing = store.update_message("01JF0000000000000000000000".parse().unwrap(), |_| Ok(()));
    assert!(matches!(missing, Err(StoreError::NotFound(_))));
}

#[test]
fn damaged_records_are_errors_not_panics() {
    assert!(QueueRecord::decode(b"").is_err());
    assert!(QueueRecord::decode(b"{\"version\":1}").is_err());
    let mut rec = sample_record(&QueueId::new().to_string(), "a", ts("2026-12-25T08:00:00Z"), QueueState::Held);
    rec.version = 99;
    let err = QueueRecord::decode(&rec.encode()).unwrap_err();
    assert!(err.to_string().contains("version 99"), "{err}");
    rec.version = RECORD_VERSION;
    let bad_id = String::from_utf8(rec.encode()).unwrap().replace(&rec.id.to_string(), "not-a-ulid");
    let err = QueueRecord::decode(bad_id.as_bytes()).unwrap_err();
    assert!(err.to_string().contains("is not a queue id"), "{err}");
}

#[test]
fn damaged_database_file_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("gatepost.redb"), vec![0x5a; 8192]).unwrap();
    let err = Store::open(dir.path()).err().expect("garbage must not open");
    assert!(err.to_string().contains("gatepost.redb"), "{err}");
}

#[test]
fn clean_shutdown_marker_is_consumed() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    assert!(!store.take_clean_shutdown(), "a new store has no marker");
    store.mark_clean_shutdown().unwrap();
    assert!(store.take_clean_shutdown());
    assert!(!store.take_clean_shutdown(), "taken once: a crash of this run is noticed next time");
}

#[test]
fn users_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let u = UserRecord {
        name: "alice".into(),
        email: "Alice@Example.com".into(),
        password_hash: "x".into(),
        verified: true,
        disabled: false,
        timezone: Some("Asia/Shanghai".into()),
        created_at: ts("2026-11-23T10:00:00Z"),
        generation: 0,
    };
    assert!(store.insert_user(&u).unwrap());
    assert!(!store.insert_user(&u).unwrap(), "a taken name is refused in the same transaction");
    let stored = UserRecord { generation: 1, ..u.clone() };
    assert_eq!(store.get_user("alice").unwrap(), Some(stored.clone()));
    assert_eq!(store.list_users().unwrap(), vec![stored]);
    assert_eq!(store.get_user("bob").unwrap(), None);
}

/// Every change bumps the generation and lands in the change feed in the same transaction;
/// a refused change writes neither.
#[test]
fn user_changes_bump_the_generation_and_feed() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.last_user_change().unwrap(), 0, "a new store has an empty feed");
    assert!(store.user_changes_after(0, 10).unwrap().is_empty());
    let u = UserRecord {
        name: "alice".into(),
        email: "a@example.com".into(),
        password_hash: "x".into(),
        verified: true,
        disabled: false,
        timezone: None,
        created_at: ts("2026-11-23T10:00:00Z"),
        generation: 0,
    };
    store.insert_user(&u).unwrap();
    store.insert_user(&UserRecord { name: "bob".into(), ..u.clone() }).unwrap();
    let changed = store
        .update_user("alice", |u| {
            u.disabled = true;
            Ok::<_, StoreError>(())
        })
        .unwrap()
        .unwrap();
    assert_eq!((changed.generation, changed.disabled), (2, true));
    let refused = store.update_user("alice", |_| Err(StoreError::Refused("no".into())));
    assert!(refused.is_err());
    assert!(store.update_user("nobody", |_| Ok::<_, StoreError>(())).unwrap().is_none());
    assert_eq!(store.get_user("alice").unwrap().unwrap().generation, 2);
    let feed: Vec<(u64, String)> =
        store.user_changes_after(0, 10).unwrap().into_iter().map(|c| (c.seq, c.user)).collect();
    assert_eq!(feed, [(1, "alice".to_string()), (2, "bob".to_string()), (3, "alice".to_string())]);
    assert_eq!(store.last_user_change().unwrap(), 3);
    assert_eq!(store.user_changes_after(2, 10).unwrap().len(), 1);
}

#[test]
fn login_successes_are_remembered_and_forgotten() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let ip: std::net::IpAddr = "192.0.2.7".parse().unwrap();
    assert!(store.login_successes(ts("2026-01-01T00:00:00Z")).unwrap().is_empty());
    store.note_login_success(ip, "alice", ts("2026-03-01T00:00:00Z")).unwrap();
    store.note_login_success(ip, "bob", ts("2026-01-01T00:00:00Z")).unwrap();
    let since = store.login_successes(ts("2026-02-01T00:00:00Z")).unwrap();
    assert_eq!(since, vec![(ip, "alice".to_string(), ts("2026-03-01T00:00:00Z").as_second())]);
    store.forget_login_successes(ts("2026-02-01T00:00:00Z")).unwrap();
    assert_eq!(store.login_successes(ts("2000-01-01T00:00:00Z")).unwrap().len(), 1);
}

#[test]
fn body_files_are_sharded_and_verified() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let id = QueueId::new();
    let shard = store.bodies().write(id, b"hello\r\n").unwrap();
    sync_dir(&shard).unwrap();
    assert_eq!(store.bodies().read(id).unwrap(), b"hello\r\n");
    // time shards: the ULID's first four and next two characters
    let name = id.to_string();
    assert!(shard.ends_with(format!("{}/{}", name[0..4].to_ascii_lowercase(), name[4..6].to_ascii_lowercase())));
    let mut found = Vec::new();
    store
        .bodies()
        .scan(|s| {
            assert!(s.temps.is_empty());
            found.extend(s.bodies);
            Ok(())
        })
        .unwrap();
    assert_eq!(found, vec![(name, store.bodies().path(id))]);
    // A body is never replaced (ids are unique; a second write is a bug, not an update).
    let again = store.bodies().write(id, b"other\r\n").unwrap_err();
    assert_eq!(again.kind(), std::io::ErrorKind::AlreadyExists);
    assert_eq!(store.bodies().read(id).unwrap(), b"hello\r\n");
    assert_eq!(sha256_hex(b""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

/// Every index follows the record through insert, change and removal (store/tables.rs).
#[test]
fn indexes_follow_every_change() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let id = QueueId::new();
    let rec = sample_record(&id.to_string(), "alice", ts("2026-12-25T08:00:00Z"), QueueState::Sending);
    store.insert_messages(&[rec], &[]).unwrap();
    assert_eq!(store.sending_ids().unwrap(), [id]);
    assert_eq!(store.list_messages(Some("alice"), None, 10).unwrap().len(), 1);
    store
        .update_message(id, |r| {
            r.recipients[0].state = QueueState::Due;
            r.state = r.derive_state();
            Ok(())
        })
        .unwrap();
    assert!(store.sending_ids().unwrap().is_empty());
    assert_eq!(store.due_until(ts("2030-01-01T00:00:00Z"), 10).unwrap(), [(ts("2026-12-25T08:00:00Z"), id)]);
    assert_eq!(store.remove_messages(&[id, QueueId::new()]).unwrap(), 1, "an unknown id is skipped");
    assert!(store.due_until(ts("2030-01-01T00:00:00Z"), 10).unwrap().is_empty());
    assert!(store.list_messages(Some("alice"), None, 10).unwrap().is_empty());
    assert!(store.get_message(id).unwrap().is_none());
}
