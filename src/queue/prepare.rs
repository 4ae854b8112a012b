//! The step between the stored body and the relay: the rewrite of `docs/rewrite.md`, fed
//! from the message's record.

use std::sync::Arc;

use super::dispatch::Prepare;
use crate::rewrite::{self, Envelope, RewritePolicy};
use crate::store::QueueRecord;

/// Rewrite one message from its record.
pub fn rewrite_message(policy: &RewritePolicy, rec: &QueueRecord, body: &[u8]) -> Result<Vec<u8>, String> {
    let tagged: Vec<(String, String)> = rec
        .recipients
        .iter()
        .filter(|r| r.original != r.address)
        .map(|r| (r.original.clone(), r.address.clone()))
        .collect();
    let queue_id = rec.id.to_string();
    let env = Envelope {
        queue_id: &queue_id,
        user_address: &rec.sender,
        sender_name: rec.sender_name.as_deref(),
        client_ip: rec.client.ip(),
        helo: &rec.helo,
        tls: rec.tls.as_deref(),
        submitted_at: rec.submitted_at,
        tagged: &tagged,
    };
    // Bodies are stored with canonical line ends since issue 8; one held from before may not
    // be, and it must go out as the one line-end rule reads it (never a bare CR in the header).
    let body = crate::message::canonical_line_ends(body).map_err(|e| format!("cannot relay the message: {e}"))?;
    let out =
        rewrite::rewrite_with_notes(&body, &env, policy).map_err(|e| format!("cannot rewrite the message: {e}"))?;
    for note in &out.notes {
        tracing::info!(queue_id = %rec.id, note = ?note, "rewrite left a part as it was");
    }
    Ok(out.message)
}

pub fn prepare(policy: RewritePolicy) -> Arc<Prepare> {
    Arc::new(move |rec, body| rewrite_message(&policy, rec, &body))
}

#[cfg(test)]
mod tests {
    use jiff::Timestamp;

    use super::*;
    use crate::store::QueueState;

    /// A body held from before issue 8 (stored as the client sent it) goes out under the one
    /// line-end rule: bare LFs become CRLF, and a bare CR in the header is never relayed.
    #[test]
    fn bodies_held_from_before_get_the_one_line_end_rule_at_release() {
        let policy = crate::app::settings::rewrite_policy(&crate::config::Config::default());
        let at: Timestamp = "2026-12-25T08:00:00Z".parse().unwrap();
        let rec = crate::store::tests::sample_record("01JD0000000000000000000000", "alice", at, QueueState::Sending);

        let out =
            rewrite_message(&policy, &rec, b"From: alice@example.com\nSubject: hi\n\nline one\nline two\r\n").unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(!text.replace("\r\n", "").contains('\n'), "every line end is CRLF: {text:?}");
        assert!(text.contains("\r\nline one\r\nline two\r\n"), "{text:?}");

        let smuggled = b"From: alice@example.com\r\nX-Foo: a\rFrom: ceo@bank.example\r\n\r\nbody\r\n";
        let err = rewrite_message(&policy, &rec, smuggled).unwrap_err();
        assert!(err.starts_with("cannot relay the message:"), "{err}");
        assert!(err.contains("bare CR"), "{err}");
    }
}
