//! One IMAP session's protocol state, without I/O (docs/imap.md). The driver hands it each
//! parsed command; the session renders its responses into `out` and returns a [`Step`] for
//! what only the driver can do (check a password, start TLS, IDLE, hang up). Handlers are
//! grouped by what they touch: `auth.rs` (CAPABILITY, LOGIN, ENABLE, ID, NAMESPACE),
//! `folders.rs` (LIST, STATUS, CREATE, DELETE, RENAME, SUBSCRIBE, APPEND, QUOTA),
//! `selected.rs` (SELECT and the view), `messages.rs` (FETCH, STORE, SEARCH, COPY, MOVE,
//! EXPUNGE).

mod auth;
mod catchup;
mod folders;
mod messages;
mod scheduled;
mod selected;

use std::sync::Arc;

use imap_types::command::{Command, CommandBody};
use imap_types::mailbox::Mailbox as WireMailbox;

use super::ImapSettings;
use super::utf7;
use super::wire::{Out, code};
use crate::clock::Clock;
use crate::mailstore::{MailError, MailStore};
use crate::store::space::FreeSpace;

pub use catchup::{CatchUps, Idle};
pub use selected::Selected;

/// What sessions share.
pub struct Env {
    pub store: Arc<MailStore>,
    pub settings: Arc<ImapSettings>,
    pub space: Arc<FreeSpace>,
    pub clock: Arc<dyn Clock>,
    /// The hold queue behind `Scheduled`; `None` where there is no queue (socketless scripts):
    /// then nothing can be scheduled over IMAP.
    pub held: Option<Arc<super::held::HoldQueue>>,
    /// Catch-up answers shared by the sessions one change wakes (`catchup.rs`).
    pub catch_ups: CatchUps,
}

/// The logged-in user: the account name and the mail store's number for it.
#[derive(Debug, Clone)]
pub struct User {
    pub name: String,
    pub id: u32,
}

/// What the driver must do after a command.
#[derive(Debug)]
pub enum Step {
    /// Write `out`, read the next command.
    Next,
    /// FETCH has more to render: write `out`, then call [`Session::resume`].
    More,
    /// Check this password through the login door, then call [`Session::login_done`].
    Login { tag: String, login: String, password: String },
    /// Write `out` (the OK), then the TLS handshake.
    StartTls,
    /// Write `out` (BYE and the tagged OK), then close.
    Logout,
}

pub struct Session {
    pub env: Arc<Env>,
    /// In every NO/BAD text and every log line of the session.
    pub id: String,
    pub tls: bool,
    /// The client's address (its IP goes in the records of what it schedules or cancels).
    pub peer: Option<std::net::SocketAddr>,
    pub user: Option<User>,
    pub selected: Option<Selected>,
    pub condstore: bool,
    pub qresync: bool,
    pub out: Out,
    /// A FETCH still rendering (long results go out in slices, so memory stays bounded and a
    /// slow reader slows only itself).
    pending: Option<messages::FetchJob>,
    /// The tag of an AUTHENTICATE waiting for the client's response.
    pub auth_tag: Option<String>,
    /// Another session deleted the selected mailbox: `* BYE` is in `out` and the connection
    /// ends once it is written (Dovecot does the same; the view cannot go on).
    pub ending: bool,
}

/// Mailbox names as the store knows them (UTF-8); a name that is not valid modified UTF-7
/// is refused with the text given.
pub fn mailbox_name(m: &WireMailbox<'_>) -> Result<String, &'static str> {
    match m {
        WireMailbox::Inbox => Ok("INBOX".into()),
        WireMailbox::Other(o) => utf7::decode(o.as_ref()).ok_or("mailbox name is not valid modified UTF-7"),
    }
}

impl Session {
    pub fn new(env: Arc<Env>, id: String, tls: bool) -> Session {
        Session {
            env,
            id,
            tls,
            peer: None,
            user: None,
            selected: None,
            condstore: false,
            qresync: false,
            out: Out::default(),
            pending: None,
            auth_tag: None,
            ending: false,
        }
    }

    /// `tag OK text`.
    pub(super) fn ok(&mut self, tag: &str, code: Option<&str>, text: &str) -> Step {
        self.out.tagged(tag, "OK", code, text);
        Step::Next
    }

    pub(super) fn no(&mut self, tag: &str, code: Option<&str>, text: &str) -> Step {
        let text = format!("{text} (session {})", self.id);
        self.out.tagged(tag, "NO", code, &text);
        Step::Next
    }

    pub(super) fn bad(&mut self, tag: &str, text: &str) -> Step {
        let text = format!("{text} (session {})", self.id);
        self.out.tagged(tag, "BAD", None, &text);
        Step::Next
    }

    /// A command imap-codec could not parse (imap-next does not answer those itself).
    pub fn malformed(&mut self, tag: Option<&str>) {
        let text = format!("Command not understood (session {})", self.id);
        self.out.tagged(tag.unwrap_or("*"), "BAD", Some(code::CLIENTBUG), &text);
    }

    /// The one place store errors become replies (and log lines).
    pub(super) fn store_error(&mut self, tag: &str, e: MailError) -> Step {
        match e {
            MailError::NoMailbox(name) => self.no(tag, Some(code::NONEXISTENT), &format!("No mailbox {name}")),
            MailError::MailboxExists(name) => {
                self.no(tag, Some(code::ALREADYEXISTS), &format!("Mailbox {name} already exists"))
            }
            MailError::BadName(_, why) => self.no(tag, Some(code::CANNOT), &format!("Not a mailbox name: {why}")),
            MailError::Reserved(_, why) => self.no(tag, Some(code::CANNOT), why),
            MailError::HasChildren(_) => self.no(tag, Some(code::INUSE), "Mailbox has children: delete them first"),
            MailError::OverQuota(q) => {
                self.no(tag, Some(code::OVERQUOTA), &format!("Over quota: {} bytes do not fit", q.size))
            }
            e => {
                tracing::error!(session = %self.id, error = %e, "mail store error");
                self.no(tag, Some(code::SERVERBUG), "Internal error; the operator's log has the details")
            }
        }
    }

    pub fn user_id(&self) -> Option<u32> {
        self.user.as_ref().map(|u| u.id)
    }

    /// Handle one parsed command.
    pub fn handle(&mut self, cmd: Command<'_>) -> Step {
        use CommandBody as C;
        let tag = cmd.tag.as_ref().to_string();
        // RFC 3501 §7.4.1: no EXPUNGE while answering FETCH, STORE or SEARCH (UID forms may).
        let expunge_ok = !matches!(
            &cmd.body,
            C::Fetch { uid: false, .. } | C::Store { uid: false, .. } | C::Search { uid: false, .. }
        );
        let step = self.dispatch(&tag, cmd.body);
        if matches!(step, Step::Next) && self.pending.is_none() {
            // What others changed is announced after every command, before its tagged reply
            // would be too late: the tagged line is already in `out`, so insert before it.
            self.catch_up_before_tagged(expunge_ok);
        }
        if self.ending { Step::Logout } else { step }
    }

    fn dispatch(&mut self, tag: &str, body: CommandBody<'_>) -> Step {
        use CommandBody as C;
        // Any state.
        match body {
            C::Capability => self.capability(tag),
            C::Noop => self.ok(tag, None, "NOOP completed"),
            C::Logout => {
                self.out.untagged("BYE", None, "gatepost logging out");
                self.ok(tag, None, "LOGOUT completed");
                Step::Logout
            }
            C::Id { parameters } => self.id_command(tag, parameters),
            body => {
                if self.user.is_none() {
                    return self.not_authenticated(tag, body);
                }
                self.authenticated(tag, body)
            }
        }
    }

    fn not_authenticated(&mut self, tag: &str, body: CommandBody<'_>) -> Step {
        use CommandBody as C;
        match body {
            C::StartTLS if self.tls => self.bad(tag, "TLS is already active"),
            C::StartTLS => {
                self.ok(tag, None, "Begin TLS negotiation now");
                Step::StartTls
            }
            C::Login { username, password } => self.login(tag, username.as_ref(), password.declassify().as_ref()),
            C::Authenticate { .. } => self.bad(tag, "AUTHENTICATE is handled by the driver"),
            _ => self.bad(tag, "Log in first"),
        }
    }

    fn authenticated(&mut self, tag: &str, body: CommandBody<'_>) -> Step {
        use CommandBody as C;
        match body {
            C::StartTLS | C::Login { .. } | C::Authenticate { .. } => self.bad(tag, "Already logged in"),
            C::Enable { capabilities } => self.enable(tag, capabilities.as_ref()),
            C::Namespace => self.namespace(tag),
            C::Select { mailbox, parameters } => self.select(tag, &mailbox, false, &parameters),
            C::Examine { mailbox, parameters } => self.select(tag, &mailbox, true, &parameters),
            C::Create { mailbox } => self.create(tag, &mailbox),
            C::Delete { mailbox } => self.delete(tag, &mailbox),
            C::Rename { from, to } => self.rename(tag, &from, &to),
            C::Subscribe { mailbox } => self.subscribe(tag, &mailbox, true),
            C::Unsubscribe { mailbox } => self.subscribe(tag, &mailbox, false),
            C::List { reference, mailbox_wildcard } => self.list(tag, &reference, &mailbox_wildcard, false),
            C::Lsub { reference, mailbox_wildcard } => self.list(tag, &reference, &mailbox_wildcard, true),
            C::Status { mailbox, item_names } => self.status(tag, &mailbox, &item_names),
            C::Append { mailbox, flags, date, message } => self.append(tag, &mailbox, &flags, date.as_ref(), &message),
            C::GetQuota { root } => self.get_quota(tag, root.as_ref()),
            C::GetQuotaRoot { mailbox } => self.get_quota_root(tag, &mailbox),
            C::SetQuota { .. } => self.no(tag, Some(code::CANNOT), "The quota grows by itself and cannot be set"),
            // imap-next hands IDLE to the driver as its own event; it never arrives here.
            C::Idle => self.bad(tag, "IDLE is handled by the driver"),
            body => {
                if self.selected.is_none() {
                    return self.bad(tag, "Select a mailbox first");
                }
                self.in_mailbox(tag, body)
            }
        }
    }

    fn in_mailbox(&mut self, tag: &str, body: CommandBody<'_>) -> Step {
        use CommandBody as C;
        match body {
            C::Check => self.ok(tag, None, "CHECK completed"),
            C::Close => self.close(tag),
            C::Unselect => {
                self.selected = None;
                self.ok(tag, None, "UNSELECT completed")
            }
            C::Expunge => self.expunge(tag, None),
            C::ExpungeUid { sequence_set } => self.expunge(tag, Some(&sequence_set)),
            C::Fetch { sequence_set, macro_or_item_names, uid, modifiers } => {
                self.fetch(tag, &sequence_set, macro_or_item_names, uid, &modifiers)
            }
            C::Store { sequence_set, kind, response, flags, uid, modifiers } => {
                self.store(tag, &sequence_set, kind, response, &flags, uid, &modifiers)
            }
            C::Search { charset, criteria, uid } => self.search(tag, charset.as_ref(), criteria.as_ref(), uid),
            C::Copy { sequence_set, mailbox, uid } => self.copy_or_move(tag, &sequence_set, &mailbox, uid, false),
            C::Move { sequence_set, mailbox, uid } => self.copy_or_move(tag, &sequence_set, &mailbox, uid, true),
            _ => self.bad(tag, "Command not supported"),
        }
    }

    /// Continue a FETCH that has more to render.
    pub fn resume(&mut self) -> Step {
        let (step, uid) = self.fetch_more();
        if matches!(step, Step::Next) {
            self.catch_up_before_tagged(uid);
        }
        step
    }
}

#[cfg(test)]
mod tests;
