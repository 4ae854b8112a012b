//! One pass over a POP3 account (docs/accounts.md, "POP3 accounts"): UIDL and LIST, the
//! planner over the unique ids (numbered in the map, so tombstones, `$RemovedAtSource` and
//! the content index work as for IMAP), RETR of what is new in batches filed one commit
//! each, then DELE of what was imported long enough ago when the account asks for it. No
//! flags: POP3 has none, so nothing is written back. No push: the account is polled.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use jiff::Timestamp;

use super::pass::{Ctx, Report, SyncError};
use super::plan::{self, Listing};
use super::pop3::{Pop3, Pop3Error};
use crate::mailstore::db::{Destination, FolderChanges, FolderSync, Imported, MailError, RemoteMessage};

impl From<Pop3Error> for SyncError {
    fn from(e: Pop3Error) -> Self {
        match e {
            Pop3Error::Timeout => SyncError::Timeout,
            e => SyncError::Server(e.to_string()),
        }
    }
}

/// At most this many messages, or past the first this many bytes, per commit.
const BATCH_MESSAGES: usize = 100;
const BATCH_BYTES: u64 = 16 << 20;

/// The account's one folder: its record, made on first use.
fn inbox(ctx: &Ctx) -> Result<FolderSync, MailError> {
    if let Some((_, rec)) = ctx.store.db.sync_folders(ctx.user, ctx.account)?.into_iter().find(|(n, _)| n == "INBOX") {
        return Ok(rec);
    }
    let new =
        FolderSync { mailbox: 0, uidvalidity: 0, uidnext: 0, highestmodseq: 0, exists: 0, role: None, gone: false };
    let local = format!("Accounts/{}/INBOX", ctx.account_name);
    ctx.store.db.open_sync_folder(ctx.user, ctx.account, "INBOX", &local, new, Timestamp::now())
}

/// One pass, ending with QUIT (which carries out the deletions; only then are the deleted
/// messages forgotten by the map, so a failed QUIT deletes nothing and forgets nothing).
pub async fn pop3_pass(mut c: Pop3, ctx: &Ctx, delete_after_days: Option<u32>) -> Result<Report, SyncError> {
    let mut deleted = Vec::new();
    let report = pass_inner(&mut c, ctx, delete_after_days, &mut deleted).await?;
    c.quit().await?;
    if !deleted.is_empty() {
        let rec = inbox(ctx)?;
        ctx.store.db.forget_remote(ctx.user, rec.mailbox, &deleted)?;
    }
    Ok(report)
}

async fn pass_inner(
    c: &mut Pop3,
    ctx: &Ctx,
    delete_after_days: Option<u32>,
    deleted: &mut Vec<u32>,
) -> Result<Report, SyncError> {
    let mut report = Report::default();
    let rec = inbox(ctx)?;
    let uidl = c.uidl().await?;
    let sizes: BTreeMap<u32, u64> = c.list().await?.into_iter().collect();
    let ids: Vec<String> = uidl.iter().map(|(_, u)| u.clone()).collect();
    let now = Timestamp::now();
    let numbers = ctx.store.db.pop3_numbers(ctx.user, &ctx.account_name, &ids, now)?;
    // number → (message number on the server, first seen)
    let by_number: BTreeMap<u32, (u32, Timestamp)> =
        uidl.iter().zip(&numbers).map(|((msgno, _), (n, first))| (*n, (*msgno, *first))).collect();
    let listing = Listing { uids: by_number.keys().copied().collect(), flags: BTreeMap::new() };
    let known = ctx.store.db.synced(ctx.user, rec.mailbox)?;
    let the_plan = plan::plan(&listing, &known);
    report.removed = the_plan.changes.removed.len() as u64;
    let removed = FolderChanges { removed: the_plan.changes.removed, ..FolderChanges::default() };
    ctx.store.db.apply_sync(ctx.user, rec.mailbox, &removed)?;

    let mut fetch: Vec<(u32, u32, u64)> = Vec::new(); // (number, msgno, size)
    let mut too_large = Vec::new();
    for n in &the_plan.fetch {
        let msgno = by_number[n].0;
        let size = sizes.get(&msgno).copied().unwrap_or(0);
        if size > ctx.max_size { too_large.push((*n, size)) } else { fetch.push((*n, msgno, size)) }
    }
    if !too_large.is_empty() {
        ctx.store.db.update_sync_status(ctx.user, &ctx.account_name, |s| {
            for (n, size) in too_large {
                if s.too_large.len() < crate::mailstore::db::TOO_LARGE_LISTED && !s.too_large.iter().any(|t| t.1 == n) {
                    s.too_large.push(("INBOX".into(), n, size));
                }
            }
        })?;
    }
    let total: u64 = fetch.iter().map(|f| f.2).sum();
    let count = fetch.len() as u64;
    ctx.store.db.update_sync_status(ctx.user, &ctx.account_name, |s| {
        s.pass_messages += count;
        s.pass_bytes += total;
    })?;
    let pair = Some(ctx.inbox);
    let sized: Vec<(u32, u64)> = fetch.iter().map(|f| (f.0, f.2)).collect();
    let msgno_of: BTreeMap<u32, u32> = fetch.iter().map(|f| (f.0, f.1)).collect();
    for batch in plan::batches(&sized, BATCH_MESSAGES, BATCH_BYTES) {
        let mut got: Vec<(u32, Vec<u8>)> = Vec::with_capacity(batch.len());
        for n in &batch {
            let raw = c.retr(msgno_of[n], ctx.max_size).await?;
            got.push((*n, raw));
        }
        let (store, user, name, account, mailbox) =
            (ctx.store.clone(), ctx.user, ctx.account_name.clone(), ctx.account, rec.mailbox);
        let outcomes = tokio::task::spawn_blocking(move || {
            let msgs: Vec<RemoteMessage<'_>> = got
                .iter()
                .map(|(n, raw)| RemoteMessage { uid: *n, raw, flags: vec![], internaldate: date_of(raw) })
                .collect();
            let to = Destination { name: &name, account, mailbox, pair, folder: "INBOX", uidvalidity: 0 };
            let r = store.db.file_remote(store.blobs.as_ref(), user, &to, &msgs);
            store.changed(user);
            r.map(|o| o.into_iter().zip(msgs.iter().map(|m| m.raw.len() as u64)).collect::<Vec<_>>())
        })
        .await
        .map_err(|e| SyncError::Store(MailError::Db(format!("a filing task failed: {e}"))))??;
        for (o, bytes) in outcomes {
            match o {
                Ok(Imported::Filed) => {
                    report.filed += 1;
                    report.bytes += bytes;
                }
                Ok(_) => report.found += 1,
                Err(MailError::OverQuota(_)) => report.quota_full = true,
                Err(e) => return Err(SyncError::Store(e)),
            }
        }
        if report.quota_full {
            return Ok(report);
        }
    }

    if let Some(days) = delete_after_days {
        let mapped: BTreeSet<u32> = ctx.store.db.synced(ctx.user, rec.mailbox)?.into_iter().map(|s| s.uid).collect();
        let due = now - jiff::SignedDuration::from_hours(24 * i64::from(days));
        for (n, (msgno, first)) in &by_number {
            // Only what is safely here (or was expunged here on purpose) leaves the server.
            if mapped.contains(n) && *first <= due {
                c.dele(*msgno).await?;
                deleted.push(*n);
            }
        }
    }
    Ok(report)
}

/// INTERNALDATE of a POP3 message (POP3 has none): its Date header, else now.
fn date_of(raw: &[u8]) -> Timestamp {
    crate::message::date_header(raw).unwrap_or_else(Timestamp::now)
}

/// How long a POP3 connection may take per step and per answer.
pub const POP3_TIMEOUT: Duration = Duration::from_secs(60);
