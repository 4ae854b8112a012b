//! Connected accounts against real servers: a private Dovecot started by the tests
//! (docs/accounts.md), and scripted fakes only for faults a real server cannot produce.

#[path = "../common/ports.rs"]
mod ports;

mod cli;
mod connect;
mod discover;
mod dovecot;
mod faults;
mod import;
mod pop3;
mod send_as;
mod serve;
mod smtp;
mod sync;
