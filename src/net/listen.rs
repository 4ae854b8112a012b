//! The accept loop every door shares (submission and IMAP now, HTTP later): accept, apply
//! the connection limits before anything is read, one task per connection in its own log
//! span, and on shutdown stop accepting and give sessions a bounded time to end. Only what a
//! refused client is told, the span and the session itself differ per door.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::Instrument;

use super::limits::{ConnectionLimits, Refusal};
use super::new_session_id;
use super::quiet::Quiet;

/// One listening socket of a door and what it shares with the door's others.
pub struct Door {
    /// In log lines: `submission`, `submissions`, `imap`, `imaps`.
    pub kind: &'static str,
    /// A TLS client cannot be told why it is refused (the handshake has not happened).
    pub implicit_tls: bool,
    pub limits: Arc<ConnectionLimits>,
    /// Refusals are logged at most once a minute per (reason, address).
    pub quiet: Arc<Quiet>,
    pub shutdown: watch::Receiver<bool>,
    pub grace: Duration,
}

/// Accept on `listener` until shutdown, then wait up to the door's grace for sessions to end.
/// `refused` renders the line a plaintext client is told when the limits refuse it; `span`
/// makes the session's log span; `serve` runs the session. Returns whether every session
/// ended by itself (none had to be cut off).
pub async fn accept_loop<F>(
    door: Door,
    listener: TcpListener,
    refused: impl Fn(Refusal, &str) -> Vec<u8>,
    span: impl Fn(&str, SocketAddr) -> tracing::Span,
    serve: impl Fn(TcpStream, SocketAddr, String) -> F,
) -> bool
where
    F: Future<Output = ()> + Send + 'static,
{
    let mut sessions = JoinSet::new();
    let mut shutdown = door.shutdown.clone();
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            accepted = listener.accept() => {
                let (mut tcp, peer) = match accepted {
                    Ok(x) => x,
                    Err(e) => {
                        // Out of descriptors, usually: wait instead of spinning on the error.
                        tracing::warn!(error = %e, listener = door.kind, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = tcp.set_nodelay(true);
                let session_id = new_session_id();
                let slot = match door.limits.acquire(peer.ip()) {
                    Ok(slot) => slot,
                    Err(refusal) => {
                        let key = format!("{} {refusal:?} {}", door.kind, peer.ip());
                        if let Some(held_back) = door.quiet.allow(&key, Instant::now()) {
                            tracing::warn!(%peer, session = %session_id, ?refusal, held_back, listener = door.kind,
                                "connection refused by limits");
                        }
                        if !door.implicit_tls {
                            let line = refused(refusal, &session_id);
                            let _ = tokio::time::timeout(Duration::from_secs(2), tcp.write_all(&line)).await;
                        }
                        continue;
                    }
                };
                let session = serve(tcp, peer, session_id.clone());
                sessions.spawn(
                    async move {
                        tracing::debug!("connected");
                        session.await;
                        tracing::debug!("disconnected");
                        drop(slot);
                    }
                    .instrument(span(&session_id, peer)),
                );
            }
            Some(_) = sessions.join_next(), if !sessions.is_empty() => {}
        }
    }
    let open = sessions.len();
    if open > 0 {
        tracing::info!(open, grace = ?door.grace, listener = door.kind, "waiting for sessions to finish");
    }
    let drained = tokio::time::timeout(door.grace, async { while sessions.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        tracing::warn!(
            left = sessions.len(),
            listener = door.kind,
            "shutdown grace ran out; closing remaining sessions"
        );
        sessions.abort_all();
        return false;
    }
    true
}
