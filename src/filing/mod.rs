//! gatepost filing mail into users' mailboxes on its own (`filer.rs`): a copy of what they
//! sent in `Sent`, and the DSNs it writes them in `INBOX`. The filer reads a durable feed of
//! the queue's store and writes the mail store: two files, never one transaction over both
//! (docs/mailstore.md).

pub mod filer;
