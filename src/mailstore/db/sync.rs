//! What account sync remembers about each source (docs/accounts.md, "Sync state"), in the
//! same transactions as the filings it describes: a crash never leaves a filed message without
//! its map entry (a re-download, a double) nor an entry without its message (a loss).
//!
//! - `sync_accounts`: per (user, account name) a number, the status and the write-back cursor.
//! - `sync_folders`: per (user, account, source folder) its local mailbox and what was last
//!   seen of it at the source (UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ).
//! - `sync_map`: (user, local mailbox, source UID) → (message, flags last seen at the source).
//!   An entry whose message is gone is a tombstone: the user expunged it, it is never fetched
//!   again.
//! - `sync_by_message`: the reverse, for write-back and to tell a mapped message from one the
//!   source no longer has.
//! - `sync_hashes`: (user, account, content hash) → (message, mailbox): the account's messages
//!   by content, tombstones included, so a UIDVALIDITY reset or a move at the source finds
//!   what it already has instead of filing it twice.

use jiff::Timestamp;
use redb::{ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

use super::write::{Work, split_flags};
use super::*;

pub(super) const SYNC_ACCOUNTS: TableDefinition<(u32, &str), &[u8]> = TableDefinition::new("sync_accounts");
pub(super) const SYNC_FOLDERS: TableDefinition<(u32, u32, &str), &[u8]> = TableDefinition::new("sync_folders");
pub(super) const SYNC_MAP: TableDefinition<(u32, u32, u32), (u64, &[u8])> = TableDefinition::new("sync_map");
pub(super) const SYNC_BY_MESSAGE: TableDefinition<(u32, u64), (u32, u32, u32)> =
    TableDefinition::new("sync_by_message");
pub(super) const SYNC_HASHES: TableDefinition<(u32, u32, &[u8; 32]), (u64, u32)> = TableDefinition::new("sync_hashes");
/// (user, account, POP3 unique id) → (the number it has in the map, first seen, seconds):
/// POP3 ids are strings, the map's keys numbers; the time serves `--pop3-delete-after`.
pub(super) const SYNC_POP3: TableDefinition<(u32, u32, &str), (u32, i64)> = TableDefinition::new("sync_pop3");

/// The keyword on a message the source no longer has (deleted or moved away there): it stays
/// in gatepost for good (SPEC §7).
pub const REMOVED_AT_SOURCE: &str = "$RemovedAtSource";

/// At most this many oversized messages are listed in an account's status.
pub const TOO_LARGE_LISTED: usize = 100;

/// What an account's sync is doing, for `account show` and later the web console.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncStatus {
    /// `connecting`, `importing`, `syncing`, `idle`, `paused`, `removed`, `failing`.
    pub phase: String,
    pub updated_at: Option<Timestamp>,
    /// The current pass: what it found to fetch and what it has filed.
    pub pass_started: Option<Timestamp>,
    pub pass_messages: u64,
    pub pass_bytes: u64,
    pub done_messages: u64,
    pub done_bytes: u64,
    /// Totals over the account's life.
    pub imported_messages: u64,
    pub imported_bytes: u64,
    /// The first complete pass over every folder has finished.
    pub first_import_done: bool,
    /// The source INBOX's first import has finished (push latency counts from here).
    pub inbox_ready: bool,
    pub last_sync: Option<Timestamp>,
    /// What is wrong and since when (`auth failed since …`); cleared by a good pass.
    pub problem: Option<String>,
    pub problem_since: Option<Timestamp>,
    /// Import stopped at the user's quota ceiling (one notice per pause).
    pub quota_paused_since: Option<Timestamp>,
    /// Messages over the size limit, never skipped silently: (folder, UID, size).
    pub too_large: Vec<(String, u32, u64)>,
}

/// An account's sync record.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountSync {
    pub id: u32,
    /// The next number for a POP3 unique id.
    #[serde(default)]
    pub pop3_next: u32,
    /// Local flag changes at or below this modseq have been written back to the source.
    pub written_back: u64,
    pub status: SyncStatus,
}

/// One source folder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FolderSync {
    /// Its local mailbox under `Accounts/<NAME>/` (the name moves with a rename).
    pub mailbox: u32,
    pub uidvalidity: u32,
    /// The source's UIDNEXT and HIGHESTMODSEQ (0: none) when the folder was last synced.
    pub uidnext: u32,
    pub highestmodseq: u64,
    pub exists: u32,
    /// The source's special-use role (RFC 6154), shown by `mailbox list`, not advertised.
    pub role: Option<String>,
    /// The folder vanished at the source; its local mailbox stays.
    pub gone: bool,
}

/// A remote message as the map knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Synced {
    pub uid: u32,
    pub message: u64,
    /// Flags last seen at the source.
    pub seen: Vec<String>,
    /// The message's flags in gatepost now; `None`: the user expunged it (a tombstone).
    pub local: Option<Vec<String>>,
}

/// Changes to apply to one folder's map and messages, in one transaction.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FolderChanges {
    /// Source UIDs the source no longer has: the message gets [`REMOVED_AT_SOURCE`].
    pub removed: Vec<u32>,
    /// Source flags that changed there: the message takes them (the source wins).
    pub from_source: Vec<(u32, Vec<String>)>,
    /// Local flags the source has accepted: recorded as seen there.
    pub written_back: Vec<(u32, Vec<String>)>,
}

/// A message fetched from the source, to file.
#[derive(Debug, Clone)]
pub struct RemoteMessage<'a> {
    pub uid: u32,
    pub raw: &'a [u8],
    pub flags: Vec<String>,
    pub internaldate: Timestamp,
}

/// Where a fetched batch goes: the account, the source folder (name and UIDVALIDITY, kept
/// in each message's origin), its local mailbox, and the unified INBOX for the source INBOX.
#[derive(Debug, Clone, Copy)]
pub struct Destination<'a> {
    /// The account's name: its status counts the batch in the batch's own commit.
    pub name: &'a str,
    pub account: u32,
    pub mailbox: u32,
    pub pair: Option<u32>,
    pub folder: &'a str,
    pub uidvalidity: u32,
}

/// What happened to a fetched message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Imported {
    Filed,
    /// Already here by content (a move at the source, a UIDVALIDITY reset): mapped, not filed.
    Found,
    /// Its content was expunged by the user: mapped as a tombstone, not filed.
    Tombstone,
}

/// A local change the source has not seen: (local mailbox, source UID, seen, local flags).
pub type Pending = (u32, u32, Vec<String>, Vec<String>);

/// Made when the store opens, so readers never meet a missing table.
pub(super) fn create_tables(txn: &redb::WriteTransaction) -> Result<(), MailError> {
    txn.open_table(SYNC_ACCOUNTS)?;
    txn.open_table(SYNC_FOLDERS)?;
    txn.open_table(SYNC_MAP)?;
    txn.open_table(SYNC_BY_MESSAGE)?;
    txn.open_table(SYNC_HASHES)?;
    txn.open_table(SYNC_POP3)?;
    Ok(())
}

pub(super) fn encode_flags(flags: &[String]) -> Vec<u8> {
    flags.join(" ").into_bytes()
}

fn decode_flags(bytes: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(bytes).split(' ').filter(|f| !f.is_empty()).map(str::to_string).collect()
}

impl MailDb {
    /// The account's sync record, numbered on first use.
    pub fn sync_account(&self, user: u32, name: &str) -> Result<AccountSync, MailError> {
        {
            let txn = self.db.begin_read()?;
            if let Ok(table) = txn.open_table(SYNC_ACCOUNTS)
                && let Some(v) = table.get((user, name))?
            {
                return read("sync account", v.value());
            }
        }
        let txn = self.write()?;
        let rec = {
            let mut table = txn.open_table(SYNC_ACCOUNTS)?;
            if let Some(v) = table.get((user, name))? {
                return read("sync account", v.value());
            }
            let mut counters = txn.open_table(COUNTERS)?;
            let id = counters.get("next_account")?.map_or(1, |v| v.value());
            counters.insert("next_account", id + 1)?;
            let id = u32::try_from(id).map_err(|_| MailError::Db("too many accounts".into()))?;
            let rec = AccountSync { id, ..AccountSync::default() };
            table.insert((user, name), json(&rec).as_slice())?;
            rec
        };
        txn.commit()?;
        Ok(rec)
    }

    /// The account's sync record if it has one (readers: `account show`).
    pub fn find_sync_account(&self, user: u32, name: &str) -> Result<Option<AccountSync>, MailError> {
        let txn = self.db.begin_read()?;
        let Ok(table) = txn.open_table(SYNC_ACCOUNTS) else { return Ok(None) };
        table.get((user, name))?.map(|v| read("sync account", v.value())).transpose()
    }

    /// Change the account's status (read, changed, written in one transaction).
    pub fn update_sync_status(
        &self,
        user: u32,
        name: &str,
        change: impl FnOnce(&mut SyncStatus),
    ) -> Result<SyncStatus, MailError> {
        let txn = self.write()?;
        let status = {
            let mut table = txn.open_table(SYNC_ACCOUNTS)?;
            let mut rec: AccountSync = match table.get((user, name))? {
                Some(v) => read("sync account", v.value())?,
                None => return Err(MailError::Db(format!("account {name:?} has no sync record"))),
            };
            change(&mut rec.status);
            table.insert((user, name), json(&rec).as_slice())?;
            rec.status
        };
        txn.commit()?;
        Ok(status)
    }

    pub fn set_written_back(&self, user: u32, name: &str, modseq: u64) -> Result<(), MailError> {
        let txn = self.write()?;
        {
            let mut table = txn.open_table(SYNC_ACCOUNTS)?;
            let Some(v) = table.get((user, name))? else { return Ok(()) };
            let mut rec: AccountSync = read("sync account", v.value())?;
            drop(v);
            rec.written_back = rec.written_back.max(modseq);
            table.insert((user, name), json(&rec).as_slice())?;
        }
        txn.commit()?;
        Ok(())
    }

    /// The map's number and the first-seen time of each POP3 unique id the server lists now
    /// (new ones numbered in this transaction); ids the server no longer lists are forgotten
    /// (their messages keep their map entries, and a returning id is matched by content).
    pub fn pop3_numbers(
        &self,
        user: u32,
        name: &str,
        uids: &[String],
        now: Timestamp,
    ) -> Result<Vec<(u32, Timestamp)>, MailError> {
        let txn = self.write()?;
        let out = {
            let mut accounts = txn.open_table(SYNC_ACCOUNTS)?;
            let mut rec: AccountSync = match accounts.get((user, name))? {
                Some(v) => read("sync account", v.value())?,
                None => return Err(MailError::Db(format!("account {name:?} has no sync record"))),
            };
            let mut table = txn.open_table(SYNC_POP3)?;
            let mut out = Vec::with_capacity(uids.len());
            for uid in uids {
                let found = table.get((user, rec.id, uid.as_str()))?.map(|v| v.value());
                let (n, first) = match found {
                    Some(v) => v,
                    None => {
                        rec.pop3_next = rec.pop3_next.max(1);
                        let n = rec.pop3_next;
                        rec.pop3_next += 1;
                        table.insert((user, rec.id, uid.as_str()), (n, now.as_second()))?;
                        (n, now.as_second())
                    }
                };
                out.push((n, Timestamp::from_second(first).unwrap_or(now)));
            }
            let listed: std::collections::HashSet<&str> = uids.iter().map(String::as_str).collect();
            table.retain_in((user, rec.id, "")..=(user, rec.id, "\u{7f}"), |k, _| listed.contains(k.2))?;
            accounts.insert((user, name), json(&rec).as_slice())?;
            out
        };
        txn.commit()?;
        Ok(out)
    }

    /// The folder's map with each message's flags now, by source UID.
    pub fn synced(&self, user: u32, mailbox: u32) -> Result<Vec<Synced>, MailError> {
        let txn = self.db.begin_read()?;
        let Ok(map) = txn.open_table(SYNC_MAP) else { return Ok(vec![]) };
        let messages = txn.open_table(MESSAGES)?;
        let mut out = Vec::new();
        for entry in map.range((user, mailbox, 0)..=(user, mailbox, u32::MAX))? {
            let (k, v) = entry?;
            let (id, seen) = v.value();
            let local = match messages.get((user, id))? {
                Some(m) => Some(read::<Message>("message", m.value())?.flags),
                None => None,
            };
            out.push(Synced { uid: k.value().2, message: id, seen: decode_flags(seen), local });
        }
        Ok(out)
    }

    /// Local flag changes since the account's write-back cursor that the source has not
    /// seen, and the cursor to record once they are written back.
    pub fn pending_write_back(&self, user: u32, account: u32, since: u64) -> Result<(Vec<Pending>, u64), MailError> {
        let txn = self.db.begin_read()?;
        let users = txn.open_table(USERS)?;
        let state: UserState = read("user", users.get(user)?.ok_or(MailError::Db("no such user".into()))?.value())?;
        let Ok(reverse) = txn.open_table(SYNC_BY_MESSAGE) else { return Ok((vec![], state.modseq)) };
        let (map, members, by_modseq, messages, boxes) = (
            txn.open_table(SYNC_MAP)?,
            txn.open_table(MEMBERS)?,
            txn.open_table(BY_MODSEQ)?,
            txn.open_table(MESSAGES)?,
            txn.open_table(MAILBOXES)?,
        );
        let mut ids = std::collections::BTreeSet::new();
        for mbox in boxes.range((user, 0)..=(user, u32::MAX))? {
            let id = mbox?.0.value().1;
            for entry in by_modseq.range((user, id, since + 1)..=(user, id, u64::MAX))? {
                let uid = entry?.1.value();
                if let Some(m) = members.get((user, id, uid))? {
                    ids.insert(m.value().0);
                }
            }
        }
        let mut out = Vec::new();
        for id in ids {
            let Some(r) = reverse.get((user, id))? else { continue };
            let (acc, mailbox, uid) = r.value();
            if acc != account {
                continue;
            }
            let Some(entry) = map.get((user, mailbox, uid))? else { continue };
            let seen = decode_flags(entry.value().1);
            let Some(m) = messages.get((user, id))? else { continue };
            let local = read::<Message>("message", m.value())?.flags;
            out.push((mailbox, uid, seen, local));
        }
        Ok((out, state.modseq))
    }

    /// Forget source UIDs gatepost itself deleted at the source (POP3 `--pop3-delete-after`):
    /// their messages stay, without `$RemovedAtSource` (the user asked for it); the content
    /// index still knows them.
    pub fn forget_remote(&self, user: u32, mailbox: u32, uids: &[u32]) -> Result<(), MailError> {
        let txn = self.write()?;
        {
            let mut map = txn.open_table(SYNC_MAP)?;
            let mut reverse = txn.open_table(SYNC_BY_MESSAGE)?;
            for &uid in uids {
                if let Some(id) = map.remove((user, mailbox, uid))?.map(|v| v.value().0) {
                    reverse.remove((user, id))?;
                }
            }
        }
        txn.commit()?;
        Ok(())
    }

    /// Apply a folder's changes (removals, the source's flags, written-back flags).
    pub fn apply_sync(&self, user: u32, mailbox: u32, changes: &FolderChanges) -> Result<(), MailError> {
        if changes == &FolderChanges::default() {
            return Ok(());
        }
        let txn = self.write()?;
        {
            let mut map = txn.open_table(SYNC_MAP)?;
            let mut reverse = txn.open_table(SYNC_BY_MESSAGE)?;
            let mut work = Work::open(&txn, user, self.expunge_keep)?;
            for &uid in &changes.removed {
                let Some(id) = map.remove((user, mailbox, uid))?.map(|v| v.value().0) else { continue };
                reverse.remove((user, id))?;
                if work.message_exists(id)? {
                    let mut msg = work.message(id)?;
                    if !msg.flags.iter().any(|f| f == REMOVED_AT_SOURCE) {
                        let mut flags = msg.flags.clone();
                        flags.push(REMOVED_AT_SOURCE.to_string());
                        work.set_flags(id, &mut msg, flags)?;
                    }
                }
            }
            for (uid, flags) in &changes.from_source {
                let Some(id) = map.get((user, mailbox, *uid))?.map(|v| v.value().0) else { continue };
                map.insert((user, mailbox, *uid), (id, encode_flags(flags).as_slice()))?;
                if work.message_exists(id)? {
                    let mut msg = work.message(id)?;
                    let (mut want, _) = split_flags(flags);
                    want.retain(|f| f != REMOVED_AT_SOURCE);
                    if !same_flags(&msg.flags, &want) {
                        work.set_flags(id, &mut msg, want)?;
                    }
                }
            }
            for (uid, flags) in &changes.written_back {
                let Some(id) = map.get((user, mailbox, *uid))?.map(|v| v.value().0) else { continue };
                map.insert((user, mailbox, *uid), (id, encode_flags(flags).as_slice()))?;
            }
            work.finish()?;
        }
        txn.commit()?;
        Ok(())
    }
}

/// Flag lists equal as sets (system flags and keywords compare without regard to case).
pub fn same_flags(a: &[String], b: &[String]) -> bool {
    let has = |l: &[String], f: &String| l.iter().any(|x| x.eq_ignore_ascii_case(f));
    a.iter().all(|f| has(b, f)) && b.iter().all(|f| has(a, f))
}
