//! LIST, LSUB, STATUS, CREATE, DELETE, RENAME, SUBSCRIBE, APPEND, GETQUOTA, GETQUOTAROOT.
//! Names are UTF-8 in the store and modified UTF-7 on the wire; `/` is the only delimiter.

use std::time::Instant;

use imap_types::datetime::DateTime;
use imap_types::extensions::binary::LiteralOrLiteral8;
use imap_types::flag::Flag;
use imap_types::mailbox::{ListMailbox, Mailbox as WireMailbox};
use imap_types::status::StatusDataItemName;

use super::selected::wire_name;
use super::{Session, Step, mailbox_name};
use crate::accounts::quota::Writer;
use crate::imap::utf7;
use crate::imap::wire::code;
use crate::mailstore::db::{Mailbox, NewMessage, canonical_name};

/// `*` matches anything, `%` anything but the delimiter (RFC 3501 §6.3.8); INBOX matches at
/// any case.
pub fn matches(pattern: &str, name: &str) -> bool {
    fn go(p: &[char], n: &[char]) -> bool {
        match p.split_first() {
            None => n.is_empty(),
            Some(('*', rest)) => (0..=n.len()).any(|i| go(rest, &n[i..])),
            Some(('%', rest)) => (0..=n.len()).take_while(|&i| i == 0 || n[i - 1] != '/').any(|i| go(rest, &n[i..])),
            Some((c, rest)) => n.first() == Some(c) && go(rest, &n[1..]),
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    if go(&p, &n) {
        return true;
    }
    // INBOX is case-insensitive: try the pattern with its INBOX prefix made canonical.
    let upper: String = pattern.chars().take(5).collect::<String>().to_ascii_uppercase();
    if upper == "INBOX" && name.starts_with("INBOX") {
        let p2: Vec<char> = format!("INBOX{}", pattern.chars().skip(5).collect::<String>()).chars().collect();
        return go(&p2, &n);
    }
    false
}

impl Session {
    fn name_or_no(&mut self, tag: &str, m: &WireMailbox<'_>) -> Result<String, Step> {
        mailbox_name(m).map_err(|why| self.no(tag, Some(code::CANNOT), why))
    }

    pub(super) fn list(
        &mut self,
        tag: &str,
        reference: &WireMailbox<'_>,
        pattern: &ListMailbox<'_>,
        lsub: bool,
    ) -> Step {
        let user = self.user_id().expect("authenticated");
        let verb = if lsub { "LSUB" } else { "LIST" };
        let reference = match reference {
            WireMailbox::Inbox => "INBOX".to_string(),
            WireMailbox::Other(o) => utf7::decode(o.as_ref()).unwrap_or_default(),
        };
        let raw: &[u8] = match pattern {
            ListMailbox::Token(t) => t.as_ref(),
            ListMailbox::String(s) => s.as_ref(),
        };
        let Some(pattern) = utf7::decode(raw) else {
            return self.ok(tag, None, &format!("{verb} completed"));
        };
        if pattern.is_empty() && !lsub {
            self.out.raw("* LIST (\\Noselect) \"/\" \"\"").crlf();
            return self.ok(tag, None, "LIST completed");
        }
        let full = if reference.is_empty() || pattern.starts_with('/') {
            pattern
        } else if reference.ends_with('/') {
            format!("{reference}{pattern}")
        } else {
            format!("{reference}/{pattern}")
        };
        let boxes = match self.env.store.db.mailboxes(user) {
            Ok(b) => b,
            Err(e) => return self.store_error(tag, e),
        };
        let has_children = |name: &str| {
            let prefix = format!("{name}/");
            boxes.iter().any(|(_, m)| m.name.starts_with(&prefix))
        };
        if lsub {
            let subs = match self.env.store.db.subscriptions(user) {
                Ok(s) => s,
                Err(e) => return self.store_error(tag, e),
            };
            let mut shown: Vec<(String, &str)> = Vec::new();
            for name in subs.iter().filter(|n| matches(&full, n)) {
                let exists = boxes.iter().any(|(_, m)| &m.name == name);
                shown.push((name.clone(), if exists { "" } else { "\\Noselect" }));
            }
            // RFC 3501 §6.3.9: with `%`, a level holding only subscribed inferiors is shown
            // as `\Noselect` (it is not itself subscribed).
            if full.contains('%') && !full.contains('*') {
                for name in &subs {
                    let mut prefix = String::new();
                    for level in name.split('/').take(name.split('/').count() - 1) {
                        if !prefix.is_empty() {
                            prefix.push('/');
                        }
                        prefix.push_str(level);
                        if matches(&full, &prefix) && !subs.contains(&prefix) && !shown.iter().any(|s| s.0 == prefix) {
                            shown.push((prefix.clone(), "\\Noselect"));
                        }
                    }
                }
            }
            for (name, attrs) in shown {
                self.out.raw("* LSUB (").raw(attrs).raw(") \"/\" ").astring(&wire_name(&name)).crlf();
            }
            return self.ok(tag, None, "LSUB completed");
        }
        for (_, m) in boxes.iter().filter(|(_, m)| matches(&full, &m.name)) {
            let mut attrs = vec![if has_children(&m.name) { "\\HasChildren" } else { "\\HasNoChildren" }];
            if let Some(role) = &m.special_use {
                attrs.push(role);
            }
            self.out.raw("* LIST (").raw(&attrs.join(" ")).raw(") \"/\" ").astring(&wire_name(&m.name)).crlf();
        }
        self.ok(tag, None, "LIST completed")
    }

    pub(super) fn status(&mut self, tag: &str, mailbox: &WireMailbox<'_>, items: &[StatusDataItemName]) -> Step {
        let user = self.user_id().expect("authenticated");
        let name = match self.name_or_no(tag, mailbox) {
            Ok(n) => n,
            Err(s) => return s,
        };
        let db = &self.env.store.db;
        let rec: Mailbox = match db.mailbox_id(user, &name).and_then(|id| db.mailbox(user, id)) {
            Ok(r) => r,
            Err(e) => return self.store_error(tag, e),
        };
        let recent = rec.uidnext.saturating_sub(rec.recent_from).min(rec.exists);
        let mut parts = Vec::new();
        for item in items {
            parts.push(match item {
                StatusDataItemName::Messages => format!("MESSAGES {}", rec.exists),
                StatusDataItemName::Recent => format!("RECENT {recent}"),
                StatusDataItemName::UidNext => format!("UIDNEXT {}", rec.uidnext),
                StatusDataItemName::UidValidity => format!("UIDVALIDITY {}", rec.uidvalidity),
                StatusDataItemName::Unseen => format!("UNSEEN {}", rec.unseen),
                StatusDataItemName::Deleted => format!("DELETED {}", rec.deleted),
                StatusDataItemName::DeletedStorage => format!("DELETED-STORAGE {}", rec.deleted_size.div_ceil(1024)),
                StatusDataItemName::HighestModSeq => format!("HIGHESTMODSEQ {}", rec.highestmodseq),
            });
        }
        self.out.raw("* STATUS ").astring(&wire_name(&rec.name)).raw(" (").raw(&parts.join(" ")).raw(")").crlf();
        self.ok(tag, None, "STATUS completed")
    }

    pub(super) fn create(&mut self, tag: &str, mailbox: &WireMailbox<'_>) -> Step {
        let user = self.user_id().expect("authenticated");
        let name = match self.name_or_no(tag, mailbox) {
            Ok(n) => n.trim_end_matches('/').to_string(),
            Err(s) => return s,
        };
        let canonical = match canonical_name(&name) {
            Ok(n) => n,
            Err(e) => return self.store_error(tag, e),
        };
        if canonical.starts_with("Accounts/") {
            return self.no(tag, Some(code::NOPERM), "Folders under Accounts follow the connected accounts");
        }
        let now = self.env.clock.now();
        // Superior names are made too (RFC 3501 §6.3.3), so every parent LIST shows exists.
        let levels: Vec<&str> = canonical.split('/').collect();
        for depth in 1..levels.len() {
            let parent = levels[..depth].join("/");
            if self.env.store.db.mailbox_id(user, &parent).is_err()
                && let Err(e) = self.env.store.db.create_mailbox(user, &parent, now)
            {
                return self.store_error(tag, e);
            }
        }
        match self.env.store.db.create_mailbox(user, &canonical, now) {
            Ok(_) => self.ok(tag, None, "CREATE completed"),
            Err(e) => self.store_error(tag, e),
        }
    }

    pub(super) fn delete(&mut self, tag: &str, mailbox: &WireMailbox<'_>) -> Step {
        let user = self.user_id().expect("authenticated");
        let name = match self.name_or_no(tag, mailbox) {
            Ok(n) => n,
            Err(s) => return s,
        };
        if canonical_name(&name).is_ok_and(|n| n.starts_with("Accounts/")) {
            return self.no(tag, Some(code::NOPERM), "Folders under Accounts follow the connected accounts");
        }
        if let Ok(canonical) = canonical_name(&name)
            && self.selected.as_ref().is_some_and(|s| s.name == canonical)
        {
            self.selected = None;
        }
        match self.env.store.db.delete_mailbox(user, &name) {
            Ok(()) => {
                self.env.store.changed(user);
                self.ok(tag, None, "DELETE completed")
            }
            Err(e) => self.store_error(tag, e),
        }
    }

    pub(super) fn rename(&mut self, tag: &str, from: &WireMailbox<'_>, to: &WireMailbox<'_>) -> Step {
        let user = self.user_id().expect("authenticated");
        let (from, to) = match (self.name_or_no(tag, from), self.name_or_no(tag, to)) {
            (Ok(f), Ok(t)) => (f, t),
            (Err(s), _) | (_, Err(s)) => return s,
        };
        if [&from, &to].iter().any(|n| canonical_name(n).is_ok_and(|n| n.starts_with("Accounts/"))) {
            return self.no(tag, Some(code::NOPERM), "Folders under Accounts follow the connected accounts");
        }
        match self.env.store.db.rename_mailbox(user, &from, &to, self.env.clock.now()) {
            Ok(()) => {
                if let Some(sel) = self.selected.as_mut()
                    && let Ok(rec) = self.env.store.db.mailbox(user, sel.mailbox)
                {
                    sel.name = rec.name;
                }
                self.env.store.changed(user);
                self.ok(tag, None, "RENAME completed")
            }
            Err(e) => self.store_error(tag, e),
        }
    }

    pub(super) fn subscribe(&mut self, tag: &str, mailbox: &WireMailbox<'_>, on: bool) -> Step {
        let user = self.user_id().expect("authenticated");
        let name = match self.name_or_no(tag, mailbox) {
            Ok(n) => n,
            Err(s) => return s,
        };
        if on && let Err(e) = self.env.store.db.mailbox_id(user, &name) {
            return self.store_error(tag, e);
        }
        match self.env.store.db.subscribe(user, &name, on) {
            Ok(()) => self.ok(tag, None, if on { "SUBSCRIBE completed" } else { "UNSUBSCRIBE completed" }),
            Err(e) => self.store_error(tag, e),
        }
    }

    pub(super) fn append(
        &mut self,
        tag: &str,
        mailbox: &WireMailbox<'_>,
        flags: &[Flag<'_>],
        date: Option<&DateTime>,
        message: &LiteralOrLiteral8<'_>,
    ) -> Step {
        let user = self.user_id().expect("authenticated");
        let raw: &[u8] = match message {
            LiteralOrLiteral8::Literal(l) => l.data(),
            LiteralOrLiteral8::Literal8(l) => l.data.as_ref(),
        };
        if raw.is_empty() {
            return self.no(tag, Some(code::CANNOT), "An empty message cannot be stored");
        }
        if raw.len() > self.env.settings.max_append_size as usize {
            return self.no(tag, Some(code::TOOBIG), "Message larger than APPENDLIMIT");
        }
        if self.env.space.low(Instant::now()) {
            return self.no(tag, Some(code::UNAVAILABLE), "The server's disk is nearly full; try again later");
        }
        let name = match self.name_or_no(tag, mailbox) {
            Ok(n) => n,
            Err(s) => return s,
        };
        let id = match self.env.store.db.mailbox_id(user, &name) {
            Ok(id) => id,
            Err(crate::mailstore::MailError::NoMailbox(_)) => {
                return self.no(tag, Some(code::TRYCREATE), "No such mailbox");
            }
            Err(e) => return self.store_error(tag, e),
        };
        let flags: Vec<String> = flags.iter().map(|f| f.to_string()).collect();
        if Some(id) == self.scheduled_id() {
            return match self.schedule_messages(&[(raw.to_vec(), flags)], "IMAP APPEND") {
                Ok((validity, uids)) => match uids.first() {
                    Some(uid) => {
                        self.ok(tag, Some(&format!("APPENDUID {validity} {uid}")), "APPEND completed: scheduled")
                    }
                    None => self.ok(tag, None, "APPEND completed: scheduled"),
                },
                Err((c, text)) => self.no(tag, Some(c), &text),
            };
        }
        let internaldate = match date {
            Some(d) => jiff::Timestamp::from_second(d.as_ref().timestamp()).unwrap_or(self.env.clock.now()),
            None => self.env.clock.now(),
        };
        let new = NewMessage { raw, flags: &flags, internaldate, writer: Writer::User };
        let store = &self.env.store;
        match store.db.append(store.blobs.as_ref(), user, id, &new) {
            Ok(a) => {
                store.changed(user);
                let code = format!("APPENDUID {} {}", a.uidvalidity, a.uid);
                self.ok(tag, Some(&code), "APPEND completed")
            }
            Err(e) => self.store_error(tag, e),
        }
    }

    fn quota_line(&mut self, user: u32) -> Result<(), crate::mailstore::MailError> {
        let q = self.env.store.db.quota(user)?;
        // RFC 9208 §5.1: STORAGE in units of 1024 octets, rounded up.
        self.out
            .raw("* QUOTA \"\" (STORAGE ")
            .num(q.used.div_ceil(1024))
            .raw(" ")
            .num(q.limit.div_ceil(1024))
            .raw(")")
            .crlf();
        Ok(())
    }

    pub(super) fn get_quota(&mut self, tag: &str, root: &[u8]) -> Step {
        if !root.is_empty() {
            return self.no(tag, Some(code::NONEXISTENT), "The one quota root is \"\"");
        }
        match self.quota_line(self.user_id().expect("authenticated")) {
            Ok(()) => self.ok(tag, None, "GETQUOTA completed"),
            Err(e) => self.store_error(tag, e),
        }
    }

    pub(super) fn get_quota_root(&mut self, tag: &str, mailbox: &WireMailbox<'_>) -> Step {
        let user = self.user_id().expect("authenticated");
        let name = match self.name_or_no(tag, mailbox) {
            Ok(n) => n,
            Err(s) => return s,
        };
        let rec = match self.env.store.db.mailbox_id(user, &name) {
            Ok(_) => canonical_name(&name).unwrap_or(name),
            Err(e) => return self.store_error(tag, e),
        };
        self.out.raw("* QUOTAROOT ").astring(&wire_name(&rec)).raw(" \"\"").crlf();
        match self.quota_line(user) {
            Ok(()) => self.ok(tag, None, "GETQUOTAROOT completed"),
            Err(e) => self.store_error(tag, e),
        }
    }
}
