//! Wiring: open the store, recover, open the trace index, load TLS, build the relay, start the dispatcher, bind
//! listeners, run until told to stop, then shut down (listeners and sessions finish their
//! transactions, the dispatcher its deliveries, then the queue and store close).

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use crate::clock::Clock;
use crate::config::Config;
use crate::queue::attempts::RetryPolicy;
use crate::queue::dispatch::{DispatchSettings, Dispatcher};
use crate::queue::{self, Queue};
use crate::smtp::driver::Shared;
use crate::smtp::limits::{AuthThrottle, ConnectionLimits};
use crate::smtp::server::{bind_all, run_listener};
use crate::smtp::session::SessionSettings;
use crate::store::Store;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    #[error("{0}")]
    Listen(std::io::Error),
    #[error("{0}")]
    Relay(String),
    #[error(transparent)]
    Trace(#[from] crate::audit::IndexError),
}

/// A running gatepost.
pub struct Running {
    pub submission_addrs: Vec<SocketAddr>,
    pub submissions_addrs: Vec<SocketAddr>,
    pub store: Arc<Store>,
    /// Wakes the dispatcher (as a submit does); tests that move a manual clock use it.
    pub dispatcher_wake: Arc<tokio::sync::Notify>,
    /// The trace index (kept in step by the indexer task).
    pub trace: Arc<crate::audit::TraceIndex>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<bool>>,
}

impl Running {
    /// Stop accepting, let sessions finish (bounded by `shutdown_grace`), close the store.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let mut clean = true;
        for t in self.tasks {
            clean &= t.await.unwrap_or(false);
        }
        // Sessions and deliveries are finished and every commit is durable.
        if clean && let Err(e) = self.store.mark_clean_shutdown() {
            tracing::warn!(error = %e, "could not mark the shutdown clean; the next start will check the store");
        }
        tracing::info!("gatepost stopped");
    }
}

pub async fn start(config: &Config, clock: Arc<dyn Clock>) -> Result<Running, AppError> {
    let store = Arc::new(Store::open(&config.data_dir)?);
    // Debris can only exist after a crash: a clean stop skips the scan of every body file
    // (seconds with a million held messages).
    let report = if store.take_clean_shutdown() {
        queue::RecoveryReport::default()
    } else {
        tracing::info!("the last run did not stop cleanly: checking the store for debris");
        queue::recover(&store, clock.now())?
    };
    if !report.is_clean() {
        tracing::warn!(
            temp_files_removed = report.temp_files_removed,
            orphan_bodies = ?report.orphan_bodies,
            records_without_body = ?report.records_without_body,
            "start-up recovery found debris from an earlier crash (see docs/queue.md)"
        );
    }
    let trace = Arc::new(crate::audit::TraceIndex::open(&config.data_dir, &store)?);
    let tls = config.tls.clone();
    let (server_config, generated) = crate::tls::load_or_generate(&tls.cert, &tls.key, tls.generate_if_missing)?;
    if generated {
        tracing::warn!(cert = %tls.cert.display(), key = %tls.key.display(), "generated a self-signed development certificate");
    }
    let sub = &config.submission;
    let settings = Arc::new(SessionSettings {
        hostname: config.hostname.clone(),
        max_message_size: sub.max_message_size,
        max_recipients: sub.max_recipients,
        max_line_length: sub.max_line_length,
        daily_hour: config.schedule.daily_hour,
        timezone: config.schedule.timezone.clone(),
        timezone_name: config.schedule.timezone_name.clone(),
        max_hold: config.schedule.max_hold,
        starttls_available: true,
        rewrite_from: config.rewrite.rewrite_from,
    });
    let relay = crate::relay::setup::from_config(&config.relay, &config.hostname).map_err(AppError::Relay)?;
    let queue = Arc::new(Queue::start(store.clone()));
    let dispatcher_wake = queue.waker();
    let dispatcher = Dispatcher::new(
        queue.clone(),
        relay,
        clock.clone(),
        queue.waker(),
        DispatchSettings {
            concurrency: config.delivery.concurrency,
            per_connection: config.delivery.messages_per_connection,
            retry: RetryPolicy {
                first: config.delivery.retry_first,
                max_interval: config.delivery.retry_max_interval,
                lifetime: config.delivery.lifetime,
            },
            envelope_sender: queue::prepare::envelope_sender(config),
            hostname: config.hostname.clone(),
        },
        queue::prepare::prepare(config),
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
    let shared = Arc::new(Shared {
        settings,
        queue,
        store: store.clone(),
        clock,
        tls: Some(TlsAcceptor::from(server_config)),
        limits: ConnectionLimits::new(sub.max_connections, sub.max_connections_per_ip),
        throttle: AuthThrottle::new(sub.auth_failures_before_lockout, sub.auth_lockout),
        trusted: sub.trusted_networks.clone(),
        command_timeout: sub.command_timeout,
        data_timeout: sub.data_timeout,
        shutdown: shutdown_rx,
    });
    let plain = bind_all(&sub.starttls_listen).map_err(AppError::Listen)?;
    let implicit = bind_all(&sub.tls_listen).map_err(AppError::Listen)?;
    let addrs = |ls: &[tokio::net::TcpListener]| ls.iter().filter_map(|l| l.local_addr().ok()).collect::<Vec<_>>();
    let (submission_addrs, submissions_addrs) = (addrs(&plain), addrs(&implicit));
    for (listener, implicit_tls) in plain.into_iter().map(|l| (l, false)).chain(implicit.into_iter().map(|l| (l, true)))
    {
        tasks.push(tokio::spawn(run_listener(shared.clone(), listener, implicit_tls, sub.shutdown_grace)));
    }
    tracing::info!(submission = ?submission_addrs, submissions = ?submissions_addrs, data_dir = %config.data_dir.display(), "gatepost listening");
    Ok(Running { submission_addrs, submissions_addrs, store, dispatcher_wake, trace, shutdown: shutdown_tx, tasks })
}
