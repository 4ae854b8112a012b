//! A queued message's id: a ULID, so ids sort by submission time, and the one spelling
//! (26 upper-case Crockford characters) used for table keys, body file names and output.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use ulid::Ulid;

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct QueueId(Ulid);

impl QueueId {
    /// A new id; ids made in different milliseconds sort by time.
    pub fn new() -> Self {
        QueueId(Ulid::new())
    }

    pub fn from_u128(n: u128) -> Self {
        QueueId(Ulid(n))
    }

    pub fn to_u128(self) -> u128 {
        self.0.0
    }

    /// Milliseconds since the epoch at which it was made.
    pub fn timestamp_ms(self) -> u64 {
        self.0.timestamp_ms()
    }
}

impl Default for QueueId {
    fn default() -> Self {
        Self::new()
    }
}

/// Not a queue id; says what one looks like.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a queue id (26 letters and digits, as `gatepost queue list` shows)")]
pub struct BadQueueId(pub String);

impl FromStr for QueueId {
    type Err = BadQueueId;
    /// Exactly 26 characters; case does not matter (Crockford base 32).
    fn from_str(s: &str) -> Result<Self, BadQueueId> {
        // 26 characters hold 130 bits: a first character above 7 would not fit in 128 (the
        // ulid crate drops the excess rather than refusing it).
        if s.len() != ulid::ULID_LEN || !matches!(s.as_bytes()[0], b'0'..=b'7') {
            return Err(BadQueueId(s.to_string()));
        }
        Ulid::from_string(s).map(QueueId).map_err(|_| BadQueueId(s.to_string()))
    }
}

impl TryFrom<String> for QueueId {
    type Error = BadQueueId;
    fn try_from(s: String) -> Result<Self, BadQueueId> {
        s.parse()
    }
}

impl From<QueueId> for String {
    fn from(id: QueueId) -> Self {
        id.to_string()
    }
}

impl fmt::Display for QueueId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for QueueId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "QueueId({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_spelling_and_clear_refusals() {
        let id = QueueId::new();
        let text = id.to_string();
        assert_eq!(text.len(), 26);
        assert_eq!(text, text.to_ascii_uppercase());
        assert_eq!(text.parse::<QueueId>().unwrap(), id);
        assert_eq!(text.to_ascii_lowercase().parse::<QueueId>().unwrap(), id, "case does not matter");
        assert_eq!(serde_json::to_string(&id).unwrap(), format!("\"{text}\""));
        assert_eq!(serde_json::from_str::<QueueId>(&format!("\"{text}\"")).unwrap(), id);
        for bad in ["", "42", "01JD000000000000000000000U", "01JD00000000000000000000000", "8ZZZZZZZZZZZZZZZZZZZZZZZZZ"]
        {
            let err = bad.parse::<QueueId>().unwrap_err();
            assert!(err.to_string().contains("is not a queue id"), "{bad}: {err}");
        }
        assert!(serde_json::from_str::<QueueId>("\"nope\"").is_err());
        std::thread::sleep(std::time::Duration::from_millis(2));
        assert!(QueueId::new() > id, "ids sort by time (to the millisecond)");
    }
}
