//! FETCH, STORE, SEARCH, COPY, MOVE, EXPUNGE on the selected mailbox.

use imap_types::command::{FetchModifier, StoreModifier};
use imap_types::core::Charset;
use imap_types::fetch::MacroOrMessageDataItemNames;
use imap_types::flag::{Flag, StoreResponse, StoreType};
use imap_types::mailbox::Mailbox as WireMailbox;
use imap_types::search::SearchKey;
use imap_types::sequence::SequenceSet;

use super::selected::flags_line;
use super::{Session, Step, mailbox_name};
use crate::blobs::BlobHash;
use crate::imap::fetch::{self, Item};
use crate::imap::search::{self, Candidate};
use crate::imap::sequence::{compact, compact_pairs, resolve};
use crate::imap::wire::code;
use crate::mailstore::MailError;
use crate::mailstore::db::{FlagOp, Member};

/// Messages rendered per slice, and the output size after which a slice ends: the driver
/// writes each slice before the next is rendered.
const SLICE_MESSAGES: usize = 64;
const SLICE_BYTES: usize = 256 * 1024;

pub(super) struct FetchJob {
    tag: String,
    uids: Vec<u32>,
    next: usize,
    items: Vec<Item>,
    uid: bool,
    changed_since: Option<u64>,
}

impl Session {
    fn resolve(&mut self, tag: &str, set: &SequenceSet, uid: bool) -> Result<Vec<u32>, Step> {
        let sel = self.selected.as_ref().expect("selected");
        resolve(set, &sel.uids, uid).map_err(|n| self.bad(tag, &format!("No message with sequence number {n}")))
    }

    pub(super) fn fetch(
        &mut self,
        tag: &str,
        set: &SequenceSet,
        wanted: MacroOrMessageDataItemNames<'_>,
        uid: bool,
        modifiers: &[FetchModifier],
    ) -> Step {
        let uids = match self.resolve(tag, set, uid) {
            Ok(u) => u,
            Err(s) => return s,
        };
        let mut items = match fetch::items(wanted) {
            Ok(i) => i,
            Err(why) => return self.bad(tag, why),
        };
        let mut changed_since = None;
        let mut vanished = false;
        for m in modifiers {
            match m {
                FetchModifier::ChangedSince(n) => {
                    changed_since = Some(n.get());
                    self.condstore = true;
                }
                FetchModifier::Vanished if uid && self.qresync => vanished = true,
                FetchModifier::Vanished => return self.bad(tag, "VANISHED needs UID FETCH and QRESYNC"),
            }
        }
        if vanished && changed_since.is_none() {
            return self.bad(tag, "VANISHED needs CHANGEDSINCE");
        }
        if uid && !items.contains(&Item::Uid) {
            items.insert(0, Item::Uid);
        }
        if changed_since.is_some() && !items.contains(&Item::ModSeq) {
            items.push(Item::ModSeq);
        }
        let user = self.user_id().expect("authenticated");
        let sel = self.selected.as_mut().expect("selected");
        if let (true, Some(since)) = (vanished, changed_since)
            && let Ok(changes) = self.env.store.db.changes_since(user, sel.mailbox, since)
        {
            let gone: Vec<u32> = changes.vanished().into_iter().filter(|u| set_contains_uid(set, *u)).collect();
            if !gone.is_empty() {
                self.out.raw("* VANISHED (EARLIER) ").raw(&compact(&gone)).crlf();
            }
        }
        // Reading a body sets \Seen (RFC 3501 §6.4.5) in one write before rendering, and
        // FLAGS is then part of the response.
        if items.iter().any(Item::sets_seen) && !sel.read_only {
            let seen = ["\\Seen".to_string()];
            match self.env.store.db.store_flags(user, sel.mailbox, &uids, FlagOp::Add, &seen, None) {
                Ok(stored) if !stored.changed.is_empty() => {
                    sel.reported.extend(stored.changed.iter().copied());
                    if !items.contains(&Item::Flags) {
                        items.push(Item::Flags);
                    }
                    self.env.store.changed(user);
                }
                Ok(_) => {}
                Err(e) => return self.store_error(tag, e),
            }
        }
        self.pending = Some(FetchJob { tag: tag.to_string(), uids, next: 0, items, uid, changed_since });
        let (step, _) = self.fetch_more();
        step
    }

    /// Render the next slice of the pending FETCH. Returns the step and whether EXPUNGE may
    /// follow (UID FETCH).
    pub(super) fn fetch_more(&mut self) -> (Step, bool) {
        let Some(mut job) = self.pending.take() else { return (Step::Next, false) };
        let user = self.user_id().expect("authenticated");
        let store = self.env.store.clone();
        let mailbox = self.selected.as_ref().expect("selected").mailbox;
        let needs_raw = job.items.iter().any(Item::needs_raw);
        let needs_structure = job.items.iter().any(Item::needs_structure) || job.items.contains(&Item::Envelope);
        let start = self.out.len();
        while job.next < job.uids.len() && self.out.len() - start < SLICE_BYTES {
            let end = (job.next + SLICE_MESSAGES).min(job.uids.len());
            let batch = &job.uids[job.next..end];
            job.next = end;
            let members = match store.db.members_of(user, mailbox, batch) {
                Ok(m) => m,
                Err(e) => return (self.store_error(&job.tag, e), job.uid),
            };
            // Flags read now may carry a keyword another session just set and this one has
            // not announced yet: FLAGS first (RFC 3501 §7.2.6; found by imaptest's stress).
            let sel = self.selected.as_mut().expect("selected");
            let mut grew = false;
            for m in &members {
                grew |= sel.learn_keywords(&m.message.flags);
            }
            if grew {
                sel.announce_flags(&mut self.out);
            }
            let sel = self.selected.as_ref().expect("selected");
            let mut learned = Vec::new();
            for m in members.iter().filter(|m| job.changed_since.is_none_or(|s| m.modseq > s)) {
                let Some(msn) = sel.msn(m.uid) else { continue };
                let (raw, structure) = if needs_raw {
                    match load(&store, m, needs_structure, &mut learned) {
                        Ok(r) => r,
                        Err(e) => {
                            // A damaged blob is never served (docs/mailstore.md): say which.
                            tracing::error!(session = %self.id, uid = m.uid, error = %e, "message unreadable");
                            let text =
                                format!("Message UID {} cannot be read; the operator's log has the details", m.uid);
                            return (self.no(&job.tag, Some(code::SERVERBUG), &text), job.uid);
                        }
                    }
                } else {
                    (None, None)
                };
                let msg = fetch::Message {
                    msn,
                    member: m,
                    recent: sel.is_recent(m.uid),
                    raw: raw.as_deref(),
                    structure: structure.as_ref(),
                };
                fetch::render(&mut self.out, &msg, &job.items);
            }
            // Structures parsed for this slice are kept, one commit for the slice.
            if !learned.is_empty()
                && let Err(e) = store.db.put_structures(&learned)
            {
                tracing::warn!(session = %self.id, error = %e, "could not keep parsed structures");
            }
        }
        let uid = job.uid;
        if job.next < job.uids.len() {
            self.pending = Some(job);
            return (Step::More, uid);
        }
        (self.ok(&job.tag, None, "FETCH completed"), uid)
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn store(
        &mut self,
        tag: &str,
        set: &SequenceSet,
        kind: StoreType,
        response: StoreResponse,
        flags: &[Flag<'_>],
        uid: bool,
        modifiers: &[StoreModifier],
    ) -> Step {
        let uids = match self.resolve(tag, set, uid) {
            Ok(u) => u,
            Err(s) => return s,
        };
        let user = self.user_id().expect("authenticated");
        if self.selected.as_ref().is_some_and(|s| s.read_only) {
            return self.no(tag, Some(code::CANNOT), "The mailbox is read-only (EXAMINE)");
        }
        let unchanged = modifiers.iter().map(|StoreModifier::UnchangedSince(n)| *n).next();
        if unchanged.is_some() {
            self.condstore = true;
        }
        let op = match kind {
            StoreType::Add => FlagOp::Add,
            StoreType::Remove => FlagOp::Remove,
            StoreType::Replace => FlagOp::Replace,
        };
        let flags: Vec<String> = flags.iter().map(|f| f.to_string()).collect();
        if self.selected_is_scheduled() {
            self.pause_for_store(&uids, op, &flags);
        }
        let sel = self.selected.as_mut().expect("selected");
        let stored = match self.env.store.db.store_flags(user, sel.mailbox, &uids, op, &flags, unchanged) {
            Ok(s) => s,
            Err(e) => return self.store_error(tag, e),
        };
        sel.reported.extend(stored.changed.iter().copied());
        let silent = matches!(response, StoreResponse::Silent);
        let report: Vec<u32> = if silent {
            // Silent, but with CONDSTORE the new MODSEQ still goes out (RFC 7162 §3.1.3).
            if self.condstore { stored.changed.iter().map(|c| c.0).collect() } else { vec![] }
        } else {
            uids.iter().copied().filter(|u| !stored.modified.contains(u)).collect()
        };
        let members: Vec<Member> = self.env.store.db.members_of(user, sel.mailbox, &report).unwrap_or_default();
        self.announce_keywords(&members);
        let sel = self.selected.as_mut().expect("selected");
        for m in &members {
            if let Some(msn) = sel.msn(m.uid) {
                if silent {
                    self.out
                        .raw("* ")
                        .num(msn)
                        .raw(" FETCH (UID ")
                        .num(m.uid)
                        .raw(" MODSEQ (")
                        .num(m.modseq)
                        .raw("))")
                        .crlf();
                } else {
                    flags_line(&mut self.out, msn, m, sel.is_recent(m.uid), uid || self.condstore, self.condstore);
                }
            }
        }
        if !stored.changed.is_empty() {
            self.env.store.changed(user);
        }
        if stored.modified.is_empty() {
            return self.ok(tag, None, "STORE completed");
        }
        let modified: Vec<u32> = if uid {
            stored.modified.clone()
        } else {
            stored.modified.iter().filter_map(|u| sel.msn(*u).map(|n| n as u32)).collect()
        };
        self.ok(tag, Some(&format!("MODIFIED {}", compact(&modified))), "Conditional STORE failed for some")
    }

    pub(super) fn search(
        &mut self,
        tag: &str,
        charset: Option<&Charset<'_>>,
        keys: &[SearchKey<'_>],
        uid: bool,
    ) -> Step {
        if let Some(cs) = charset {
            let cs = cs.as_ref().to_ascii_uppercase();
            if cs != "UTF-8" && cs != "US-ASCII" {
                return self.no(tag, Some("BADCHARSET (UTF-8 US-ASCII)"), "Charset not supported");
            }
        }
        let user = self.user_id().expect("authenticated");
        let sel = self.selected.as_ref().expect("selected");
        let members = match self.env.store.db.members(user, sel.mailbox, 1..=u32::MAX) {
            Ok(m) => m,
            Err(e) => return self.store_error(tag, e),
        };
        let store = self.env.store.clone();
        let mut found = Vec::new();
        let mut highest = 0;
        for m in &members {
            let Some(msn) = sel.msn(m.uid) else { continue };
            let loader = || load(&store, m, false, &mut Vec::new()).ok().and_then(|(raw, _)| raw);
            let c =
                Candidate { msn: msn as u32, member: m, recent: sel.is_recent(m.uid), view: &sel.uids, raw: &loader };
            if search::matches(keys, &c) {
                found.push(if uid { m.uid } else { msn as u32 });
                highest = highest.max(m.modseq);
            }
        }
        self.out.raw("* SEARCH");
        for n in &found {
            self.out.raw(" ").num(n);
        }
        if keys.iter().any(search::uses_modseq) && !found.is_empty() {
            self.condstore = true;
            self.out.raw(" (MODSEQ ").num(highest).raw(")");
        }
        self.out.crlf();
        self.ok(tag, None, "SEARCH completed")
    }

    pub(super) fn copy_or_move(
        &mut self,
        tag: &str,
        set: &SequenceSet,
        target: &WireMailbox<'_>,
        uid: bool,
        mv: bool,
    ) -> Step {
        let uids = match self.resolve(tag, set, uid) {
            Ok(u) => u,
            Err(s) => return s,
        };
        let user = self.user_id().expect("authenticated");
        if mv && self.selected.as_ref().is_some_and(|s| s.read_only) {
            return self.no(tag, Some(code::CANNOT), "The mailbox is read-only (EXAMINE)");
        }
        let name = match mailbox_name(target) {
            Ok(n) => n,
            Err(why) => return self.no(tag, Some(code::CANNOT), why),
        };
        let db = &self.env.store.db;
        let to = match db.mailbox_id(user, &name) {
            Ok(id) => id,
            Err(MailError::NoMailbox(_)) => return self.no(tag, Some(code::TRYCREATE), "No such mailbox"),
            Err(e) => return self.store_error(tag, e),
        };
        let from_scheduled = self.selected_is_scheduled();
        if Some(to) == self.scheduled_id() {
            if from_scheduled {
                return self.no(tag, Some(code::CANNOT), "These messages are scheduled already");
            }
            return self.schedule_copies(tag, &uids, mv);
        }
        let env = self.env.clone();
        let _held = from_scheduled.then(|| env.store.held_lock.lock().unwrap_or_else(|e| e.into_inner()));
        let (uids, refused) = if mv && from_scheduled {
            match self.cancel_for_move(&uids) {
                Ok(r) => r,
                Err(e) => return self.store_error(tag, e),
            }
        } else {
            (uids, vec![])
        };
        let sel = self.selected.as_ref().expect("selected");
        let result = if mv {
            env.store.db.move_messages(user, sel.mailbox, &uids, to)
        } else {
            env.store.db.copy(user, sel.mailbox, &uids, to, self.env.clock.now())
        };
        let (validity, pairs) = match result {
            Ok(r) => r,
            Err(e) => return self.store_error(tag, e),
        };
        self.env.store.changed(user);
        self.report_copied(tag, mv, validity, &pairs, &refused)
    }

    /// COPYUID, and for MOVE the source's expunges (RFC 6851 §4.3), then the tagged reply.
    fn report_copied(&mut self, tag: &str, mv: bool, validity: u32, pairs: &[(u32, u32)], refused: &[u32]) -> Step {
        let done = if mv { "MOVE completed" } else { "COPY completed" };
        let code = (!pairs.is_empty()).then(|| {
            let (src, dst) = compact_pairs(pairs);
            format!("COPYUID {validity} {src} {dst}")
        });
        if !mv {
            return self.ok(tag, code.as_deref(), done);
        }
        if let Some(code) = &code {
            self.out.untagged("OK", Some(code), "Moved");
        }
        let moved: Vec<u32> = {
            let mut m: Vec<u32> = pairs.iter().map(|p| p.0).collect();
            m.sort_unstable();
            m
        };
        self.announce_expunged(&moved);
        if !refused.is_empty() {
            return self.no(tag, Some(code::CANNOT), &super::scheduled::not_cancelled(refused));
        }
        self.ok(tag, None, done)
    }

    /// COPY or MOVE into `Scheduled`: each message is submitted as if dropped in by APPEND;
    /// MOVE then takes the sources out.
    fn schedule_copies(&mut self, tag: &str, uids: &[u32], mv: bool) -> Step {
        let user = self.user_id().expect("authenticated");
        let from = self.selected.as_ref().expect("selected").mailbox;
        let members = match self.env.store.db.members_of(user, from, uids) {
            Ok(m) => m,
            Err(e) => return self.store_error(tag, e),
        };
        let mut messages = Vec::new();
        for m in &members {
            match load(&self.env.store, m, false, &mut Vec::new()) {
                Ok((Some(raw), _)) => messages.push((raw, m.message.flags.clone())),
                Ok((None, _)) => {}
                Err(e) => return self.store_error(tag, e),
            }
        }
        let (validity, new) = match self.schedule_messages(&messages, if mv { "IMAP MOVE" } else { "IMAP COPY" }) {
            Ok(r) => r,
            Err((c, text)) => return self.no(tag, Some(c), &text),
        };
        // A UID is missing only if the view's entry was left to the filer: then no COPYUID.
        let pairs: Vec<(u32, u32)> =
            if new.len() == members.len() { members.iter().map(|m| m.uid).zip(new).collect() } else { vec![] };
        if mv {
            let sources: Vec<u32> = members.iter().map(|m| m.uid).collect();
            if let Err(e) = self.env.store.db.remove(user, from, &sources) {
                return self.store_error(tag, e);
            }
            self.env.store.changed(user);
            if pairs.is_empty() {
                self.announce_expunged(&sources);
                return self.ok(tag, None, "MOVE completed: scheduled");
            }
        }
        self.report_copied(tag, mv, validity, &pairs, &[])
    }

    /// EXPUNGE or VANISHED for UIDs this session itself removed.
    fn announce_expunged(&mut self, uids: &[u32]) {
        let qresync = self.qresync;
        let sel = self.selected.as_mut().expect("selected");
        if qresync {
            if !uids.is_empty() {
                self.out.raw("* VANISHED ").raw(&compact(uids)).crlf();
            }
            sel.uids.retain(|u| uids.binary_search(u).is_err());
        } else {
            for uid in uids.iter().rev() {
                if let Ok(i) = sel.uids.binary_search(uid) {
                    self.out.raw("* ").num(i + 1).raw(" EXPUNGE").crlf();
                    sel.uids.remove(i);
                }
            }
        }
        sel.recent.retain(|u| uids.binary_search(u).is_err());
        sel.gone.retain(|u| uids.binary_search(u).is_err());
    }

    pub(super) fn expunge(&mut self, tag: &str, only: Option<&SequenceSet>) -> Step {
        let user = self.user_id().expect("authenticated");
        if self.selected.as_ref().is_some_and(|s| s.read_only) {
            return self.no(tag, Some(code::CANNOT), "The mailbox is read-only (EXAMINE)");
        }
        let only = match only {
            Some(set) => match self.resolve(tag, set, true) {
                Ok(u) => Some(u),
                Err(s) => return s,
            },
            None => None,
        };
        let mailbox = self.selected.as_ref().expect("selected").mailbox;
        let env = self.env.clone();
        let scheduled = self.selected_is_scheduled();
        let _held = scheduled.then(|| env.store.held_lock.lock().unwrap_or_else(|e| e.into_inner()));
        let refused = if scheduled {
            match self.cancel_deleted(mailbox, only.as_deref()) {
                Ok(r) => r,
                Err(e) => return self.store_error(tag, e),
            }
        } else {
            vec![]
        };
        let gone = match env.store.db.expunge(user, mailbox, only.as_deref()) {
            Ok(g) => g,
            Err(e) => return self.store_error(tag, e),
        };
        if !gone.is_empty() || !refused.is_empty() {
            self.env.store.changed(user);
        }
        self.announce_expunged(&gone);
        if !refused.is_empty() {
            return self.no(tag, Some(code::CANNOT), &super::scheduled::not_cancelled(&refused));
        }
        self.ok(tag, None, "EXPUNGE completed")
    }
}

fn set_contains_uid(set: &SequenceSet, uid: u32) -> bool {
    // Expunged UIDs are no longer in the view: test the set against the UID alone.
    let probe = [uid];
    resolve(set, &probe, true).is_ok_and(|u| !u.is_empty())
}

type Loaded = (Option<Vec<u8>>, Option<crate::mailstore::structure::Structure>);

/// The raw bytes (verified against their hash) and, when wanted, the structure: the stored
/// one, or parsed now and added to `learned` for the caller to store (imported messages have
/// none until first wanted).
fn load(
    store: &crate::mailstore::MailStore,
    m: &Member,
    structure: bool,
    learned: &mut Vec<(BlobHash, Vec<u8>)>,
) -> Result<Loaded, MailError> {
    let hash: BlobHash = m.message.blob.parse()?;
    let (place, stored) = store.db.blob_meta(&hash, structure)?;
    let raw = store.db.read_blob_from(store.blobs.as_ref(), &hash, place)?;
    let s = structure.then(|| {
        stored.unwrap_or_else(|| {
            let s = crate::mailstore::structure::Structure::of(&raw);
            learned.push((hash, s.encode()));
            s
        })
    });
    Ok((Some(raw), s))
}
