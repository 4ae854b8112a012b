//! IMAP listeners: accept, apply the connection limits, one task per connection; on shutdown
//! stop accepting and give sessions a bounded time (they are told `* BYE` at once).

use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tracing::Instrument;

use super::driver::{Shared, serve_connection};
use crate::net::limits::ConnectionLimits;
use crate::net::new_session_id;

pub async fn run_listener(
    shared: Arc<Shared>,
    limits: Arc<ConnectionLimits>,
    listener: TcpListener,
    implicit_tls: bool,
    grace: Duration,
) -> bool {
    let mut sessions = JoinSet::new();
    let mut shutdown = shared.shutdown.clone();
    let kind = if implicit_tls { "imaps" } else { "imap" };
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
                let slot = match limits.acquire(peer.ip()) {
                    Ok(slot) => slot,
                    Err(refusal) => {
                        tracing::warn!(%peer, session = %session_id, ?refusal, "IMAP connection refused by limits");
                        if !implicit_tls {
                            let line = format!("* BYE [UNAVAILABLE] {} (session {session_id})\r\n", refusal.explanation());
                            let _ = tokio::time::timeout(Duration::from_secs(2), tcp.write_all(line.as_bytes())).await;
                        }
                        continue;
                    }
                };
                let span = tracing::info_span!("imap", session = %session_id, %peer, listener = kind);
                let shared = shared.clone();
                sessions.spawn(
                    async move {
                        serve_connection(shared, tcp, peer, implicit_tls, session_id).await;
                        drop(slot);
                    }
                    .instrument(span),
                );
            }
            Some(_) = sessions.join_next(), if !sessions.is_empty() => {}
        }
    }
    let drained = tokio::time::timeout(grace, async { while sessions.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        sessions.abort_all();
        return false;
    }
    true
}
