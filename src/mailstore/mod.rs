//! The mail store (docs/mailstore.md): every user's mailboxes, messages and flags, over the
//! blobs of `crate::blobs`. Built piece by piece; today: the stored MIME structure.

pub mod structure;
