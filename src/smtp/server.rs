//! Listeners: accept, enforce connection limits, start a session task per connection, and
//! on shutdown stop accepting and give in-flight sessions a bounded time to finish.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::Instrument;

use super::codes::{self, Reply};
use super::driver::{Shared, serve_connection};
use crate::net::new_session_id;

/// Accept on `listener` until shutdown, then wait up to `grace` for sessions to end.
/// Returns whether every session ended by itself (none had to be cut off).
pub async fn run_listener(shared: Arc<Shared>, listener: TcpListener, implicit_tls: bool, grace: Duration) -> bool {
    let mut sessions = JoinSet::new();
    let mut shutdown: watch::Receiver<bool> = shared.shutdown.clone();
    let kind = if implicit_tls { "submissions" } else { "submission" };
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            accepted = listener.accept() => {
                let (mut tcp, peer) = match accepted {
                    Ok(x) => x,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = tcp.set_nodelay(true);
                let session_id = new_session_id();
                let slot = match shared.limits.acquire(peer.ip()) {
                    Ok(slot) => slot,
                    Err(refusal) => {
                        let key = format!("{refusal:?} {}", peer.ip());
                        if let Some(held_back) = shared.quiet_logs.allow(&key, std::time::Instant::now()) {
                            tracing::warn!(%peer, session = %session_id, ?refusal, held_back, "connection refused by limits");
                        }
                        let mut out = Vec::new();
                        Reply::new(codes::TOO_MANY_CONNECTIONS, refusal.explanation()).write_to(&mut out, &session_id);
                        // Only a plaintext listener can be told why; TLS clients just see a close.
                        if !implicit_tls {
                            let _ = tokio::time::timeout(Duration::from_secs(2), tcp.write_all(&out)).await;
                        }
                        continue;
                    }
                };
                let span = tracing::info_span!("smtp", session = %session_id, %peer, listener = kind);
                let shared = shared.clone();
                sessions.spawn(
                    async move {
                        tracing::debug!("connected");
                        serve_connection(shared, tcp, peer, implicit_tls, session_id).await;
                        tracing::debug!("disconnected");
                        drop(slot);
                    }
                    .instrument(span),
                );
            }
            Some(_) = sessions.join_next(), if !sessions.is_empty() => {}
        }
    }
    let open = sessions.len();
    if open > 0 {
        tracing::info!(open, ?grace, listener = kind, "waiting for sessions to finish");
    }
    let drained = tokio::time::timeout(grace, async { while sessions.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        tracing::warn!(left = sessions.len(), "shutdown grace ran out; closing remaining sessions");
        sessions.abort_all();
        return false;
    }
    true
}

pub fn bind_all(addrs: &[SocketAddr]) -> std::io::Result<Vec<TcpListener>> {
    addrs
        .iter()
        .map(|a| {
            let std = std::net::TcpListener::bind(a)
                .map_err(|e| std::io::Error::new(e.kind(), format!("cannot listen on {a}: {e}")))?;
            std.set_nonblocking(true)?;
            TcpListener::from_std(std)
        })
        .collect()
}
