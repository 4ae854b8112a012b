//! Connected accounts' servers (docs/accounts.md): reaching them (`connect`), and what went
//! wrong when it fails (`problem`). Import and push sync build on these.

pub mod connect;
pub mod mbox;
pub mod problem;
