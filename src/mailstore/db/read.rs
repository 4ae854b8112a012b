//! Reads for sessions: memberships with their messages, and what changed in a mailbox since a
//! modseq (the catch-up every session does after a change signal, and CONDSTORE/QRESYNC).
//! A session keeps only its UID list and its modseq; it never holds a queue of events, so a
//! slow client costs nothing here.

use std::ops::RangeInclusive;

use redb::{ReadTransaction, ReadableDatabase};

use super::*;

/// One membership and its message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub uid: u32,
    pub modseq: u64,
    pub deleted: bool,
    pub id: u64,
    pub message: Message,
}

impl Member {
    /// Flags as IMAP shows them: the message's, plus `\Deleted` when this membership has it.
    pub fn flags(&self) -> impl Iterator<Item = &str> {
        self.message.flags.iter().map(String::as_str).chain(self.deleted.then_some("\\Deleted"))
    }
}

/// What changed in a mailbox after a modseq: memberships added or with new flags (by UID),
/// and UIDs expunged, each ascending.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    /// (uid, modseq), by UID.
    pub changed: Vec<(u32, u64)>,
    pub expunged: Vec<u32>,
    /// The mailbox's HIGHESTMODSEQ at the time of reading.
    pub highest: u64,
    /// Set when the expunge log no longer reaches back to the modseq asked about (it keeps
    /// the newest [`EXPUNGE_LOG_KEEP`]): every UID in the mailbox now, ascending, so what
    /// was expunged is told by absence. `expunged` is then empty.
    pub present: Option<Vec<u32>>,
    /// UIDNEXT at the time of reading.
    pub uidnext: u32,
}

impl Changes {
    /// Which of `known` (ascending) are expunged, by the log or by absence.
    pub fn expunged_of(&self, known: &[u32]) -> Vec<u32> {
        match &self.present {
            None => self.expunged.iter().copied().filter(|u| known.binary_search(u).is_ok()).collect(),
            Some(present) => known.iter().copied().filter(|u| present.binary_search(u).is_err()).collect(),
        }
    }

    /// What VANISHED (EARLIER) reports: the expunged UIDs, or — past the log's floor — every
    /// UID below UIDNEXT that is not in the mailbox. RFC 7162 §3.2.10 lets it name UIDs the
    /// client never saw (and clients ignore those); Dovecot answers the same way once its
    /// transaction log has been rotated away.
    pub fn vanished(&self) -> Vec<u32> {
        match &self.present {
            None => self.expunged.clone(),
            Some(present) => (1..self.uidnext).filter(|u| present.binary_search(u).is_err()).collect(),
        }
    }
}

impl MailDb {
    /// Members of a mailbox in UID order, `uids` inclusive.
    pub fn members(&self, user: u32, mailbox: u32, uids: RangeInclusive<u32>) -> Result<Vec<Member>, MailError> {
        let txn = self.db.begin_read()?;
        let members = txn.open_table(MEMBERS)?;
        let messages = txn.open_table(MESSAGES)?;
        let mut out = Vec::new();
        for entry in members.range((user, mailbox, *uids.start())..=(user, mailbox, *uids.end()))? {
            let (k, v) = entry?;
            let (id, modseq, deleted) = v.value();
            let rec = messages
                .get((user, id))?
                .ok_or_else(|| MailError::Damaged(format!("member {:?} without its message", k.value())))?;
            out.push(Member { uid: k.value().2, modseq, deleted, id, message: read("message", rec.value())? });
        }
        Ok(out)
    }

    /// The listed UIDs' members (those still there), in the order given.
    pub fn members_of(&self, user: u32, mailbox: u32, uids: &[u32]) -> Result<Vec<Member>, MailError> {
        members_in(&self.db.begin_read()?, user, mailbox, uids)
    }

    /// Every UID in the mailbox, ascending: a session's sequence-number map.
    pub fn uids(&self, user: u32, mailbox: u32) -> Result<Vec<u32>, MailError> {
        let txn = self.db.begin_read()?;
        let members = txn.open_table(MEMBERS)?;
        let mut out = Vec::new();
        for entry in members.range((user, mailbox, 0)..=(user, mailbox, u32::MAX))? {
            out.push(entry?.0.value().2);
        }
        Ok(out)
    }

    /// Changes to a mailbox after `since` (one read transaction, so both lists agree).
    pub fn changes_since(&self, user: u32, mailbox: u32, since: u64) -> Result<Changes, MailError> {
        Ok(changes_in(&self.db.begin_read()?, user, mailbox, since)?.0)
    }

    /// A session's catch-up in one read transaction (a read transaction costs file locks and
    /// a header read in redb's multi-process mode, and 10,000 IDLE sessions each do one per
    /// change): the changes after `since`, the members of the changed UIDs `want` picks, and
    /// the mailbox record (keywords, and whether there are arrivals to claim as `\Recent`).
    pub fn catch_up(
        &self,
        user: u32,
        mailbox: u32,
        since: u64,
        mut want: impl FnMut(&(u32, u64)) -> bool,
    ) -> Result<(Changes, Vec<Member>, Mailbox), MailError> {
        let txn = self.db.begin_read()?;
        let (changes, rec) = changes_in(&txn, user, mailbox, since)?;
        let uids: Vec<u32> = changes.changed.iter().filter(|c| want(c)).map(|c| c.0).collect();
        let members = if uids.is_empty() { Vec::new() } else { members_in(&txn, user, mailbox, &uids)? };
        Ok((changes, members, rec))
    }
}

fn changes_in(txn: &ReadTransaction, user: u32, mailbox: u32, since: u64) -> Result<(Changes, Mailbox), MailError> {
    let boxes = txn.open_table(MAILBOXES)?;
    let Some(rec) = boxes.get((user, mailbox))? else { return Err(MailError::NoMailbox(mailbox.to_string())) };
    let rec = read::<Mailbox>("mailbox", rec.value())?;
    let mut out = Changes { highest: rec.highestmodseq, uidnext: rec.uidnext, ..Changes::default() };
    if since >= rec.highestmodseq {
        return Ok((out, rec));
    }
    let after = since.saturating_add(1);
    for entry in txn.open_table(BY_MODSEQ)?.range((user, mailbox, after)..=(user, mailbox, u64::MAX))? {
        let (k, v) = entry?;
        out.changed.push((v.value(), k.value().2));
    }
    if since < rec.expunge_floor {
        let mut present = Vec::with_capacity(rec.exists as usize);
        for entry in txn.open_table(MEMBERS)?.range((user, mailbox, 0)..=(user, mailbox, u32::MAX))? {
            present.push(entry?.0.value().2);
        }
        out.present = Some(present);
    } else {
        for entry in txn.open_table(EXPUNGED)?.range((user, mailbox, after)..=(user, mailbox, u64::MAX))? {
            out.expunged.push(entry?.1.value());
        }
    }
    out.changed.sort_unstable();
    out.expunged.sort_unstable();
    Ok((out, rec))
}

/// The listed UIDs' members (those still there), in the order given.
fn members_in(txn: &ReadTransaction, user: u32, mailbox: u32, uids: &[u32]) -> Result<Vec<Member>, MailError> {
    let members = txn.open_table(MEMBERS)?;
    let messages = txn.open_table(MESSAGES)?;
    let mut out = Vec::with_capacity(uids.len());
    for &uid in uids {
        let Some(v) = members.get((user, mailbox, uid))? else { continue };
        let (id, modseq, deleted) = v.value();
        let rec =
            messages.get((user, id))?.ok_or_else(|| MailError::Damaged(format!("member {uid} without its message")))?;
        out.push(Member { uid, modseq, deleted, id, message: read("message", rec.value())? });
    }
    Ok(out)
}
