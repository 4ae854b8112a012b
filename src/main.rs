//! The `gatepost` command: run the server and operate it.

mod cli;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use cli::output;

#[derive(Parser)]
#[command(name = "gatepost", version, about = "SMTP gateway with scheduled delivery through a third-party relay")]
struct Args {
    /// Configuration file.
    #[arg(long, global = true, env = "GATEPOST_CONFIG", default_value = "config/gatepost.toml")]
    config: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the submission listeners, the dispatcher and the trace indexer.
    Serve,
    /// Check the configuration and the files it names; report every error at once.
    CheckConfig,
    /// Manage users.
    #[command(subcommand)]
    User(cli::user::UserCommand),
    /// Inspect and cancel queued messages.
    #[command(subcommand)]
    Queue(cli::queue::QueueCommand),
    /// Search the audit trail (`trace --sender a@b`), show a timeline, rebuild the index.
    Trace(Box<cli::trace::TraceArgs>),
    /// Check the store.
    #[command(subcommand)]
    Store(cli::store::StoreCommand),
    /// A user's mailboxes.
    #[command(subcommand)]
    Mailbox(cli::mail::MailboxCommand),
    /// A user's quota (it grows by itself, up to a ceiling).
    #[command(subcommand)]
    Quota(cli::mail::QuotaCommand),
    /// A user's connected external mailboxes.
    #[command(subcommand)]
    Account(cli::account::AccountCommand),
    /// The key that seals account passwords.
    #[command(subcommand)]
    Secrets(cli::account::SecretsCommand),
    /// Import mail from an mbox, a Maildir or .eml files (with the server stopped).
    Import(cli::import::ImportArgs),
}

fn main() -> ExitCode {
    owner_only_files();
    gatepost::store::integrity::install_panic_hook();
    let args = Args::parse();
    // A panic inside redb is a damaged database file: the hook noted it (without Rust's panic
    // text), and it ends the command as an error naming the file. Any other panic is a bug,
    // reported by the default hook.
    let result =
        std::panic::catch_unwind(|| run(args)).unwrap_or_else(|_| match gatepost::store::integrity::damage() {
            Some(damage) => Err(anyhow::anyhow!("damaged store: {damage}")),
            None => Err(anyhow::anyhow!("internal error (a bug in gatepost; the panic is described above)")),
        });
    match result {
        Ok(code) => code,
        // The reader of our output went away (`gatepost queue list | head`): not a failure.
        Err(e) if output::is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            output::eprintln(&format!("gatepost: {e:#}"));
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        Command::Serve => cli::serve(&args.config),
        Command::CheckConfig => cli::check_config(&args.config),
        Command::User(cmd) => cli::user::run(&args.config, cmd),
        Command::Queue(cmd) => cli::queue::run(&args.config, cmd),
        Command::Trace(cmd) => cli::trace::run(&args.config, *cmd),
        Command::Store(cmd) => cli::store::run(&args.config, cmd),
        Command::Mailbox(cmd) => cli::mail::mailbox(&args.config, cmd),
        Command::Quota(cmd) => cli::mail::quota(&args.config, cmd),
        Command::Account(cmd) => cli::account::run(&args.config, cmd),
        Command::Secrets(cmd) => cli::account::secrets(&args.config, cmd),
        Command::Import(cmd) => cli::import::run(&args.config, cmd),
    }
}

/// Everything gatepost creates is its own business: the data tree holds password hashes and
/// other people's mail. Our own files get explicit modes; redb, tantivy and the relay's outbox
/// create theirs through the umask, so it is 077 whatever the caller's was.
fn owner_only_files() {
    #[cfg(unix)]
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
}
