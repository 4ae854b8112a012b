//! What every network door shares (SMTP and IMAP now, HTTP later): the accept loop
//! (`listen`), connection limits per address (`limits`), the registry of live sessions per
//! user (`registry`), session ids, and log lines that a client could otherwise repeat without
//! bound (`quiet`).

pub mod limits;
pub mod listen;
pub mod quiet;
pub mod registry;
pub mod server_url;

/// A short random id for logs and error replies (the random tail of a ULID).
pub fn new_session_id() -> String {
    let id = ulid::Ulid::new().to_string().to_ascii_lowercase();
    id[id.len() - 12..].to_string()
}
