//! Waiting for news between passes (docs/accounts.md, "Push and polling"): IDLE on the
//! source INBOX where the server offers it (re-issued before the 29 minutes RFC 2177 allows),
//! else a NOOP on the examined INBOX every `NOOP_EVERY` (the server reports new mail in the
//! NOOP's untagged answers); either ends early for a local change this account must write
//! back, and at the poll time or stop.

use std::time::Duration;

use tokio::sync::watch;

use super::connect::Session;
use super::pass::{self, Ctx, SyncError};

/// IDLE is ended and re-issued after this (servers drop it at 30 minutes; RFC 2177).
pub const IDLE_RENEW: Duration = Duration::from_secs(25 * 60);
/// Without IDLE, how often the INBOX is asked for news.
pub const NOOP_EVERY: Duration = Duration::from_secs(15);

/// Without IDLE: NOOP on the examined INBOX every `NOOP_EVERY` until it reports news (any
/// untagged answer: EXISTS, EXPUNGE, FETCH), a local change, the poll time, or stop.
pub(super) async fn noop_until(
    session: &mut Session,
    ctx: &Ctx,
    scanned: &mut u64,
    until: tokio::time::Instant,
    changes: &mut watch::Receiver<u64>,
    stop: &mut watch::Receiver<bool>,
) -> Result<Woke, SyncError> {
    pass::select_inbox(session, ctx.timeout).await?;
    while session.unsolicited_responses.try_recv().is_ok() {}
    // Kept across wakes: local changes that need nothing (another account's import) must
    // not keep pushing the next NOOP away.
    let mut next = (tokio::time::Instant::now() + NOOP_EVERY).min(until);
    loop {
        let woke = tokio::select! {
            _ = tokio::time::sleep_until(next) => None,
            r = changes.changed() => match r {
                Ok(()) if has_pending(ctx, scanned).await => Some(Woke::Local),
                Ok(()) => continue,
                Err(_) => Some(Woke::Timer),
            },
            _ = stop.changed() => Some(Woke::Timer),
        };
        if let Some(w) = woke {
            return Ok(w);
        }
        if tokio::time::Instant::now() >= until {
            return Ok(Woke::Timer);
        }
        next = (tokio::time::Instant::now() + NOOP_EVERY).min(until);
        session.get_mut().allow(super::connect::COMMAND_BUDGET);
        pass::timed(ctx.timeout, session.noop()).await?;
        let mut news = false;
        while session.unsolicited_responses.try_recv().is_ok() {
            news = true;
        }
        if news {
            return Ok(Woke::Source);
        }
    }
}

/// What ended a wait.
pub(super) enum Woke {
    /// The source INBOX changed (IDLE spoke, or a NOOP brought news).
    Source,
    /// A local change this account must write back or append.
    Local,
    Timer,
}

/// Sleep until the poll time, a local change, or stop.
pub(super) async fn wait_until(
    until: tokio::time::Instant,
    changes: &mut watch::Receiver<u64>,
    stop: &mut watch::Receiver<bool>,
) -> Woke {
    tokio::select! {
        _ = tokio::time::sleep_until(until) => Woke::Timer,
        r = changes.changed() => if r.is_ok() { Woke::Local } else { Woke::Timer },
        _ = stop.changed() => Woke::Timer,
    }
}

/// IDLE on the source INBOX until it speaks, a local change, the poll time, or stop.
pub(super) async fn idle_until(
    mut session: Session,
    ctx: &Ctx,
    scanned: &mut u64,
    limit: Duration,
    until: tokio::time::Instant,
    changes: &mut watch::Receiver<u64>,
    stop: &mut watch::Receiver<bool>,
) -> Result<(Session, Woke), SyncError> {
    pass::select_inbox(&mut session, limit).await?;
    // async-imap's IDLE takes the session by value and gives it back at DONE.
    let mut handle = session.idle();
    let init = tokio::time::timeout(limit, handle.init()).await;
    match init {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(e.into()),
        Err(_) => return Err(SyncError::Timeout),
    }
    let idle_for = until.saturating_duration_since(tokio::time::Instant::now()).min(IDLE_RENEW);
    let woke = {
        let (wait, interrupt) = handle.wait_with_timeout(idle_for);
        tokio::pin!(wait);
        let mut interrupt = Some(interrupt);
        let mut local = false;
        let outcome = loop {
            tokio::select! {
                r = &mut wait => break r,
                r = changes.changed(), if interrupt.is_some() => {
                    // The user's store changed (often by another account's import): IDLE
                    // ends only when this account has flags to write back.
                    if r.is_err() || has_pending(ctx, scanned).await {
                        local = r.is_ok();
                        interrupt = None;
                    }
                }
                _ = stop.changed(), if interrupt.is_some() => { interrupt = None; }
            }
        };
        match outcome? {
            async_imap::extensions::idle::IdleResponse::NewData(_) => Woke::Source,
            _ if local => Woke::Local,
            _ => Woke::Timer,
        }
    };
    let session = match tokio::time::timeout(limit, handle.done()).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return Err(e.into()),
        Err(_) => return Err(SyncError::Timeout),
    };
    while session.unsolicited_responses.try_recv().is_ok() {}
    Ok((session, woke))
}

/// Whether local flag changes of this account wait to be written back, or sent copies to be
/// appended. `scanned`: up to
/// where none did (kept in memory, so a wake costs a read, not a commit).
pub(super) async fn has_pending(ctx: &Ctx, scanned: &mut u64) -> bool {
    let (store, user, name, account, from) =
        (ctx.store.clone(), ctx.user, ctx.account_name.clone(), ctx.account, *scanned);
    let found = tokio::task::spawn_blocking(move || {
        let since = store.db.sync_account(user, &name)?.written_back.max(from);
        let appends = store.db.pending_appends(user, account)?;
        store.db.pending_write_back(user, account, since).map(|(p, cursor)| (p, cursor, appends))
    })
    .await;
    match found {
        Ok(Ok((pending, cursor, appends))) if pending.is_empty() && appends.is_empty() => {
            *scanned = cursor;
            false
        }
        // When in doubt, end IDLE and let the pass look.
        _ => true,
    }
}
