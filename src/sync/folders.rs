//! The source's folders (docs/accounts.md, "Folders"): LIST, then the records — a new
//! folder gets its local mailbox under `Accounts/<NAME>/` (a free name if two source names
//! map to one), a vanished one is marked gone (its mail stays), and a new one that is a
//! vanished one renamed takes over its record (`rename.rs`).

use std::collections::BTreeMap;
use std::time::Duration;

use futures_util::StreamExt;
use jiff::Timestamp;

use super::connect::{COMMAND_BUDGET, Session};
use super::pass::{Ctx, RemoteFolder, SyncError, db, timed};
use super::plan;
use crate::mailstore::db::{FolderSync, MailError};

/// The source's selectable folders, INBOX first.
pub async fn list_folders(session: &mut Session, limit: Duration) -> Result<Vec<RemoteFolder>, SyncError> {
    use async_imap::imap_proto::NameAttribute as A;
    session.get_mut().allow(COMMAND_BUDGET);
    let names: Vec<_> = timed(limit, async {
        session.list(Some(""), Some("*")).await?.collect::<Vec<_>>().await.into_iter().collect()
    })
    .await?;
    let mut out: Vec<RemoteFolder> = Vec::new();
    for n in &names {
        let attrs = n.attributes();
        let unselectable = attrs.iter().any(|a| match a {
            A::NoSelect => true,
            A::Extension(e) => e.eq_ignore_ascii_case("\\NonExistent"),
            _ => false,
        });
        if unselectable {
            continue;
        }
        let role = attrs.iter().find_map(|a| match a {
            A::All => Some("\\All"),
            A::Archive => Some("\\Archive"),
            A::Drafts => Some("\\Drafts"),
            A::Flagged => Some("\\Flagged"),
            A::Junk => Some("\\Junk"),
            A::Sent => Some("\\Sent"),
            A::Trash => Some("\\Trash"),
            _ => None,
        });
        out.push(RemoteFolder {
            name: n.name().to_string(),
            delimiter: n.delimiter().map(str::to_string),
            role: role.map(str::to_string),
        });
    }
    out.sort_by_key(|f| (!f.name.eq_ignore_ascii_case("INBOX"), f.name.clone()));
    Ok(out)
}

/// Record the source's folders: new ones get their local mailbox, vanished ones are marked
/// gone (their mail stays). Returns every live folder with its record, INBOX first.
pub async fn open_folders(
    session: &mut Session,
    ctx: &Ctx,
    remote: &[RemoteFolder],
) -> Result<Vec<(RemoteFolder, FolderSync)>, SyncError> {
    let (user, account) = (ctx.user, ctx.account);
    let mut known: BTreeMap<String, FolderSync> =
        db(ctx, move |d| d.sync_folders(user, account)).await?.into_iter().collect();
    // Renames first: a new folder that is a vanished one renamed takes over its record.
    let fresh: Vec<RemoteFolder> = remote.iter().filter(|f| !known.contains_key(&f.name)).cloned().collect();
    let vanished: Vec<(String, FolderSync)> = known
        .iter()
        .filter(|(n, r)| !r.gone && !remote.iter().any(|f| f.name == **n))
        .map(|(n, r)| (n.clone(), r.clone()))
        .collect();
    if !fresh.is_empty() && !vanished.is_empty() {
        for (f, old) in super::rename::detect(session, ctx, &fresh, &vanished).await? {
            let local = local_path_of(ctx, &f);
            let (to, from) = (f.name.clone(), old.clone());
            let rec = db(ctx, move |d| d.move_sync_folder(user, account, &from, &to, &local, Timestamp::now())).await?;
            known.remove(&old);
            known.insert(f.name.clone(), rec);
        }
    }
    let mut out = Vec::new();
    for f in remote {
        let rec = match known.get(&f.name) {
            Some(rec) if !rec.gone && rec.role == f.role => rec.clone(),
            Some(rec) => {
                let rec = FolderSync { gone: false, role: f.role.clone(), ..rec.clone() };
                let (name, r) = (f.name.clone(), rec.clone());
                db(ctx, move |d| d.put_sync_folder(user, account, &name, &r)).await?;
                rec
            }
            None => {
                let local = local_path_of(ctx, f);
                let new = FolderSync {
                    mailbox: 0,
                    uidvalidity: 0,
                    uidnext: 0,
                    highestmodseq: 0,
                    exists: 0,
                    role: f.role.clone(),
                    gone: false,
                };
                // Two source names can map to one local name: the later gets " (2)", " (3)"…
                let mut opened = None;
                for n in 1..=20 {
                    let candidate = if n == 1 { local.clone() } else { format!("{local} ({n})") };
                    let (name, new) = (f.name.clone(), new.clone());
                    match db(ctx, move |d| d.open_sync_folder(user, account, &name, &candidate, new, Timestamp::now()))
                        .await
                    {
                        Err(SyncError::Store(MailError::MailboxExists(_))) => continue,
                        other => {
                            opened = Some(other?);
                            break;
                        }
                    }
                }
                opened.ok_or_else(|| SyncError::Server(format!("no free local name for the folder {:?}", f.name)))?
            }
        };
        out.push((f.clone(), rec));
    }
    for (name, rec) in known {
        if !rec.gone && !remote.iter().any(|f| f.name == name) {
            let rec = FolderSync { gone: true, ..rec };
            db(ctx, move |d| d.put_sync_folder(user, account, &name, &rec)).await?;
        }
    }
    Ok(out)
}

fn local_path_of(ctx: &Ctx, f: &RemoteFolder) -> String {
    let decoded = crate::imap::utf7::decode(f.name.as_bytes()).unwrap_or_else(|| f.name.clone());
    plan::local_path(&ctx.account_name, &decoded, f.delimiter.as_deref())
}
