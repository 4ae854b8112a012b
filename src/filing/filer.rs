//! The filer (docs/imap.md, "Sent" and "DSNs"). Sent: when the first recipient of a message a
//! user sent through gatepost is delivered, the message as submitted is filed in the user's
//! `Sent` with `\Seen` — unless `Sent` already holds it (the client's own APPEND wins: most
//! desktop and phone clients append their own copy, matched by Message-ID). DSNs: a delivery
//! status notification gatepost queues for a user is relayed to the user's address as before
//! and also filed in the user's `INBOX`, the same bytes (so the same Message-ID).
//!
//! Exactly once across crashes: the feed entry is written with the delivery (or the DSN); it
//! is cleared only after the filing committed; a filing repeated after a crash between the
//! two finds its earlier copy (its origin names the queued message) and files nothing. Over
//! the quota even with the reserve, the entry stays and is retried: never dropped.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::accounts::quota::Writer;
use crate::clock::Clock;
use crate::mailstore::db::{NewMessage, Origin, SentCopyFiled};
use crate::mailstore::{MailError, MailStore};
use crate::store::{ConnectedAccount, FILE_INBOX, FILE_SENT, QueueRecord, SentCopy, Store};

/// How often the feed is looked at (a delivery is filed within about this long).
const POLL: Duration = Duration::from_millis(500);
const BATCH: usize = 64;

pub struct Filer {
    pub store: Arc<Store>,
    pub mail: Arc<MailStore>,
    pub clock: Arc<dyn Clock>,
    /// gatepost's host name: the release's Message-ID for mail that had none.
    pub hostname: String,
}

/// What became of one pending entry.
#[derive(Debug, PartialEq, Eq)]
pub enum Filed {
    Filed,
    /// Sent already holds it (the client's copy, or ours from before a crash).
    AlreadyThere,
    /// Nothing to file (the record or its body is gone).
    Gone,
}

impl Filer {
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) -> bool {
        let me = Arc::new(self);
        loop {
            let work = me.clone();
            match tokio::task::spawn_blocking(move || Ok::<_, anyhow::Error>(work.once()? + work.once_scheduled()?))
                .await
            {
                // A full pass means more may be waiting (a backlog after a start): go on at once.
                Ok(Ok(n)) if n >= BATCH && !*shutdown.borrow() => continue,
                Ok(Ok(_)) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "filer: will retry"),
                Err(e) => tracing::error!(error = %e, "filer task failed"),
            }
            tokio::select! {
                _ = shutdown.changed() => return true,
                _ = tokio::time::sleep(POLL) => {}
            }
        }
    }

    /// One pass over the feed; returns how many entries were cleared.
    pub fn once(&self) -> anyhow::Result<usize> {
        let pending = self.store.filing_pending(BATCH)?;
        let mut done = Vec::new();
        for (id, kind, rec) in pending {
            let filed = match kind {
                FILE_SENT => rec.map(|r| self.file_sent(&r)),
                FILE_INBOX => rec.map(|r| self.file_notice(&r)),
                other => {
                    tracing::warn!(queue_id = %id, kind = other, "filer: unknown kind of filing; dropped");
                    None
                }
            };
            match filed {
                None => done.push(id),
                Some(Ok(_)) => done.push(id),
                Some(Err(MailError::OverQuota(q))) => {
                    tracing::warn!(queue_id = %id, used = q.used, limit = q.limit, "filing waits: over the quota and its reserve");
                }
                Some(Err(e)) => return Err(e.into()),
            }
        }
        let n = done.len();
        if n > 0 {
            self.store.filing_done(&done)?;
        }
        Ok(n)
    }

    pub fn file_sent(&self, rec: &QueueRecord) -> Result<Filed, MailError> {
        let Ok(raw) = self.store.bodies().read(rec.id) else { return Ok(Filed::Gone) };
        let db = &self.mail.db;
        let user = db.user(&rec.user, self.clock.now())?;
        let sent = db.mailbox_id(user, "Sent")?;
        let queue = rec.id.to_string();
        let message_id = crate::mailstore::db::message_id_of(&raw);
        let already = db.members(user, sent, 1..=u32::MAX)?.into_iter().find(|m| {
            m.message.origin == (Origin::SentCopy { queue: queue.clone() })
                || (message_id.is_some() && m.message.message_id == message_id)
        });
        let (id, filed) = match already {
            Some(m) => (m.id, Filed::AlreadyThere),
            None => {
                let flags = ["\\Seen".to_string()];
                let new =
                    NewMessage { raw: &raw, flags: &flags, internaldate: rec.submitted_at, writer: Writer::System };
                let a = db.file(self.mail.blobs.as_ref(), user, sent, &new, Origin::SentCopy { queue })?;
                tracing::info!(queue_id = %rec.id, user = %rec.user, "filed in Sent");
                let id = db.members_of(user, sent, &[a.uid])?.first().map(|m| m.id);
                (id.ok_or_else(|| MailError::Db("a filed message has no membership".into()))?, Filed::Filed)
            }
        };
        if let Some(account) = &rec.route {
            self.account_sent_copy(rec, user, account, id)?;
        }
        self.mail.changed(user);
        Ok(filed)
    }

    /// Mail sent as a connected account is also a member of that account's Sent mailbox, and
    /// (by its `--sent-copy`) queued for APPEND to the source's Sent folder.
    fn account_sent_copy(&self, rec: &QueueRecord, user: u32, account: &str, id: u64) -> Result<(), MailError> {
        let append = match self.store.connected(&rec.user, account) {
            Ok(Some(a)) if !a.removed => appends(&a),
            Ok(_) => false,
            Err(e) => {
                tracing::warn!(queue_id = %rec.id, error = %e, "cannot read the account: its Sent copy is not appended");
                false
            }
        };
        let released = crate::rewrite::release_message_id(&rec.id.to_string(), &self.hostname);
        match self.mail.db.add_sent_copy(user, account, id, append, Some(&released))? {
            SentCopyFiled::Filed { appending } => {
                tracing::info!(queue_id = %rec.id, account, appending, "sent copy in the account's Sent")
            }
            SentCopyFiled::NoSentFolder => tracing::warn!(
                queue_id = %rec.id, account,
                "the account's sync has found no Sent folder at the source: the copy stays in Sent only"
            ),
        }
        Ok(())
    }
}

/// Whether gatepost APPENDs the Sent copy to the source: `append` always, `none` never,
/// `auto` unless the account's SMTP server files its own copy of what it sends (as Gmail's
/// and Microsoft's do: a second copy would be a double there).
pub fn appends(account: &ConnectedAccount) -> bool {
    const FILE_THEIR_OWN: [&str; 4] =
        ["smtp.gmail.com", "smtp.googlemail.com", "smtp.office365.com", "smtp-mail.outlook.com"];
    match account.sent_copy {
        SentCopy::Append => true,
        SentCopy::None => false,
        SentCopy::Auto => {
            let host = account.smtp.as_deref().and_then(|u| {
                crate::net::server_url::ServerUrl::parse(u, &[crate::net::server_url::Protocol::Smtp], "smtp").ok()
            });
            host.is_some_and(|u| !FILE_THEIR_OWN.iter().any(|h| u.host.eq_ignore_ascii_case(h)))
        }
    }
}

impl Filer {
    /// A DSN gatepost queued for the user, into the user's INBOX (unseen).
    pub fn file_notice(&self, rec: &QueueRecord) -> Result<Filed, MailError> {
        let Ok(raw) = self.store.bodies().read(rec.id) else { return Ok(Filed::Gone) };
        let db = &self.mail.db;
        let user = db.user(&rec.user, self.clock.now())?;
        let inbox = db.mailbox_id(user, "INBOX")?;
        let origin = Origin::Notice { queue: rec.id.to_string() };
        if db.members(user, inbox, 1..=u32::MAX)?.into_iter().any(|m| m.message.origin == origin) {
            return Ok(Filed::AlreadyThere);
        }
        let new = NewMessage { raw: &raw, flags: &[], internaldate: rec.submitted_at, writer: Writer::System };
        db.file(self.mail.blobs.as_ref(), user, inbox, &new, origin)?;
        self.mail.changed(user);
        tracing::info!(queue_id = %rec.id, user = %rec.user, "DSN filed in INBOX");
        Ok(Filed::Filed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secrets::Sealed;

    #[test]
    fn auto_appends_unless_the_server_files_its_own_copy() {
        let account = |smtp: Option<&str>, sent_copy| ConnectedAccount {
            user: "alice".into(),
            name: "Work".into(),
            address: "alice@work.example".into(),
            incoming: "imaps://imap.work.example".into(),
            smtp: smtp.map(str::to_string),
            login: "alice".into(),
            credential: Sealed { kind: "password".into(), key: String::new(), data: String::new() },
            ca_pem: None,
            connections: 2,
            sent_copy,
            pop3_delete_after_days: None,
            paused: false,
            removed: false,
            incoming_checked_at: None,
            smtp_checked_at: None,
            created_at: jiff::Timestamp::UNIX_EPOCH,
        };
        for (smtp, mode, want) in [
            (Some("smtps://smtp.work.example"), SentCopy::Auto, true),
            (Some("smtp+starttls://SMTP.Gmail.com:587"), SentCopy::Auto, false),
            (Some("smtp+starttls://smtp.office365.com"), SentCopy::Auto, false),
            (Some("smtp+starttls://smtp.office365.com"), SentCopy::Append, true),
            (Some("smtps://smtp.work.example"), SentCopy::None, false),
            (None, SentCopy::Auto, false),
        ] {
            assert_eq!(appends(&account(smtp, mode)), want, "{smtp:?} {mode:?}");
        }
    }
}
