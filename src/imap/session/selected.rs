//! SELECT/EXAMINE, the session's view of its mailbox, and the catch-up that announces what
//! others changed (EXISTS, RECENT, EXPUNGE or VANISHED, FETCH FLAGS, FLAGS). The view is a
//! UID list (sequence number = index + 1) and the highest modseq shown; see the rules at the
//! top of `imap/mod.rs`.

use imap_types::command::SelectParameter;
use imap_types::mailbox::Mailbox as WireMailbox;
use imap_types::sequence::SequenceSet;

use super::{Session, Step, mailbox_name};
use crate::imap::fetch::flag_list;
use crate::imap::sequence::{compact, resolve};
use crate::imap::utf7;
use crate::imap::wire::{Out, code};
use crate::mailstore::db::{MAX_KEYWORDS, Member};

const SYSTEM_FLAGS: &str = "\\Answered \\Flagged \\Deleted \\Seen \\Draft";

#[derive(Debug)]
pub struct Selected {
    pub mailbox: u32,
    pub name: String,
    pub read_only: bool,
    pub uidvalidity: u32,
    /// Sequence number n is `uids[n - 1]`.
    pub uids: Vec<u32>,
    /// Expunged in the store, not yet announced (sorted).
    pub gone: Vec<u32>,
    /// UIDs below this were known when last looked; above are new.
    pub uidnext_seen: u32,
    pub modseq: u64,
    /// `\Recent` for this session (sorted).
    pub recent: Vec<u32>,
    /// Keywords announced in FLAGS.
    pub keywords: Vec<String>,
    /// This session's own STORE results, already reported: (uid, modseq).
    pub reported: Vec<(u32, u64)>,
}

impl Selected {
    pub fn msn(&self, uid: u32) -> Option<usize> {
        self.uids.binary_search(&uid).ok().map(|i| i + 1)
    }

    pub fn is_recent(&self, uid: u32) -> bool {
        self.recent.binary_search(&uid).is_ok()
    }

    /// Take up keywords not announced yet (at most [`MAX_KEYWORDS`]); whether any were new.
    pub(super) fn learn_keywords<'a>(&mut self, flags: impl IntoIterator<Item = &'a String>) -> bool {
        let mut grew = false;
        for f in flags.into_iter().filter(|f| !f.starts_with('\\')) {
            if self.keywords.len() < MAX_KEYWORDS && !self.keywords.iter().any(|k| k.eq_ignore_ascii_case(f)) {
                self.keywords.push(f.clone());
                grew = true;
            }
        }
        grew
    }

    /// FLAGS and PERMANENTFLAGS: at SELECT, and again whenever the keywords grow.
    pub(super) fn announce_flags(&self, out: &mut Out) {
        let mut list = SYSTEM_FLAGS.to_string();
        for k in &self.keywords {
            list.push(' ');
            list.push_str(k);
        }
        out.raw("* FLAGS (").raw(&list).raw(")").crlf();
        if self.read_only {
            out.untagged("OK", Some("PERMANENTFLAGS ()"), "Read-only mailbox");
        } else {
            out.untagged("OK", Some(&format!("PERMANENTFLAGS ({list} \\*)")), "Flags permitted");
        }
    }
}

/// `* n FETCH (FLAGS (...) UID u MODSEQ (m))` for a flag change.
pub(super) fn flags_line(out: &mut Out, msn: usize, m: &Member, recent: bool, uid: bool, modseq: bool) {
    out.raw("* ").num(msn).raw(" FETCH (");
    flag_list(out, m, recent);
    if uid {
        out.raw(" UID ").num(m.uid);
    }
    if modseq {
        out.raw(" MODSEQ (").num(m.modseq).raw(")");
    }
    out.raw(")").crlf();
}

impl Session {
    pub(super) fn select(
        &mut self,
        tag: &str,
        mailbox: &WireMailbox<'_>,
        read_only: bool,
        params: &[SelectParameter],
    ) -> Step {
        // A failed SELECT leaves no mailbox selected (RFC 3501 §6.3.1).
        if self.selected.take().is_some() && self.qresync {
            self.out.untagged("OK", Some("CLOSED"), "Previous mailbox closed");
        }
        let user = self.user_id().expect("authenticated");
        let name = match mailbox_name(mailbox) {
            Ok(n) => n,
            Err(why) => return self.no(tag, Some(code::CANNOT), why),
        };
        let db = &self.env.store.db;
        let id = match db.mailbox_id(user, &name) {
            Ok(id) => id,
            Err(e) => return self.store_error(tag, e),
        };
        let (rec, uids) = match db.mailbox(user, id).and_then(|rec| Ok((rec, db.uids(user, id)?))) {
            Ok(r) => r,
            Err(e) => return self.store_error(tag, e),
        };
        let recent_from = if read_only {
            rec.recent_from
        } else {
            match db.claim_recent(user, id) {
                Ok(from) => from,
                Err(e) => return self.store_error(tag, e),
            }
        };
        let recent: Vec<u32> = uids.iter().copied().filter(|&u| u >= recent_from).collect();
        let mut qresync = None;
        for p in params {
            match p {
                SelectParameter::CondStore => self.condstore = true,
                SelectParameter::QResync { uid_validity, mod_sequence_value, known_uids, .. } => {
                    if !self.qresync {
                        return self.bad(tag, "QRESYNC must be enabled first");
                    }
                    qresync = Some((uid_validity.get(), mod_sequence_value.get(), known_uids.clone()));
                }
            }
        }
        let sel = Selected {
            mailbox: id,
            name: rec.name.clone(),
            read_only,
            uidvalidity: rec.uidvalidity,
            uidnext_seen: uids.last().map_or(1, |u| u + 1).max(rec.uidnext),
            uids,
            gone: vec![],
            modseq: rec.highestmodseq,
            recent,
            keywords: rec.keywords.clone(),
            reported: vec![],
        };
        sel.announce_flags(&mut self.out);
        let o = &mut self.out;
        o.raw("* ").num(sel.uids.len()).raw(" EXISTS").crlf();
        o.raw("* ").num(sel.recent.len()).raw(" RECENT").crlf();
        if rec.unseen > 0
            && let Some(first) = first_unseen(self, user, &sel)
        {
            self.out.untagged("OK", Some(&format!("UNSEEN {first}")), "First unseen");
        }
        let o = &mut self.out;
        o.untagged("OK", Some(&format!("UIDVALIDITY {}", sel.uidvalidity)), "UIDs valid");
        o.untagged("OK", Some(&format!("UIDNEXT {}", rec.uidnext)), "Predicted next UID");
        o.untagged("OK", Some(&format!("HIGHESTMODSEQ {}", sel.modseq)), "Highest");
        if let Some((validity, since, known)) = qresync
            && validity == sel.uidvalidity
        {
            self.resync(user, &sel, since, known.as_ref());
        }
        self.selected = Some(sel);
        let code = if read_only { "READ-ONLY" } else { "READ-WRITE" };
        self.ok(tag, Some(code), if read_only { "EXAMINE completed" } else { "SELECT completed" })
    }

    /// QRESYNC's SELECT: what vanished and what changed since the client's modseq.
    fn resync(&mut self, user: u32, sel: &Selected, since: u64, known: Option<&SequenceSet>) {
        let Ok(changes) = self.env.store.db.changes_since(user, sel.mailbox, since) else { return };
        let mut vanished = changes.vanished();
        if let Some(known) = known {
            let all: Vec<u32> = vanished.clone();
            let keep = resolve(known, &all, true).unwrap_or_default();
            vanished.retain(|u| keep.binary_search(u).is_ok());
        }
        if !vanished.is_empty() {
            self.out.raw("* VANISHED (EARLIER) ").raw(&compact(&vanished)).crlf();
        }
        let uids: Vec<u32> = changes.changed.iter().map(|c| c.0).collect();
        if let Ok(members) = self.env.store.db.members_of(user, sel.mailbox, &uids) {
            for m in &members {
                if let Some(msn) = sel.msn(m.uid) {
                    flags_line(&mut self.out, msn, m, sel.is_recent(m.uid), true, true);
                }
            }
        }
    }

    pub(super) fn close(&mut self, tag: &str) -> Step {
        let user = self.user_id().expect("authenticated");
        let env = self.env.clone();
        let scheduled = self.selected_is_scheduled();
        let _held = scheduled.then(|| env.store.held_lock.lock().unwrap_or_else(|e| e.into_inner()));
        if let Some(sel) = self.selected.as_ref()
            && !sel.read_only
        {
            let mailbox = sel.mailbox;
            // In `Scheduled`, what cannot be cancelled stays (CLOSE reports no expunges).
            if scheduled && let Err(e) = self.cancel_deleted(mailbox, None) {
                return self.store_error(tag, e);
            }
            if let Err(e) = env.store.db.expunge(user, mailbox, None) {
                return self.store_error(tag, e);
            }
        }
        self.selected = None;
        self.env.store.changed(user);
        self.ok(tag, None, "CLOSE completed")
    }

    /// Untagged updates go before the tagged reply already rendered in `out`.
    pub(super) fn catch_up_before_tagged(&mut self, expunge_ok: bool) {
        if self.selected.is_none() {
            return;
        }
        let buf = &self.out.buf;
        let start = match buf.len().checked_sub(2).and_then(|end| buf[..end].windows(2).rposition(|w| w == b"\r\n")) {
            Some(i) => i + 2,
            None => 0,
        };
        let tail = self.out.buf.split_off(start);
        self.catch_up(expunge_ok);
        self.out.buf.extend_from_slice(&tail);
    }
}

impl Session {
    /// Keywords in `members` the client has not been told of: `* FLAGS` (and the permanent
    /// flags) first, so no FETCH shows a keyword missing from FLAGS (RFC 3501 §7.2.6).
    pub(super) fn announce_keywords(&mut self, members: &[Member]) {
        let Some(sel) = self.selected.as_mut() else { return };
        let mut grew = false;
        for m in members {
            grew |= sel.learn_keywords(&m.message.flags);
        }
        if grew {
            sel.announce_flags(&mut self.out);
        }
    }
}

/// The sequence number of the first unseen message (SELECT's `[UNSEEN n]`), from the
/// store's unseen index.
fn first_unseen(session: &Session, user: u32, sel: &Selected) -> Option<usize> {
    let uid = session.env.store.db.first_unseen(user, sel.mailbox).ok()??;
    sel.msn(uid)
}

/// A mailbox name on the wire (modified UTF-7).
pub(super) fn wire_name(name: &str) -> String {
    utf7::encode(name)
}
