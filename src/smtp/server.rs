//! Listeners: accept, enforce connection limits, start a session task per connection, and
//! on shutdown stop accepting and give in-flight sessions a bounded time to finish.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

use super::codes::{self, Reply};
use super::driver::{Shared, serve_connection};
use crate::net::listen::{Door, accept_loop};

/// Accept on `listener` until shutdown, then wait up to `grace` for sessions to end.
/// Returns whether every session ended by itself (none had to be cut off).
pub async fn run_listener(shared: Arc<Shared>, listener: TcpListener, implicit_tls: bool, grace: Duration) -> bool {
    let door = Door {
        kind: if implicit_tls { "submissions" } else { "submission" },
        implicit_tls,
        limits: shared.limits.clone(),
        quiet: shared.quiet_logs.clone(),
        shutdown: shared.shutdown.clone(),
        grace,
    };
    let kind = door.kind;
    accept_loop(
        door,
        listener,
        |refusal, session| {
            let mut out = Vec::new();
            Reply::new(codes::TOO_MANY_CONNECTIONS, refusal.explanation()).write_to(&mut out, session);
            out
        },
        |session, peer| tracing::info_span!("smtp", session = %session, %peer, listener = kind),
        |tcp, peer, session| serve_connection(shared.clone(), tcp, peer, implicit_tls, session),
    )
    .await
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
