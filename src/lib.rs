#![forbid(unsafe_code)]
//! gatepost: a self-hosted SMTP gateway with scheduled delivery and an audit trail.
//!
//! Data flow of one message (see `docs/architecture.md`): a client connects to a listener
//! (`smtp::server`), the tokio driver (`smtp::driver`) feeds bytes to the sans-IO session
//! (`smtp::session`), which authenticates the user (`accounts`), reads the message
//! (`smtp::data`, `message`) and computes each recipient's release time (`schedule`). The
//! queue (`queue`) writes the body file and then commits the record and its due-index entry
//! (`store`) before the client hears 250.

pub mod accounts;
pub mod app;
pub mod audit;
pub mod blobs;
pub mod clock;
pub mod config;
pub mod discover;
pub mod filing;
pub mod imap;
pub mod mailstore;
pub mod message;
pub mod net;
pub mod queue;
pub mod relay;
pub mod rewrite;
pub mod schedule;
pub mod secrets;
pub mod smtp;
pub mod store;
pub mod sync;
pub mod tls;
