//! The steps of a queued message's life, kept in its record for the trace timeline.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// A step in the message's life.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub at: Timestamp,
    pub kind: EventKind,
    #[serde(default)]
    pub detail: String,
}

/// What happened. Stored as its `as_str` spelling, so those must stay stable; a spelling
/// this version does not know (a newer gatepost's) is kept as it was, never refused.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum EventKind {
    Submitted,
    Held,
    Released,
    /// A relay connection took some of its recipients.
    Attempt,
    Delivered,
    Deferred,
    /// The relay went silent after the whole message: it may have arrived.
    PossiblyDelivered,
    Failed,
    /// Its lifetime ran out while retrying.
    Expired,
    /// gatepost stopped during an attempt; the recipients are tried again.
    Interrupted,
    Cancelled,
    /// A delivery status notification about it was queued to the sender.
    Dsn,
    /// Its release was stopped (`\\Deleted` in the IMAP `Scheduled` view), or started again.
    Paused,
    Resumed,
    Other(String),
}

const KNOWN: [(EventKind, &str); 14] = [
    (EventKind::Submitted, "submitted"),
    (EventKind::Held, "held"),
    (EventKind::Released, "released"),
    (EventKind::Attempt, "attempt"),
    (EventKind::Delivered, "delivered"),
    (EventKind::Deferred, "deferred"),
    (EventKind::PossiblyDelivered, "possibly-delivered"),
    (EventKind::Failed, "failed"),
    (EventKind::Expired, "expired"),
    (EventKind::Interrupted, "interrupted"),
    (EventKind::Cancelled, "cancelled"),
    (EventKind::Dsn, "dsn"),
    (EventKind::Paused, "paused"),
    (EventKind::Resumed, "resumed"),
];

impl EventKind {
    pub fn as_str(&self) -> &str {
        match self {
            EventKind::Other(s) => s,
            known => KNOWN.iter().find(|(k, _)| k == known).map(|(_, s)| *s).expect("every known kind is listed"),
        }
    }
}

impl From<String> for EventKind {
    fn from(s: String) -> Self {
        KNOWN.iter().find(|(_, name)| *name == s).map(|(k, _)| k.clone()).unwrap_or(EventKind::Other(s))
    }
}

impl From<EventKind> for String {
    fn from(k: EventKind) -> Self {
        k.as_str().to_string()
    }
}

impl std::fmt::Display for EventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_spellings_are_stable_and_unknown_ones_kept() {
        for (kind, name) in KNOWN {
            assert_eq!(serde_json::to_string(&kind).unwrap(), format!("\"{name}\""));
            assert_eq!(serde_json::from_str::<EventKind>(&format!("\"{name}\"")).unwrap(), kind);
        }
        let future: EventKind = serde_json::from_str("\"archived\"").unwrap();
        assert_eq!(future, EventKind::Other("archived".into()));
        assert_eq!(serde_json::to_string(&future).unwrap(), "\"archived\"");
        let e: Event = serde_json::from_str(r#"{"at":"2026-12-01T10:00:00Z","kind":"possibly-delivered"}"#).unwrap();
        assert_eq!((e.kind, e.detail.as_str()), (EventKind::PossiblyDelivered, ""));
    }
}
