//! The queue record: everything SPEC §3 asks us to remember about one message. Stored as
//! versioned JSON so that fields can be added without a migration and a damaged record is
//! reported rather than misread.

use std::net::{IpAddr, SocketAddr};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::StoreError;
use super::event::{Event, EventKind};
use super::id::QueueId;
use crate::schedule::ScheduleSource;

/// Bumped when a field changes meaning; readers refuse versions they do not know.
pub const RECORD_VERSION: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum QueueState {
    /// Waiting for its release time.
    Held,
    /// Release time reached; waiting for the dispatcher.
    Due,
    Sending,
    Sent,
    Failed,
    Cancelled,
}

impl QueueState {
    pub const ALL: [QueueState; 6] = [
        QueueState::Held,
        QueueState::Due,
        QueueState::Sending,
        QueueState::Sent,
        QueueState::Failed,
        QueueState::Cancelled,
    ];
    pub fn as_str(&self) -> &'static str {
        match self {
            QueueState::Held => "held",
            QueueState::Due => "due",
            QueueState::Sending => "sending",
            QueueState::Sent => "sent",
            QueueState::Failed => "failed",
            QueueState::Cancelled => "cancelled",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str().eq_ignore_ascii_case(s))
    }
    /// States from which a message can still leave gatepost (and so can be cancelled).
    pub fn is_pending(&self) -> bool {
        matches!(self, QueueState::Held | QueueState::Due)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecipientRecord {
    /// As given in RCPT TO (with any date tag).
    pub original: String,
    /// Where it goes (date tag removed).
    pub address: String,
    pub release_at: Timestamp,
    /// Where the release time came from.
    pub source: ScheduleSource,
    pub state: QueueState,
    /// When a deferred recipient is tried again (None: at `release_at`).
    #[serde(default)]
    pub next_attempt_at: Option<Timestamp>,
    /// Delivery attempts made for this recipient.
    #[serde(default)]
    pub attempts: u32,
    /// The last relay reply or error for this recipient.
    #[serde(default)]
    pub last_error: Option<String>,
    /// Attempts that sent this recipient's message in full but got no reply to it, so may
    /// have delivered it (`queue::attempts`: after two, it is not tried again).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub possibly_delivered: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl RecipientRecord {
    /// When the dispatcher should next look at this recipient.
    pub fn next_attempt(&self) -> Timestamp {
        self.next_attempt_at.unwrap_or(self.release_at)
    }
}

/// Who wrote a message: a client that submitted it, or gatepost itself.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    /// Submitted by a client; `client` and `tls` say from where and how.
    #[default]
    Client,
    /// Written by gatepost (a delivery status notification; later other notices). There is
    /// no client: `client` holds `INTERNAL_CLIENT` and `tls` is empty, and neither is shown
    /// or searched as if someone had connected.
    Internal,
}

/// The placeholder `client` of an internal message (the field predates `origin`).
pub const INTERNAL_CLIENT: SocketAddr = SocketAddr::V4(std::net::SocketAddrV4::new(std::net::Ipv4Addr::UNSPECIFIED, 0));

/// One delivery attempt (filled in by the dispatcher). It is recorded before dialling, so
/// an attempt with no `finished_at` after a crash is one whose outcome is uncertain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    pub started_at: Timestamp,
    /// Recipient addresses tried in this attempt.
    #[serde(default)]
    pub recipients: Vec<String>,
    #[serde(default)]
    pub finished_at: Option<Timestamp>,
    #[serde(default)]
    pub relay_ip: Option<IpAddr>,
    #[serde(default)]
    pub system_ip: Option<IpAddr>,
    #[serde(default)]
    pub reply: Option<String>,
    /// Recipients this attempt may have delivered to: the message went out in full, the
    /// relay's reply to it never came.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub possibly_delivered: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueRecord {
    pub version: u32,
    /// ULID: sortable by submission time.
    pub id: QueueId,
    pub user: String,
    /// Envelope sender (MAIL FROM).
    pub sender: String,
    /// Display name of the header From, when it has one.
    #[serde(default)]
    pub sender_name: Option<String>,
    pub recipients: Vec<RecipientRecord>,
    #[serde(default)]
    pub subject: Option<String>,
    #[serde(default)]
    pub message_id: Option<String>,
    pub size: u64,
    /// SHA-256 of the stored body, hex; checked when the body is read back.
    pub body_sha256: String,
    pub client: SocketAddr,
    /// Who wrote the message. Records from before this field are all client submissions.
    #[serde(default)]
    pub origin: Origin,
    /// Negotiated TLS version, `None` for a plaintext (trusted-network) submission.
    #[serde(default)]
    pub tls: Option<String>,
    pub helo: String,
    /// When gatepost accepted it: the compose time of the invention.
    pub submitted_at: Timestamp,
    /// The session that submitted it, to match the logs.
    pub session_id: String,
    /// The user's timezone when it was submitted (release times are shown in it).
    pub timezone: String,
    pub state: QueueState,
    /// Set on a delivery status notification gatepost wrote: the queue id it reports on.
    /// Such a message is sent with a null sender and never answered by another notice.
    #[serde(default)]
    pub notice_of: Option<QueueId>,
    /// The route it leaves by (SPEC §10): a connected account's name, whose own server sends
    /// it as written; `None` (and in records from before routes): the system relay.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    /// Release stopped by the user (`\\Deleted` on its entry in the IMAP `Scheduled` view):
    /// it keeps its recipients' states but has no due entry until resumed.
    #[serde(default, skip_serializing_if = "is_false")]
    pub paused: bool,
    #[serde(default)]
    pub attempts: Vec<Attempt>,
    #[serde(default)]
    pub events: Vec<Event>,
}

impl QueueRecord {
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a record always serialises")
    }

    /// Decode a stored record; any damage is an error naming the record, never a panic.
    pub fn decode(bytes: &[u8]) -> Result<QueueRecord, StoreError> {
        let rec: QueueRecord = serde_json::from_slice(bytes)
            .map_err(|e| StoreError::Damaged(format!("queue record does not decode: {e}")))?;
        if rec.version != RECORD_VERSION {
            return Err(StoreError::Damaged(format!(
                "queue record {} has version {}, this gatepost reads {RECORD_VERSION}",
                rec.id, rec.version
            )));
        }
        Ok(rec)
    }

    /// The earliest release time among recipients still waiting.
    pub fn next_release(&self) -> Option<Timestamp> {
        self.recipients.iter().filter(|r| r.state.is_pending()).map(|r| r.next_attempt()).min()
    }

    /// Whether some recipient was held when it was submitted: such a message has an entry in
    /// its user's IMAP `Scheduled` view while it waits (docs/imap.md, "Scheduled").
    pub fn was_scheduled(&self) -> bool {
        self.origin == Origin::Client && self.recipients.iter().any(|r| r.release_at > self.submitted_at)
    }

    /// Its place in the `Scheduled` view now: the earliest release time of the recipients
    /// still held (the entry's INTERNALDATE), or `None` once none is (released or cancelled).
    pub fn scheduled_view(&self) -> Option<Timestamp> {
        if self.origin != Origin::Client {
            return None;
        }
        self.recipients.iter().filter(|r| r.state == QueueState::Held).map(|r| r.release_at).min()
    }

    /// Recompute the message state from its recipients (the message is as far as its
    /// least-advanced recipient).
    pub fn derive_state(&self) -> QueueState {
        let order = |s: QueueState| match s {
            QueueState::Held => 0,
            QueueState::Due => 1,
            QueueState::Sending => 2,
            QueueState::Failed => 3,
            QueueState::Sent => 4,
            QueueState::Cancelled => 5,
        };
        self.recipients.iter().map(|r| r.state).min_by_key(|s| order(*s)).unwrap_or(self.state)
    }

    /// The submitting client's IP; `None` for a message gatepost wrote itself.
    pub fn client_ip(&self) -> Option<std::net::IpAddr> {
        (self.origin == Origin::Client).then(|| self.client.ip())
    }

    /// Where the message came from, for people: `203.0.113.5:40000 via TLSv1.3 (HELO x)`,
    /// or `internal (gatepost)`.
    pub fn client_text(&self) -> String {
        match self.origin {
            Origin::Client => {
                format!("{} via {} (HELO {})", self.client, self.tls.as_deref().unwrap_or("plaintext"), self.helo)
            }
            Origin::Internal => "internal (gatepost)".into(),
        }
    }

    pub fn push_event(&mut self, at: Timestamp, kind: EventKind, detail: impl Into<String>) {
        self.events.push(Event { at, kind, detail: detail.into() });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_from_before_origin_and_possibly_delivered_still_read() {
        // A record as gatepost wrote it before those fields existed.
        let old = r#"{"version":1,"id":"01JF0000000000000000000000","user":"alice","sender":"a@x",
            "recipients":[{"original":"b@x","address":"b@x","release_at":"2026-12-25T08:00:00Z",
            "source":"immediate","state":"sent","attempts":1}],"size":1,"body_sha256":"",
            "client":"192.0.2.1:4000","tls":"TLSv1.3","helo":"h","submitted_at":"2026-12-25T08:00:00Z",
            "session_id":"s","timezone":"UTC","state":"sent",
            "attempts":[{"started_at":"2026-12-25T08:00:00Z"}]}"#;
        let rec = QueueRecord::decode(old.as_bytes()).unwrap();
        assert_eq!(rec.origin, Origin::Client);
        assert_eq!(rec.client_ip(), Some("192.0.2.1".parse().unwrap()));
        assert_eq!(rec.client_text(), "192.0.2.1:4000 via TLSv1.3 (HELO h)");
        assert_eq!(rec.recipients[0].possibly_delivered, 0);
        assert!(rec.attempts[0].possibly_delivered.is_empty());
        // Written back, an ordinary record gains only its origin.
        let json = String::from_utf8(rec.encode()).unwrap();
        assert!(!json.contains("possibly_delivered") && json.contains(r#""origin":"client""#), "{json}");

        let mut internal = rec.clone();
        internal.origin = Origin::Internal;
        internal.client = INTERNAL_CLIENT;
        let back = QueueRecord::decode(&internal.encode()).unwrap();
        assert_eq!((back.client_ip(), back.client_text().as_str()), (None, "internal (gatepost)"));
    }
}
