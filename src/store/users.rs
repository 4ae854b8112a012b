//! User accounts as stored, the per-user change feed, and remembered successful logins.
//! Password hashing lives in `accounts`; this is only the records.
//!
//! Every change to a user goes through [`Store::insert_user`] or [`Store::update_user`], which
//! bump the user's `generation` and append `seq → user` to `user_changes` in the same
//! transaction. A running server polls that feed (one read a second) and ends the sessions
//! logged in under an older generation; the CLI, account sync and IMAP all write through here,
//! so one mechanism covers every door (`docs/login.md`).

use std::net::IpAddr;

use jiff::Timestamp;
use redb::{ReadableDatabase, ReadableTable, TableDefinition, TableError};
use serde::{Deserialize, Serialize};

use super::{Store, StoreError};

pub(super) const USERS: TableDefinition<&str, &[u8]> = TableDefinition::new("users");
/// `seq → user name`: one entry per committed change to a user, in commit order.
const USER_CHANGES: TableDefinition<u64, &str> = TableDefinition::new("user_changes");
/// `ip \0 user → unix seconds` of a successful login, written at most about once a day per pair.
const LOGIN_SUCCESSES: TableDefinition<&str, i64> = TableDefinition::new("login_successes");

/// Entries kept in `user_changes`. A reader further behind than this sees a gap and rechecks
/// every user it cares about, so the feed never grows without bound.
pub const USER_CHANGES_KEPT: u64 = 10_000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRecord {
    pub name: String,
    /// The verified address the user sends as.
    pub email: String,
    /// Argon2 PHC string.
    pub password_hash: String,
    /// Operator-added users are verified; self-registered ones after the confirmation link.
    pub verified: bool,
    pub disabled: bool,
    /// IANA zone; `None` means the operator's `schedule.timezone`.
    #[serde(default)]
    pub timezone: Option<String>,
    pub created_at: Timestamp,
    /// Bumped by every change to the account (the store does it): sessions and cached
    /// password checks made under an older generation are no longer valid. 0 in records
    /// written before generations existed.
    #[serde(default)]
    pub generation: u64,
}

impl UserRecord {
    /// Addresses this user may put in MAIL FROM and From (lower-case). External accounts
    /// join this list when aggregation lands.
    pub fn sender_addresses(&self) -> Vec<String> {
        vec![self.email.to_lowercase()]
    }

    /// Whether this account may log in at all (the password aside).
    pub fn may_log_in(&self) -> bool {
        self.verified && !self.disabled
    }
}

/// One entry of the user change feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserChange {
    pub seq: u64,
    pub user: String,
}

fn decode_user(name: &str, bytes: &[u8]) -> Result<UserRecord, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Damaged(format!("user record {name:?}: {e}")))
}

fn pair_key(ip: IpAddr, user: &str) -> String {
    format!("{ip}\0{user}")
}

/// A table a read transaction may find missing (created by the first write that needs it).
macro_rules! open_or_empty {
    ($txn:expr, $table:expr, $empty:expr) => {
        match $txn.open_table($table) {
            Ok(t) => t,
            Err(TableError::TableDoesNotExist(_)) => return Ok($empty),
            Err(e) => return Err(e.into()),
        }
    };
}

impl Store {
    pub fn get_user(&self, name: &str) -> Result<Option<UserRecord>, StoreError> {
        let txn = self.db.begin_read()?;
        let users = txn.open_table(USERS)?;
        match users.get(name)? {
            Some(v) => decode_user(name, v.value()).map(Some),
            None => Ok(None),
        }
    }

    /// The user a login names: by user name, or else by email address (case-insensitive), as
    /// phone and desktop clients fill in the address (docs/login.md). Scans the users for an
    /// address: there are hundreds, and a cached verification spares the scan's cost nothing
    /// that matters next to argon2.
    pub fn find_user(&self, login: &str) -> Result<Option<UserRecord>, StoreError> {
        if let Some(user) = self.get_user(login)? {
            return Ok(Some(user));
        }
        if !login.contains('@') {
            return Ok(None);
        }
        let txn = self.db.begin_read()?;
        let users = txn.open_table(USERS)?;
        for entry in users.iter()? {
            let (k, v) = entry?;
            let user = decode_user(k.value(), v.value())?;
            if user.email.eq_ignore_ascii_case(login) {
                return Ok(Some(user));
            }
        }
        Ok(None)
    }

    /// Create a user (generation 1). `Ok(false)` when the name is taken: checked and written
    /// in one transaction, so two `user add` at once cannot both succeed.
    pub fn insert_user(&self, user: &UserRecord) -> Result<bool, StoreError> {
        let txn = self.write_txn()?;
        {
            let mut users = txn.open_table(USERS)?;
            if users.get(user.name.as_str())?.is_some() {
                return Ok(false);
            }
            let mut user = user.clone();
            user.generation = 1;
            let json = serde_json::to_vec(&user).expect("a user record always serialises");
            users.insert(user.name.as_str(), json.as_slice())?;
            note_change(&txn, &user.name)?;
        }
        txn.commit()?;
        Ok(true)
    }

    /// Change a user in one transaction: read, `change`, bump the generation, append to the
    /// change feed. `Ok(None)` when there is no such user; an `Err` from `change` writes nothing.
    pub fn update_user<E: From<StoreError>>(
        &self,
        name: &str,
        change: impl FnOnce(&mut UserRecord) -> Result<(), E>,
    ) -> Result<Option<UserRecord>, E> {
        let txn = self.write_txn()?;
        let user = {
            let mut users = txn.open_table(USERS).map_err(StoreError::from)?;
            let current = users.get(name).map_err(StoreError::from)?.map(|v| decode_user(name, v.value()));
            let Some(current) = current else {
                return Ok(None);
            };
            let mut user = current?;
            change(&mut user)?;
            user.name = name.to_string();
            user.generation += 1;
            let json = serde_json::to_vec(&user).expect("a user record always serialises");
            users.insert(name, json.as_slice()).map_err(StoreError::from)?;
            note_change(&txn, name)?;
            user
        };
        txn.commit().map_err(StoreError::from)?;
        Ok(Some(user))
    }

    pub fn list_users(&self) -> Result<Vec<UserRecord>, StoreError> {
        let txn = self.db.begin_read()?;
        let users = txn.open_table(USERS)?;
        let mut out = Vec::new();
        for entry in users.iter()? {
            let (k, v) = entry?;
            out.push(decode_user(k.value(), v.value())?);
        }
        Ok(out)
    }

    /// The newest change's sequence number (0 when nothing was ever changed): where a new
    /// reader of the feed starts.
    pub fn last_user_change(&self) -> Result<u64, StoreError> {
        let txn = self.db.begin_read()?;
        let changes = open_or_empty!(txn, USER_CHANGES, 0);
        Ok(changes.last()?.map(|(k, _)| k.value()).unwrap_or(0))
    }

    /// Up to `limit` changes after `seq`, oldest first. If the first one returned is not
    /// `seq + 1`, older entries were trimmed meanwhile (see [`USER_CHANGES_KEPT`]).
    pub fn user_changes_after(&self, seq: u64, limit: usize) -> Result<Vec<UserChange>, StoreError> {
        let txn = self.db.begin_read()?;
        let changes = open_or_empty!(txn, USER_CHANGES, Vec::new());
        let mut out = Vec::new();
        for entry in changes.range(seq.saturating_add(1)..)?.take(limit) {
            let (k, v) = entry?;
            out.push(UserChange { seq: k.value(), user: v.value().to_string() });
        }
        Ok(out)
    }

    /// Successful logins per (IP, user) since `since`, as unix seconds.
    pub fn login_successes(&self, since: Timestamp) -> Result<Vec<(IpAddr, String, i64)>, StoreError> {
        let txn = self.db.begin_read()?;
        let table = open_or_empty!(txn, LOGIN_SUCCESSES, Vec::new());
        let mut out = Vec::new();
        for entry in table.iter()? {
            let (k, v) = entry?;
            let (at, key) = (v.value(), k.value());
            let parsed = key.split_once('\0').and_then(|(ip, user)| Some((ip.parse().ok()?, user.to_string())));
            if let Some((ip, user)) = parsed
                && at >= since.as_second()
            {
                out.push((ip, user, at));
            }
        }
        Ok(out)
    }

    /// Remember a successful login of `user` from `ip` (one durable commit: callers write
    /// each pair at most about once a day).
    pub fn note_login_success(&self, ip: IpAddr, user: &str, at: Timestamp) -> Result<(), StoreError> {
        let txn = self.write_txn()?;
        txn.open_table(LOGIN_SUCCESSES)?.insert(pair_key(ip, user).as_str(), at.as_second())?;
        txn.commit()?;
        Ok(())
    }

    /// Forget successful logins older than `before` (the server does this at start and daily).
    pub fn forget_login_successes(&self, before: Timestamp) -> Result<(), StoreError> {
        let txn = self.write_txn()?;
        txn.open_table(LOGIN_SUCCESSES)?.retain(|_, at| at >= before.as_second())?;
        txn.commit()?;
        Ok(())
    }
}

/// Append `user` to the change feed of `txn`, trimming the oldest entry beyond the bound.
pub(super) fn note_change(txn: &redb::WriteTransaction, user: &str) -> Result<(), StoreError> {
    let mut changes = txn.open_table(USER_CHANGES)?;
    let seq = changes.last()?.map(|(k, _)| k.value()).unwrap_or(0) + 1;
    changes.insert(seq, user)?;
    if seq > USER_CHANGES_KEPT {
        changes.remove(seq - USER_CHANGES_KEPT)?;
    }
    Ok(())
}
