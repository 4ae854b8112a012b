//! User accounts as stored. Password hashing lives in `accounts`; this is only the record.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRecord {
    pub name: String,
    /// The verified address the user sends as.
    pub email: String,
    /// Argon2 PHC string.
    pub password_hash: String,
    /// Operator-added users are verified; self-registered ones after the confirmation link.
    pub verified: bool,
    pub disabled: bool,
    /// IANA zone; `None` means the operator's `schedule.timezone`.
    #[serde(default)]
    pub timezone: Option<String>,
    pub created_at: Timestamp,
}

impl UserRecord {
    /// Addresses this user may put in MAIL FROM and From (lower-case). External accounts
    /// join this list when aggregation lands.
    pub fn sender_addresses(&self) -> Vec<String> {
        vec![self.email.to_lowercase()]
    }
}
