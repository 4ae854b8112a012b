//! Connected accounts' servers (docs/accounts.md): reaching them (`connect`), and what went
//! wrong when it fails (`problem`); the pure sync planner (`plan`), one pass over an
//! account's folders (`pass`), and the task that keeps an account in sync in `serve`
//! (`account`, `supervisor`), with the Sent copies of mail sent as the account (`sent_copy`).

pub mod account;
pub mod connect;
pub mod folders;
pub mod mbox;
pub mod notice;
pub mod pass;
pub mod plan;
pub mod pop3;
pub mod pop3_pass;
pub mod problem;
mod push;
pub mod rename;
pub mod sent_copy;
pub mod supervisor;
