//! Every write to messages and memberships goes through [`Work`]: one transaction, the user's
//! state and the touched mailboxes loaded once and written back at the end, each change taking
//! the next modseq of the user's one counter. Keeping counters (EXISTS, UNSEEN, DELETED, size)
//! in the same place as the changes is what lets SELECT and STATUS answer without a scan.

use std::collections::BTreeMap;

use jiff::Timestamp;
use redb::{ReadableTable, Table, WriteTransaction};

use super::*;
use crate::accounts::quota::{self, Writer};
use crate::blobs::{BlobHash, Place};

/// STORE's three forms (RFC 3501 §6.4.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagOp {
    Add,
    Remove,
    Replace,
}

/// What STORE did: the memberships whose flags changed (uid, new modseq), and those refused
/// by `UNCHANGEDSINCE` (RFC 7162 §3.1.3, the `MODIFIED` response code).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stored {
    pub changed: Vec<(u32, u64)>,
    pub modified: Vec<u32>,
}

type Bytes = &'static [u8];

pub(super) struct Work<'t> {
    user: u32,
    state: UserState,
    boxes: BTreeMap<u32, Mailbox>,
    users: Table<'t, u32, Bytes>,
    mailboxes: Table<'t, (u32, u32), Bytes>,
    messages: Table<'t, (u32, u64), Bytes>,
    members: Table<'t, (u32, u32, u32), (u64, u64, bool)>,
    by_modseq: Table<'t, (u32, u32, u64), u32>,
    expunged: Table<'t, (u32, u32, u64), u32>,
    unseen: Table<'t, (u32, u32, u32), ()>,
    refs: Table<'t, &'static [u8; 32], u64>,
    places: Table<'t, &'static [u8; 32], (u64, u64, u32)>,
    /// Expunge-log entries kept per mailbox ([`EXPUNGE_LOG_KEEP`]).
    keep: u32,
}

fn has_flag(flags: &[String], flag: &str) -> bool {
    flags.iter().any(|f| f.eq_ignore_ascii_case(flag))
}

impl<'t> Work<'t> {
    pub(super) fn open(txn: &'t WriteTransaction, user: u32, keep: u32) -> Result<Work<'t>, MailError> {
        let users = txn.open_table(USERS)?;
        let state: UserState = read("user", users.get(user)?.ok_or(MailError::Db("no such user".into()))?.value())?;
        Ok(Work {
            user,
            state,
            boxes: BTreeMap::new(),
            users,
            mailboxes: txn.open_table(MAILBOXES)?,
            messages: txn.open_table(MESSAGES)?,
            members: txn.open_table(MEMBERS)?,
            by_modseq: txn.open_table(BY_MODSEQ)?,
            expunged: txn.open_table(EXPUNGED)?,
            unseen: txn.open_table(UNSEEN)?,
            refs: txn.open_table(BLOB_REFS)?,
            places: txn.open_table(BLOB_PLACES)?,
            keep,
        })
    }

    pub(super) fn mailbox(&mut self, id: u32) -> Result<&mut Mailbox, MailError> {
        if !self.boxes.contains_key(&id) {
            let v = self.mailboxes.get((self.user, id))?.ok_or_else(|| MailError::NoMailbox(id.to_string()))?;
            let rec: Mailbox = read("mailbox", v.value())?;
            self.boxes.insert(id, rec);
        }
        Ok(self.boxes.get_mut(&id).expect("just loaded"))
    }

    pub(super) fn next_modseq(&mut self) -> u64 {
        self.state.modseq += 1;
        self.state.modseq
    }

    pub(super) fn message(&self, id: u64) -> Result<Message, MailError> {
        let v = self
            .messages
            .get((self.user, id))?
            .ok_or_else(|| MailError::Damaged(format!("message {id} of user {} missing", self.user)))?;
        read("message", v.value())
    }

    pub(super) fn message_exists(&self, id: u64) -> Result<bool, MailError> {
        Ok(self.messages.get((self.user, id))?.is_some())
    }

    pub(super) fn put_message(&mut self, id: u64, msg: &Message) -> Result<(), MailError> {
        self.messages.insert((self.user, id), json(msg).as_slice())?;
        Ok(())
    }

    /// (message, modseq, deleted) of a membership.
    pub(super) fn member(&self, mailbox: u32, uid: u32) -> Result<Option<(u64, u64, bool)>, MailError> {
        Ok(self.members.get((self.user, mailbox, uid))?.map(|v| v.value()))
    }

    /// Charge `size` bytes to the quota (deciding growth) or refuse.
    pub(super) fn charge(
        &mut self,
        rule: &QuotaRule,
        size: u64,
        writer: Writer,
        now: Timestamp,
    ) -> Result<(), MailError> {
        let s = &mut self.state;
        let admitted = quota::decide(rule, s.ceiling, s.limit, s.used, size, writer)?;
        if let Some((old, new)) = admitted.grew {
            s.growth.push((now, old, new));
        }
        s.limit = admitted.limit;
        s.used += size;
        Ok(())
    }

    /// A new message with one membership; its blob is referenced once more. `place`: where
    /// a blob just written went (`None`: a blob already referenced, as by COPY).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new_message(
        &mut self,
        mailbox: u32,
        blob: &BlobHash,
        place: Option<Place>,
        size: u64,
        internaldate: Timestamp,
        flags: Vec<String>,
        origin: Origin,
        message_id: Option<String>,
    ) -> Result<(u32, u64), MailError> {
        let id = self.state.next_message;
        self.state.next_message += 1;
        let count = self.refs.get(&blob.0)?.map_or(0, |v| v.value());
        self.refs.insert(&blob.0, count + 1)?;
        // A recorded pack place stays (its bytes exist; a second copy is dead space for
        // compaction). A packed put means no file of its own existed: record where it went.
        if let Some(Place::Packed { pack, offset, len }) = place
            && self.places.get(&blob.0)?.is_none()
        {
            self.places.insert(&blob.0, (pack, offset, len))?;
        }
        let mut msg =
            Message { blob: blob.to_string(), size, internaldate, flags, origin, members: vec![], message_id: None };
        msg.message_id = message_id;
        let (uid, modseq) = self.add_member(mailbox, id, &mut msg, false)?;
        self.put_message(id, &msg)?;
        Ok((uid, modseq))
    }

    /// A membership for `msg` in `mailbox` (the caller writes `msg` back).
    pub(super) fn add_member(
        &mut self,
        mailbox: u32,
        id: u64,
        msg: &mut Message,
        deleted: bool,
    ) -> Result<(u32, u64), MailError> {
        let modseq = self.next_modseq();
        let (user, seen, size) = (self.user, msg.seen(), msg.size);
        let mbox = self.mailbox(mailbox)?;
        let uid = mbox.uidnext;
        mbox.uidnext += 1;
        mbox.exists += 1;
        mbox.size += size;
        mbox.unseen += u32::from(!seen);
        if deleted {
            mbox.deleted += 1;
            mbox.deleted_size += size;
        }
        mbox.highestmodseq = modseq;
        note_keywords(mbox, &msg.flags);
        self.members.insert((user, mailbox, uid), (id, modseq, deleted))?;
        self.by_modseq.insert((user, mailbox, modseq), uid)?;
        unseen::note(&mut self.unseen, user, mailbox, uid, !seen)?;
        msg.members.push((mailbox, uid));
        Ok((uid, modseq))
    }

    /// Remove one membership, logged for the sessions and QRESYNC; the message record is the
    /// caller's to write back or drop.
    pub(super) fn remove_member(&mut self, mailbox: u32, uid: u32, msg: &mut Message) -> Result<(), MailError> {
        let Some((_, old_modseq, deleted)) = self.member(mailbox, uid)? else { return Ok(()) };
        let modseq = self.next_modseq();
        let (user, seen, size) = (self.user, msg.seen(), msg.size);
        self.members.remove((user, mailbox, uid))?;
        self.by_modseq.remove((user, mailbox, old_modseq))?;
        self.expunged.insert((user, mailbox, modseq), uid)?;
        unseen::note(&mut self.unseen, user, mailbox, uid, false)?;
        let mbox = self.mailbox(mailbox)?;
        mbox.expunge_log = mbox.expunge_log.saturating_add(1);
        mbox.exists -= 1;
        mbox.size -= size;
        mbox.unseen -= u32::from(!seen);
        if deleted {
            mbox.deleted -= 1;
            mbox.deleted_size -= size;
        }
        mbox.highestmodseq = modseq;
        msg.members.retain(|m| *m != (mailbox, uid));
        Ok(())
    }

    /// EXPUNGE of a membership: the message leaves every mailbox it is in (the INBOX pair goes
    /// together), its quota is freed and its blob loses a reference.
    pub(super) fn expunge_message(&mut self, id: u64) -> Result<(), MailError> {
        let mut msg = self.message(id)?;
        for (mailbox, uid) in msg.members.clone() {
            self.remove_member(mailbox, uid, &mut msg)?;
        }
        self.messages.remove((self.user, id))?;
        self.state.used = self.state.used.saturating_sub(msg.size);
        let hash: BlobHash = msg.blob.parse().map_err(|e| MailError::Damaged(format!("message {id}: {e}")))?;
        let count = self.refs.get(&hash.0)?.map_or(0, |v| v.value());
        // Zero stays as a row: the collector finds unreferenced blobs there (docs/mailstore.md).
        self.refs.insert(&hash.0, count.saturating_sub(1))?;
        Ok(())
    }

    /// New flags for a message: a new modseq in every mailbox it is in (RFC 7162 §3.1).
    pub(super) fn set_flags(&mut self, id: u64, msg: &mut Message, flags: Vec<String>) -> Result<u64, MailError> {
        let modseq = self.next_modseq();
        let (was_seen, user) = (msg.seen(), self.user);
        msg.flags = flags;
        let now_seen = msg.seen();
        for (mailbox, uid) in msg.members.clone() {
            let Some((_, old, deleted)) = self.member(mailbox, uid)? else { continue };
            self.members.insert((user, mailbox, uid), (id, modseq, deleted))?;
            self.by_modseq.remove((user, mailbox, old))?;
            self.by_modseq.insert((user, mailbox, modseq), uid)?;
            if was_seen != now_seen {
                unseen::note(&mut self.unseen, user, mailbox, uid, !now_seen)?;
            }
            let mbox = self.mailbox(mailbox)?;
            mbox.highestmodseq = modseq;
            note_keywords(mbox, &msg.flags);
            match (was_seen, now_seen) {
                (false, true) => mbox.unseen -= 1,
                (true, false) => mbox.unseen += 1,
                _ => {}
            }
        }
        self.put_message(id, msg)?;
        Ok(modseq)
    }

    /// `\Deleted` on one membership.
    pub(super) fn set_deleted(
        &mut self,
        mailbox: u32,
        uid: u32,
        id: u64,
        size: u64,
        on: bool,
    ) -> Result<u64, MailError> {
        let Some((_, old, _)) = self.member(mailbox, uid)? else { return Ok(0) };
        let modseq = self.next_modseq();
        let user = self.user;
        self.members.insert((user, mailbox, uid), (id, modseq, on))?;
        self.by_modseq.remove((user, mailbox, old))?;
        self.by_modseq.insert((user, mailbox, modseq), uid)?;
        let mbox = self.mailbox(mailbox)?;
        mbox.highestmodseq = modseq;
        if on {
            mbox.deleted += 1;
            mbox.deleted_size += size;
        } else {
            mbox.deleted -= 1;
            mbox.deleted_size -= size;
        }
        Ok(modseq)
    }

    pub(super) fn finish(mut self) -> Result<u64, MailError> {
        for (id, rec) in &mut self.boxes {
            if rec.expunge_log > self.keep + self.keep / 10 {
                trim_expunge_log(&mut self.expunged, self.user, *id, rec, self.keep)?;
            }
            self.mailboxes.insert((self.user, *id), json(rec).as_slice())?;
        }
        self.users.insert(self.user, json(&self.state).as_slice())?;
        Ok(self.state.modseq)
    }
}

/// Forget the oldest expunges of a mailbox, keeping `keep`; the floor records how far back
/// the log still reaches (a session or client from before it compares UID lists instead).
fn trim_expunge_log(
    log: &mut Table<'_, (u32, u32, u64), u32>,
    user: u32,
    mailbox: u32,
    rec: &mut Mailbox,
    keep: u32,
) -> Result<(), MailError> {
    let all = (user, mailbox, 0)..=(user, mailbox, u64::MAX);
    // Counted here, not trusted from the trigger: stores from before the floor start at zero.
    let mut len = 0u64;
    for entry in log.range(all.clone())? {
        entry?;
        len += 1;
    }
    let drop = len.saturating_sub(u64::from(keep));
    let mut floor = rec.expunge_floor;
    let mut seen = 0u64;
    log.retain_in(all, |(_, _, modseq), _| {
        seen += 1;
        if seen <= drop {
            floor = floor.max(modseq);
            false
        } else {
            true
        }
    })?;
    rec.expunge_floor = floor;
    rec.expunge_log = u32::try_from(len - drop).unwrap_or(u32::MAX);
    Ok(())
}

/// The Message-ID field's value (trimmed), if the header has one.
pub fn message_id_of(raw: &[u8]) -> Option<String> {
    let block = crate::message::header::parse_block(raw, 0, raw.len());
    let f = block.fields.iter().find(|f| f.is(raw, "Message-ID"))?;
    let v = String::from_utf8_lossy(&raw[f.value(raw)]).split_whitespace().collect::<Vec<_>>().join("");
    (!v.is_empty()).then_some(v)
}

fn note_keywords(mbox: &mut Mailbox, flags: &[String]) {
    for f in flags.iter().filter(|f| !f.starts_with('\\')) {
        if mbox.keywords.len() < MAX_KEYWORDS && !has_flag(&mbox.keywords, f) {
            mbox.keywords.push(f.clone());
        }
    }
}

/// Split STORE's flag list into the shared flags and the per-membership `\Deleted`; `\Recent`
/// cannot be stored (RFC 3501 §2.3.2) and is dropped.
pub(super) fn split_flags(flags: &[String]) -> (Vec<String>, bool) {
    let mut shared: Vec<String> = Vec::new();
    let mut deleted = false;
    for f in flags {
        if f.eq_ignore_ascii_case("\\Deleted") {
            deleted = true;
        } else if !f.eq_ignore_ascii_case("\\Recent") && !has_flag(&shared, f) {
            shared.push(f.clone());
        }
    }
    (shared, deleted)
}

impl MailDb {
    /// STORE on memberships of one mailbox. `unchangedsince`: memberships whose modseq is
    /// higher are left alone and reported (RFC 7162 §3.1.3).
    pub fn store_flags(
        &self,
        user: u32,
        mailbox: u32,
        uids: &[u32],
        op: FlagOp,
        flags: &[String],
        unchangedsince: Option<u64>,
    ) -> Result<Stored, MailError> {
        let (want, want_deleted) = split_flags(flags);
        let txn = self.write()?;
        let mut out = Stored::default();
        {
            let mut work = Work::open(&txn, user, self.expunge_keep)?;
            for &uid in uids {
                let Some((id, modseq, deleted)) = work.member(mailbox, uid)? else { continue };
                if unchangedsince.is_some_and(|u| modseq > u) {
                    out.modified.push(uid);
                    continue;
                }
                let mut msg = work.message(id)?;
                let new_flags: Vec<String> = match op {
                    FlagOp::Replace => want.clone(),
                    FlagOp::Add => {
                        let mut f = msg.flags.clone();
                        f.extend(want.iter().filter(|w| !has_flag(&msg.flags, w)).cloned());
                        f
                    }
                    FlagOp::Remove => msg.flags.iter().filter(|f| !has_flag(&want, f)).cloned().collect(),
                };
                let new_deleted = match op {
                    FlagOp::Replace => want_deleted,
                    FlagOp::Add => deleted || want_deleted,
                    FlagOp::Remove => deleted && !want_deleted,
                };
                let mut changed = None;
                let same = new_flags.len() == msg.flags.len() && new_flags.iter().all(|f| has_flag(&msg.flags, f));
                if !same {
                    changed = Some(work.set_flags(id, &mut msg, new_flags)?);
                }
                if new_deleted != deleted {
                    changed = Some(work.set_deleted(mailbox, uid, id, msg.size, new_deleted)?);
                }
                if let Some(modseq) = changed {
                    out.changed.push((uid, modseq));
                }
            }
            work.finish()?;
        }
        txn.commit()?;
        Ok(out)
    }

    /// EXPUNGE (all `\Deleted` memberships) or UID EXPUNGE (those among `only`). Returns the
    /// UIDs expunged, ascending.
    pub fn expunge(&self, user: u32, mailbox: u32, only: Option<&[u32]>) -> Result<Vec<u32>, MailError> {
        self.expunge_members(user, mailbox, only, true)
    }

    /// Take these memberships out whatever their flags (a MOVE into `Scheduled`, which
    /// submits the message, then removes the source as MOVE does). UIDs ascending.
    pub fn remove(&self, user: u32, mailbox: u32, uids: &[u32]) -> Result<Vec<u32>, MailError> {
        let mut sorted = uids.to_vec();
        sorted.sort_unstable();
        self.expunge_members(user, mailbox, Some(&sorted), false)
    }

    fn expunge_members(
        &self,
        user: u32,
        mailbox: u32,
        only: Option<&[u32]>,
        need_deleted: bool,
    ) -> Result<Vec<u32>, MailError> {
        let txn = self.write()?;
        let mut gone = Vec::new();
        {
            let doomed: Vec<(u32, u64)> = {
                let members = txn.open_table(MEMBERS)?;
                let mut out = Vec::new();
                for entry in members.range((user, mailbox, 0)..=(user, mailbox, u32::MAX))? {
                    let (k, v) = entry?;
                    let (id, _, deleted) = v.value();
                    let uid = k.value().2;
                    if (deleted || !need_deleted) && only.is_none_or(|o| o.binary_search(&uid).is_ok()) {
                        out.push((uid, id));
                    }
                }
                out
            };
            let mut work = Work::open(&txn, user, self.expunge_keep)?;
            for (uid, id) in doomed {
                work.expunge_message(id)?;
                gone.push(uid);
            }
            work.finish()?;
        }
        txn.commit()?;
        Ok(gone)
    }

    /// COPY: a new message per source membership (flags copied, `\Deleted` not; the quota
    /// counts the copy again). Returns the (source, target) UID pairs (RFC 4315 COPYUID) and
    /// the target's UIDVALIDITY; all or nothing.
    pub fn copy(
        &self,
        user: u32,
        from: u32,
        uids: &[u32],
        to: u32,
        now: Timestamp,
    ) -> Result<(u32, Vec<(u32, u32)>), MailError> {
        let txn = self.write()?;
        let mut pairs = Vec::new();
        let uidvalidity;
        {
            let mut work = Work::open(&txn, user, self.expunge_keep)?;
            uidvalidity = work.mailbox(to)?.uidvalidity;
            for &uid in uids {
                let Some((id, _, _)) = work.member(from, uid)? else { continue };
                let msg = work.message(id)?;
                work.charge(&self.rule, msg.size, Writer::User, now)?;
                let hash: BlobHash = msg.blob.parse().map_err(|e| MailError::Damaged(format!("message {id}: {e}")))?;
                let (new_uid, _) = work.new_message(
                    to,
                    &hash,
                    None,
                    msg.size,
                    msg.internaldate,
                    msg.flags.clone(),
                    Origin::Copy,
                    msg.message_id.clone(),
                )?;
                pairs.push((uid, new_uid));
            }
            work.finish()?;
        }
        txn.commit()?;
        Ok((uidvalidity, pairs))
    }

    /// MOVE (RFC 6851): the same message leaves every mailbox it is in for the target, keeping
    /// its flags (the target membership has no `\Deleted`); no quota change.
    pub fn move_messages(
        &self,
        user: u32,
        from: u32,
        uids: &[u32],
        to: u32,
    ) -> Result<(u32, Vec<(u32, u32)>), MailError> {
        let txn = self.write()?;
        let mut pairs = Vec::new();
        let uidvalidity;
        {
            let mut work = Work::open(&txn, user, self.expunge_keep)?;
            uidvalidity = work.mailbox(to)?.uidvalidity;
            for &uid in uids {
                let Some((id, _, _)) = work.member(from, uid)? else { continue };
                let mut msg = work.message(id)?;
                for (mailbox, m_uid) in msg.members.clone() {
                    work.remove_member(mailbox, m_uid, &mut msg)?;
                }
                let (new_uid, _) = work.add_member(to, id, &mut msg, false)?;
                work.put_message(id, &msg)?;
                pairs.push((uid, new_uid));
            }
            work.finish()?;
        }
        txn.commit()?;
        Ok((uidvalidity, pairs))
    }

    /// `gatepost quota set USER --ceiling`: the user's own ceiling (`None`: the operator's).
    /// The limit never shrinks, so a ceiling below it only stops further growth.
    pub fn set_ceiling(&self, user: u32, ceiling: Option<u64>) -> Result<(), MailError> {
        let txn = self.write()?;
        {
            let mut users = txn.open_table(USERS)?;
            let mut state: UserState =
                read("user", users.get(user)?.ok_or(MailError::Db("no such user".into()))?.value())?;
            state.ceiling = ceiling.or(self.rule.ceiling);
            users.insert(user, json(&state).as_slice())?;
        }
        txn.commit()?;
        Ok(())
    }

    /// A selecting session claims the mailbox's `\Recent` messages: those from the returned
    /// UID on are recent for it, and for no later session.
    pub fn claim_recent(&self, user: u32, mailbox: u32) -> Result<u32, MailError> {
        // Nothing new to claim is the common case (every IDLE session but the first one sees
        // the same arrival): answered from a read transaction, never queueing for the writer.
        let seen = self.mailbox(user, mailbox)?;
        if seen.recent_from == seen.uidnext {
            return Ok(seen.recent_from);
        }
        // Claims of many users at once (one arrival each) commit together.
        match self.grouped(group::Job::ClaimRecent { user, mailbox })? {
            group::Done::Claimed(from) => Ok(from),
            group::Done::Filed(_) => Err(MailError::Db("a claim was answered as a filing".into())),
        }
    }
}
