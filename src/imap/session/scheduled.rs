//! `Scheduled`, the view of the user's held messages (docs/imap.md, "Scheduled"). The queue's
//! record is the truth and the view follows it (`filing::scheduled`); what a client does here
//! acts on the queue first: APPEND, COPY or MOVE in submits through the SMTP rules, `\Deleted`
//! pauses the release, EXPUNGE cancels, MOVE out cancels and files the message in the target.
//! A message already sending or sent cannot be cancelled: it keeps its place, loses
//! `\Deleted`, and the command answers `NO [CANNOT]` after doing the rest.

use std::sync::Arc;

use super::Session;
use crate::accounts::quota::Writer;
use crate::imap::held::HoldQueue;
use crate::imap::wire::code;
use crate::mailstore::MailError;
use crate::mailstore::db::{FlagOp, Member, Origin};
use crate::queue::QueueError;
use crate::smtp::codes;
use crate::smtp::submission::{self, ImapOrigin};
use crate::store::QueueId;

/// A refusal for the client: response code and text.
type Refused = (&'static str, String);

impl Session {
    /// The user's `Scheduled` mailbox.
    pub(super) fn scheduled_id(&self) -> Option<u32> {
        let user = self.user_id()?;
        self.env.store.db.mailbox_id(user, "Scheduled").ok()
    }

    pub(super) fn selected_is_scheduled(&self) -> bool {
        self.selected.as_ref().is_some_and(|s| Some(s.mailbox) == self.scheduled_id())
    }

    /// Who acts, for the queue's timeline: `IMAP client 192.0.2.7 (session …)`.
    fn actor(&self) -> String {
        let ip = self.peer.map(|p| p.ip().to_string()).unwrap_or_else(|| "unknown".into());
        format!("IMAP client {ip} (session {})", self.id)
    }

    /// Submit each message (bytes, flags) dropped into `Scheduled`: all are checked before any
    /// is queued, so a refusal queues nothing. Returns the view's UIDVALIDITY and the new UIDs
    /// (a UID is missing when the entry is left to the filer).
    pub(super) fn schedule_messages(
        &mut self,
        messages: &[(Vec<u8>, Vec<String>)],
        command: &'static str,
    ) -> Result<(u32, Vec<u32>), Refused> {
        let Some(held) = self.env.held.clone() else {
            return Err((code::CANNOT, "Scheduling over IMAP is not available on this server".into()));
        };
        let user = self.user.clone().expect("authenticated");
        let Some(sender) = held.sender(&user.name) else {
            return Err((code::UNAVAILABLE, "Your account cannot be read just now; try again later".into()));
        };
        let now = self.env.clock.now();
        let origin = ImapOrigin {
            session_id: self.id.clone(),
            client: self.peer.unwrap_or_else(|| ([0, 0, 0, 0], 0).into()),
            command,
        };
        let mut subs = Vec::new();
        for (raw, _) in messages {
            let sub = submission::scheduled(&held.rules, &sender, raw, &origin, now).map_err(|(c, text)| {
                let imap = match c {
                    c if c == codes::MESSAGE_TOO_BIG => code::TOOBIG,
                    c if c == codes::INSUFFICIENT_STORAGE => code::UNAVAILABLE,
                    _ => code::CANNOT,
                };
                let smtp = match c.enhanced_text() {
                    Some(e) => format!("{} {e}", c.basic),
                    None => c.basic.to_string(),
                };
                (imap, format!("{text} (SMTP {smtp})"))
            })?;
            subs.push(sub);
        }
        let total: u64 = subs.iter().map(|s| s.body.len() as u64).sum();
        let db = &self.env.store.db;
        match db.admit(user.id, total, Writer::User) {
            Ok(()) => {}
            Err(MailError::OverQuota(q)) => {
                return Err((code::OVERQUOTA, format!("Over quota: {} bytes do not fit", q.size)));
            }
            Err(e) => return Err(internal(&self.id, e)),
        }
        let scheduled = self.scheduled_id().ok_or_else(|| (code::NONEXISTENT, "No mailbox Scheduled".into()))?;
        let validity = db.mailbox(user.id, scheduled).map_err(|e| internal(&self.id, e))?.uidvalidity;
        let mut uids = Vec::new();
        for (sub, (_, flags)) in subs.into_iter().zip(messages) {
            let uid = self.queue_and_show(&held, sub, flags, now)?;
            uids.extend(uid);
        }
        Ok((validity, uids))
    }

    fn queue_and_show(
        &self,
        held: &HoldQueue,
        sub: crate::queue::Submission,
        flags: &[String],
        now: jiff::Timestamp,
    ) -> Result<Option<u32>, Refused> {
        let rec = held.submit(sub).map_err(|e| {
            tracing::error!(session = %self.id, error = %e, "queueing a scheduled message failed");
            (code::UNAVAILABLE, "could not store the message, please try again later".to_string())
        })?;
        tracing::info!(session = %self.id, queue_id = %rec.id, "scheduled over IMAP");
        match crate::filing::scheduled::sync(&held.store, &self.env.store, &rec, flags, Writer::System, now) {
            Ok(uid) => Ok(uid),
            Err(e) => {
                // Queued and durable: the filer shows it from the feed.
                tracing::warn!(session = %self.id, queue_id = %rec.id, error = %e, "Scheduled entry left to the filer");
                Ok(None)
            }
        }
    }

    /// STORE on `Scheduled`: `\Deleted` set pauses the release, cleared restarts it.
    pub(super) fn pause_for_store(&mut self, uids: &[u32], op: FlagOp, flags: &[String]) {
        let names_deleted = flags.iter().any(|f| f.eq_ignore_ascii_case("\\Deleted"));
        let on = match op {
            FlagOp::Add if names_deleted => true,
            FlagOp::Remove if names_deleted => false,
            FlagOp::Replace => names_deleted,
            _ => return,
        };
        let (Some(held), Some(user), Some(sel)) = (self.env.held.clone(), self.user_id(), self.selected.as_ref())
        else {
            return;
        };
        let members = self.env.store.db.members_of(user, sel.mailbox, uids).unwrap_or_default();
        let now = self.env.clock.now();
        let by = self.actor();
        for m in members.iter().filter(|m| m.deleted != on) {
            let Some(id) = queue_id(m) else { continue };
            match held.pause(id, on, &by, now) {
                Ok(_) => tracing::info!(session = %self.id, queue_id = %id, paused = on, "release paused from IMAP"),
                // Already sending or sent: it leaves the view on its own.
                Err(e) => tracing::info!(session = %self.id, queue_id = %id, error = %e, "not paused"),
            }
        }
    }

    /// Before EXPUNGE (or CLOSE) in `Scheduled`: cancel each `\Deleted` entry's message (among
    /// `only`). Those that cannot be cancelled lose `\Deleted` and are returned. Call with
    /// the held lock taken.
    pub(super) fn cancel_deleted(&mut self, mailbox: u32, only: Option<&[u32]>) -> Result<Vec<u32>, MailError> {
        let Some(held) = self.env.held.clone() else { return Ok(vec![]) };
        let user = self.user_id().expect("authenticated");
        let db = &self.env.store.db;
        let doomed: Vec<Member> = db
            .members(user, mailbox, 1..=u32::MAX)?
            .into_iter()
            .filter(|m| m.deleted && only.is_none_or(|o| o.binary_search(&m.uid).is_ok()))
            .collect();
        let refused = self.cancel_members(&held, &doomed);
        if !refused.is_empty() {
            let deleted = ["\\Deleted".to_string()];
            db.store_flags(user, mailbox, &refused, FlagOp::Remove, &deleted, None)?;
        }
        Ok(refused)
    }

    /// Cancel the queue messages of these entries; the UIDs of those that could not be.
    fn cancel_members(&self, held: &Arc<HoldQueue>, members: &[Member]) -> Vec<u32> {
        let now = self.env.clock.now();
        let by = self.actor();
        let mut refused = Vec::new();
        for m in members {
            let Some(id) = queue_id(m) else { continue };
            match held.cancel(id, &by, now) {
                Ok(_) => tracing::info!(session = %self.id, queue_id = %id, "cancelled from IMAP"),
                Err(QueueError::NotCancellable { state, .. }) => {
                    tracing::info!(session = %self.id, queue_id = %id, state = state.as_str(), "not cancelled");
                    refused.push(m.uid);
                }
                Err(e) => {
                    tracing::error!(session = %self.id, queue_id = %id, error = %e, "cancel failed");
                    refused.push(m.uid);
                }
            }
        }
        refused
    }

    /// Before MOVE out of `Scheduled`: cancel each entry's message; the UIDs that may move.
    /// Those that cannot be cancelled stay, without `\Deleted`. Call with the held lock taken.
    pub(super) fn cancel_for_move(&mut self, uids: &[u32]) -> Result<(Vec<u32>, Vec<u32>), MailError> {
        let Some(held) = self.env.held.clone() else { return Ok((uids.to_vec(), vec![])) };
        let user = self.user_id().expect("authenticated");
        let mailbox = self.selected.as_ref().expect("selected").mailbox;
        let members = self.env.store.db.members_of(user, mailbox, uids)?;
        let refused = self.cancel_members(&held, &members);
        if !refused.is_empty() {
            let deleted = ["\\Deleted".to_string()];
            self.env.store.db.store_flags(user, mailbox, &refused, FlagOp::Remove, &deleted, None)?;
        }
        Ok((uids.iter().copied().filter(|u| !refused.contains(u)).collect(), refused))
    }
}

/// The queue message an entry of `Scheduled` shows.
fn queue_id(m: &Member) -> Option<QueueId> {
    match &m.message.origin {
        Origin::Held { queue } => queue.parse().ok(),
        _ => None,
    }
}

fn internal(session: &str, e: MailError) -> Refused {
    tracing::error!(session = %session, error = %e, "mail store error");
    (code::SERVERBUG, "Internal error; the operator's log has the details".into())
}

/// The text of a `NO [CANNOT]` for entries that could not be cancelled.
pub(super) fn not_cancelled(uids: &[u32]) -> String {
    let list: Vec<String> = uids.iter().map(u32::to_string).collect();
    format!("Already sending or sent, so not cancelled (UID {}); the rest was done", list.join(","))
}
