use super::*;

#[test]
fn add_and_update() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let now = Timestamp::UNIX_EPOCH;
    let alice = add_user(&store, "alice", "alice@example.com", "correct horse", now).unwrap();
    assert_eq!(alice.generation, 1);
    assert!(verify_password(&alice.password_hash, "correct horse"));
    assert!(!verify_password(&alice.password_hash, "wrong"));
    assert!(matches!(add_user(&store, "alice", "a@example.com", "correct horse", now), Err(AccountError::Exists(_))));
    assert_eq!(refusal_for(&alice), None);
    let changed = update_user(&store, "alice", |u| {
        u.verified = false;
        Ok(())
    })
    .unwrap();
    assert_eq!((changed.generation, refusal_for(&changed)), (2, Some(LoginRefusal::Unverified)));
    let changed = update_user(&store, "alice", |u| {
        u.disabled = true;
        Ok(())
    })
    .unwrap();
    assert_eq!((changed.generation, refusal_for(&changed)), (3, Some(LoginRefusal::Disabled)));
    assert!(matches!(update_user(&store, "bob", |_| Ok(())), Err(AccountError::NoSuchUser(_))));
    let refused = update_user(&store, "alice", |_| Err(AccountError::Invalid("no".into())));
    assert!(matches!(refused, Err(AccountError::Invalid(_))));
    assert_eq!(store.get_user("alice").unwrap().unwrap().generation, 3, "a refused change writes nothing");
    assert!(PasswordHash::new(DUMMY_HASH).is_ok(), "the dummy hash parses, so it costs a real argon2 run");
}

#[test]
fn validation_table() {
    for bad in ["", "Alice", "a b", "a@b", &"x".repeat(65)] {
        assert!(validate_name(bad).is_err(), "{bad:?}");
    }
    for bad in ["alice", "@x.com", "a@b", "a b@x.com", "<a@x.com>"] {
        assert!(validate_email(bad).is_err(), "{bad:?}");
    }
    assert!(validate_email("a@localhost").is_ok());
    assert!(validate_password("short").is_err());
    assert!(validate_timezone("Mars/Olympus").is_err());
    assert!(validate_timezone("Asia/Shanghai").is_ok());
}

mod door {
    use std::net::IpAddr;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Condvar, Mutex};
    use std::time::Duration;

    use crate::accounts::changes::ChangeFollower;
    use crate::accounts::login::{Login, LoginOutcome, LoginSettings, Verifier};
    use crate::accounts::pool::PoolSettings;
    use crate::accounts::{DUMMY_HASH, LoginRefusal};
    use crate::clock::SystemClock;
    use crate::net::registry::SessionRegistry;
    use crate::store::{Store, StoreError, UserRecord};

    /// A verifier tests control: "plain:<password>" hashes, a count of checks, and a gate the
    /// checks wait at while it is closed.
    #[derive(Default)]
    struct Fake {
        checks: AtomicUsize,
        dummy_checks: AtomicUsize,
        closed: Mutex<bool>,
        cv: Condvar,
    }

    impl Fake {
        fn verifier(self: &Arc<Self>) -> Verifier {
            let me = self.clone();
            Arc::new(move |hash: &str, pw: &str| {
                me.checks.fetch_add(1, Ordering::SeqCst);
                if hash == DUMMY_HASH {
                    me.dummy_checks.fetch_add(1, Ordering::SeqCst);
                }
                let mut closed = me.closed.lock().unwrap();
                while *closed {
                    closed = me.cv.wait(closed).unwrap();
                }
                hash == format!("plain:{pw}")
            })
        }
        fn set_closed(&self, closed: bool) {
            *self.closed.lock().unwrap() = closed;
            self.cv.notify_all();
        }
        fn checks(&self) -> usize {
            self.checks.load(Ordering::SeqCst)
        }
    }

    fn settings(failures: u32, running: usize, waiting: usize, cache_ttl: Duration) -> LoginSettings {
        LoginSettings {
            failures_before_lockout: failures,
            lockout: Duration::from_secs(900),
            pool: PoolSettings { max_running: running, max_waiting: waiting, max_wait: Duration::from_secs(60) },
            cache_ttl,
        }
    }

    fn setup(s: LoginSettings) -> (tempfile::TempDir, Arc<Store>, Arc<Login>, Arc<Fake>) {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(dir.path()).unwrap());
        let user = UserRecord {
            name: "alice".into(),
            email: "alice@example.com".into(),
            password_hash: "plain:secret".into(),
            verified: true,
            disabled: false,
            timezone: None,
            created_at: jiff::Timestamp::UNIX_EPOCH,
            generation: 0,
        };
        store.insert_user(&user).unwrap();
        let fake = Arc::new(Fake::default());
        let login = Login::with_verifier(store.clone(), Arc::new(SystemClock), s, fake.verifier()).unwrap();
        (dir, store, Arc::new(login), fake)
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn change(store: &Store, f: impl FnOnce(&mut UserRecord)) {
        store
            .update_user("alice", |u| {
                f(u);
                Ok::<_, StoreError>(())
            })
            .unwrap();
    }

    /// Item 5: a busy pool refuses at once (454 in SMTP) and the refusal is not a failure.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn busy_refusals_are_not_failures() {
        let (_dir, _store, login, fake) = setup(settings(2, 1, 0, Duration::ZERO));
        let a = ip("192.0.2.1");
        fake.set_closed(true);
        let first = tokio::spawn({
            let login = login.clone();
            async move { login.check(a, "alice", "wrong").await }
        });
        while login.pool_stats().running == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        for _ in 0..5 {
            assert!(matches!(login.check(ip("192.0.2.9"), "alice", "wrong").await, LoginOutcome::Busy));
        }
        assert!(matches!(login.check(a, "alice", "secret").await, LoginOutcome::Busy));
        assert_eq!(login.throttle().failures(ip("192.0.2.9"), "alice"), (0, 0), "busy is not counted");
        fake.set_closed(false);
        assert!(matches!(first.await.unwrap(), LoginOutcome::Refused(LoginRefusal::BadCredentials)));
        assert_eq!(login.throttle().failures(a, "alice"), (1, 1));
        assert!(matches!(login.check(a, "alice", "secret").await, LoginOutcome::Accepted { .. }));
        assert_eq!(login.pool_stats().refused, 6);
    }

    /// The verified-password cache skips argon2 for the same password and account generation
    /// only; failures are never cached; any account change invalidates it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_cache_skips_argon2_until_the_account_changes() {
        let (_dir, store, login, fake) = setup(settings(100, 2, 8, Duration::from_secs(3600)));
        let a = ip("192.0.2.1");
        let accepted = |o: LoginOutcome| matches!(o, LoginOutcome::Accepted { .. });
        assert!(accepted(login.check(a, "alice", "secret").await));
        assert!(accepted(login.check(ip("192.0.2.2"), "alice", "secret").await));
        assert_eq!(fake.checks(), 1, "the second login was a cache hit");
        for _ in 0..2 {
            assert!(matches!(login.check(a, "alice", "guess").await, LoginOutcome::Refused(_)));
        }
        assert_eq!(fake.checks(), 3, "a failure is checked every time");
        assert!(accepted(login.check(a, "alice", "secret").await));
        assert_eq!(fake.checks(), 3);
        change(&store, |u| u.password_hash = "plain:new one".into());
        assert!(matches!(login.check(a, "alice", "secret").await, LoginOutcome::Refused(LoginRefusal::BadCredentials)));
        assert!(accepted(login.check(a, "alice", "new one").await));
        assert_eq!(fake.checks(), 5);
        change(&store, |u| u.disabled = true);
        let o = login.check(a, "alice", "new one").await;
        assert!(matches!(o, LoginOutcome::Refused(LoginRefusal::Disabled)), "{o:?}");
        assert_eq!(fake.checks(), 6, "a changed account is checked again");
        change(&store, |u| u.disabled = false);
        assert!(accepted(login.check(a, "alice", "new one").await));
        login.forget_user("alice");
        assert!(accepted(login.check(a, "alice", "new one").await));
        assert_eq!(fake.checks(), 8, "forget_user drops the cached check");
        // Unknown users cost a check too (of the dummy hash), so they cannot be told apart.
        assert!(matches!(login.check(a, "mallory", "x").await, LoginOutcome::Refused(LoginRefusal::BadCredentials)));
        assert_eq!(fake.dummy_checks.load(Ordering::SeqCst), 1);
    }

    /// Five connections logging in with the same password at once (a client opening its
    /// connections at start) pay argon2 once: the others wait at the gate and find the entry.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn connections_logging_in_at_once_pay_argon2_once() {
        let (_dir, _store, login, fake) = setup(settings(100, 4, 16, Duration::from_secs(3600)));
        fake.set_closed(true);
        let checks: Vec<_> = (0..5)
            .map(|_| {
                let login = login.clone();
                tokio::spawn(async move { login.check(ip("192.0.2.1"), "alice", "secret").await })
            })
            .collect();
        while login.pool_stats().running == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(login.pool_stats().running, 1, "the other four wait at the gate, not in the pool");
        fake.set_closed(false);
        for c in checks {
            assert!(matches!(c.await.unwrap(), LoginOutcome::Accepted { .. }));
        }
        assert_eq!(fake.checks(), 1);
        // Different passwords never wait for each other.
        fake.set_closed(true);
        let guesses: Vec<_> = ["a", "b", "c"]
            .into_iter()
            .map(|pw| {
                let login = login.clone();
                tokio::spawn(async move { login.check(ip("192.0.2.2"), "alice", pw).await })
            })
            .collect();
        while login.pool_stats().running < 3 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        fake.set_closed(false);
        for g in guesses {
            assert!(matches!(g.await.unwrap(), LoginOutcome::Refused(LoginRefusal::BadCredentials)));
        }
        assert_eq!(fake.checks(), 4);
    }

    /// Twenty rightful logins at once from one address (an office, a client's connections):
    /// the ones beyond the failure limit wait for a place instead of being refused as a
    /// locked-out address (found by imaptest with 20 clients).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn many_rightful_logins_at_once_from_one_address_all_get_in() {
        let (_dir, _store, login, fake) = setup(settings(10, 4, 64, Duration::ZERO));
        fake.set_closed(true);
        let checks: Vec<_> = (0..20)
            .map(|_| {
                let login = login.clone();
                tokio::spawn(async move { login.check(ip("192.0.2.1"), "alice", "secret").await })
            })
            .collect();
        while login.pool_stats().running < 4 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        fake.set_closed(false);
        for c in checks {
            let o = c.await.unwrap();
            assert!(matches!(o, LoginOutcome::Accepted { .. }), "{o:?}");
        }
        assert_eq!(fake.checks(), 20, "no cache here: each was checked");
    }

    /// A successful pair is remembered durably (for the priority lane) and known again after
    /// a restart.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn successful_pairs_are_remembered() {
        let (_dir, store, login, fake) = setup(settings(10, 1, 8, Duration::ZERO));
        let a = ip("192.0.2.1");
        assert!(!login.is_known(a, "alice"));
        assert!(matches!(login.check(a, "alice", "secret").await, LoginOutcome::Accepted { .. }));
        assert!(login.is_known(a, "alice") && !login.is_known(ip("192.0.2.2"), "alice"));
        let since = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(1);
        for _ in 0..200 {
            if !store.login_successes(since).unwrap().is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let again = Login::with_verifier(
            store.clone(),
            Arc::new(SystemClock),
            settings(10, 1, 8, Duration::ZERO),
            fake.verifier(),
        )
        .unwrap();
        assert!(again.is_known(a, "alice"), "loaded from the store");
    }

    /// Item 7: a committed account change ends that user's older sessions within two seconds
    /// and drops its cached checks.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_change_feed_ends_older_sessions() {
        let (_dir, store, login, fake) = setup(settings(10, 1, 8, Duration::from_secs(3600)));
        let registry = SessionRegistry::new();
        let LoginOutcome::Accepted { generation, .. } = login.check(ip("192.0.2.1"), "alice", "secret").await else {
            panic!("login");
        };
        let ticket = registry.register("alice", generation);
        let follower = ChangeFollower::new(store.clone(), registry.clone(), login.clone()).unwrap();
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(follower.run(stopped));
        change(&store, |u| u.timezone = Some("Europe/Paris".into()));
        let started = std::time::Instant::now();
        tokio::time::timeout(Duration::from_secs(2), ticket.ended()).await.expect("ended within 2 s");
        assert!(started.elapsed() < Duration::from_secs(2));
        let newer = registry.register("alice", generation + 1);
        assert!(matches!(login.check(ip("192.0.2.1"), "alice", "secret").await, LoginOutcome::Accepted { .. }));
        assert_eq!(fake.checks(), 2, "the cached check went with the change");
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert!(!newer.is_ended(), "a session of the current generation stays");
        stop.send(true).unwrap();
        assert!(task.await.unwrap());
    }
}
