//! Content rewrite: turns a stored submitted message (the bytes exactly as the client sent
//! them) into the bytes gatepost relays. Pure: no I/O, no clock, no configuration lookups.
//!
//! The header gets the relay's From (with the user in Reply-To), loses Sender, Resent-From and
//! Resent-Sender with the old From, loses Bcc, Deliver-On and the date tags of To/Cc, and gains Message-ID, Date and a Received line; the body parts gain the
//! footer. Every other byte is copied unchanged — the module works on byte spans, never on a
//! parsed-and-reserialised message — and signed or encrypted bodies are never touched.
//! `docs/rewrite.md` describes the rules for operators.

mod address;
mod encoding;
mod footer;
mod headers;
mod mime;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod unit_tests;

use std::net::IpAddr;

pub use crate::message::header::Block;
use headers::Edits;

/// Default display name of the rewritten From.
pub const DEFAULT_DISPLAY_NAME_TEMPLATE: &str = "{name} via gatepost";
/// Default footer added to the body.
pub const DEFAULT_FOOTER_TEMPLATE: &str = "--\nSent by {address} through gatepost. {intro}";

/// The operator's choices for the rewrite (from the relay configuration).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RewritePolicy {
    /// Off for relays allowed to send as the users' domains: From and Reply-To stay as written.
    pub rewrite_from: bool,
    /// The third-party address the relay sends from, e.g. `relay@thirdparty.example`.
    pub relay_address: String,
    /// Display name of the new From; `{name}` is the sender's display name, else the user's
    /// address (`{address}`, `{intro}` work too).
    pub display_name_template: String,
    /// Footer text, `\n` between lines; `{address}` is the user's address, `{intro}` the
    /// system introduction, `{name}` as above.
    pub footer_template: String,
    /// The operator's one-line introduction of the system.
    pub system_intro: String,
    /// Leave the client's IP out of the Received header.
    pub hide_client_ip: bool,
    /// gatepost's host name, for Received and Message-ID.
    pub hostname: String,
}

impl Default for RewritePolicy {
    fn default() -> RewritePolicy {
        RewritePolicy {
            rewrite_from: true,
            relay_address: String::new(),
            display_name_template: DEFAULT_DISPLAY_NAME_TEMPLATE.to_string(),
            footer_template: DEFAULT_FOOTER_TEMPLATE.to_string(),
            system_intro: String::new(),
            hide_client_ip: false,
            hostname: "localhost".to_string(),
        }
    }
}

/// What gatepost knows about the submission of this message.
#[derive(Debug, Clone)]
pub struct Envelope<'a> {
    pub queue_id: &'a str,
    /// The user's own address (goes to Reply-To and the footer).
    pub user_address: &'a str,
    /// Display name from the original From.
    pub sender_name: Option<&'a str>,
    pub client_ip: IpAddr,
    pub helo: &'a str,
    /// The TLS session of the submission (e.g. `TLSv1.3`), None for plain text.
    pub tls: Option<&'a str>,
    /// For the Received header, and Date when the message has none.
    pub submitted_at: jiff::Timestamp,
    /// The date-tagged recipient addresses as submitted (e.g. `bob+2026-12-25@example.net`) with
    /// their clean form (`bob@example.net`): tags to strip from To/Cc.
    pub tagged: &'a [(String, String)],
}

/// Something the rewrite chose not to do, for the log and the message's record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Note {
    /// A signed or encrypted body (this content type) was relayed untouched, without footer.
    Protected(String),
    /// A text part in this charset could not take the footer (non-ASCII footer, or a charset
    /// such as UTF-16 where appended bytes would corrupt it) and was left alone.
    Charset(String),
    /// A text part with this transfer encoding (unknown, or base64 that does not decode) was
    /// left alone.
    Encoding(String),
    /// No part could carry the footer (for example a message that is only an attachment).
    NoTextBody,
}

/// The rewritten message and what was left undone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rewritten {
    pub message: Vec<u8>,
    pub notes: Vec<Note>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RewriteError {
    /// The message does not start with a header field, so there is no header to rewrite.
    #[error("the message does not start with a header field")]
    NoHeader,
}

/// Rewrites `message` for relay; see the module documentation and `docs/rewrite.md`.
pub fn rewrite(message: &[u8], env: &Envelope, policy: &RewritePolicy) -> Result<Vec<u8>, RewriteError> {
    rewrite_with_notes(message, env, policy).map(|r| r.message)
}

/// The header the rewrite works on, or why the message cannot be rewritten. The rewrite
/// starts here, and the submission session calls it at the end of DATA, so a message the
/// release would refuse (months later, for held mail) is refused while its sender is still
/// connected. The rest of the rewrite cannot fail.
pub fn header_of(message: &[u8]) -> Result<Block, RewriteError> {
    let block = headers::parse_block(message, 0, message.len());
    if block.fields.is_empty() {
        return Err(RewriteError::NoHeader);
    }
    Ok(block)
}

/// [`rewrite`], also reporting the parts it left alone.
pub fn rewrite_with_notes(message: &[u8], env: &Envelope, policy: &RewritePolicy) -> Result<Rewritten, RewriteError> {
    let block = header_of(message)?;
    let mut edits = Edits::new(block.fields.len());
    edit_header(message, &block, env, policy, &mut edits);
    // An empty footer template means no footer: the body is not touched at all.
    let (mut splices, notes) = if policy.footer_template.trim().is_empty() {
        (Vec::new(), Vec::new())
    } else {
        mime::decorate(message, &block, &footer::Footer::new(env, policy), &mut edits)
    };

    let mut out = edits.render(message, &block);
    if block.separator {
        out.extend_from_slice(&message[block.end..block.body_start]);
    } else {
        // No blank line (the input ended, or a line that is no field began the body): add one.
        headers::end_line(&mut out, block.eol);
        out.extend_from_slice(block.eol);
    }
    splices.sort_by_key(|(range, _)| (range.start, range.end));
    let mut pos = block.body_start;
    for (range, bytes) in splices {
        debug_assert!(range.start >= pos, "overlapping splices");
        if range.start >= pos {
            out.extend_from_slice(&message[pos..range.start]);
            out.extend_from_slice(&bytes);
            pos = range.end;
        }
    }
    out.extend_from_slice(&message[pos..]);
    Ok(Rewritten { message: out, notes })
}

/// The header edits of issue 3 §3 other than the MIME ones (those come with the footer).
fn edit_header(buf: &[u8], block: &Block, env: &Envelope, policy: &RewritePolicy, edits: &mut Edits) {
    let eol = block.eol;
    let has_reply_to = block.find(buf, "reply-to").is_some();
    let reply_to = headers::fold_words(&format!("Reply-To: {}", address::bare_address(env.user_address)), eol);
    let from = policy.rewrite_from.then(|| {
        let vars = footer::vars(env, policy);
        let refs: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
        address::from_field(&footer::render(&policy.display_name_template, &refs), &policy.relay_address, eol)
    });
    let mut from_written = false;
    for (i, field) in block.fields.iter().enumerate() {
        if ["bcc", "resent-bcc", "deliver-on"].iter().any(|n| field.is(buf, n)) {
            edits.remove(i);
        } else if from.is_some() && crate::message::SENDER_FIELDS.iter().any(|n| field.is(buf, n)) {
            // They would name the user next to the relay's From; the user is in Reply-To.
            edits.remove(i);
        } else if field.is(buf, "to") || field.is(buf, "cc") {
            if let Some(new) = address::strip_tags(field.bytes(buf), field.value_start - field.start, env.tagged) {
                edits.replace(i, new);
            }
        } else if let Some(from) = from.as_ref().filter(|_| field.is(buf, "from")) {
            if from_written {
                edits.remove(i); // a second From would still name the user's domain
            } else {
                edits.replace(i, from.clone());
                if !has_reply_to {
                    edits.insert_after(i, &reply_to);
                }
                from_written = true;
            }
        }
    }
    if let Some(from) = from.filter(|_| !from_written) {
        edits.append.extend_from_slice(&from);
        if !has_reply_to {
            edits.append.extend_from_slice(&reply_to);
        }
    }
    if block.find(buf, "message-id").is_none() {
        let id = format!("Message-ID: {}", release_message_id(env.queue_id, &policy.hostname));
        edits.append.extend_from_slice(&headers::fold_words(&id, eol));
    }
    if block.find(buf, "date").is_none() {
        edits.append.extend_from_slice(&headers::fold_words(&format!("Date: {}", date(env.submitted_at)), eol));
    }
    edits.prepend = received(env, policy, eol);
}

/// The Message-ID the release gives a message that has none (`<queue id@host>`): the Sent
/// filer registers it too, so the provider's own copy of mail sent as an account is matched.
pub fn release_message_id(queue_id: &str, hostname: &str) -> String {
    format!("<{}@{}>", token(queue_id), token(hostname))
}

/// The Received line of the submission (RFC 5321 §4.4), with RFC 3848's protocol name: the
/// user always authenticated, so ESMTPSA over TLS and ESMTPA without.
fn received(env: &Envelope, policy: &RewritePolicy, eol: &[u8]) -> Vec<u8> {
    let mut pieces = vec![format!("Received: from {}", token(env.helo))];
    if !policy.hide_client_ip {
        let ip = match env.client_ip.to_canonical() {
            IpAddr::V4(v4) => v4.to_string(),
            IpAddr::V6(v6) => format!("IPv6:{v6}"), // RFC 5321 §4.1.3 address literal
        };
        pieces.push(format!(" ([{ip}])"));
    }
    let protocol = if env.tls.is_some() { "ESMTPSA" } else { "ESMTPA" };
    pieces.extend([
        format!(" by {} (gatepost)", token(&policy.hostname)),
        format!(" with {protocol}"),
        format!(" id {};", token(env.queue_id)),
        format!(" {}", date(env.submitted_at)),
    ]);
    headers::fold(&pieces, eol)
}

/// A name, id or address literal as written in a header: characters that could end or confuse
/// the field become `_` (the HELO name is the client's to choose).
fn token(text: &str) -> String {
    let clean: String = text
        .chars()
        .take(255)
        .map(|c| if c.is_ascii_alphanumeric() || ".-_:[]+".contains(c) { c } else { '_' })
        .collect();
    if clean.is_empty() { "unknown".to_string() } else { clean }
}

/// RFC 5322 date-time of `ts` in UTC, `+0000`.
fn date(ts: jiff::Timestamp) -> String {
    let zoned = ts.to_zoned(jiff::tz::TimeZone::UTC);
    jiff::fmt::rfc2822::DateTimePrinter::new()
        .zoned_to_string(&zoned)
        .unwrap_or_else(|_| "Thu, 1 Jan 1970 00:00:00 +0000".to_string())
}

/// Fuzz check with a fixed envelope and two fixed policies (ASCII and non-ASCII footer): the
/// rewrite never panics, and every message it accepts comes out non-empty, with a blank line
/// after its header, no Bcc, Deliver-On, Sender, Resent-From or Resent-Sender field left in
/// it, and exactly one From (the relay's), never longer than a line may be.
pub fn fuzz_one(data: &[u8]) {
    let tagged = [("bob+2026-12-25@example.net".to_string(), "bob@example.net".to_string())];
    // The display name comes from the message's own From, as at a real release.
    let name = crate::message::summarize(data).from_name.unwrap_or_else(|| "Alice Émilie".to_string());
    let env = Envelope {
        queue_id: "01JFUZZ0000000000000000000",
        user_address: "alice@example.com",
        sender_name: Some(&name),
        client_ip: IpAddr::from([192, 0, 2, 10]),
        helo: "client.example.com",
        tls: Some("TLSv1.3"),
        submitted_at: jiff::Timestamp::from_second(1_795_000_000).unwrap_or(jiff::Timestamp::UNIX_EPOCH),
        tagged: &tagged,
    };
    let ascii = RewritePolicy {
        relay_address: "relay@thirdparty.example".to_string(),
        system_intro: "gatepost delivers mail on schedule.".to_string(),
        hostname: "gatepost.example.org".to_string(),
        ..RewritePolicy::default()
    };
    let accented = RewritePolicy { system_intro: "Zustellung geplant – Grüße €".to_string(), ..ascii.clone() };
    for policy in [&ascii, &accented] {
        let Ok(out) = rewrite(data, &env, policy) else { continue };
        assert!(!out.is_empty(), "empty output");
        let block = headers::parse_block(&out, 0, out.len());
        assert!(block.separator, "no blank line after the header");
        for name in ["bcc", "deliver-on", "sender", "resent-from", "resent-sender"] {
            assert!(block.find(&out, name).is_none(), "a {name} field remains");
        }
        let froms: Vec<_> = block.fields.iter().filter(|f| f.is(&out, "from")).collect();
        let relay_from = |f: &&headers::Field| f.bytes(&out).trim_ascii_end().ends_with(b"<relay@thirdparty.example>");
        assert!(froms.len() == 1 && froms.iter().all(relay_from), "the only From must be the relay's");
        for line in froms[0].bytes(&out).split(|&b| b == b'\n') {
            assert!(line.len() <= 999, "a From line of {} octets (RFC 5322 §2.1.1: 998)", line.len());
        }
    }
}
