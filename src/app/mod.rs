//! Wiring, in this order: take the server lock (one server per data directory), open the store
//! (integrity-checked after an unclean stop), load TLS and build the relay, bind the listeners,
//! recover from a crash, open the trace index, start the dispatcher and the indexer, and only
//! then accept connections. Everything that can refuse the start does so before recovery
//! changes anything. Run until told to stop, then shut down (listeners and sessions finish
//! their transactions, the dispatcher its deliveries, then the queue and store close).

pub mod checks;
pub mod settings;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use crate::accounts::changes::ChangeFollower;
use crate::accounts::login::Login;
use crate::clock::Clock;
use crate::config::Config;
use crate::net::limits::ConnectionLimits;
use crate::net::registry::SessionRegistry;
use crate::queue::dispatch::Dispatcher;
use crate::queue::{self, Queue};
use crate::smtp::driver::Shared;
use crate::smtp::server::{bind_all, run_listener};
use crate::store::{DataDirState, Integrity, LockError, ServerLock, Store};

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    #[error("{0}")]
    Listen(String),
    #[error("{0}")]
    Relay(String),
    #[error(transparent)]
    Trace(#[from] crate::audit::IndexError),
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error(transparent)]
    Mail(#[from] crate::mailstore::MailError),
}

/// A running gatepost.
pub struct Running {
    pub submission_addrs: Vec<SocketAddr>,
    pub submissions_addrs: Vec<SocketAddr>,
    /// IMAP with STARTTLS, and IMAP over implicit TLS.
    pub imap_addrs: Vec<SocketAddr>,
    pub imaps_addrs: Vec<SocketAddr>,
    /// Every user's mailboxes (`mailstore.redb` and the blobs).
    pub mail: Arc<crate::mailstore::MailStore>,
    pub store: Arc<Store>,
    /// Wakes the dispatcher (as a submit does); tests that move a manual clock use it.
    pub dispatcher_wake: Arc<tokio::sync::Notify>,
    /// The trace index (kept in step by the indexer task).
    pub trace: Arc<crate::audit::TraceIndex>,
    /// The login door (its pool's figures are what the storm tests read).
    pub login: Arc<Login>,
    /// Live sessions per user.
    pub sessions: Arc<SessionRegistry>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<bool>>,
    /// Released last, once everything is stopped.
    _lock: ServerLock,
}

impl Running {
    /// Stop accepting, let sessions finish (bounded by `shutdown_grace`), close the store.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let mut clean = true;
        for t in self.tasks {
            clean &= t.await.unwrap_or(false);
        }
        // Sessions and deliveries are finished and every commit is durable. A store that
        // showed damage is never marked clean: the next start checks it.
        let damaged = crate::store::integrity::damage().is_some();
        if clean
            && !damaged
            && let Err(e) = self.store.mark_clean_shutdown()
        {
            tracing::warn!(error = %e, "could not mark the shutdown clean; the next start will check the store");
        }
        tracing::info!("gatepost stopped");
    }
}

pub async fn start(config: &Config, clock: Arc<dyn Clock>) -> Result<Running, AppError> {
    // One server per data directory, before anything else touches it (docs/queue.md).
    let lock = ServerLock::acquire(&config.data_dir)?;
    for w in &config.warnings {
        tracing::warn!("config: {w}");
    }
    for w in checks::check(config).warnings {
        tracing::warn!("{w}");
    }
    let (store, state) = open_store(config)?;
    let store = Arc::new(store);
    // Whatever the config can still refuse is refused before the store changes.
    let tls = config.tls.clone();
    let (server_config, generated) = crate::tls::load_or_generate(&tls.cert, &tls.key, tls.generate_if_missing)?;
    if generated {
        tracing::warn!(cert = %tls.cert.display(), key = %tls.key.display(), "generated a self-signed development certificate");
    }
    let relay = settings::relay(&config.relay, &config.hostname).map_err(AppError::Relay)?;
    // The mail store before the listeners: its opening (a commit, fsync) must not sit between
    // a bound port and recovery, where clients already wait in the backlog.
    let unclean = state == DataDirState::UncleanStop;
    let mail = Arc::new(crate::mailstore::MailStore::open(&config.data_dir, settings::quota_rule(config), unclean)?);
    // Bound now, so a busy port stops the start before recovery moves anything; accepted only
    // once recovery is done (clients wait in the backlog meanwhile).
    let sub = &config.submission;
    let plain = bind(&sub.starttls_listen)?;
    let implicit = bind(&sub.tls_listen)?;
    let imap_plain = bind(&config.imap.starttls_listen)?;
    let imap_implicit = bind(&config.imap.tls_listen)?;
    recover(&store, state, clock.now())?;
    let trace = Arc::new(crate::audit::TraceIndex::open(&config.data_dir, &store)?);
    let session_settings = Arc::new(settings::session(config));
    let queue = Arc::new(Queue::start(store.clone()));
    let dispatcher_wake = queue.waker();
    let dispatcher = Dispatcher::new(
        queue.clone(),
        relay,
        clock.clone(),
        queue.waker(),
        settings::dispatch(config, &store),
        queue::prepare::prepare(settings::rewrite_policy(config)),
    );
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let mut tasks = vec![tokio::spawn(dispatcher.run(shutdown_rx.clone(), config.submission.shutdown_grace))];
    let indexer = crate::audit::indexer::Indexer {
        store: store.clone(),
        index: trace.clone(),
        clock: clock.clone(),
        retention: config.trace.retention,
    };
    tasks.push(tokio::spawn(indexer.run(shutdown_rx.clone())));
    let filer = crate::filing::filer::Filer {
        store: store.clone(),
        mail: mail.clone(),
        clock: clock.clone(),
        hostname: config.hostname.clone(),
    };
    tasks.push(tokio::spawn(filer.run(shutdown_rx.clone())));
    tasks.push(tokio::spawn(crate::mailstore::collector(mail.clone(), shutdown_rx.clone())));
    tasks.push(tokio::spawn(crate::sync::supervisor::supervise(
        Arc::new(settings::sync_env(config, mail.clone())),
        store.clone(),
        shutdown_rx.clone(),
    )));
    let login = Arc::new(Login::new(store.clone(), clock.clone(), settings::login(config))?);
    let sessions = SessionRegistry::new();
    let follower = ChangeFollower::new(store.clone(), sessions.clone(), login.clone())?;
    tasks.push(tokio::spawn(follower.run(shutdown_rx.clone())));
    let space = Arc::new(crate::store::space::FreeSpace::new(config.data_dir.clone(), config.store.min_free_disk));
    let acceptor = TlsAcceptor::from(server_config);
    let imap_shared = Arc::new(crate::imap::driver::Shared {
        env: Arc::new(crate::imap::session::Env {
            store: mail.clone(),
            settings: Arc::new(settings::imap(config)),
            space: space.clone(),
            clock: clock.clone(),
            catch_ups: Default::default(),
            held: Some(Arc::new(crate::imap::held::HoldQueue {
                store: store.clone(),
                queue: queue.clone(),
                rules: session_settings.clone(),
                runtime: tokio::runtime::Handle::current(),
            })),
        }),
        tls: acceptor.clone(),
        login: login.clone(),
        sessions: sessions.clone(),
        shutdown: shutdown_rx.clone(),
    });
    // One refusal log limiter for every door: a flood at one door quiets its own lines only
    // (the key names the door), but the map is shared.
    let quiet = Arc::new(crate::net::quiet::Quiet::new(std::time::Duration::from_secs(60)));
    let shared = Arc::new(Shared {
        settings: session_settings,
        queue,
        store: store.clone(),
        clock,
        tls: Some(acceptor),
        limits: ConnectionLimits::new(sub.max_connections, sub.max_connections_per_ip),
        login: login.clone(),
        sessions: sessions.clone(),
        trusted: sub.trusted_networks.clone(),
        quiet_logs: quiet.clone(),
        timeouts: settings::session_timeouts(config),
        space,
        shutdown: shutdown_rx,
    });
    let addrs = |ls: &[tokio::net::TcpListener]| ls.iter().filter_map(|l| l.local_addr().ok()).collect::<Vec<_>>();
    let (submission_addrs, submissions_addrs) = (addrs(&plain), addrs(&implicit));
    for (listener, implicit_tls) in plain.into_iter().map(|l| (l, false)).chain(implicit.into_iter().map(|l| (l, true)))
    {
        tasks.push(tokio::spawn(run_listener(shared.clone(), listener, implicit_tls, sub.shutdown_grace)));
    }
    let (imap_addrs, imaps_addrs) = (addrs(&imap_plain), addrs(&imap_implicit));
    let imap_limits = ConnectionLimits::new(config.imap.max_connections, config.imap.max_connections_per_ip);
    for (listener, implicit_tls) in
        imap_plain.into_iter().map(|l| (l, false)).chain(imap_implicit.into_iter().map(|l| (l, true)))
    {
        tasks.push(tokio::spawn(crate::imap::listener::run_listener(
            imap_shared.clone(),
            imap_limits.clone(),
            quiet.clone(),
            listener,
            implicit_tls,
            sub.shutdown_grace,
        )));
    }
    tracing::info!(submission = ?submission_addrs, submissions = ?submissions_addrs, imap = ?imap_addrs, imaps = ?imaps_addrs, data_dir = %config.data_dir.display(), "gatepost listening");
    Ok(Running {
        submission_addrs,
        submissions_addrs,
        imap_addrs,
        imaps_addrs,
        mail,
        store,
        dispatcher_wake,
        trace,
        login,
        sessions,
        shutdown: shutdown_tx,
        tasks,
        _lock: lock,
    })
}

fn bind(addrs: &[SocketAddr]) -> Result<Vec<tokio::net::TcpListener>, AppError> {
    // The error names the address that failed (`bind_all`); saying it again only repeats it.
    bind_all(addrs).map_err(|e| AppError::Listen(e.to_string()))
}

/// Debris can only exist after a crash: a clean stop skips the scan of every body file
/// (seconds with a million held messages). The marker goes now, so a crash of this run is
/// noticed at the next start.
fn recover(store: &Store, state: DataDirState, now: jiff::Timestamp) -> Result<(), AppError> {
    let clean_stop = store.take_clean_shutdown() || state == DataDirState::New;
    let report = if clean_stop { queue::RecoveryReport::default() } else { queue::recover(store, now)? };
    if !report.is_clean() {
        tracing::warn!(
            temp_files_removed = report.temp_files_removed,
            orphan_bodies = ?report.orphan_bodies,
            records_without_body = ?report.records_without_body,
            "start-up recovery found debris from an earlier crash (see docs/queue.md)"
        );
    }
    Ok(())
}

/// Open the store: integrity-checked after an unclean stop (a crash, a kill, a power cut:
/// when damage is most likely, and before anything is served from it).
fn open_store(config: &Config) -> Result<(Store, DataDirState), AppError> {
    let dir = config.data_dir.display();
    let state = crate::store::integrity::probe(&config.data_dir)?;
    let integrity = match state {
        DataDirState::New => {
            tracing::info!("new data directory {dir}: creating the store");
            Integrity::Trust
        }
        DataDirState::CleanStop => Integrity::Trust,
        DataDirState::UncleanStop => {
            tracing::info!("the last run did not stop cleanly: checking the store in {dir} (integrity, then debris)");
            Integrity::Verify
        }
    };
    let started = std::time::Instant::now();
    let store = Store::open_with(&config.data_dir, integrity)?;
    if integrity == Integrity::Verify {
        tracing::info!(took_ms = started.elapsed().as_millis() as u64, "store integrity verified");
    }
    Ok((store, state))
}
