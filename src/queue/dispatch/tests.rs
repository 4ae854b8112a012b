use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use tokio::sync::{Notify, watch};

use super::*;
use crate::clock::ManualClock;
use crate::queue::{Queue, Submission};
use crate::relay::{BoxFuture, Delivery, Outgoing, RecipientResult, Refusal, Relay};
use crate::schedule::{RecipientRelease, ScheduleSource};
use crate::store::{QueueId, QueueState, Store};

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

/// Records what it was given; answers with `result`, or never answers when `hang`.
struct TestRelay {
    seen: Mutex<Vec<Vec<String>>>,
    senders: Mutex<Vec<String>>,
    result: Mutex<RecipientResult>,
    hang: bool,
    delivered: Notify,
}

impl TestRelay {
    fn new(result: RecipientResult, hang: bool) -> Arc<TestRelay> {
        Arc::new(TestRelay {
            seen: Mutex::default(),
            senders: Mutex::default(),
            result: Mutex::new(result),
            hang,
            delivered: Notify::new(),
        })
    }
    fn count(&self) -> usize {
        self.seen.lock().unwrap().iter().map(Vec::len).sum()
    }
}

impl Relay for TestRelay {
    fn deliver_batch<'a>(&'a self, msgs: &'a [Outgoing]) -> BoxFuture<'a, Vec<Delivery>> {
        Box::pin(async move {
            self.seen.lock().unwrap().push(msgs.iter().map(|m| m.queue_id.clone()).collect());
            self.senders.lock().unwrap().extend(msgs.iter().map(|m| m.sender.clone()));
            if self.hang {
                std::future::pending::<()>().await;
            }
            let r = self.result.lock().unwrap().clone();
            let out = msgs.iter().map(|m| Delivery::all(m.recipients.len(), r.clone(), "250 2.0.0 ok")).collect();
            self.delivered.notify_waiters();
            out
        })
    }
}

struct Rig {
    store: Arc<Store>,
    queue: Arc<Queue>,
    clock: Arc<ManualClock>,
    wake: Arc<Notify>,
    shutdown: watch::Sender<bool>,
    _dir: tempfile::TempDir,
}

fn rig(now: &str) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path()).unwrap());
    let queue = Arc::new(Queue::start(store.clone()));
    let wake = queue.waker();
    Rig { store, queue, clock: Arc::new(ManualClock::new(ts(now))), wake, shutdown: watch::channel(false).0, _dir: dir }
}

impl Rig {
    fn start(&self, relay: Arc<TestRelay>) -> tokio::task::JoinHandle<bool> {
        let settings = DispatchSettings { concurrency: 2, per_connection: 10, ..Default::default() };
        let d = Dispatcher::new(
            self.queue.clone(),
            relay,
            self.clock.clone(),
            self.wake.clone(),
            settings,
            Arc::new(|_, b| Ok(b)),
        );
        tokio::spawn(d.run(self.shutdown.subscribe(), Duration::from_secs(5)))
    }

    async fn submit(&self, release: &str) -> QueueId {
        let sub = Submission {
            session_id: "s".into(),
            user: "alice".into(),
            sender: "alice@example.com".into(),
            sender_name: None,
            recipients: vec![RecipientRelease {
                original: "bob@x".into(),
                address: "bob@x".into(),
                release_at: ts(release),
                source: ScheduleSource::DeliverOnHeader,
            }],
            subject: None,
            message_id: None,
            client: "127.0.0.1:1".parse().unwrap(),
            tls: None,
            helo: "h".into(),
            submitted_at: self.clock.now(),
            timezone: "UTC".into(),
            body: b"From: alice@example.com\r\n\r\nx\r\n".to_vec(),
            notice_of: None,
            route: None,
        };
        self.queue.submit(sub).await.unwrap().id
    }

    fn state(&self, id: QueueId) -> QueueState {
        self.store.get_message(id).unwrap().unwrap().state
    }

    async fn settle(&self, until: impl Fn() -> bool) {
        for _ in 0..3000 {
            if until() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("condition not reached");
    }
}

#[tokio::test]
async fn released_exactly_at_the_hour_not_before() {
    let rig = rig("2026-12-25T07:59:00Z");
    let relay = TestRelay::new(RecipientResult::Delivered, false);
    let run = rig.start(relay.clone());
    let id = rig.submit("2026-12-25T08:00:00Z").await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(relay.count(), 0, "nothing leaves before its time");
    assert_eq!(rig.state(id), QueueState::Held);
    rig.clock.set(ts("2026-12-25T08:00:00Z"));
    rig.wake.notify_one();
    rig.settle(|| rig.state(id) == QueueState::Sent).await;
    let rec = rig.store.get_message(id).unwrap().unwrap();
    assert_eq!(rec.attempts.len(), 1);
    assert!(
        rec.events.iter().any(|e| e.kind == EventKind::Released)
            && rec.events.iter().any(|e| e.kind == EventKind::Delivered)
    );
    rig.shutdown.send(true).unwrap();
    run.await.unwrap();
}

#[tokio::test]
async fn immediate_mail_is_sent_at_once_and_submit_wakes_the_dispatcher() {
    let rig = rig("2026-12-25T10:00:00Z");
    let relay = TestRelay::new(RecipientResult::Delivered, false);
    let run = rig.start(relay.clone());
    tokio::time::sleep(Duration::from_millis(50)).await;
    let id = rig.submit("2026-12-25T10:00:00Z").await;
    rig.settle(|| rig.state(id) == QueueState::Sent).await;
    rig.shutdown.send(true).unwrap();
    run.await.unwrap();
}

#[tokio::test]
async fn clock_jumps_forward_and_backward() {
    let rig = rig("2026-12-25T07:00:00Z");
    let relay = TestRelay::new(RecipientResult::Delivered, false);
    let run = rig.start(relay.clone());
    let id = rig.submit("2026-12-25T08:00:00Z").await;
    rig.clock.set(ts("2026-12-24T07:00:00Z")); // backwards a day: still held
    rig.wake.notify_one();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(rig.state(id), QueueState::Held);
    rig.clock.advance(SignedDuration::from_hours(30)); // forwards past the release
    rig.wake.notify_one();
    rig.settle(|| rig.state(id) == QueueState::Sent).await;
    rig.shutdown.send(true).unwrap();
    run.await.unwrap();
}

#[tokio::test]
async fn deferred_is_retried_with_backoff() {
    let rig = rig("2026-12-25T08:00:00Z");
    let relay = TestRelay::new(RecipientResult::Deferred(Refusal::reply_line("421 4.3.2 relay down")), false);
    let run = rig.start(relay.clone());
    let id = rig.submit("2026-12-25T08:00:00Z").await;
    rig.settle(|| relay.count() == 1 && rig.state(id) == QueueState::Due).await;
    let rec = rig.store.get_message(id).unwrap().unwrap();
    assert_eq!(rec.recipients[0].next_attempt_at, Some(ts("2026-12-25T08:01:00Z")));
    assert_eq!(rec.recipients[0].last_error.as_deref(), Some("421 4.3.2 relay down"));
    *relay.result.lock().unwrap() = RecipientResult::Delivered;
    rig.clock.set(ts("2026-12-25T08:01:00Z"));
    rig.wake.notify_one();
    rig.settle(|| rig.state(id) == QueueState::Sent).await;
    assert_eq!(relay.count(), 2);
    rig.shutdown.send(true).unwrap();
    run.await.unwrap();
}

#[tokio::test]
async fn restart_while_delivering_releases_everything_after_restart() {
    let rig = rig("2026-12-25T08:00:00Z");
    let hanging = TestRelay::new(RecipientResult::Delivered, true);
    let first = rig.start(hanging.clone());
    let ids = [rig.submit("2026-12-25T08:00:00Z").await, rig.submit("2026-12-25T08:00:00Z").await];
    rig.settle(|| hanging.count() == 2).await;
    assert!(ids.iter().all(|&id| rig.state(id) == QueueState::Sending));
    first.abort(); // the process dies mid-delivery
    let _ = first.await;
    let relay = TestRelay::new(RecipientResult::Delivered, false);
    let second = rig.start(relay.clone());
    rig.settle(|| ids.iter().all(|&id| rig.state(id) == QueueState::Sent)).await;
    let rec = rig.store.get_message(ids[0]).unwrap().unwrap();
    assert!(rec.events.iter().any(|e| e.kind == EventKind::Interrupted), "the uncertain attempt is on the record");
    assert_eq!(rec.attempts.len(), 2);
    assert!(rig.store.sending_ids().unwrap().is_empty());
    rig.shutdown.send(true).unwrap();
    second.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_due_in_the_same_minute_all_leave_once() {
    let rig = rig("2026-12-25T07:00:00Z");
    const N: usize = 10_000;
    // Prefill in one transaction, bodies without fsync (submitting one by one would measure
    // fsyncs, not dispatch).
    let body = b"From: alice@example.com\r\n\r\nx\r\n";
    let mut records = Vec::new();
    for i in 0..N {
        let id = QueueId::new();
        std::fs::create_dir_all(rig.store.bodies().shard_dir(id)).unwrap();
        std::fs::write(rig.store.bodies().path(id), body).unwrap();
        let release = ts(&format!("2026-12-25T08:00:{:02}Z", i % 60));
        let mut rec = crate::store::tests::sample_record(&id.to_string(), "alice", release, QueueState::Held);
        rec.body_sha256 = crate::store::sha256_hex(body);
        records.push(rec);
    }
    rig.store.insert_messages(&records, &[]).unwrap();
    let ids: Vec<QueueId> = records.iter().map(|r| r.id).collect();
    let relay = TestRelay::new(RecipientResult::Delivered, false);
    let run = rig.start(relay.clone());
    rig.clock.set(ts("2026-12-25T08:01:00Z"));
    rig.wake.notify_one();
    rig.settle(|| relay.count() >= N).await;
    rig.settle(|| {
        rig.store.due_until(ts("2030-01-01T00:00:00Z"), 1).unwrap().is_empty()
            && rig.store.sending_ids().unwrap().is_empty()
    })
    .await;
    let seen: Vec<String> = relay.seen.lock().unwrap().concat();
    let unique: std::collections::HashSet<&String> = seen.iter().collect();
    assert_eq!((seen.len(), unique.len()), (N, N), "each message exactly once");
    assert!(relay.seen.lock().unwrap().iter().all(|b| b.len() <= 10), "batches respect per_connection");
    assert!(ids.iter().all(|&id| rig.state(id) == QueueState::Sent));
    rig.shutdown.send(true).unwrap();
    run.await.unwrap();
}

#[tokio::test]
async fn permanent_failure_notifies_the_sender_once_and_never_about_a_notice() {
    let rig = rig("2026-12-25T08:00:00Z");
    let relay = TestRelay::new(RecipientResult::Failed(Refusal::reply_line("550 5.1.1 no such user")), false);
    let run = rig.start(relay.clone());
    let id = rig.submit("2026-12-25T08:00:00Z").await;
    // the original fails, its notice is queued and (this relay failing everything) fails too
    rig.settle(|| relay.count() == 2 && rig.store.message_count().unwrap() == 2).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(relay.count(), 2, "no notice about a notice");
    assert_eq!(rig.store.message_count().unwrap(), 2);
    let all = rig.store.list_messages(None, None, 10).unwrap();
    let notice = all.iter().find(|r| r.id != id).unwrap();
    assert_eq!(notice.notice_of, Some(id));
    assert_eq!(notice.recipients[0].address, "alice@example.com");
    let body = String::from_utf8(rig.store.bodies().read(notice.id).unwrap()).unwrap();
    assert!(body.contains("Status: 5.1.1") && body.contains("Final-Recipient: rfc822; bob@x"), "{body}");
    assert_eq!(relay.senders.lock().unwrap().as_slice(), ["alice@example.com", ""], "the notice has a null sender");
    // gatepost's own notice claims neither the original's client nor its TLS (issue 8 item 21).
    assert_eq!(notice.origin, crate::store::Origin::Internal);
    assert_eq!((notice.client_ip(), notice.tls.as_deref()), (None, None), "{notice:?}");
    let original = rig.store.get_message(id).unwrap().unwrap();
    assert_eq!(original.state, QueueState::Failed);
    assert!(original.events.iter().any(|e| e.kind == EventKind::Dsn && e.detail.contains(&notice.id.to_string())));
    rig.shutdown.send(true).unwrap();
    run.await.unwrap();
}

#[tokio::test]
async fn a_damaged_record_does_not_stall_the_queue() {
    let rig = rig("2026-12-25T08:00:00Z");
    let bad = rig.submit("2026-12-25T08:00:00Z").await;
    let good = rig.submit("2026-12-25T08:00:00Z").await;
    rig.store.put_raw_record(bad, b"{ this is not a record").unwrap();
    let relay = TestRelay::new(RecipientResult::Delivered, false);
    let run = rig.start(relay.clone());
    rig.settle(|| rig.state(good) == QueueState::Sent).await;
    assert!(
        rig.store.due_until(ts("2030-01-01T00:00:00Z"), 10).unwrap().is_empty(),
        "the damaged entry left the due index"
    );
    assert!(rig.store.get_message(bad).is_err(), "the damaged record is kept (and reported), not deleted");
    assert_eq!(relay.count(), 1);
    rig.shutdown.send(true).unwrap();
    run.await.unwrap();
}
