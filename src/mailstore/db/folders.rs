//! CREATE, DELETE and RENAME. The reserved top-level folders cannot be deleted or renamed
//! (renaming INBOX moves its messages into a new mailbox and leaves INBOX empty, RFC 3501
//! §6.3.5). A mailbox with children is not deleted (Dovecot's answer too: the RFC's
//! alternative, a `\Noselect` husk, leaves clients with folders they cannot open).

use jiff::Timestamp;
use redb::ReadableTable;

use super::write::Work;
use super::*;

/// A new mailbox `name` (canonical) inside `txn`; refused if the name exists.
pub(super) fn create_in(
    txn: &redb::WriteTransaction,
    user: u32,
    name: &str,
    role: Option<String>,
    now: Timestamp,
) -> Result<u32, MailError> {
    let mut names = txn.open_table(MAILBOX_NAMES)?;
    if names.get((user, name))?.is_some() {
        return Err(MailError::MailboxExists(name.to_string()));
    }
    let mut users = txn.open_table(USERS)?;
    let mut state: UserState = read("user", users.get(user)?.ok_or(MailError::Db("no such user".into()))?.value())?;
    let mbox = state.next_mailbox;
    state.next_mailbox += 1;
    users.insert(user, json(&state).as_slice())?;
    let rec = new_mailbox(name, role, now, mbox, state.modseq);
    txn.open_table(MAILBOXES)?.insert((user, mbox), json(&rec).as_slice())?;
    names.insert((user, name), mbox)?;
    Ok(mbox)
}

impl MailDb {
    pub fn create_mailbox(&self, user: u32, name: &str, now: Timestamp) -> Result<u32, MailError> {
        let name = canonical_name(name)?;
        let txn = self.write()?;
        let mbox = create_in(&txn, user, &name, None, now)?;
        txn.commit()?;
        Ok(mbox)
    }

    /// DELETE: every message in it is expunged (quota freed), then the mailbox goes.
    pub fn delete_mailbox(&self, user: u32, name: &str) -> Result<(), MailError> {
        let name = canonical_name(name)?;
        if is_reserved(&name) {
            return Err(MailError::Reserved(name, "gatepost's own folders cannot be deleted"));
        }
        let txn = self.write()?;
        {
            let mut names = txn.open_table(MAILBOX_NAMES)?;
            let mbox =
                names.get((user, name.as_str()))?.map(|v| v.value()).ok_or(MailError::NoMailbox(name.clone()))?;
            let prefix = format!("{name}/");
            if let Some(child) = names.range((user, prefix.as_str())..)?.next() {
                let (k, _) = child?;
                let (u, child) = k.value();
                if u == user && child.starts_with(&prefix) {
                    return Err(MailError::HasChildren(name));
                }
            }
            let ids: Vec<u64> = {
                let members = txn.open_table(MEMBERS)?;
                let mut ids = Vec::new();
                for entry in members.range((user, mbox, 0)..=(user, mbox, u32::MAX))? {
                    ids.push(entry?.1.value().0);
                }
                ids
            };
            let mut work = Work::open(&txn, user, self.expunge_keep)?;
            for id in ids {
                work.expunge_message(id)?;
            }
            // A new modseq even for an empty mailbox: the user's sessions are signalled by a
            // rising modseq, and one with this mailbox selected must learn it is gone.
            work.next_modseq();
            work.finish()?;
            names.remove((user, name.as_str()))?;
            txn.open_table(MAILBOXES)?.remove((user, mbox))?;
            // The expunge log of a mailbox that is gone serves no session.
            txn.open_table(EXPUNGED)?.retain_in((user, mbox, 0)..=(user, mbox, u64::MAX), |_, _| false)?;
        }
        txn.commit()?;
        Ok(())
    }

    /// Delete a mailbox and every mailbox under it, deepest first (`account remove
    /// --delete-mail`); reserved folders are refused as by DELETE. Returns how many went.
    pub fn delete_tree(&self, user: u32, name: &str) -> Result<usize, MailError> {
        let name = canonical_name(name)?;
        let prefix = format!("{name}/");
        let mut names: Vec<String> = self
            .mailboxes(user)?
            .into_iter()
            .map(|(_, m)| m.name)
            .filter(|n| *n == name || n.starts_with(&prefix))
            .collect();
        names.sort_by_key(|n| std::cmp::Reverse(n.matches('/').count()));
        for n in &names {
            self.delete_mailbox(user, n)?;
        }
        Ok(names.len())
    }

    /// RENAME, children included; INBOX's messages move to a new mailbox instead.
    pub fn rename_mailbox(&self, user: u32, from: &str, to: &str, now: Timestamp) -> Result<(), MailError> {
        let (from, to) = (canonical_name(from)?, canonical_name(to)?);
        if from == "INBOX" {
            let inbox = self.mailbox_id(user, "INBOX")?;
            let target = self.create_mailbox(user, &to, now)?;
            let uids = self.uids(user, inbox)?;
            self.move_messages(user, inbox, &uids, target)?;
            return Ok(());
        }
        if is_reserved(&from) {
            return Err(MailError::Reserved(from, "gatepost's own folders cannot be renamed"));
        }
        let txn = self.write()?;
        {
            let mut names = txn.open_table(MAILBOX_NAMES)?;
            if names.get((user, to.as_str()))?.is_some() {
                return Err(MailError::MailboxExists(to));
            }
            let prefix = format!("{from}/");
            let mut moving: Vec<(String, u32)> = Vec::new();
            for entry in names.range((user, from.as_str())..)? {
                let (k, v) = entry?;
                let (u, name) = k.value();
                if u != user || !(name == from || name.starts_with(&prefix)) {
                    break;
                }
                moving.push((name.to_string(), v.value()));
            }
            if moving.is_empty() {
                return Err(MailError::NoMailbox(from));
            }
            let mut boxes = txn.open_table(MAILBOXES)?;
            for (old, id) in moving {
                let new = format!("{to}{}", &old[from.len()..]);
                canonical_name(&new)?;
                names.remove((user, old.as_str()))?;
                names.insert((user, new.as_str()), id)?;
                let mut rec: Mailbox =
                    read("mailbox", boxes.get((user, id))?.ok_or_else(|| MailError::NoMailbox(old.clone()))?.value())?;
                rec.name = new;
                boxes.insert((user, id), json(&rec).as_slice())?;
            }
        }
        txn.commit()?;
        Ok(())
    }
}
