//! Catching up: what others changed in the selected mailbox since this session last looked
//! (EXISTS, RECENT, EXPUNGE or VANISHED, FETCH FLAGS, FLAGS), after every command and at
//! once in IDLE.
//!
//! One arrival wakes every IDLE session of its user, and they all ask the same question: the
//! same mailbox, the same modseq, the same UIDNEXT seen. The first one to ask reads the
//! answer on the blocking pool (a read transaction, and the `\Recent` claim, which writes);
//! the others, woken in the same burst, wait for it and apply it on the runtime thread,
//! without a read or a hand-off to the pool (docs/benchmarks.md, IDLE fan-out). An answer is
//! used only by a session woken by a change it covers: the reader records the change signal
//! it had seen before it began to read.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use super::Session;
use super::selected::flags_line;
use crate::imap::sequence::compact;
use crate::mailstore::MailError;
use crate::mailstore::db::{Changes, Mailbox, Member};

/// Answers shared while they are fresh (or being read); small, and emptied when full.
#[derive(Default)]
pub struct CatchUps {
    answers: Mutex<HashMap<Question, Shared>>,
}

/// (user, mailbox, modseq seen, UIDNEXT seen).
type Question = (u32, u32, u64, u32);

/// An answer, or the promise of one: `None` until its reader sends it; the reader drops the
/// sender without sending when the answer is not for sharing, and the waiters read for
/// themselves.
type Promise = watch::Receiver<Option<Arc<Answer>>>;

/// The duty to read an answer and send it to those waiting.
pub type Reader = watch::Sender<Option<Arc<Answer>>>;

struct Shared {
    covers: u64,
    answer: Promise,
}

/// One read of a mailbox's changes (it covers the change signal of its `Shared`).
pub struct Answer {
    /// The question it answers: a session whose view has moved on cannot use it.
    question: Question,
    changes: Changes,
    /// Members of every changed UID below the UIDNEXT seen (each session picks its own).
    members: Vec<Member>,
    /// The record after the reader's `\Recent` claim: the others find nothing to claim.
    rec: Mailbox,
}

/// What an IDLE session woken by a change does next.
pub enum Idle {
    /// Announced already, from a shared answer.
    Done,
    /// Another session is reading the answer: wait for it, then [`Session::apply_shared`].
    Wait(Promise),
    /// Read it ([`Session::idle_changes`] on the blocking pool) and send it to the others.
    Read(Reader),
}

/// Questions kept at most; a fan-out needs one per user and mailbox woken at the same
/// moment, and an answer is useful for milliseconds. With [`SHARE_UP_TO`] this bounds the
/// memory kept to ~1024 × 32 message records (~10 MB) whatever users do.
const KEEP: usize = 1024;
/// Larger change sets are read by each session for itself (they are not a fan-out).
const SHARE_UP_TO: usize = 32;

impl CatchUps {
    /// The answer to `q` covering `signal`, a promise of it, or the duty to read it.
    fn ask(&self, q: Question, signal: u64) -> Result<Result<Arc<Answer>, Promise>, Reader> {
        let mut answers = self.answers.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(shared) = answers.get(&q).filter(|s| s.covers >= signal) {
            let ready = shared.answer.borrow().clone();
            return Ok(ready.ok_or_else(|| shared.answer.clone()));
        }
        if answers.len() >= KEEP {
            answers.clear();
        }
        let (tx, rx) = watch::channel(None);
        answers.insert(q, Shared { covers: signal, answer: rx });
        Err(tx)
    }
}

impl Session {
    fn question(&self) -> Option<Question> {
        let (user, sel) = (self.user_id()?, self.selected.as_ref()?);
        Some((user, sel.mailbox, sel.modseq, sel.uidnext_seen))
    }

    /// IDLE, woken by a change signal: announce from a shared answer if there is one (on the
    /// runtime thread), else say whom to wait for or that this session reads.
    pub fn idle_changes_shared(&mut self, signal: u64) -> Idle {
        let Some(q) = self.question() else { return Idle::Done };
        match self.env.catch_ups.ask(q, signal) {
            Ok(Ok(answer)) if self.apply_shared(&answer) => Idle::Done,
            // Read by a session that could not claim `\Recent` (EXAMINE): read for ourselves.
            Ok(Ok(_)) => Idle::Read(watch::channel(None).0),
            Ok(Err(promise)) => Idle::Wait(promise),
            Err(reader) => Idle::Read(reader),
        }
    }

    /// Apply an answer another session read; false when it does not fit this session (its
    /// view moved on, or it would have to claim `\Recent`): then it reads for itself.
    pub fn apply_shared(&mut self, answer: &Answer) -> bool {
        let Some(q) = self.question() else { return true };
        let Some(sel) = self.selected.as_ref() else { return true };
        let fits = answer.question == q
            && !(answer.rec.recent_from < answer.rec.uidnext
                && answer.changes.changed.iter().any(|c| c.0 >= q.3)
                && !sel.read_only);
        if fits {
            self.apply(answer, true, None);
        }
        fits
    }

    /// IDLE's catch-up, read from the store (blocking); the answer goes to the sessions
    /// waiting on `reader` (it covers the change signal the reader was woken by).
    pub fn idle_changes(&mut self, reader: Reader) {
        if let Some((answer, claimed)) = self.read_answer(true) {
            let answer = Arc::new(answer);
            if answer.changes.changed.len() <= SHARE_UP_TO && answer.changes.present.is_none() {
                let _ = reader.send(Some(answer.clone()));
            }
            self.apply(&answer, true, claimed);
        }
    }

    /// Announce what changed since this session last looked (after a command; blocking).
    pub fn catch_up(&mut self, expunge_ok: bool) {
        if let Some((answer, claimed)) = self.read_answer(false) {
            self.apply(&answer, expunge_ok, claimed);
        }
    }

    /// Read the changes and claim `\Recent` for arrivals nobody has claimed. `all`: members
    /// of every changed UID below the UIDNEXT seen (a shared answer), else only those this
    /// session will report. With the answer, where this session's claim began. `None` after
    /// the mailbox was found deleted (`* BYE` is in `out`).
    fn read_answer(&mut self, all: bool) -> Option<(Answer, Option<u32>)> {
        let question = self.question()?;
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
        Some((Answer { question, changes, members, rec }, claimed))
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
