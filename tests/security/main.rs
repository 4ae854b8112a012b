//! gatepost's own security suite: the attacks an outside probe tried (and the ones that already
//! hold) against the real server over real sockets, under plain `cargo test`. Each door adds
//! its attacks beside the others: one module per area (submission content, login, connections,
//! store and operator output, relay). `docs/security.md` is the threat model this suite backs.
//! One test binary for the whole area keeps builds fast on small machines.

#![allow(dead_code)]

#[path = "../common/ports.rs"]
mod ports;
#[path = "../submission/support.rs"]
mod support;

mod connections;
mod imap;
mod login;
mod open_relay;
mod operator;
mod relay;
mod store;
mod submission;
