//! The mail store (docs/mailstore.md): every user's mailboxes, messages and flags, over the
//! blobs of `crate::blobs`. Built piece by piece: the stored MIME structure, and the
//! metadata database (users, mailboxes, APPEND under the growing quota).

pub mod db;
pub mod structure;
