//! Relaying released messages to the operator's relay: the `file://` relay for development
//! and demos, and (in `smtp`) an SMTP client to a third-party server. Both report, per
//! message, each recipient's result and where the message went (relay IP, our local IP).

pub mod accounts;
pub mod file;
pub mod reply;
pub mod smtp;
pub mod trust;

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;

pub use reply::RelayReply;

/// One message ready to leave: rewritten bytes and the envelope.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub queue_id: String,
    /// Envelope sender used on the relay (the relay's own address when From is rewritten).
    pub sender: String,
    /// Envelope recipients (date tags already removed).
    pub recipients: Vec<String>,
    pub body: Vec<u8>,
}

/// What happened to one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecipientResult {
    /// Accepted by the relay (after the final DATA reply).
    Delivered,
    /// Try again later (4xx, 552 to RCPT, or the connection failed).
    Deferred(Refusal),
    /// Refused for good (5xx, or an address that cannot be sent).
    Failed(Refusal),
    /// The whole message and its final `.` were sent, but no reply to them came (the
    /// connection dropped, the wait timed out, the reply was garbage): the relay may have
    /// accepted it (RFC 1047). Retrying may deliver a second copy (`queue::attempts`).
    PossiblyDelivered(String),
}

/// Why a recipient was not delivered this time: the relay's reply as it came (code,
/// enhanced status code, text), or gatepost's own reason when there was no reply (no
/// connection, an address that cannot go over SMTP). Temporary or permanent is the
/// `RecipientResult` variant that carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub reply: Option<RelayReply>,
    /// The reason in words: the reply as received, or what went wrong.
    pub text: String,
}

impl Refusal {
    /// The relay said so.
    pub fn said(reply: &RelayReply) -> Refusal {
        Refusal { reply: Some(reply.clone()), text: reply.to_string() }
    }

    /// The relay's reply, explained (`unexpected reply: …`, `the relay requires authentication: …`).
    pub fn said_with(reply: &RelayReply, text: String) -> Refusal {
        Refusal { reply: Some(reply.clone()), text }
    }

    /// No reply decided it: gatepost's own words.
    pub fn why(text: impl Into<String>) -> Refusal {
        Refusal { reply: None, text: text.into() }
    }

    /// A reply line as a relay sends it (`550 5.1.1 no such user`): for fakes and tests.
    /// A line that is not a reply becomes gatepost's own words.
    pub fn reply_line(line: &str) -> Refusal {
        match RelayReply::parse(&[line]) {
            Some(r) => Refusal::said(&r),
            None => Refusal::why(line),
        }
    }

    /// The RFC 3463 status the relay gave, if any (`5.1.1`).
    pub fn enhanced(&self) -> Option<&str> {
        self.reply.as_ref().and_then(|r| r.enhanced.as_deref())
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

/// The outcome of handing one message to the relay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// Same order as `Outgoing::recipients`.
    pub recipients: Vec<RecipientResult>,
    /// The relay server's address, when a connection was made.
    pub relay_ip: Option<IpAddr>,
    /// Our side of that connection: the system IP of the invention's record.
    pub system_ip: Option<IpAddr>,
    /// The relay's final reply (or what the file relay did), for the record.
    pub reply: String,
}

impl Delivery {
    /// Every recipient gets the same result (a connection-level failure, say).
    pub fn all(n: usize, result: RecipientResult, reply: impl Into<String>) -> Delivery {
        Delivery { recipients: vec![result; n], relay_ip: None, system_ip: None, reply: reply.into() }
    }
}

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Where released messages go. One call hands over a batch that should share a connection.
pub trait Relay: Send + Sync {
    /// One `Delivery` per message, in order.
    fn deliver_batch<'a>(&'a self, msgs: &'a [Outgoing]) -> BoxFuture<'a, Vec<Delivery>>;
}

impl Relay for file::FileRelay {
    fn deliver_batch<'a>(&'a self, msgs: &'a [Outgoing]) -> BoxFuture<'a, Vec<Delivery>> {
        let relay = self.clone();
        let msgs = msgs.to_vec();
        Box::pin(async move {
            let n = msgs.len();
            tokio::task::spawn_blocking(move || msgs.iter().map(|m| relay.deliver(m)).collect()).await.unwrap_or_else(
                |_| {
                    (0..n)
                        .map(|_| {
                            Delivery::all(1, RecipientResult::Deferred(Refusal::why("file relay task failed")), "")
                        })
                        .collect()
                },
            )
        })
    }
}
