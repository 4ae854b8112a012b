//! gatepost filing mail into users' mailboxes on its own: copies of what they sent (`sent`),
//! later DSNs and notices. Each filer reads a durable feed of the queue's store and writes
//! the mail store: two files, never one transaction over both (docs/mailstore.md).

pub mod sent;
