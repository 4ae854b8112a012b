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

/// The rewrite for the system relay, and for mail sent as a connected account its own: From
/// and Sender as written and no footer (the account's server sends for its own address, so
/// DMARC aligns), the rest as for any release (Bcc, Deliver-On and date tags removed,
/// Message-ID and Date added when missing, the Received line).
pub fn prepare(policy: RewritePolicy) -> Arc<Prepare> {
    let as_written = RewritePolicy { rewrite_from: false, footer_template: String::new(), ..policy.clone() };
    Arc::new(move |rec, body| {
        let policy = if rec.route.is_some() { &as_written } else { &policy };
        rewrite_message(policy, rec, &body)
    })
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

    /// Mail sent as a connected account goes as written: its From, no Reply-To, no footer;
    /// Bcc and Deliver-On still go, and a Received line is still added.
    #[test]
    fn mail_sent_as_an_account_keeps_its_from_and_gets_no_footer() {
        let mut config = crate::config::Config::default();
        config.rewrite.rewrite_from = true;
        let mut policy = crate::app::settings::rewrite_policy(&config);
        policy.relay_address = "relay@thirdparty.example".into();
        let prepare = prepare(policy);
        let at: Timestamp = "2026-12-25T08:00:00Z".parse().unwrap();
        let mut rec =
            crate::store::tests::sample_record("01JD0000000000000000000000", "alice", at, QueueState::Sending);
        let body = b"From: Alice <alice@work.example>\r\nBcc: boss@work.example\r\nDeliver-On: 2026-12-25\r\nSubject: hi\r\n\r\nHello.\r\n";

        let system = String::from_utf8(prepare(&rec, body.to_vec()).unwrap()).unwrap();
        assert!(system.contains("relay@thirdparty.example") && system.contains("Reply-To:"), "{system}");
        assert!(system.contains("through gatepost."), "the footer: {system}");

        rec.route = Some("Work".into());
        let own = String::from_utf8(prepare(&rec, body.to_vec()).unwrap()).unwrap();
        assert!(own.contains("\r\nFrom: Alice <alice@work.example>\r\n"), "{own}");
        assert!(!own.contains("thirdparty") && !own.contains("Reply-To:"), "{own}");
        assert!(own.ends_with("\r\n\r\nHello.\r\n"), "no footer: {own}");
        assert!(!own.contains("Bcc:") && !own.contains("Deliver-On:"), "{own}");
        assert!(own.starts_with("Received: "), "{own}");
    }
}
