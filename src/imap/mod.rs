//! The IMAP server (RFC 3501 IMAP4rev1 and the extensions in docs/imap.md).
//!
//! Shape: imap-next frames what clients send (lines, literals, LITERAL+, AUTHENTICATE
//! continuations, IDLE's DONE) and imap-codec parses it; everything above framing is
//! gatepost's: the session's states, the UID↔sequence-number map, FETCH rendering, SEARCH,
//! STORE, CONDSTORE/QRESYNC, QUOTA. The session (`session/`) is synchronous and owns no I/O;
//! the driver (`driver.rs`) owns the socket, TLS, deadlines, the login door and IDLE.
//!
//! Locking and broadcast (read before adding a handler):
//! - The mail store is the only shared state. A handler calls it, gets a committed result,
//!   renders into the session's output buffer, and returns; the driver writes the buffer
//!   afterwards. No store transaction is ever open while bytes go to a client.
//! - Every write commits, then publishes the user's modseq (`mailstore::signal`). Sessions do
//!   not receive events: each keeps its UID list and the highest modseq it has shown, and
//!   after a command (or on the signal, while IDLE) reads what changed since from the store.
//!   A slow or stalled client therefore holds no queue, and cannot miss a change.
//! - EXPUNGE is only announced where RFC 3501 §7.4.1 allows (not during FETCH, STORE or
//!   SEARCH); until then the session keeps the expunged UIDs in its map as "pending", and a
//!   FETCH of one answers nothing for it.
//! - A session's own STORE reports its FETCH responses itself and remembers (uid, modseq)
//!   so the catch-up does not report the same change twice.
//! - Store calls block (redb commits fsync); the driver runs every handler on the blocking
//!   pool, never on a runtime worker.

pub mod driver;
pub mod fetch;
pub mod held;
pub mod listener;
pub mod render;
pub mod script;
pub mod search;
pub mod sequence;
pub mod session;
pub mod utf7;
pub mod wire;

/// `[imap]` as the wiring builds it.
#[derive(Debug, Clone)]
pub struct ImapSettings {
    pub max_append_size: u32,
    pub max_connections_per_user: usize,
    pub preauth_timeout: std::time::Duration,
    pub idle_timeout: std::time::Duration,
    /// A command (and the idle time before it) once logged in; at least 30 minutes
    /// (RFC 3501 §5.4: the autologout timer).
    pub command_timeout: std::time::Duration,
}

impl Default for ImapSettings {
    fn default() -> Self {
        ImapSettings {
            max_append_size: 100 << 20,
            max_connections_per_user: 20,
            preauth_timeout: std::time::Duration::from_secs(60),
            idle_timeout: std::time::Duration::from_secs(30 * 60),
            command_timeout: std::time::Duration::from_secs(30 * 60),
        }
    }
}
