//! SMTP submission: named replies (`codes`), the MAIL/RCPT line parser (`envelope`), the DATA
//! reader, the sans-IO session, and the thin tokio driver and listeners around it. Connection
//! limits, the login door and the live-session registry are shared with the other protocols
//! (`net`, `accounts`).

pub mod codes;
pub mod data;
pub mod driver;
pub mod envelope;
pub mod server;
pub mod session;
pub mod settings;
pub mod submission;
