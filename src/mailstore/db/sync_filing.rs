//! Filing what sync fetched (docs/accounts.md, "Permanent storage"): a batch's blobs
//! durable under one fsync, then one transaction for its messages, their map, reverse and
//! content entries and the account's progress. Content the account already has is mapped,
//! not filed: found again (a move at the source, a UIDVALIDITY reset), a copy at the source,
//! or a tombstone.

use jiff::Timestamp;
use redb::ReadableDatabase;

use super::group::Filing;
use super::sync::{
    AccountSync, Destination, Imported, REMOVED_AT_SOURCE, RemoteMessage, SYNC_ACCOUNTS, SYNC_BY_MESSAGE, SYNC_HASHES,
    SYNC_MAP, encode_flags, same_flags,
};
use super::write::{Work, split_flags};
use super::*;

impl MailDb {
    /// File a batch fetched from one source folder into its local mailbox (and, from the
    /// source INBOX, into `pair`, the unified INBOX): their small blobs durable under one
    /// fsync, then one transaction for the messages and their map entries. A message already
    /// here by content is mapped instead (found, or a tombstone). Outcomes in order; a
    /// message over quota is refused on its own.
    pub fn file_remote(
        &self,
        blobs: &dyn BlobStore,
        user: u32,
        to: &Destination<'_>,
        batch: &[RemoteMessage<'_>],
    ) -> Result<Vec<Result<Imported, MailError>>, MailError> {
        let &Destination { name, account, mailbox, pair, folder, uidvalidity } = to;
        let hashes: Vec<BlobHash> = batch.iter().map(|m| BlobHash::of(m.raw)).collect();
        let known = self.known_by_content(user, account, &hashes)?;
        let message_ids: Vec<Option<String>> = batch.iter().map(|m| message_id_of(m.raw)).collect();
        // New content may still be a sent copy's own (the provider filed it): by Message-ID.
        let unknown: Vec<Option<String>> =
            message_ids.iter().zip(&known).map(|(mid, k)| if k.is_none() { mid.clone() } else { None }).collect();
        let sent = self.sent_copies_waiting(user, account, mailbox, &unknown)?;
        let state = self.user_state(user)?;
        // A message to file that cannot fit even alone is refused before its blob costs disk.
        let mut refused: Vec<Option<MailError>> = batch
            .iter()
            .zip(known.iter().zip(&sent))
            .map(|(m, k)| match k {
                (Some(_), _) | (_, Some(_)) => None,
                (None, None) => {
                    quota::decide(&self.rule, state.ceiling, state.limit, state.used, m.raw.len() as u64, Writer::User)
                        .err()
                        .map(MailError::from)
                }
            })
            .collect();
        let to_write: Vec<usize> =
            (0..batch.len()).filter(|&i| known[i].is_none() && sent[i].is_none() && refused[i].is_none()).collect();
        let _writing = self.blob_writes.read().unwrap_or_else(|e| e.into_inner());
        let places = self.packed_places(to_write.iter().map(|&i| hashes[i]))?;
        let fresh: Vec<(BlobHash, &[u8])> = to_write
            .iter()
            .zip(&places)
            .filter(|(_, p)| p.is_none())
            .map(|(&i, _)| (hashes[i], batch[i].raw))
            .collect();
        let mut written = blobs.put_all(&fresh)?.into_iter();
        let mut stored: Vec<Option<Place>> = vec![None; batch.len()];
        for (&i, place) in to_write.iter().zip(places) {
            stored[i] = Some(match place {
                Some((_, p)) => p,
                None => written.next().expect("one stored blob per fresh message").1,
            });
        }
        let txn = self.write()?;
        let mut out = Vec::with_capacity(batch.len());
        for (i, m) in batch.iter().enumerate() {
            if let Some(e) = refused[i].take() {
                out.push(Err(e));
                continue;
            }
            let outcome = match (stored[i].take(), sent[i], &message_ids[i]) {
                (_, Some(id), Some(mid)) => {
                    // The source's copy of a sent copy: mapped to it (a tombstone if the user
                    // expunged it meanwhile), never filed a second time.
                    MailDb::sent_copy_found(&txn, user, account, mid)?;
                    map_entry(&txn, user, account, mailbox, m, id, &hashes[i])?;
                    Ok(Imported::Found)
                }
                (Some(place), _, _) => {
                    let filing = Filing {
                        user,
                        mailbox,
                        hash: hashes[i],
                        place,
                        size: m.raw.len() as u64,
                        internaldate: m.internaldate,
                        flags: split_flags(&m.flags).0,
                        deleted: false,
                        writer: Writer::User,
                        origin: Origin::Remote {
                            account,
                            folder: folder.to_string(),
                            uidvalidity,
                            uid: m.uid,
                            first_import: true,
                        },
                        message_id: message_ids[i].clone(),
                        // Parsed when first wanted (FETCH BODYSTRUCTURE stores it), as Dovecot
                        // fills its cache: import is bound by this parse otherwise (D44).
                        structure: None,
                        pair,
                    };
                    match self.apply_filing(&txn, &filing)? {
                        Ok(a) => {
                            let id = txn.open_table(MEMBERS)?.get((user, mailbox, a.uid))?.map(|v| v.value().0);
                            let id = id.ok_or_else(|| MailError::Db("a filed message has no membership".into()))?;
                            map_entry(&txn, user, account, mailbox, m, id, &hashes[i])?;
                            Ok(Imported::Filed)
                        }
                        Err(e) => Err(e),
                    }
                }
                (None, _, mid) => {
                    let found = self.found_again(&txn, user, account, mailbox, m, &hashes[i])?;
                    if let (Ok(Imported::Found), Some(mid)) = (&found, mid) {
                        MailDb::sent_copy_found(&txn, user, account, mid)?;
                    }
                    found
                }
            };
            out.push(outcome);
        }
        count_batch(&txn, user, name, batch, &out)?;
        txn.commit()?;
        Ok(out)
    }

    /// For each hash, whether the account has had that content (a message or a tombstone).
    fn known_by_content(&self, user: u32, account: u32, hashes: &[BlobHash]) -> Result<Vec<Option<u64>>, MailError> {
        let txn = self.db.begin_read()?;
        let Ok(table) = txn.open_table(SYNC_HASHES) else { return Ok(vec![None; hashes.len()]) };
        hashes.iter().map(|h| Ok(table.get((user, account, &h.0))?.map(|v| v.value().0))).collect()
    }

    /// A fetched message whose content the account already has: a message the source still
    /// maps elsewhere is a copy at the source (filed as a new message over the same blob,
    /// which costs no space); one it does not is found again (moved there, or a UIDVALIDITY
    /// reset): its membership follows the source's folder if it is still where sync put it,
    /// and it loses `$RemovedAtSource`; one the user expunged stays a tombstone.
    fn found_again(
        &self,
        txn: &redb::WriteTransaction,
        user: u32,
        account: u32,
        mailbox: u32,
        m: &RemoteMessage<'_>,
        hash: &BlobHash,
    ) -> Result<Result<Imported, MailError>, MailError> {
        let (id, was_in) = txn
            .open_table(SYNC_HASHES)?
            .get((user, account, &hash.0))?
            .map(|v| v.value())
            .ok_or_else(|| MailError::Db("content index changed during a sync batch".into()))?;
        let mut work = Work::open(txn, user, self.expunge_keep)?;
        if !work.message_exists(id)? {
            drop(work);
            txn.open_table(SYNC_MAP)?.insert((user, mailbox, m.uid), (id, encode_flags(&m.flags).as_slice()))?;
            return Ok(Ok(Imported::Tombstone));
        }
        let mapped = txn.open_table(SYNC_BY_MESSAGE)?.get((user, id))?.is_some();
        if mapped {
            drop(work);
            return self.file_copy(txn, user, account, mailbox, m, id, hash);
        }
        let mut msg = work.message(id)?;
        if was_in != mailbox
            && let Some(&(_, old_uid)) = msg.members.iter().find(|(b, _)| *b == was_in)
        {
            work.remove_member(was_in, old_uid, &mut msg)?;
            work.add_member(mailbox, id, &mut msg, false)?;
            work.put_message(id, &msg)?;
        }
        let (mut want, _) = split_flags(&m.flags);
        want.retain(|f| f != REMOVED_AT_SOURCE);
        if !same_flags(&msg.flags, &want) {
            work.set_flags(id, &mut msg, want)?;
        }
        work.finish()?;
        map_entry(txn, user, account, mailbox, m, id, hash)?;
        Ok(Ok(Imported::Found))
    }

    /// A copy at the source of a message the account has: a new message over the same blob.
    #[allow(clippy::too_many_arguments)]
    fn file_copy(
        &self,
        txn: &redb::WriteTransaction,
        user: u32,
        account: u32,
        mailbox: u32,
        m: &RemoteMessage<'_>,
        of: u64,
        hash: &BlobHash,
    ) -> Result<Result<Imported, MailError>, MailError> {
        let mut work = Work::open(txn, user, self.expunge_keep)?;
        let existing = work.message(of)?;
        if let Err(e) = work.charge(&self.rule, existing.size, Writer::User, m.internaldate) {
            return Ok(Err(e));
        }
        let (mut flags, _) = split_flags(&m.flags);
        flags.retain(|f| f != REMOVED_AT_SOURCE);
        let origin = existing.origin.clone();
        let (uid, _) = work.new_message(
            mailbox,
            hash,
            None,
            existing.size,
            m.internaldate,
            flags,
            origin,
            existing.message_id.clone(),
        )?;
        let id = work.member(mailbox, uid)?.map(|v| v.0).unwrap_or_default();
        work.finish()?;
        map_entry(txn, user, account, mailbox, m, id, hash)?;
        Ok(Ok(Imported::Filed))
    }
}

/// The batch in the account's progress, in the batch's transaction (no commit of its own).
fn count_batch(
    txn: &redb::WriteTransaction,
    user: u32,
    name: &str,
    batch: &[RemoteMessage<'_>],
    out: &[Result<Imported, MailError>],
) -> Result<(), MailError> {
    let mut table = txn.open_table(SYNC_ACCOUNTS)?;
    let Some(v) = table.get((user, name))? else { return Ok(()) };
    let mut rec: AccountSync = read("sync account", v.value())?;
    drop(v);
    let s = &mut rec.status;
    for (m, o) in batch.iter().zip(out) {
        s.done_messages += 1;
        s.done_bytes += m.raw.len() as u64;
        if matches!(o, Ok(Imported::Filed)) {
            s.imported_messages += 1;
            s.imported_bytes += m.raw.len() as u64;
        }
    }
    s.updated_at = Some(Timestamp::now());
    table.insert((user, name), json(&rec).as_slice())?;
    Ok(())
}

/// The map, reverse and content entries of a fetched message mapped to `id`.
#[allow(clippy::too_many_arguments)]
fn map_entry(
    txn: &redb::WriteTransaction,
    user: u32,
    account: u32,
    mailbox: u32,
    m: &RemoteMessage<'_>,
    id: u64,
    hash: &BlobHash,
) -> Result<(), MailError> {
    txn.open_table(SYNC_MAP)?.insert((user, mailbox, m.uid), (id, encode_flags(&m.flags).as_slice()))?;
    txn.open_table(SYNC_BY_MESSAGE)?.insert((user, id), (account, mailbox, m.uid))?;
    txn.open_table(SYNC_HASHES)?.insert((user, account, &hash.0), (id, mailbox))?;
    Ok(())
}
