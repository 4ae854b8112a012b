use std::sync::Arc;

use jiff::Timestamp;

use super::*;
use crate::schedule::{RecipientRelease, ScheduleSource};

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn submission(body: &[u8], releases: &[(&str, &str)]) -> Submission {
    Submission {
        session_id: "s1".into(),
        user: "alice".into(),
        sender: "alice@example.com".into(),
        sender_name: None,
        recipients: releases
            .iter()
            .map(|(addr, at)| RecipientRelease {
                original: addr.to_string(),
                address: addr.to_string(),
                release_at: ts(at),
                source: ScheduleSource::DeliverOnHeader,
            })
            .collect(),
        subject: Some("s".into()),
        message_id: None,
        client: "127.0.0.1:4000".parse().unwrap(),
        tls: Some("TLSv1.3".into()),
        helo: "h".into(),
        submitted_at: ts("2026-11-23T10:00:00Z"),
        timezone: "UTC".into(),
        body: body.to_vec(),
        notice_of: None,
        route: None,
    }
}

#[tokio::test]
async fn submit_is_durable_and_grouped() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path()).unwrap());
    let queue = Arc::new(Queue::start(store.clone()));
    let mut tasks = Vec::new();
    for i in 0..50 {
        let q = queue.clone();
        tasks.push(tokio::spawn(async move {
            let body = format!("Subject: {i}\r\n\r\nbody {i}\r\n").into_bytes();
            let acc = q
                .submit(submission(&body, &[("b@x", "2026-12-25T08:00:00Z"), ("c@x", "2026-11-23T10:00:00Z")]))
                .await
                .unwrap();
            (acc, body)
        }));
    }
    for t in tasks {
        let (acc, body) = t.await.unwrap();
        assert_eq!(acc.release_times, vec![ts("2026-11-23T10:00:00Z"), ts("2026-12-25T08:00:00Z")]);
        assert_eq!(store.bodies().read(acc.id).unwrap(), body);
        let rec = store.get_message(acc.id).unwrap().unwrap();
        assert_eq!(rec.body_sha256, sha256_hex(&body));
        // one recipient due now, one held: the message is as far as the least advanced
        assert_eq!(rec.state, QueueState::Held);
        assert_eq!(rec.recipients[1].state, QueueState::Due);
    }
    assert_eq!(store.message_count().unwrap(), 50);
    assert!(recover(&store, ts("2026-11-23T10:00:00Z")).unwrap().is_clean());
}

#[tokio::test]
async fn cancel_is_recorded_and_only_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path()).unwrap());
    let queue = Queue::start(store.clone());
    let acc = queue.submit(submission(b"x\r\n", &[("b@x", "2026-12-25T08:00:00Z")])).await.unwrap();
    let rec = queue.cancel(acc.id, "operator", ts("2026-11-24T00:00:00Z")).unwrap();
    assert_eq!(rec.state, QueueState::Cancelled);
    assert!(rec.events.iter().any(|e| e.kind == EventKind::Cancelled && e.detail.contains("operator")));
    assert!(store.due_until(ts("2030-01-01T00:00:00Z"), 10).unwrap().is_empty());
    let again = queue.cancel(acc.id, "operator", ts("2026-11-24T00:00:00Z")).unwrap_err();
    assert!(
        matches!(&again, QueueError::NotCancellable { id, state: QueueState::Cancelled } if *id == acc.id),
        "{again:?}"
    );
    assert_eq!(again.to_string(), format!("message {} cannot be cancelled: it is cancelled", acc.id));
    let missing = queue
        .cancel("01JD0000000000000000000000".parse().unwrap(), "operator", ts("2026-11-24T00:00:00Z"))
        .unwrap_err();
    assert!(matches!(missing, QueueError::Store(StoreError::NotFound(_))), "{missing:?}");
}

#[tokio::test]
async fn recovery_handles_debris() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path()).unwrap());
    let queue = Queue::start(store.clone());
    let kept = queue.submit(submission(b"keep\r\n", &[("b@x", "2026-12-25T08:00:00Z")])).await.unwrap();
    let lost = queue.submit(submission(b"lost\r\n", &[("b@x", "2026-12-25T08:00:00Z")])).await.unwrap();
    std::fs::remove_file(store.bodies().path(lost.id)).unwrap();
    // a body whose record never committed, and a half-written tmp file
    let orphan = QueueId::new();
    store.bodies().write(orphan, b"orphan").unwrap();
    std::fs::write(store.bodies().shard_dir(kept.id).join("X.tmp"), b"half").unwrap();
    let report = recover(&store, ts("2026-11-24T00:00:00Z")).unwrap();
    assert_eq!(report.temp_files_removed, 1);
    assert_eq!(report.orphan_bodies, vec![orphan.to_string()]);
    assert_eq!(report.records_without_body, vec![lost.id.to_string()]);
    assert!(dir.path().join("orphans").join(format!("{orphan}.eml")).is_file());
    let rec = store.get_message(lost.id).unwrap().unwrap();
    assert_eq!(rec.state, QueueState::Failed);
    assert_eq!(store.get_message(kept.id).unwrap().unwrap().state, QueueState::Held);
    assert!(recover(&store, ts("2026-11-24T00:00:00Z")).unwrap().is_clean());
}
