//! Command implementations. Each opens what it needs from the config and prints for people,
//! always through `output` (terminal escapes, closed pipes).

pub mod account;
mod account_add;
mod account_check;
mod account_set;
mod account_sync;
pub mod import;
pub mod mail;
pub mod output;
pub mod queue;
pub mod store;
pub mod trace;
pub mod user;
pub mod view;

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use gatepost::config::{Config, LogFormat};
use gatepost::store::Store;

pub fn load_config(path: &Path) -> anyhow::Result<Config> {
    Config::load(path).map_err(|errors| anyhow::anyhow!("{} has errors:\n{errors}", path.display()))
}

pub fn open_store(path: &Path) -> anyhow::Result<(Config, Store)> {
    let config = load_config(path)?;
    let store =
        Store::open(&config.data_dir).with_context(|| format!("opening the store in {}", config.data_dir.display()))?;
    Ok((config, store))
}

/// The config text, then what it names on disk (certificates, relay files, permissions):
/// errors are what `serve` would refuse, warnings what it would log.
pub fn check_config(path: &Path) -> anyhow::Result<ExitCode> {
    let config = match Config::load(path) {
        Ok(c) => c,
        Err(errors) => {
            output::eprintln(&format!("{}: {} error(s)", path.display(), errors.0.len()));
            output::eprintln(&errors.to_string());
            return Ok(ExitCode::FAILURE);
        }
    };
    let found = gatepost::app::checks::check(&config);
    for w in config.warnings.iter().chain(&found.warnings) {
        output::eprintln(&format!("warning: {w}"));
    }
    if !found.errors.is_empty() {
        output::eprintln(&format!("{}: {} error(s)", path.display(), found.errors.len()));
        for e in &found.errors {
            output::eprintln(&e.to_string());
        }
        return Ok(ExitCode::FAILURE);
    }
    output::println(&format!("{}: OK", path.display()))?;
    Ok(ExitCode::SUCCESS)
}

fn init_logging(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&config.log.level));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(|| LogWriter).with_ansi(ansi);
    match config.log.format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

/// Log lines go to stderr. When nobody reads it any more (`gatepost serve 2>&1 | head`), they
/// are dropped: tracing-subscriber would report the failed write with `eprintln!`, which
/// panics on the same closed pipe and takes the server down with it.
struct LogWriter;

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let _ = std::io::stderr().write_all(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Run until SIGTERM/SIGINT, or until the store shows damage (a panic inside redb in any
/// task): then stop as cleanly as possible, without marking the stop clean, and fail.
/// Every IMAP IDLE session holds a socket: raise the open-files limit to the hard limit
/// (Dovecot and Postfix do the same), and say what it is.
fn raise_open_files_limit() {
    #[cfg(unix)]
    {
        use rustix::process::{Resource, getrlimit, setrlimit};
        let limit = getrlimit(Resource::Nofile);
        let raised = rustix::process::Rlimit { current: limit.maximum, maximum: limit.maximum };
        match setrlimit(Resource::Nofile, raised) {
            Ok(()) => tracing::info!(open_files = ?limit.maximum, was = ?limit.current, "open-files limit"),
            Err(e) => tracing::warn!(error = %e, current = ?limit.current, "could not raise the open-files limit"),
        }
    }
}

pub fn serve(path: &Path) -> anyhow::Result<ExitCode> {
    let config = load_config(path)?;
    init_logging(&config);
    raise_open_files_limit();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        // Listening before start returns: a SIGTERM from then on must already be ours.
        let stop = stop_signals()?;
        let running = gatepost::app::start(&config, Arc::new(gatepost::clock::SystemClock)).await?;
        let damage = tokio::select! {
            _ = stop => None,
            d = gatepost::store::integrity::damage_seen() => Some(d),
        };
        tracing::info!("shutting down");
        running.shutdown().await;
        match damage {
            Some(d) => Err(anyhow::anyhow!("stopped: {d}")),
            None => anyhow::Ok(()),
        }
    })?;
    Ok(ExitCode::SUCCESS)
}

/// SIGTERM or SIGINT, registered now (a signal before registration would kill the process
/// without a clean stop); the future completes at the first of them.
#[cfg(unix)]
fn stop_signals() -> std::io::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    })
}

#[cfg(not(unix))]
fn stop_signals() -> std::io::Result<impl std::future::Future<Output = ()>> {
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
    })
}

/// Read a secret from a file (first line), or ask for it on the terminal, twice, without
/// echo. Without a terminal (a script, a service) there is nobody to ask: say what to use.
pub fn read_password(file: Option<&Path>, prompt: &str) -> anyhow::Result<String> {
    if let Some(f) = file {
        let text = std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?;
        return Ok(text.lines().next().unwrap_or_default().to_string());
    }
    // rpassword asks on /dev/tty, not on stdin; without a controlling terminal it fails with a
    // bare "No such device or address (os error 6)".
    #[cfg(unix)]
    if std::fs::OpenOptions::new().read(true).write(true).open("/dev/tty").is_err() {
        anyhow::bail!(
            "no terminal to ask for the password on: use --password-file FILE (its first line is the password; \
             --password-file /dev/stdin reads it from a pipe)"
        );
    }
    let first = rpassword::prompt_password(prompt).context("reading the password")?;
    let again = rpassword::prompt_password("The same again: ").context("reading the password")?;
    if first != again {
        anyhow::bail!("the two passwords differ; nothing was changed");
    }
    Ok(first)
}
