//! Ports for servers a test starts as child processes (which cannot take `127.0.0.1:0` and
//! report back). Taken from below Linux's ephemeral range (32768-60999): a port picked by
//! binding `:0` and releasing it can be handed to any outgoing connection of a test running
//! in parallel before the child binds it, and that child then talks to the wrong peer or fails
//! to bind. Below the range only another test's choice can collide, and a counter per process
//! (started at a place that depends on the pid) keeps parallel tests apart.

use std::sync::atomic::{AtomicU32, Ordering};

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A port nothing listens on right now, below the ephemeral range.
pub fn free_port() -> u16 {
    const LOW: u32 = 20_000;
    const SPAN: u32 = 12_000;
    let start = LOW + (std::process::id() * 37) % SPAN;
    loop {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = (LOW + (start - LOW + n) % SPAN) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}
