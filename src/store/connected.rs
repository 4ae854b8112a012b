//! Connected accounts as stored (docs/accounts.md, "Where things live"): one record per
//! (user, account name) in `gatepost.redb`, next to the user. Every change is noted in the
//! user change feed in the same transaction — without bumping the user's generation, so a
//! running server learns of it within two seconds and the user's sessions stay logged in.

use jiff::Timestamp;
use redb::{ReadableDatabase, ReadableTable, TableDefinition, TableError};
use serde::{Deserialize, Serialize};

use super::users::{USERS, note_change};
use super::{Store, StoreError};
use crate::secrets::Sealed;

/// `user \0 account name → record`: one user's accounts are one key range.
const CONNECTED: TableDefinition<&str, &[u8]> = TableDefinition::new("connected_accounts");

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SentCopy {
    /// Append to the source's Sent folder unless the provider files its own copy.
    Auto,
    Append,
    None,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectedAccount {
    pub user: String,
    /// The folder under `Accounts/`; unique per user, never reused while its tree exists.
    pub name: String,
    /// The address it receives and may send as (lower case).
    pub address: String,
    /// Incoming server URL (`imaps://…`, `net::server_url`).
    pub incoming: String,
    /// Outgoing server URL, for sending as this address.
    #[serde(default)]
    pub smtp: Option<String>,
    pub login: String,
    pub credential: Sealed,
    /// PEM of one extra CA or one exact self-signed certificate to trust (`--ca-file`), kept
    /// in the record so the account does not depend on a file staying where it was.
    #[serde(default)]
    pub ca_pem: Option<String>,
    pub connections: u32,
    pub sent_copy: SentCopy,
    #[serde(default)]
    pub pop3_delete_after_days: Option<u32>,
    pub paused: bool,
    /// `account remove` without `--delete-mail`: no sync, the tree stays read-only, the name
    /// stays taken.
    pub removed: bool,
    /// When `account check` (or `add`) last logged in to the incoming server.
    #[serde(default)]
    pub incoming_checked_at: Option<Timestamp>,
    /// When the SMTP route's login was last accepted; the address is a sender of the user
    /// only while this is set (SPEC §10).
    #[serde(default)]
    pub smtp_checked_at: Option<Timestamp>,
    pub created_at: Timestamp,
}

impl ConnectedAccount {
    /// Whether its address may send, through its own server, now (SPEC §10): it has an SMTP
    /// route whose login the last check accepted, and it was not removed. A paused account
    /// still sends as it (its mail waits: `queue::dispatch`).
    pub fn sends(&self) -> bool {
        self.smtp.is_some() && self.smtp_checked_at.is_some() && !self.removed
    }
}

/// An address a user may send as, and the account whose server it leaves through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendAs {
    /// Lower case.
    pub address: String,
    pub account: String,
}

fn key(user: &str, name: &str) -> String {
    format!("{user}\0{name}")
}

fn decode(k: &str, v: &[u8]) -> Result<ConnectedAccount, StoreError> {
    serde_json::from_slice(v).map_err(|e| StoreError::Damaged(format!("connected account {k:?}: {e}")))
}

/// Account names: the folder under `Accounts/`, so no `/`, no control characters, and short.
pub fn validate_account_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.chars().count() > 64 {
        return Err(format!("account name {name:?} must be 1-64 characters"));
    }
    if name.chars().any(|c| c.is_control() || c == '/' || c == '*' || c == '%') {
        return Err(format!("account name {name:?} may not contain / * % or control characters"));
    }
    if name.eq_ignore_ascii_case("system") {
        return Err("account name \"system\" is taken: it names the system relay in `trace --route`".into());
    }
    if name.trim() != name || name.starts_with('.') {
        return Err(format!("account name {name:?} may not start with a dot or space, nor end with a space"));
    }
    Ok(())
}

impl Store {
    /// Add an account. `Ok(false)` when the user already has (or had) one of that name.
    pub fn insert_connected(&self, account: &ConnectedAccount) -> Result<bool, StoreError> {
        let txn = self.write_txn()?;
        {
            if txn.open_table(USERS)?.get(account.user.as_str())?.is_none() {
                return Err(StoreError::Damaged(format!("no user {:?}", account.user)));
            }
            let mut table = txn.open_table(CONNECTED)?;
            let k = key(&account.user, &account.name);
            if table.get(k.as_str())?.is_some() {
                return Ok(false);
            }
            let json = serde_json::to_vec(account).expect("an account record always serialises");
            table.insert(k.as_str(), json.as_slice())?;
            note_change(&txn, &account.user)?;
        }
        txn.commit()?;
        Ok(true)
    }

    pub fn connected(&self, user: &str, name: &str) -> Result<Option<ConnectedAccount>, StoreError> {
        let txn = self.db.begin_read()?;
        let table = match txn.open_table(CONNECTED) {
            Ok(t) => t,
            Err(TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let k = key(user, name);
        table.get(k.as_str())?.map(|v| decode(&k, v.value())).transpose()
    }

    /// One user's accounts, by name; `None` for the user: everyone's (the server's sync).
    pub fn list_connected(&self, user: Option<&str>) -> Result<Vec<ConnectedAccount>, StoreError> {
        let txn = self.db.begin_read()?;
        let table = match txn.open_table(CONNECTED) {
            Ok(t) => t,
            Err(TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        };
        let mut out = Vec::new();
        let (from, to) = match user {
            Some(u) => (format!("{u}\0"), format!("{u}\u{1}")),
            None => (String::new(), "\u{10FFFF}".to_string()),
        };
        for entry in table.range(from.as_str()..to.as_str())? {
            let (k, v) = entry?;
            out.push(decode(k.value(), v.value())?);
        }
        Ok(out)
    }

    /// The addresses `user` may send as through connected accounts, by account name (the
    /// first account of an address wins when two share it).
    pub fn send_routes(&self, user: &str) -> Result<Vec<SendAs>, StoreError> {
        let mut out: Vec<SendAs> = Vec::new();
        for a in self.list_connected(Some(user))?.into_iter().filter(ConnectedAccount::sends) {
            let address = a.address.to_lowercase();
            if !out.iter().any(|s| s.address == address) {
                out.push(SendAs { address, account: a.name });
            }
        }
        Ok(out)
    }

    /// Change an account in one transaction; `Ok(None)` when there is none.
    pub fn update_connected<E: From<StoreError>>(
        &self,
        user: &str,
        name: &str,
        change: impl FnOnce(&mut ConnectedAccount) -> Result<(), E>,
    ) -> Result<Option<ConnectedAccount>, E> {
        let txn = self.write_txn()?;
        let account = {
            let mut table = txn.open_table(CONNECTED).map_err(StoreError::from)?;
            let k = key(user, name);
            let current = table.get(k.as_str()).map_err(StoreError::from)?.map(|v| decode(&k, v.value()));
            let Some(current) = current else { return Ok(None) };
            let mut account = current?;
            change(&mut account)?;
            (account.user, account.name) = (user.to_string(), name.to_string());
            let json = serde_json::to_vec(&account).expect("an account record always serialises");
            table.insert(k.as_str(), json.as_slice()).map_err(StoreError::from)?;
            note_change(&txn, user)?;
            account
        };
        txn.commit().map_err(StoreError::from)?;
        Ok(Some(account))
    }

    /// Delete the record (`account remove --delete-mail`, once the tree is gone): the name
    /// is free again.
    pub fn delete_connected(&self, user: &str, name: &str) -> Result<bool, StoreError> {
        let txn = self.write_txn()?;
        let removed = {
            let mut table = txn.open_table(CONNECTED)?;
            let removed = table.remove(key(user, name).as_str())?.is_some();
            if removed {
                note_change(&txn, user)?;
            }
            removed
        };
        txn.commit()?;
        Ok(removed)
    }

    /// Every sealed credential re-sealed in one transaction (`secrets rotate`): `f` gets
    /// each account and returns its new seal; an error from any leaves all as they were.
    pub fn reseal_connected<E: From<StoreError>>(
        &self,
        mut f: impl FnMut(&ConnectedAccount) -> Result<Sealed, E>,
    ) -> Result<usize, E> {
        let txn = self.write_txn()?;
        let mut count = 0;
        {
            let mut table = txn.open_table(CONNECTED).map_err(StoreError::from)?;
            let mut all = Vec::new();
            for entry in table.iter().map_err(StoreError::from)? {
                let (k, v) = entry.map_err(StoreError::from)?;
                all.push((k.value().to_string(), decode(k.value(), v.value())?));
            }
            for (k, mut account) in all {
                account.credential = f(&account)?;
                let json = serde_json::to_vec(&account).expect("an account record always serialises");
                table.insert(k.as_str(), json.as_slice()).map_err(StoreError::from)?;
                count += 1;
            }
        }
        txn.commit().map_err(StoreError::from)?;
        Ok(count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secrets::{SealKey, Secret, owner};

    fn account(user: &str, name: &str, key: &SealKey) -> ConnectedAccount {
        ConnectedAccount {
            user: user.into(),
            name: name.into(),
            address: format!("{user}@{name}.example"),
            incoming: "imaps://imap.example.com:993".into(),
            smtp: None,
            login: format!("{user}@{name}.example"),
            credential: key.seal(&Secret::Password { password: "pw".into() }, &owner(user, name)),
            ca_pem: None,
            connections: 2,
            sent_copy: SentCopy::Auto,
            pop3_delete_after_days: None,
            paused: false,
            removed: false,
            incoming_checked_at: None,
            smtp_checked_at: None,
            created_at: "2026-12-02T08:00:00Z".parse().unwrap(),
        }
    }

    #[test]
    fn accounts_are_kept_per_user_and_changes_reach_the_feed_without_a_new_generation() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let key = SealKey::generate(&dir.path().join("k")).unwrap();
        for u in ["alice", "alicea", "bob"] {
            let rec = crate::store::UserRecord {
                name: u.into(),
                email: format!("{u}@example.com"),
                password_hash: String::new(),
                verified: true,
                disabled: false,
                timezone: None,
                created_at: "2026-12-02T08:00:00Z".parse().unwrap(),
                generation: 0,
            };
            assert!(store.insert_user(&rec).unwrap());
        }
        let before = store.last_user_change().unwrap();
        assert!(store.insert_connected(&account("alice", "Work", &key)).unwrap());
        assert!(store.insert_connected(&account("alice", "Old mail", &key)).unwrap());
        assert!(store.insert_connected(&account("alicea", "Work", &key)).unwrap());
        assert!(!store.insert_connected(&account("alice", "Work", &key)).unwrap(), "a name once");
        assert!(store.insert_connected(&account("nobody", "Work", &key)).is_err(), "only for a user");
        let names: Vec<String> = store.list_connected(Some("alice")).unwrap().into_iter().map(|a| a.name).collect();
        assert_eq!(names, ["Old mail", "Work"], "alice's only, not alicea's");
        assert_eq!(store.list_connected(None).unwrap().len(), 3);
        let changes = store.user_changes_after(before, 10).unwrap();
        assert_eq!(changes.iter().map(|c| c.user.as_str()).collect::<Vec<_>>(), ["alice", "alice", "alicea"]);
        assert_eq!(store.get_user("alice").unwrap().unwrap().generation, 1, "sessions stay logged in");

        let paused = store
            .update_connected::<StoreError>("alice", "Work", |a| {
                a.paused = true;
                Ok(())
            })
            .unwrap()
            .unwrap();
        assert!(paused.paused && store.connected("alice", "Work").unwrap().unwrap().paused);

        // Rotation re-seals every credential in one transaction, or none.
        let new_key = SealKey::generate(&dir.path().join("k2")).unwrap();
        let n = store
            .reseal_connected::<anyhow::Error>(|a| {
                let secret = key.open(&a.credential, &owner(&a.user, &a.name))?;
                Ok(new_key.seal(&secret, &owner(&a.user, &a.name)))
            })
            .unwrap();
        assert_eq!(n, 3);
        let a = store.connected("alice", "Work").unwrap().unwrap();
        assert_eq!(
            new_key.open(&a.credential, &owner("alice", "Work")).unwrap(),
            Secret::Password { password: "pw".into() }
        );
        let failed = store.reseal_connected::<anyhow::Error>(|a| {
            Ok(key.open(&a.credential, &owner(&a.user, &a.name)).map(|s| key.seal(&s, b"x"))?)
        });
        assert!(failed.is_err());
        let a = store.connected("alice", "Work").unwrap().unwrap();
        assert!(new_key.open(&a.credential, &owner("alice", "Work")).is_ok(), "nothing changed by a failed rotation");

        assert!(store.delete_connected("alice", "Work").unwrap());
        assert!(store.connected("alice", "Work").unwrap().is_none());
        assert!(!store.delete_connected("alice", "Work").unwrap());
    }

    #[test]
    fn account_names_are_checked() {
        for good in ["Work", "Old mail", "gmail.com", "Büro"] {
            assert!(validate_account_name(good).is_ok(), "{good}");
        }
        for bad in ["", "a/b", "star*", "pct%", " lead", "trail ", ".hidden", "tab\there", "System", &"x".repeat(65)] {
            assert!(validate_account_name(bad).is_err(), "{bad:?}");
        }
    }
}
