//! Folder renames at the source (docs/accounts.md, "Folders"): a new source folder whose
//! messages all match a folder that vanished in the same listing is that folder, renamed.
//! The local mailbox moves with it (children included) and nothing is fetched twice. The
//! match is by Message-ID and size, read from the new folder's headers only.

use std::collections::BTreeMap;

use super::connect::Session;
use super::pass::{Ctx, RemoteFolder, SyncError, uid_fetch};
use crate::mailstore::db::FolderSync;

/// A message as the match sees it: its Message-ID (if any) and size.
pub type Identity = (Option<String>, u64);

/// Whether every message of `new` is one of `old` (as a multiset); an empty folder matches
/// nothing (it says nothing about where it came from).
pub fn all_match(new: &[Identity], old: &[Identity]) -> bool {
    if new.is_empty() {
        return false;
    }
    let mut pool: BTreeMap<&Identity, usize> = BTreeMap::new();
    for o in old {
        *pool.entry(o).or_default() += 1;
    }
    new.iter().all(|n| match pool.get_mut(n) {
        Some(c) if *c > 0 => {
            *c -= 1;
            true
        }
        _ => false,
    })
}

fn message_id(header: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(header);
    // As the mail store keeps it (`message_id_of`): the value without its whitespace.
    let value = text.split_once(':').map(|(_, v)| v.split_whitespace().collect::<Vec<_>>().join(""))?;
    (!value.is_empty()).then_some(value)
}

/// Pairs (new folder, vanished folder's source name) that are renames.
pub async fn detect(
    session: &mut Session,
    ctx: &Ctx,
    fresh: &[RemoteFolder],
    vanished: &[(String, FolderSync)],
) -> Result<Vec<(RemoteFolder, String)>, SyncError> {
    let mut olds: Vec<(String, Vec<Identity>)> = Vec::new();
    for (name, rec) in vanished {
        olds.push((name.clone(), ctx.store.db.identities(ctx.user, rec.mailbox)?));
    }
    let mut out = Vec::new();
    for f in fresh {
        if olds.is_empty() {
            break;
        }
        let selected = super::pass::examine(session, ctx, &f.name).await?;
        if selected == 0 {
            continue;
        }
        let fetched =
            uid_fetch(session, ctx.timeout, "1:*", "(UID RFC822.SIZE BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])").await?;
        let new: Vec<Identity> =
            fetched.iter().map(|m| (m.header().and_then(message_id), u64::from(m.size.unwrap_or(0)))).collect();
        if let Some(i) = olds.iter().position(|(_, old)| all_match(&new, old)) {
            let (name, _) = olds.remove(i);
            tracing::info!(account = %ctx.account_name, from = %name, to = %f.name, "folder renamed at the source");
            out.push((f.clone(), name));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(list: &[(&str, u64)]) -> Vec<Identity> {
        list.iter().map(|(m, s)| ((!m.is_empty()).then(|| m.to_string()), *s)).collect()
    }

    #[test]
    fn a_rename_needs_every_new_message_among_the_old_ones() {
        let old = ids(&[("<a@x>", 10), ("<b@x>", 20), ("", 5), ("", 5)]);
        assert!(all_match(&ids(&[("<a@x>", 10), ("<b@x>", 20)]), &old));
        assert!(all_match(&ids(&[("", 5), ("", 5)]), &old), "twins count twice");
        assert!(!all_match(&ids(&[("", 5), ("", 5), ("", 5)]), &old), "but not three times");
        assert!(!all_match(&ids(&[("<a@x>", 11)]), &old), "same id, other size");
        assert!(!all_match(&ids(&[("<c@x>", 10)]), &old));
        assert!(!all_match(&[], &old), "an empty folder matches nothing");
    }

    #[test]
    fn the_message_id_is_read_from_the_header_field() {
        assert_eq!(message_id(b"Message-ID: <a@x>\r\n\r\n"), Some("<a@x>".into()));
        assert_eq!(message_id(b"Message-Id:\r\n <folded@x>\r\n\r\n"), Some("<folded@x>".into()));
        assert_eq!(message_id(b"\r\n"), None);
    }
}
