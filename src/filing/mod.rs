//! gatepost filing mail into users' mailboxes on its own (`filer.rs`): a copy of what they
//! sent in `Sent`, the DSNs it writes them in `INBOX`, and the `Scheduled` view of their held
//! messages (`scheduled.rs`). The filer reads a durable feed of
//! the queue's store and writes the mail store: two files, never one transaction over both
//! (docs/mailstore.md).

pub mod filer;
pub mod scheduled;
