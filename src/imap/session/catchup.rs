//! Catching up: what others changed in the selected mailbox since this session last looked
//! (EXISTS, RECENT, EXPUNGE or VANISHED, FETCH FLAGS, FLAGS), after every command and at
//! once in IDLE.
//!
//! One arrival wakes every IDLE session of its user, and they all ask the same question: the
//! same mailbox, the same modseq, the same UIDNEXT seen. The first one reads the answer on
//! the blocking pool (a read transaction, and the `\Recent` claim, which writes) and leaves
//! it in [`CatchUps`]; the others apply it on the runtime thread, without a read or a
//! hand-off to the pool. At 10,000 IDLE sessions that halved the server's CPU for a fan-out
//! (docs/benchmarks.md). An answer is used only by a session woken by a change it covers:
//! the reader records the change signal it had seen before it began to read.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::Session;
use super::selected::flags_line;
use crate::imap::sequence::compact;
use crate::mailstore::MailError;
use crate::mailstore::db::{Changes, Mailbox, Member};

/// Answers shared while they are fresh; small, and emptied when full.
#[derive(Default)]
pub struct CatchUps {
    answers: Mutex<HashMap<Question, Arc<Answer>>>,
}

/// (user, mailbox, modseq seen, UIDNEXT seen).
type Question = (u32, u32, u64, u32);

/// One read of a mailbox's changes, as of the user's change signal `covers`.
pub struct Answer {
    covers: u64,
    changes: Changes,
    /// Members of every changed UID below the UIDNEXT seen (each session picks its own).
    members: Vec<Member>,
    /// The record after the reader's `\Recent` claim: the others find nothing to claim.
    rec: Mailbox,
}

/// Answers kept at most; a fan-out needs one per user and mailbox.
const KEEP: usize = 4096;
/// Larger change sets are read by each session for itself (they are not a fan-out).
const SHARE_UP_TO: usize = 64;

impl CatchUps {
    fn get(&self, q: &Question, signal: u64) -> Option<Arc<Answer>> {
        let answers = self.answers.lock().unwrap_or_else(|e| e.into_inner());
        answers.get(q).filter(|a| a.covers >= signal).cloned()
    }

    fn put(&self, q: Question, a: Arc<Answer>) {
        let mut answers = self.answers.lock().unwrap_or_else(|e| e.into_inner());
        if answers.len() >= KEEP {
            answers.clear();
        }
        answers.insert(q, a);
    }
}

impl Session {
    fn question(&self) -> Option<Question> {
        let (user, sel) = (self.user_id()?, self.selected.as_ref()?);
        Some((user, sel.mailbox, sel.modseq, sel.uidnext_seen))
    }

    /// IDLE's catch-up from a shared answer, on the runtime thread: false when there is none
    /// covering `signal` (the change signal this session was woken by), and then the caller
    /// runs [`Session::idle_changes`] on the blocking pool.
    pub fn idle_changes_shared(&mut self, signal: u64) -> bool {
        let Some(q) = self.question() else { return true };
        let Some(answer) = self.env.catch_ups.get(&q, signal) else { return false };
        let unclaimed = answer.rec.recent_from < answer.rec.uidnext
            && answer.changes.changed.iter().any(|c| c.0 >= q.3)
            && !self.selected.as_ref().is_some_and(|s| s.read_only);
        if unclaimed {
            // Read by a session that could not claim (EXAMINE): this one claims for itself.
            return false;
        }
        self.apply(&answer, true, None);
        true
    }

    /// IDLE's catch-up, read from the store (blocking); the answer is left for the other
    /// sessions woken by the same change. `signal` was seen before the read began.
    pub fn idle_changes(&mut self, signal: u64) {
        let Some(q) = self.question() else { return };
        if let Some((answer, claimed)) = self.read_answer(signal, true) {
            let answer = Arc::new(answer);
            if answer.changes.changed.len() <= SHARE_UP_TO && answer.changes.present.is_none() {
                self.env.catch_ups.put(q, answer.clone());
            }
            self.apply(&answer, true, claimed);
        }
    }

    /// Announce what changed since this session last looked (after a command; blocking).
    pub fn catch_up(&mut self, expunge_ok: bool) {
        if let Some((answer, claimed)) = self.read_answer(0, false) {
            self.apply(&answer, expunge_ok, claimed);
        }
    }

    /// Read the changes and claim `\Recent` for arrivals nobody has claimed. `all`: members
    /// of every changed UID below the UIDNEXT seen (a shared answer), else only those this
    /// session will report. With the answer, where this session's claim began. `None` after
    /// the mailbox was found deleted (`* BYE` is in `out`).
    fn read_answer(&mut self, covers: u64, all: bool) -> Option<(Answer, Option<u32>)> {
        let user = self.user_id()?;
        let sel = self.selected.as_ref()?;
        let db = &self.env.store.db;
        let picked = |c: &(u32, u64)| {
            c.0 < sel.uidnext_seen
                && (all
                    || (!sel.reported.contains(c)
                        && sel.uids.binary_search(&c.0).is_ok()
                        && sel.gone.binary_search(&c.0).is_err()))
        };
        let (changes, members, mut rec) = match db.catch_up(user, sel.mailbox, sel.modseq, picked) {
            Ok(c) => c,
            Err(MailError::NoMailbox(_)) => {
                tracing::info!(session = %self.id, mailbox = %sel.name, "selected mailbox deleted by another session");
                let text = format!("Selected mailbox was deleted, have to disconnect (session {})", self.id);
                self.out.untagged("BYE", None, &text);
                self.selected = None;
                self.ending = true;
                return None;
            }
            Err(e) => {
                tracing::warn!(session = %self.id, error = %e, "catch-up failed");
                return None;
            }
        };
        let arrivals = changes.changed.iter().any(|c| c.0 >= sel.uidnext_seen);
        let mut claimed = None;
        // Only the first session to see an arrival claims it (a write); the others read that
        // it is claimed from the record.
        if arrivals && !sel.read_only && rec.recent_from < rec.uidnext {
            claimed = db.claim_recent(user, sel.mailbox).ok();
            rec.recent_from = rec.uidnext;
        }
        Some((Answer { covers, changes, members, rec }, claimed))
    }

    /// Render an answer against this session's view; `claimed_from`: the first UID of this
    /// session's `\Recent` claim, if it made one.
    fn apply(&mut self, answer: &Answer, expunge_ok: bool, claimed_from: Option<u32>) {
        let Some(sel) = self.selected.as_mut() else { return };
        let out = &mut self.out;
        let changes = &answer.changes;
        for uid in changes.expunged_of(&sel.uids) {
            if let Err(i) = sel.gone.binary_search(&uid) {
                sel.gone.insert(i, uid);
            }
        }
        if expunge_ok && !sel.gone.is_empty() {
            if self.qresync {
                out.raw("* VANISHED ").raw(&compact(&sel.gone)).crlf();
                sel.uids.retain(|u| sel.gone.binary_search(u).is_err());
            } else {
                for uid in sel.gone.iter().rev() {
                    if let Ok(i) = sel.uids.binary_search(uid) {
                        out.raw("* ").num(i + 1).raw(" EXPUNGE").crlf();
                        sel.uids.remove(i);
                    }
                }
            }
            sel.recent.retain(|u| sel.gone.binary_search(u).is_err());
            sel.gone.clear();
        }
        let mine = |m: &&Member| {
            !sel.reported.contains(&(m.uid, m.modseq))
                && sel.uids.binary_search(&m.uid).is_ok()
                && sel.gone.binary_search(&m.uid).is_err()
        };
        let members: Vec<&Member> = answer.members.iter().filter(mine).collect();
        let mut added: Vec<u32> = changes.changed.iter().map(|c| c.0).filter(|&u| u >= sel.uidnext_seen).collect();
        let mut keywords_grew = false;
        for m in &members {
            keywords_grew |= sel.learn_keywords(&m.message.flags);
        }
        if !added.is_empty() {
            added.sort_unstable();
            sel.uidnext_seen = added.last().map_or(sel.uidnext_seen, |u| u + 1);
            sel.uids.extend(added.iter().copied());
            if let Some(from) = claimed_from {
                sel.recent.extend(added.iter().copied().filter(|&u| u >= from));
            }
            keywords_grew |= sel.learn_keywords(&answer.rec.keywords);
        }
        if keywords_grew {
            sel.announce_flags(out);
        }
        if !added.is_empty() {
            out.raw("* ").num(sel.uids.len()).raw(" EXISTS").crlf();
            out.raw("* ").num(sel.recent.len()).raw(" RECENT").crlf();
        }
        for m in members {
            if let Some(msn) = sel.msn(m.uid) {
                flags_line(out, msn, m, sel.is_recent(m.uid), self.condstore, self.condstore);
            }
        }
        sel.modseq = sel.modseq.max(changes.highest);
        sel.reported.clear();
    }
}
