//! One mail transaction on an open session: MAIL, each RCPT, DATA and the dot-stuffed body,
//! with every recipient's result. Pipelined (MAIL, all RCPTs and DATA in one write, then
//! the replies in order) when the relay offers PIPELINING.

use super::link::{LinkError, Reply};
use super::session::Session;
use crate::relay::{Delivery, Outgoing, RecipientResult, Refusal};

/// Send `msg`; returns its delivery and whether the connection can carry another message.
pub(super) async fn send(session: &mut Session, msg: &Outgoing) -> (Delivery, bool) {
    let mut tx = Tx { results: vec![None; msg.recipients.len()], reply: String::new(), alive: true };
    run(session, msg, &mut tx).await;
    let results = tx
        .results
        .into_iter()
        .map(|r| r.unwrap_or_else(|| RecipientResult::Deferred(Refusal::why("no outcome recorded (internal error)"))))
        .collect();
    let delivery = Delivery {
        recipients: results,
        relay_ip: Some(session.relay_ip()),
        system_ip: Some(session.system_ip()),
        reply: tx.reply,
    };
    (delivery, tx.alive)
}

struct Tx {
    results: Vec<Option<RecipientResult>>,
    /// The reply (or error) that decided the message, for the record.
    reply: String,
    alive: bool,
}

impl Tx {
    /// Every recipient without a result yet gets `result`.
    fn settle_rest(&mut self, result: RecipientResult, reply: String) {
        for r in self.results.iter_mut().filter(|r| r.is_none()) {
            *r = Some(result.clone());
        }
        self.reply = reply;
    }

    /// The connection broke: whatever is undecided is deferred.
    fn lost(&mut self, e: LinkError) {
        self.alive = false;
        self.settle_rest(RecipientResult::Deferred(Refusal::why(e.0.clone())), e.0);
    }

    /// The message and its final `.` went out but no reply came: the relay may have taken
    /// it (RFC 1047), so the accepted recipients are "possibly delivered", not deferred.
    fn lost_after_dot(&mut self, e: LinkError) {
        self.alive = false;
        let why = format!("{}; the message was sent in full, so it may have been delivered", e.0);
        self.settle_rest(RecipientResult::PossiblyDelivered(why.clone()), why);
    }

    /// 421: the relay is closing the connection.
    fn closing(&mut self, r: &Reply) {
        self.alive = false;
        self.settle_rest(RecipientResult::Deferred(Refusal::said(r.parsed())), r.text());
    }
}

/// Commands sent in one write at most, when the relay offers PIPELINING.
pub(super) const PIPELINE_WINDOW: usize = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Mail,
    /// The index into `Outgoing::recipients`.
    Rcpt(usize),
    Data,
}

impl Step {
    fn what(self) -> &'static str {
        match self {
            Step::Mail => "MAIL FROM",
            Step::Rcpt(_) => "RCPT TO",
            Step::Data => "DATA",
        }
    }
}

/// 4xx → Deferred, 5xx → Failed, anything else unexpected → Deferred.
fn classify(r: &Reply) -> RecipientResult {
    match r.code() {
        400..=499 => RecipientResult::Deferred(Refusal::said(r.parsed())),
        500..=599 => RecipientResult::Failed(Refusal::said(r.parsed())),
        _ => RecipientResult::Deferred(Refusal::said_with(r.parsed(), format!("unexpected reply: {}", r.text()))),
    }
}

/// A refused RCPT. 552 there is "too many recipients" from old servers and must be
/// treated as the temporary 452 (RFC 5321 §4.5.3.1.10): the rest go in a later attempt.
fn classify_rcpt(r: &Reply) -> RecipientResult {
    if r.code() == 552 {
        return RecipientResult::Deferred(Refusal::said(r.parsed()));
    }
    classify(r)
}

/// A refused MAIL FROM. 530 means "log in first": our configuration, so deferred.
fn classify_mail(r: &Reply) -> RecipientResult {
    if r.code() == 530 {
        return RecipientResult::Deferred(Refusal::said_with(
            r.parsed(),
            format!("the relay requires authentication: {}", r.text()),
        ));
    }
    classify(r)
}

/// Addresses go into command lines: no control characters (CRLF injection), no brackets.
/// U+FFFD means bytes were replaced on the way in (8-bit without SMTPUTF8, before issue 8
/// item 12): that is another mailbox, so it is never sent (docs/relay.md).
fn unsafe_address(a: &str) -> bool {
    a.chars().any(|c| c.is_control() || c == '<' || c == '>' || c == char::REPLACEMENT_CHARACTER)
}

async fn run(session: &mut Session, msg: &Outgoing, tx: &mut Tx) {
    let caps = session.caps.clone();
    if unsafe_address(&msg.sender) {
        let why = "the envelope sender contains characters that cannot be sent over SMTP".to_string();
        return tx.settle_rest(RecipientResult::Failed(Refusal::why(why.clone())), why);
    }
    let utf8_sender = !msg.sender.is_ascii();
    if utf8_sender && !caps.smtputf8 {
        let why = "the relay does not offer SMTPUTF8, needed for the non-ASCII sender address".to_string();
        return tx.settle_rest(RecipientResult::Failed(Refusal::why(why.clone())), why);
    }
    let mut pending = Vec::new();
    for (i, rcpt) in msg.recipients.iter().enumerate() {
        if unsafe_address(rcpt) {
            tx.results[i] = Some(RecipientResult::Failed(Refusal::why(
                "the address contains characters that cannot be sent over SMTP",
            )));
        } else if !rcpt.is_ascii() && !caps.smtputf8 {
            tx.results[i] = Some(RecipientResult::Failed(Refusal::why(
                "the relay does not offer SMTPUTF8, needed for this address",
            )));
        } else {
            pending.push(i);
        }
    }
    if pending.is_empty() {
        tx.reply = "no recipient could be offered to the relay".into();
        return;
    }

    let body = dot_stuff(&msg.body);
    let mut mail = format!("MAIL FROM:<{}>", msg.sender);
    if caps.smtputf8 && (utf8_sender || pending.iter().any(|&i| !msg.recipients[i].is_ascii())) {
        mail.push_str(" SMTPUTF8");
    }
    if caps.eight_bit_mime && msg.body.iter().any(|&b| b >= 0x80) {
        mail.push_str(" BODY=8BITMIME");
    }
    if caps.size.is_some() {
        mail.push_str(&format!(" SIZE={}", body.len()));
    }

    // MAIL, each RCPT, DATA: sent in windows (one command at a time without PIPELINING),
    // replies read in order. Windows keep a huge recipient list from filling both socket
    // buffers at once (RFC 2920 §3.1: the client must not deadlock the server).
    let mut steps: Vec<(Step, String)> = vec![(Step::Mail, mail)];
    steps.extend(pending.iter().map(|&i| (Step::Rcpt(i), format!("RCPT TO:<{}>", msg.recipients[i]))));
    steps.push((Step::Data, "DATA".to_string()));
    let window = if caps.pipelining { PIPELINE_WINDOW } else { 1 };
    let link = &mut session.link;
    let mut sent = 0;
    let mut mail_reply = None;
    let mut accepted = Vec::new();
    let mut last_refusal = None;
    let mut data_reply = None;
    for (k, (step, _)) in steps.iter().enumerate() {
        let mail_ok = mail_reply.as_ref().is_none_or(Reply::is_positive);
        if k == sent {
            // Nothing in flight: stop before sending what can no longer succeed.
            if !mail_ok || (*step == Step::Data && accepted.is_empty()) {
                break;
            }
            sent = (k + window).min(steps.len());
            let mut batch = String::new();
            for (_, line) in &steps[k..sent] {
                batch.push_str(line);
                batch.push_str("\r\n");
            }
            if let Err(e) = link.write(batch.as_bytes(), step.what()).await {
                return tx.lost(e);
            }
        }
        let r = match link.read_reply(step.what()).await {
            Ok(r) => r,
            Err(e) => return tx.lost(e),
        };
        if r.code() == 421 {
            return tx.closing(&r);
        }
        match *step {
            Step::Mail => mail_reply = Some(r),
            Step::Rcpt(_) if !mail_ok => {} // pipelined after a refused MAIL: 503s
            Step::Rcpt(i) if r.is_positive() => accepted.push(i),
            Step::Rcpt(i) => {
                tx.results[i] = Some(classify_rcpt(&r));
                last_refusal = Some(r.text());
            }
            Step::Data => data_reply = Some(r),
        }
    }
    let Some(mail_reply) = mail_reply else {
        return tx.lost(LinkError("internal error: no reply to MAIL FROM".into())); // not reached: MAIL goes first
    };
    if !mail_reply.is_positive() || accepted.is_empty() {
        // Nothing to send. A pipelined DATA should have been refused; if the relay said 354
        // anyway, end an empty message at once (it has no recipients to go to).
        if data_reply.as_ref().is_some_and(|r| r.code() == 354) {
            if let Err(e) = link.write(b".\r\n", "DATA").await {
                return tx.lost(e);
            }
            if let Err(e) = link.read_reply("DATA").await {
                return tx.lost(e);
            }
        }
        if mail_reply.is_positive() {
            tx.reply = last_refusal.unwrap_or_default();
        } else {
            tx.settle_rest(classify_mail(&mail_reply), mail_reply.text());
        }
        return;
    }
    let Some(data_reply) = data_reply else {
        return tx.lost(LinkError("internal error: no reply to DATA".into())); // not reached: DATA follows an accepted RCPT
    };
    if data_reply.code() != 354 {
        return tx.settle_rest(classify(&data_reply), data_reply.text());
    }

    // The body, then the final reply, which decides every accepted recipient.
    let mut wire = body;
    wire.extend_from_slice(b".\r\n");
    if let Err(e) = link.write_data(&wire, "DATA").await {
        return tx.lost(e);
    }
    let timeout = link.data_timeout;
    let end = match link.read_reply_within(timeout, "the end of DATA").await {
        Ok(r) => r,
        Err(e) => return tx.lost_after_dot(e),
    };
    if end.code() == 421 {
        return tx.closing(&end);
    }
    let result = if (200..300).contains(&end.code()) { RecipientResult::Delivered } else { classify(&end) };
    tx.settle_rest(result, end.text());
}

/// The body as it goes on the wire before the final `.`: every line ending made CRLF (a
/// bare LF or CR is not allowed in SMTP and is how smuggling attacks start), a `.` at the
/// start of a line doubled, and a final CRLF added when missing. Empty stays empty.
pub(crate) fn dot_stuff(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + body.len() / 32 + 2);
    let mut line_start = true;
    let mut i = 0;
    while i < body.len() {
        let b = body[i];
        if line_start && b == b'.' {
            out.push(b'.');
        }
        match b {
            b'\r' => {
                out.extend_from_slice(b"\r\n");
                if body.get(i + 1) == Some(&b'\n') {
                    i += 1;
                }
                line_start = true;
            }
            b'\n' => {
                out.extend_from_slice(b"\r\n");
                line_start = true;
            }
            _ => {
                out.push(b);
                line_start = false;
            }
        }
        i += 1;
    }
    if !line_start {
        out.extend_from_slice(b"\r\n");
    }
    out
}
