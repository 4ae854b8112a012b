//! The `gatepost` command: run the server and operate it.

mod cli;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

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
    /// Check the configuration and report every error at once.
    CheckConfig,
    /// Manage users.
    #[command(subcommand)]
    User(cli::user::UserCommand),
    /// Inspect and cancel queued messages.
    #[command(subcommand)]
    Queue(cli::queue::QueueCommand),
    /// Search the audit trail (`trace --sender a@b`), show a timeline, rebuild the index.
    Trace(cli::trace::TraceArgs),
}

fn main() -> ExitCode {
    let args = Args::parse();
    let result = match args.command {
        Command::Serve => cli::serve(&args.config),
        Command::CheckConfig => cli::check_config(&args.config),
        Command::User(cmd) => cli::user::run(&args.config, cmd),
        Command::Queue(cmd) => cli::queue::run(&args.config, cmd),
        Command::Trace(cmd) => cli::trace::run(&args.config, cmd),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("gatepost: {e:#}");
            ExitCode::FAILURE
        }
    }
}
