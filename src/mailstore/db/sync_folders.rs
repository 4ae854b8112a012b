//! The source folders of accounts (docs/accounts.md, "Folders"): their records, their local
//! mailboxes under `Accounts/<NAME>/` (never shared by two source folders), UIDVALIDITY
//! resets, renames, the roles `mailbox list` shows, and forgetting an account.

use jiff::Timestamp;
use redb::{ReadableDatabase, ReadableTable};

use super::folders::create_in;
use super::sync::{FolderSync, SYNC_ACCOUNTS, SYNC_BY_MESSAGE, SYNC_FOLDERS, SYNC_HASHES, SYNC_MAP};
use super::*;

impl MailDb {
    /// The source's special-use role of each account folder of the user (`mailbox list`).
    pub fn source_roles(&self, user: u32) -> Result<std::collections::HashMap<u32, String>, MailError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(SYNC_FOLDERS)?;
        let mut out = std::collections::HashMap::new();
        for entry in table.range((user, 0, "")..=(user, u32::MAX, "\u{10ffff}"))? {
            let rec: FolderSync = read("sync folder", entry?.1.value())?;
            if let Some(role) = rec.role {
                out.insert(rec.mailbox, role);
            }
        }
        Ok(out)
    }

    /// The account's source folders, by source name.
    pub fn sync_folders(&self, user: u32, account: u32) -> Result<Vec<(String, FolderSync)>, MailError> {
        let txn = self.db.begin_read()?;
        let Ok(table) = txn.open_table(SYNC_FOLDERS) else { return Ok(vec![]) };
        let mut out = Vec::new();
        for entry in table.range((user, account, "")..)? {
            let (k, v) = entry?;
            let (u, a, name) = k.value();
            if (u, a) != (user, account) {
                break;
            }
            out.push((name.to_string(), read("sync folder", v.value())?));
        }
        Ok(out)
    }

    /// Start following a source folder: its local mailbox `local` (canonical, under
    /// `Accounts/<NAME>/`, parents made as needed) and its record, in one transaction. An
    /// existing mailbox of that name is taken over (a crash between the two halves cannot
    /// happen, but an account re-added after its record was lost can).
    pub fn open_sync_folder(
        &self,
        user: u32,
        account: u32,
        remote: &str,
        local: &str,
        folder: FolderSync,
        now: Timestamp,
    ) -> Result<FolderSync, MailError> {
        let local = canonical_name(local)?;
        let txn = self.write()?;
        let rec = {
            let levels: Vec<&str> = local.split('/').collect();
            let mut mailbox = 0;
            for depth in 1..=levels.len() {
                let name = levels[..depth].join("/");
                let existing = txn.open_table(MAILBOX_NAMES)?.get((user, name.as_str()))?.map(|v| v.value());
                mailbox = match existing {
                    Some(id) => id,
                    None => create_in(&txn, user, &name, None, now)?,
                };
            }
            let mut table = txn.open_table(SYNC_FOLDERS)?;
            // Another source folder already syncs into this mailbox (two source names mapped
            // to one local name): refused, the caller picks another name.
            for entry in table.range((user, 0, "")..=(user, u32::MAX, "\u{10ffff}"))? {
                let (k, v) = entry?;
                let other: FolderSync = read("sync folder", v.value())?;
                if other.mailbox == mailbox && (k.value().1, k.value().2) != (account, remote) {
                    return Err(MailError::MailboxExists(local.clone()));
                }
            }
            let rec = FolderSync { mailbox, ..folder };
            table.insert((user, account, remote), json(&rec).as_slice())?;
            rec
        };
        txn.commit()?;
        Ok(rec)
    }

    pub fn put_sync_folder(&self, user: u32, account: u32, remote: &str, rec: &FolderSync) -> Result<(), MailError> {
        let txn = self.write()?;
        txn.open_table(SYNC_FOLDERS)?.insert((user, account, remote), json(rec).as_slice())?;
        txn.commit()?;
        Ok(())
    }

    /// A new UIDVALIDITY at the source: the folder's map is dropped (its UIDs mean nothing
    /// now) and the folder re-listed; the content index stays, so nothing is filed twice.
    pub fn reset_sync_folder(&self, user: u32, account: u32, remote: &str, rec: &FolderSync) -> Result<(), MailError> {
        let txn = self.write()?;
        {
            let mut map = txn.open_table(SYNC_MAP)?;
            let mut reverse = txn.open_table(SYNC_BY_MESSAGE)?;
            let mut gone = Vec::new();
            for entry in map.range((user, rec.mailbox, 0)..=(user, rec.mailbox, u32::MAX))? {
                gone.push(entry?.1.value().0);
            }
            map.retain_in((user, rec.mailbox, 0)..=(user, rec.mailbox, u32::MAX), |_, _| false)?;
            for id in gone {
                reverse.remove((user, id))?;
            }
            txn.open_table(SYNC_FOLDERS)?.insert((user, account, remote), json(rec).as_slice())?;
        }
        txn.commit()?;
        Ok(())
    }

    /// (Message-ID, size) of each message the folder's map still holds (rename detection).
    pub fn identities(&self, user: u32, mailbox: u32) -> Result<Vec<(Option<String>, u64)>, MailError> {
        let txn = self.db.begin_read()?;
        let (map, messages) = (txn.open_table(SYNC_MAP)?, txn.open_table(MESSAGES)?);
        let mut out = Vec::new();
        for entry in map.range((user, mailbox, 0)..=(user, mailbox, u32::MAX))? {
            let id = entry?.1.value().0;
            if let Some(m) = messages.get((user, id))? {
                let m: Message = read("message", m.value())?;
                out.push((m.message_id, m.size));
            }
        }
        Ok(out)
    }

    /// A source folder renamed: its record moves to the new name and its local mailbox (with
    /// its children) to `local`. Two steps; a crash between is finished by the next pass
    /// (the rename is found again, the local name is already right).
    pub fn move_sync_folder(
        &self,
        user: u32,
        account: u32,
        from: &str,
        to: &str,
        local: &str,
        now: Timestamp,
    ) -> Result<FolderSync, MailError> {
        let rec: FolderSync = {
            let txn = self.db.begin_read()?;
            let table = txn.open_table(SYNC_FOLDERS)?;
            let v = table.get((user, account, from))?.ok_or_else(|| MailError::NoMailbox(from.to_string()))?;
            read("sync folder", v.value())?
        };
        let local = canonical_name(local)?;
        let current = self.mailbox(user, rec.mailbox)?.name;
        if current != local {
            if let Some((parent, _)) = local.rsplit_once('/') {
                let levels: Vec<&str> = parent.split('/').collect();
                for depth in 1..=levels.len() {
                    let name = levels[..depth].join("/");
                    if self.mailbox_id(user, &name).is_err() {
                        self.create_mailbox(user, &name, now)?;
                    }
                }
            }
            self.rename_mailbox(user, &current, &local, now)?;
        }
        let txn = self.write()?;
        {
            let mut table = txn.open_table(SYNC_FOLDERS)?;
            table.remove((user, account, from))?;
            table.insert((user, account, to), json(&rec).as_slice())?;
        }
        txn.commit()?;
        Ok(rec)
    }
}

impl MailDb {
    /// Forget an account's sync state (`account remove --delete-mail`): its record, folders,
    /// map, tombstones and content index. Its messages are the caller's to delete.
    pub fn forget_sync_account(&self, user: u32, name: &str) -> Result<(), MailError> {
        let Some(acc) = self.find_sync_account(user, name)? else { return Ok(()) };
        let folders = self.sync_folders(user, acc.id)?;
        let txn = self.write()?;
        {
            let mut map = txn.open_table(SYNC_MAP)?;
            let mut reverse = txn.open_table(SYNC_BY_MESSAGE)?;
            let mut table = txn.open_table(SYNC_FOLDERS)?;
            for (remote, rec) in &folders {
                let range = (user, rec.mailbox, 0)..=(user, rec.mailbox, u32::MAX);
                let mut ids = Vec::new();
                for entry in map.range(range.clone())? {
                    ids.push(entry?.1.value().0);
                }
                map.retain_in(range, |_, _| false)?;
                for id in ids {
                    reverse.remove((user, id))?;
                }
                table.remove((user, acc.id, remote.as_str()))?;
            }
            let zero = [0u8; 32];
            let full = [0xffu8; 32];
            txn.open_table(SYNC_HASHES)?.retain_in((user, acc.id, &zero)..=(user, acc.id, &full), |_, _| false)?;
            self.forget_sent_copies(&txn, user, acc.id)?;
            txn.open_table(SYNC_ACCOUNTS)?.remove((user, name))?;
        }
        txn.commit()?;
        Ok(())
    }
}
