//! A whole IMAP exchange without sockets: client bytes in, server bytes out, through the same
//! framing (imap-next) and session as a real connection. Used by the fuzz target
//! `imap_session` and its seed replay (arbitrary command sequences, literals included), and
//! handy for exact-bytes tests.

use std::sync::Arc;

use imap_next::server::{Event, Options, Server};
use imap_next::{Interrupt, Io, State};
use imap_types::response::{CommandContinuationRequest, Greeting};

use super::ImapSettings;
use super::session::{Env, Session, Step};
use crate::mailstore::MailStore;

/// A logged-in session of `user` over `store` (TLS assumed), fed `input` in one piece.
/// Returns everything the server wrote after the greeting.
pub fn run(store: Arc<MailStore>, user: &str, input: &[u8]) -> Vec<u8> {
    run_in(env(store), user, input)
}

/// The environment `run` uses: no hold queue behind `Scheduled`.
pub fn env(store: Arc<MailStore>) -> Arc<Env> {
    let settings = ImapSettings { max_append_size: 1 << 20, ..ImapSettings::default() };
    Arc::new(Env {
        store,
        settings: Arc::new(settings),
        space: Arc::new(crate::store::space::FreeSpace::new(std::env::temp_dir(), 0)),
        clock: Arc::new(crate::clock::SystemClock),
        catch_ups: Default::default(),
        held: None,
    })
}

/// `run` in a given environment (a test's, with a hold queue), as a client on 127.0.0.1.
/// Call it off the async runtime (a hold queue waits for the queue's commits).
pub fn run_in(env: Arc<Env>, user: &str, input: &[u8]) -> Vec<u8> {
    let settings = env.settings.as_ref().clone();
    let mut session = Session::new(env, "script".into(), true);
    session.peer = Some(([127, 0, 0, 1], 0).into());
    let mut out = Vec::new();
    if !session.login_done("pre", user) {
        return session.out.take();
    }
    session.out.take();
    let mut options = Options::default();
    options.max_literal_size = settings.max_append_size;
    options.max_command_size = settings.max_append_size + 64 * 1024;
    let mut server = Server::new(options, Greeting::ok(None, "script").expect("valid"));
    server.enqueue_input(input);
    let mut greeted = false;
    for _ in 0..100_000 {
        match server.next() {
            Err(Interrupt::Io(Io::Output(bytes))) => {
                if std::mem::replace(&mut greeted, true) {
                    out.extend_from_slice(&bytes);
                }
            }
            Err(Interrupt::Io(Io::NeedMoreInput)) => break,
            Err(Interrupt::Error(_)) => {
                session.malformed(None);
                out.extend(session.out.take());
            }
            Ok(Event::CommandReceived { command }) => {
                let mut step = session.handle(command);
                out.extend(session.out.take());
                while matches!(step, Step::More) {
                    step = session.resume();
                    out.extend(session.out.take());
                }
                if matches!(step, Step::Logout) {
                    break;
                }
            }
            Ok(Event::IdleCommandReceived { .. }) => {
                let _ = server.idle_accept(CommandContinuationRequest::basic(None, "idling").expect("valid"));
                // As the driver does on a change signal: a shared answer, else a read.
                let signal = session.user_id().and_then(|u| session.env.store.db.modseq(u).ok()).unwrap_or(0);
                match session.idle_changes_shared(signal) {
                    crate::imap::session::Idle::Done => {}
                    crate::imap::session::Idle::Read(reader) => session.idle_changes(reader),
                    // One session here: nobody else is reading.
                    crate::imap::session::Idle::Wait(_) => session.catch_up(true),
                }
                out.extend(session.out.take());
            }
            Ok(Event::CommandAuthenticateReceived { command_authenticate }) => {
                let tag = command_authenticate.tag.as_ref().to_string();
                let status = imap_types::response::Status::bad(
                    imap_types::core::Tag::try_from(tag).ok(),
                    None,
                    "already logged in",
                )
                .expect("valid");
                let _ = server.authenticate_finish(status);
            }
            Ok(_) => {}
        }
    }
    out
}
