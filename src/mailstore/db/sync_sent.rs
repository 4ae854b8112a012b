//! Sent copies of mail sent as a connected account (docs/accounts.md, "Sending as an
//! account"). The message filed in the user's `Sent` also becomes a member of the account's
//! Sent mailbox (one message, shared flags, like the INBOX pair). Sync must then never add
//! the source's copy a second time — whether gatepost APPENDs it (`--sent-copy append`) or
//! the provider files its own — so the copy waits to be matched:
//!
//! - by content: its hash joins the account's content index, so the same bytes fetched from
//!   the source's Sent are found again (`sync_filing::found_again`), not filed;
//! - by Message-ID (`sync_sent`): a provider that files its own copy may change its bytes.
//!
//! `sync_appends` is the durable feed of copies the account's sync task APPENDs to the source.

use redb::{ReadableDatabase, ReadableTable, TableDefinition};

use super::sync::{FolderSync, SYNC_BY_MESSAGE, SYNC_HASHES};
use super::write::Work;
use super::*;

/// (user, account, Message-ID) → message: sent copies whose source copy is not mapped yet.
pub(super) const SYNC_SENT: TableDefinition<(u32, u32, &str), u64> = TableDefinition::new("sync_sent");
/// (user, account, message): sent copies to APPEND to the source's Sent folder.
pub(super) const SYNC_APPENDS: TableDefinition<(u32, u32, u64), ()> = TableDefinition::new("sync_appends");

/// Names a source Sent folder has when its server does not mark it `\Sent` (RFC 6154).
const USUAL_SENT_NAMES: [&str; 4] = ["Sent", "Sent Items", "Sent Messages", "INBOX.Sent"];

/// A sent copy to APPEND: its bytes and its Message-ID.
pub type SentBytes = (Vec<u8>, Option<String>);

/// What became of a sent copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SentCopyFiled {
    /// A member of the account's Sent mailbox (and queued for APPEND when asked).
    Filed { appending: bool },
    /// The account's sync has not found a Sent folder at the source (yet).
    NoSentFolder,
}

impl MailDb {
    /// The source folder an account files sent mail in: the one marked `\Sent`, else the first
    /// with a usual name; never one gone at the source.
    pub fn sent_folder(&self, user: u32, account: u32) -> Result<Option<(String, FolderSync)>, MailError> {
        let folders: Vec<(String, FolderSync)> =
            self.sync_folders(user, account)?.into_iter().filter(|(_, f)| !f.gone).collect();
        let by_role =
            folders.iter().position(|(_, f)| f.role.as_deref().is_some_and(|r| r.eq_ignore_ascii_case("\\Sent")));
        let by_name = || {
            USUAL_SENT_NAMES.iter().find_map(|usual| folders.iter().position(|(n, _)| n.eq_ignore_ascii_case(usual)))
        };
        Ok(by_role.or_else(by_name).map(|i| folders[i].clone()))
    }

    /// Message `id` (the user's Sent copy of mail sent as account `name`) joins the account's
    /// Sent mailbox and waits for the source's copy, by content and Message-ID; with `append`
    /// it is queued for APPEND. One transaction; doing it twice changes nothing.
    /// `released_id` is the Message-ID the release gave a message that had none (the stored
    /// copy lacks it; the provider's own copy of what it sent carries it).
    pub fn add_sent_copy(
        &self,
        user: u32,
        name: &str,
        id: u64,
        append: bool,
        released_id: Option<&str>,
    ) -> Result<SentCopyFiled, MailError> {
        let Some(account) = self.find_sync_account(user, name)? else { return Ok(SentCopyFiled::NoSentFolder) };
        let Some((_, folder)) = self.sent_folder(user, account.id)? else { return Ok(SentCopyFiled::NoSentFolder) };
        // A client that files its own copy in the account's Sent (over gatepost's IMAP) wins,
        // as in `Sent`: that copy, matched by Message-ID, is the one the source's is mapped to.
        let message_id = self.sent_copy_id(user, id)?;
        let own = match &message_id {
            Some(mid) => self
                .members(user, folder.mailbox, 1..=u32::MAX)?
                .into_iter()
                .find(|m| m.message.message_id.as_ref() == Some(mid))
                .map(|m| m.id),
            None => None,
        };
        let id = own.unwrap_or(id);
        let txn = self.write()?;
        {
            // Once the source's copy is mapped, nothing waits any more (a filing repeated
            // after a crash must not queue the APPEND or the Message-ID again).
            if txn.open_table(SYNC_BY_MESSAGE)?.get((user, id))?.is_some() {
                return Ok(SentCopyFiled::Filed { appending: false });
            }
            let mut work = Work::open(&txn, user, self.expunge_keep)?;
            if !work.message_exists(id)? {
                return Ok(SentCopyFiled::NoSentFolder);
            }
            let mut msg = work.message(id)?;
            if !msg.members.iter().any(|(b, _)| *b == folder.mailbox) {
                work.add_member(folder.mailbox, id, &mut msg, false)?;
                work.put_message(id, &msg)?;
            }
            work.finish()?;
            let hash: BlobHash = msg.blob.parse().map_err(|e| MailError::Damaged(format!("message {id}: {e}")))?;
            let mut hashes = txn.open_table(SYNC_HASHES)?;
            if hashes.get((user, account.id, &hash.0))?.is_none() {
                hashes.insert((user, account.id, &hash.0), (id, folder.mailbox))?;
            }
            if let Some(mid) = msg.message_id.as_deref().or(released_id) {
                txn.open_table(SYNC_SENT)?.insert((user, account.id, mid), id)?;
            }
            if append {
                txn.open_table(SYNC_APPENDS)?.insert((user, account.id, id), ())?;
            }
        }
        txn.commit()?;
        Ok(SentCopyFiled::Filed { appending: append })
    }

    /// Sent copies waiting to be APPENDed to the account's source, oldest first.
    pub fn pending_appends(&self, user: u32, account: u32) -> Result<Vec<u64>, MailError> {
        let txn = self.db.begin_read()?;
        let Ok(table) = txn.open_table(SYNC_APPENDS) else { return Ok(Vec::new()) };
        let mut out = Vec::new();
        for entry in table.range((user, account, 0)..=(user, account, u64::MAX))? {
            out.push(entry?.0.value().2);
        }
        Ok(out)
    }

    /// A sent copy's bytes and Message-ID, to APPEND; `None` when the user expunged it.
    pub fn sent_copy_bytes(
        &self,
        blobs: &dyn crate::blobs::BlobStore,
        user: u32,
        id: u64,
    ) -> Result<Option<SentBytes>, MailError> {
        let msg: Message = {
            let txn = self.db.begin_read()?;
            let Some(v) = txn.open_table(MESSAGES)?.get((user, id))? else { return Ok(None) };
            read("message", v.value())?
        };
        let hash: BlobHash = msg.blob.parse().map_err(|e| MailError::Damaged(format!("message {id}: {e}")))?;
        Ok(Some((self.read_blob(blobs, &hash)?, msg.message_id)))
    }

    /// A message's Message-ID, if it exists and has one.
    fn sent_copy_id(&self, user: u32, id: u64) -> Result<Option<String>, MailError> {
        let txn = self.db.begin_read()?;
        let Some(v) = txn.open_table(MESSAGES)?.get((user, id))? else { return Ok(None) };
        Ok(read::<Message>("message", v.value())?.message_id)
    }

    /// The source has the copy (APPENDed, or found there already): off the feed.
    pub fn append_done(&self, user: u32, account: u32, id: u64) -> Result<(), MailError> {
        let txn = self.write()?;
        txn.open_table(SYNC_APPENDS)?.remove((user, account, id))?;
        txn.commit()?;
        Ok(())
    }

    /// For fetched messages the content index did not know, by their Message-IDs: the sent
    /// copy each is the source's copy of, if one waits (a provider's own copy of mail sent
    /// through it may differ in its bytes). Only a copy that is a member of `mailbox` — the
    /// account's Sent, where the fetched message is going — matches: a message with the
    /// same Message-ID in another folder (a Bcc to oneself in INBOX, a forged id) is its own.
    pub(super) fn sent_copies_waiting(
        &self,
        user: u32,
        account: u32,
        mailbox: u32,
        message_ids: &[Option<String>],
    ) -> Result<Vec<Option<u64>>, MailError> {
        let txn = self.db.begin_read()?;
        let Ok(table) = txn.open_table(SYNC_SENT) else { return Ok(vec![None; message_ids.len()]) };
        let messages = txn.open_table(MESSAGES)?;
        let mut out = Vec::with_capacity(message_ids.len());
        for mid in message_ids {
            let id = match mid {
                Some(mid) => table.get((user, account, mid.as_str()))?.map(|v| v.value()),
                None => None,
            };
            let member_here = |id: u64| -> Result<bool, MailError> {
                let Some(v) = messages.get((user, id))? else { return Ok(false) };
                Ok(read::<Message>("message", v.value())?.members.iter().any(|(b, _)| *b == mailbox))
            };
            out.push(match id {
                Some(id) if member_here(id)? => Some(id),
                _ => None,
            });
        }
        Ok(out)
    }

    /// The source's copy of a waiting sent copy is mapped: it waits no more.
    pub(super) fn sent_copy_found(
        txn: &redb::WriteTransaction,
        user: u32,
        account: u32,
        message_id: &str,
    ) -> Result<(), MailError> {
        txn.open_table(SYNC_SENT)?.remove((user, account, message_id))?;
        Ok(())
    }

    /// Forget the account's waiting sent copies (`account remove --delete-mail`).
    pub(super) fn forget_sent_copies(
        &self,
        txn: &redb::WriteTransaction,
        user: u32,
        account: u32,
    ) -> Result<(), MailError> {
        txn.open_table(SYNC_SENT)?.retain_in((user, account, "")..=(user, account, "\u{10ffff}"), |_, _| false)?;
        txn.open_table(SYNC_APPENDS)?.retain_in((user, account, 0)..=(user, account, u64::MAX), |_, _| false)?;
        Ok(())
    }
}

pub(super) fn create_tables(txn: &redb::WriteTransaction) -> Result<(), MailError> {
    txn.open_table(SYNC_SENT)?;
    txn.open_table(SYNC_APPENDS)?;
    Ok(())
}
