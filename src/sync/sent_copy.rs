//! The source's copy of mail sent as the account (`--sent-copy`, docs/accounts.md "Sending as
//! an account"): each copy the filer queued is APPENDed to the source's Sent folder — the one
//! write to the source besides flags — then that folder is synced at once, so the source's
//! copy is mapped to the local one (by content: the same bytes) and never filed twice.
//!
//! async-imap does not return APPENDUID; matching by content in the pass that follows does
//! what it would. A crash between the APPEND and taking the copy off the feed would append it
//! again, so a copy the source already has (by Message-ID) is not appended again.

use super::connect::{COMMAND_BUDGET, Session};
use super::pass::{self, Ctx, RemoteFolder, Report, SyncError, timed};

/// APPEND what waits, then sync the Sent folder. `Ok(false)`: nothing waited.
pub async fn append_pending(session: &mut Session, ctx: &Ctx) -> Result<bool, SyncError> {
    let (user, account) = (ctx.user, ctx.account);
    let pending = pass::db(ctx, move |db| db.pending_appends(user, account)).await?;
    if pending.is_empty() {
        return Ok(false);
    }
    let Some((name, rec)) = pass::db(ctx, move |db| db.sent_folder(user, account)).await? else {
        return Ok(false); // the filer queued none without one
    };
    for id in pending {
        let store = ctx.store.clone();
        let copy = pass::db(ctx, move |db| db.sent_copy_bytes(store.blobs.as_ref(), user, id)).await?;
        if let Some((raw, message_id)) = copy
            && !already_there(session, ctx, &name, message_id.as_deref()).await?
        {
            session.get_mut().allow(COMMAND_BUDGET);
            let appended = tokio::time::timeout(ctx.timeout, session.append(&name, Some("(\\Seen)"), None, &raw));
            match appended.await {
                Err(_) => return Err(SyncError::Timeout),
                Ok(Ok(())) => {
                    tracing::info!(account = %ctx.account_name, folder = %name, "sent copy appended at the source")
                }
                // Refused (over quota there, too large): the copy stays here, and the account's
                // sync goes on — a refusal retried at every connection would stop it for good.
                Ok(Err(async_imap::error::Error::No(why) | async_imap::error::Error::Bad(why))) => tracing::warn!(
                    account = %ctx.account_name, folder = %name, why = %super::connect::escape(&why),
                    "the source refused the sent copy: it stays in gatepost only"
                ),
                Ok(Err(e)) => return Err(e.into()),
            }
        }
        pass::db(ctx, move |db| db.append_done(user, account, id)).await?;
    }
    let folder = RemoteFolder { name, delimiter: None, role: rec.role.clone() };
    pass::sync_folder(session, ctx, &folder, rec, &mut Report::default()).await?;
    Ok(true)
}

/// Whether the source's folder has a message with this Message-ID already (an APPEND whose
/// reply a crash lost). An id that cannot be searched for safely is taken as not there.
async fn already_there(
    session: &mut Session,
    ctx: &Ctx,
    folder: &str,
    message_id: Option<&str>,
) -> Result<bool, SyncError> {
    let Some(mid) = message_id.filter(|m| m.chars().all(|c| c.is_ascii_graphic() && c != '"' && c != '\\')) else {
        return Ok(false);
    };
    pass::examine(session, ctx, folder).await?;
    session.get_mut().allow(COMMAND_BUDGET);
    let found = timed(ctx.timeout, session.uid_search(format!("HEADER Message-ID \"{mid}\""))).await?;
    Ok(!found.is_empty())
}
