//! The content rules every submission passes, whichever door it comes through: SMTP DATA, and
//! a message dropped into the IMAP `Scheduled` view (APPEND, COPY, MOVE). One function per
//! rule, so both doors refuse the same messages with the same texts (docs/imap.md,
//! "Scheduled").

use std::net::SocketAddr;

use jiff::Timestamp;
use jiff::tz::TimeZone;

use super::codes::{self, Code};
use super::settings::{AuthedUser, SessionSettings};
use crate::message::{HeaderSummary, canonical_line_ends, recipients_of, summarize};
use crate::queue::Submission;
use crate::schedule::{self, ScheduleContext, ScheduleRequest, ScheduleSource};

/// A refusal: the SMTP reply code and its text.
pub type Refusal = (Code, String);

/// The forms a schedule can take, for the refusal of a message that has none.
pub const SCHEDULE_FORMS: &str = "a Deliver-On: header (e.g. \"Deliver-On: 2026-12-25 09:00\", \"Deliver-On: tomorrow\") \
     or a dated plus-address in To, Cc or Bcc (e.g. bob+2026-12-25@example.com)";

/// The message as it will be stored, checked and relayed: within the size limit, with
/// canonical line ends, and with a header the rewrite can work on.
pub fn canonical_message(settings: &SessionSettings, raw: Vec<u8>) -> Result<Vec<u8>, Refusal> {
    let canonical = canonical_line_ends(&raw).map(|c| match c {
        std::borrow::Cow::Owned(v) => Some(v),
        std::borrow::Cow::Borrowed(_) => None,
    });
    let body = match canonical {
        Ok(Some(normalised)) => normalised,
        Ok(None) => raw,
        Err(e) => return Err((codes::BAD_CONTENT, format!("{e}; send CRLF line ends"))),
    };
    // The limit is on the message as stored and relayed: bare LFs made CRLF can take a
    // message the reader let through over it (found by fuzzing).
    if body.len() as u64 > settings.max_message_size {
        return Err((
            codes::MESSAGE_TOO_BIG,
            format!("message exceeds the limit of {} octets once its line ends are CRLF", settings.max_message_size),
        ));
    }
    // The same check the release's rewrite starts with (one function, not a copy of it).
    if let Err(e) = crate::rewrite::header_of(&body) {
        return Err((
            codes::BAD_CONTENT,
            format!("{e} (an mbox \"From \" line or a blank line before the header?); nothing was queued"),
        ));
    }
    Ok(body)
}

/// RFC 5322 §3.6 and the rule that gatepost is never an open relay: exactly one From field,
/// every address in it the user's; and when From goes out as written (no rewrite, or sent as a
/// connected account), every Sender, Resent-From and Resent-Sender address the user's too.
pub fn check_senders(settings: &SessionSettings, summary: &HeaderSummary, user: &AuthedUser) -> Result<(), Refusal> {
    let allowed = || format!("{} may send as {}", user.name, list(&user.addresses));
    if summary.from_fields > 1 {
        let n = summary.from_fields;
        return Err((codes::BAD_CONTENT, format!("message has {n} From fields; RFC 5322 allows exactly one")));
    }
    if summary.from_addresses.is_empty() {
        return Err((codes::SENDER_NOT_ALLOWED, format!("message has no From address; {}", allowed())));
    }
    if let Some(bad) = summary.from_addresses.iter().find(|a| !user.addresses.contains(a)) {
        return Err((codes::SENDER_NOT_ALLOWED, format!("From <{bad}> is not yours; {}", allowed())));
    }
    // Mail from a connected account's address goes out as written too (its own server).
    let by_account = summary.from_addresses.iter().any(|a| user.send_as.iter().any(|s| &s.address == a));
    if settings.rewrite_from && !by_account {
        return Ok(()); // the rewrite removes them
    }
    for (name, addresses) in &summary.sender_fields {
        if addresses.is_empty() {
            return Err((codes::SENDER_NOT_ALLOWED, format!("{name} field has no address; {}", allowed())));
        }
        if let Some(bad) = addresses.iter().find(|a| !user.addresses.contains(a)) {
            return Err((codes::SENDER_NOT_ALLOWED, format!("{name} <{bad}> is not yours; {}", allowed())));
        }
    }
    Ok(())
}

/// The route a message leaves by (SPEC §10): the connected account whose address is in From,
/// or `None`, the system relay. One message, one route: a From and a MAIL FROM that would
/// leave by different routes are refused (mail from an account's address never goes out
/// through the system relay, and the account's server would refuse the other address).
pub fn route(user: &AuthedUser, from: &[String], mail_from: &str) -> Result<Option<String>, Refusal> {
    let of = |address: &str| {
        let address = address.to_lowercase();
        user.send_as.iter().find(|s| s.address == address).map(|s| s.account.clone())
    };
    let author = from.first().map_or(mail_from, String::as_str);
    let route = of(author);
    let name = |r: &Option<String>| match r {
        Some(account) => format!("through account {account:?}"),
        None => "through the system relay".to_string(),
    };
    let envelope = std::iter::once(mail_from).filter(|a| !a.is_empty());
    for address in from.iter().map(String::as_str).chain(envelope) {
        let other = of(address);
        if other != route {
            return Err((
                codes::SENDER_NOT_ALLOWED,
                format!(
                    "<{address}> leaves {}, but <{}> {}: a message takes one route (send it from one address)",
                    name(&other),
                    author,
                    name(&route)
                ),
            ));
        }
    }
    Ok(route)
}

/// The zone schedules are read in: the user's own, else the operator's.
pub fn user_zone(settings: &SessionSettings, user: Option<&AuthedUser>) -> (String, TimeZone) {
    match user.and_then(|u| u.timezone.clone()) {
        Some(z) => z,
        None => (settings.timezone_name.clone(), settings.timezone.clone()),
    }
}

pub fn context<'a>(settings: &SessionSettings, tz: &'a TimeZone, now: Timestamp) -> ScheduleContext<'a> {
    ScheduleContext { now, tz, daily_hour: settings.daily_hour, max_hold: settings.max_hold }
}

/// Where a message dropped into `Scheduled` came from, for its record.
#[derive(Debug, Clone)]
pub struct ImapOrigin {
    pub session_id: String,
    pub client: SocketAddr,
    /// `IMAP APPEND`, `IMAP COPY` or `IMAP MOVE`: in the record's HELO field.
    pub command: &'static str,
}

/// A message dropped into the IMAP `Scheduled` view, as a submission through the same rules
/// as SMTP: the envelope sender is its From address (which must be the user's), the recipients
/// are every address in To, Cc and Bcc (Bcc is removed before relay, as for any submission),
/// and the schedule comes from `Deliver-On:` or dated plus-addresses. A message with no
/// schedule at all is refused: dropping a draft into `Scheduled` never sends it at once.
pub fn scheduled(
    settings: &SessionSettings,
    user: &AuthedUser,
    raw: &[u8],
    origin: &ImapOrigin,
    now: Timestamp,
) -> Result<Submission, Refusal> {
    if raw.len() as u64 > settings.max_message_size {
        let limit = settings.max_message_size;
        return Err((codes::MESSAGE_TOO_BIG, format!("message exceeds the limit of {limit} octets")));
    }
    let body = canonical_message(settings, raw.to_vec())?;
    let summary = summarize(&body);
    check_senders(settings, &summary, user)?;
    let route = route(user, &summary.from_addresses, "")?;
    let recipients = recipients_of(&body);
    if recipients.is_empty() {
        return Err((codes::NO_VALID_RECIPIENTS, "message has no To, Cc or Bcc address: no recipients".into()));
    }
    if recipients.len() > settings.max_recipients {
        let limit = settings.max_recipients;
        return Err((codes::TOO_MANY_RECIPIENTS, format!("too many recipients (limit {limit})")));
    }
    let (tz_name, tz) = user_zone(settings, Some(user));
    let ctx = context(settings, &tz, now);
    let req = ScheduleRequest { deliver_on: &summary.deliver_on, hold: None, recipients: &recipients };
    let planned = schedule::plan(&req, &ctx).map_err(|e| (codes::BAD_CONTENT, e.to_string()))?;
    if planned.iter().all(|r| r.source == ScheduleSource::Immediate) {
        return Err((codes::BAD_CONTENT, format!("the message has no schedule; give it {SCHEDULE_FORMS}")));
    }
    Ok(Submission {
        session_id: origin.session_id.clone(),
        user: user.name.clone(),
        sender: summary.from_addresses[0].clone(),
        sender_name: summary.from_name,
        recipients: planned,
        subject: summary.subject,
        message_id: summary.message_id,
        client: origin.client,
        tls: Some("IMAP over TLS".into()),
        helo: origin.command.into(),
        submitted_at: now,
        timezone: tz_name,
        body,
        notice_of: None,
        route,
    })
}

/// Addresses for a reply: `<a>, <b>`.
pub fn list(addresses: &[String]) -> String {
    addresses.iter().map(|a| format!("<{a}>")).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod route_tests {
    use super::*;
    use crate::store::SendAs;

    fn user() -> AuthedUser {
        let send_as = |address: &str, account: &str| SendAs { address: address.into(), account: account.into() };
        AuthedUser {
            name: "alice".into(),
            addresses: vec!["alice@example.net".into(), "alice@work.example".into(), "al@old.example".into()],
            timezone: None,
            send_as: vec![send_as("alice@work.example", "Work"), send_as("al@old.example", "Old")],
        }
    }

    #[test]
    fn a_message_takes_the_route_of_its_from_and_only_one() {
        let u = user();
        let route = |from: &[&str], mail_from: &str| {
            let from: Vec<String> = from.iter().map(|s| s.to_string()).collect();
            route(&u, &from, mail_from)
        };
        assert_eq!(route(&["alice@example.net"], "alice@example.net"), Ok(None));
        assert_eq!(route(&["alice@work.example"], "alice@work.example"), Ok(Some("Work".into())));
        assert_eq!(route(&["Alice@WORK.example"], "alice@work.example"), Ok(Some("Work".into())), "any case");
        assert_eq!(route(&["al@old.example"], ""), Ok(Some("Old".into())), "IMAP Scheduled: no envelope");
        assert_eq!(route(&[], "al@old.example"), Ok(Some("Old".into())), "no From: the envelope's (never a panic)");
        for (from, mail_from, says) in [
            (&["alice@work.example"][..], "alice@example.net", "<alice@example.net> leaves through the system relay"),
            (&["alice@example.net"][..], "alice@work.example", "<alice@work.example> leaves through account \"Work\""),
            (&["alice@work.example", "al@old.example"][..], "alice@work.example", "through account \"Old\""),
        ] {
            let (code, text) = route(from, mail_from).unwrap_err();
            assert_eq!(code, codes::SENDER_NOT_ALLOWED);
            assert!(text.contains(says) && text.contains("one route"), "{text}");
        }
    }
}
