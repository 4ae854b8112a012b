//! Black-box tests of submission: the real server on 127.0.0.1:0, real sockets, real TLS,
//! and real peers (swaks, Python smtplib). One test binary for the whole area keeps builds
//! fast on small machines.

#[path = "../common/ports.rs"]
mod ports;
mod support;

mod cli;
mod corpus;
mod crash;
mod dialogue;
mod moved_keys;
mod peers;
mod relay_e2e;
mod release;
