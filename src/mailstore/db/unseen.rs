//! The index of unseen memberships: SELECT's `[UNSEEN n]` is the first message without
//! `\Seen`, and answering it by reading every message of a large mailbox made SELECT cost
//! the mailbox's size. Kept by `Work` wherever the mailbox's UNSEEN counter moves (a
//! membership added or removed, `\Seen` set or cleared), built once for stores from before
//! it, and checked by `store verify`.

use redb::{ReadableTable, Table};

use super::*;

/// COUNTERS key set once the index covers every membership.
const BUILT: &str = "unseen_index";

/// Record whether one membership is unseen.
pub(super) fn note(
    table: &mut Table<'_, (u32, u32, u32), ()>,
    user: u32,
    mailbox: u32,
    uid: u32,
    unseen: bool,
) -> Result<(), MailError> {
    if unseen {
        table.insert((user, mailbox, uid), ())?;
    } else {
        table.remove((user, mailbox, uid))?;
    }
    Ok(())
}

impl MailDb {
    /// The first UID without `\Seen` in a mailbox.
    pub fn first_unseen(&self, user: u32, mailbox: u32) -> Result<Option<u32>, MailError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(UNSEEN)?;
        let first = table.range((user, mailbox, 0)..=(user, mailbox, u32::MAX))?.next();
        Ok(match first {
            Some(entry) => Some(entry?.0.value().2),
            None => None,
        })
    }

    /// Build the index from the memberships, once (a store from before it has none); in one
    /// transaction that checks again first, so two processes opening at once build it once.
    pub(super) fn build_unseen_index(&self) -> Result<(), MailError> {
        if self.db.begin_read()?.open_table(COUNTERS)?.get(BUILT)?.is_some() {
            return Ok(());
        }
        let txn = self.write()?;
        {
            let mut counters = txn.open_table(COUNTERS)?;
            if counters.get(BUILT)?.is_some() {
                return Ok(());
            }
            let members = txn.open_table(MEMBERS)?;
            let messages = txn.open_table(MESSAGES)?;
            let mut index = txn.open_table(UNSEEN)?;
            let mut seen_of: std::collections::HashMap<(u32, u64), bool> = std::collections::HashMap::new();
            for entry in members.iter()? {
                let (k, v) = entry?;
                let (user, mailbox, uid) = k.value();
                let id = v.value().0;
                let seen = match seen_of.get(&(user, id)) {
                    Some(&s) => s,
                    None => {
                        let s = match messages.get((user, id))? {
                            Some(m) => read::<Message>("message", m.value())?.seen(),
                            None => true, // a membership without its message: verify reports it
                        };
                        seen_of.insert((user, id), s);
                        s
                    }
                };
                if !seen {
                    index.insert((user, mailbox, uid), ())?;
                }
            }
            counters.insert(BUILT, 1)?;
        }
        txn.commit()?;
        Ok(())
    }
}
