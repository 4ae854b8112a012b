//! IMAP listeners: the shared accept loop (`net/listen.rs`) with IMAP's refusal line
//! (`* BYE [UNAVAILABLE]`) and session span; on shutdown sessions are told `* BYE` at once.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

use super::driver::{Shared, serve_connection};
use crate::net::limits::ConnectionLimits;
use crate::net::listen::{Door, accept_loop};
use crate::net::quiet::Quiet;

pub async fn run_listener(
    shared: Arc<Shared>,
    limits: Arc<ConnectionLimits>,
    quiet: Arc<Quiet>,
    listener: TcpListener,
    implicit_tls: bool,
    grace: Duration,
) -> bool {
    let door = Door {
        kind: if implicit_tls { "imaps" } else { "imap" },
        implicit_tls,
        limits,
        quiet,
        shutdown: shared.shutdown.clone(),
        grace,
    };
    let kind = door.kind;
    accept_loop(
        door,
        listener,
        |refusal, session| {
            format!("* BYE [UNAVAILABLE] {} (session {session})\r\n", refusal.explanation()).into_bytes()
        },
        |session, peer| tracing::info_span!("imap", session = %session, %peer, listener = kind),
        |tcp, peer, session| serve_connection(shared.clone(), tcp, peer, implicit_tls, session),
    )
    .await
}
