//! IMAP black-box tests: a real gatepost on 127.0.0.1:0 spoken to over TLS by a scripted
//! client that sends exact bytes, and by real clients (Python's imaplib).

#[path = "../common/ports.rs"]
mod ports;
#[path = "../submission/support.rs"]
#[allow(dead_code)]
mod support;

mod cli;
#[allow(dead_code)]
mod client;
mod compliance;
mod crash;
mod filing;
mod interop;
mod protocol;
mod scheduled;
