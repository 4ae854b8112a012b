//! New messages in: APPEND (`append`), gatepost's own filings (`file`) and bulk import
//! (`file_all`). The blob is made durable first, outside any transaction and before the
//! group commit (`group.rs`) that references it; quota is decided before the blob costs disk
//! and again at commit, against the state it commits over.

use super::write::split_flags;
use super::*;
use crate::blobs::BlobStore;

impl MailDb {
    /// APPEND: the blob first (durable, outside the transaction), then in one transaction the
    /// quota decision and its growth, the message, its membership, the modseq index, the
    /// mailbox counters and the blob's reference count.
    pub fn append(
        &self,
        blobs: &dyn BlobStore,
        user: u32,
        mailbox: u32,
        new: &NewMessage<'_>,
    ) -> Result<Appended, MailError> {
        self.file(blobs, user, mailbox, new, Origin::Append)
    }

    /// APPEND with the origin recorded (the Sent filer, notices).
    pub fn file(
        &self,
        blobs: &dyn BlobStore,
        user: u32,
        mailbox: u32,
        new: &NewMessage<'_>,
        origin: Origin,
    ) -> Result<Appended, MailError> {
        let NewMessage { raw, flags, internaldate, writer } = *new;
        // Refuse an over-quota write before its blob costs disk; decided again at commit,
        // against the state it commits over.
        let state = self.user_state(user)?;
        quota::decide(&self.rule, state.ceiling, state.limit, state.used, raw.len() as u64, writer)?;
        let (flags, deleted) = split_flags(flags);
        let structure = Structure::of(raw).encode();
        // From the blob's write to the commit that references it, the collector waits.
        let _writing = self.blob_writes.read().unwrap_or_else(|e| e.into_inner());
        let (hash, place) = self.put_blob(blobs, raw)?;
        let done = self.grouped(group::Job::File(group::Filing {
            user,
            mailbox,
            hash,
            place,
            size: raw.len() as u64,
            internaldate,
            flags,
            deleted,
            writer,
            origin,
            message_id: message_id_of(raw),
            structure: Some(structure),
            pair: None,
        }))?;
        match done {
            group::Done::Filed(a) => Ok(a),
            group::Done::Claimed(_) => Err(MailError::Db("a filing was answered as a claim".into())),
        }
    }

    /// Many messages into one mailbox at once (bulk import): their small blobs durable under
    /// one fsync, then one commit for all of them, each decided on its own (a refusal —
    /// over quota — refuses only that message). Outcomes in order.
    pub fn file_all(
        &self,
        blobs: &dyn BlobStore,
        user: u32,
        mailbox: u32,
        news: &[NewMessage<'_>],
        origin: &Origin,
    ) -> Result<Vec<Result<Appended, MailError>>, MailError> {
        // A message that cannot fit even alone is refused before its blob costs disk; the
        // rest are decided again, in order, at commit.
        let state = self.user_state(user)?;
        let refused: Vec<Option<MailError>> = news
            .iter()
            .map(|n| {
                quota::decide(&self.rule, state.ceiling, state.limit, state.used, n.raw.len() as u64, n.writer).err()
            })
            .map(|e| e.map(MailError::from))
            .collect();
        let news: Vec<&NewMessage> = news.iter().zip(&refused).filter(|(_, r)| r.is_none()).map(|(n, _)| n).collect();
        let structures: Vec<Vec<u8>> = news.iter().map(|n| Structure::of(n.raw).encode()).collect();
        let _writing = self.blob_writes.read().unwrap_or_else(|e| e.into_inner());
        let hashes: Vec<BlobHash> = news.iter().map(|n| BlobHash::of(n.raw)).collect();
        let known = self.packed_places(hashes.iter().copied())?;
        let fresh: Vec<(BlobHash, &[u8])> = news
            .iter()
            .zip(&known)
            .zip(&hashes)
            .filter(|((_, k), _)| k.is_none())
            .map(|((n, _), h)| (*h, n.raw))
            .collect();
        let mut written = blobs.put_all(&fresh)?.into_iter();
        let mut jobs = Vec::with_capacity(news.len());
        for ((new, known), structure) in news.iter().zip(known).zip(structures) {
            let (hash, place) = match known {
                Some(k) => k,
                None => written.next().expect("one stored blob per fresh message"),
            };
            let (flags, deleted) = split_flags(new.flags);
            jobs.push(group::Job::File(group::Filing {
                user,
                mailbox,
                hash,
                place,
                size: new.raw.len() as u64,
                internaldate: new.internaldate,
                flags,
                deleted,
                writer: new.writer,
                origin: origin.clone(),
                message_id: message_id_of(new.raw),
                structure: Some(structure),
                pair: None,
            }));
        }
        let mut done = self.grouped_all(jobs).into_iter().map(|done| match done? {
            group::Done::Filed(a) => Ok(a),
            group::Done::Claimed(_) => Err(MailError::Db("a filing was answered as a claim".into())),
        });
        Ok(refused.into_iter().map(|r| r.map_or_else(|| done.next().expect("one outcome per job"), Err)).collect())
    }
}
