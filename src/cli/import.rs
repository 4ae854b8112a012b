//! `gatepost import USER --mbox FILE | --maildir DIR | --eml DIR [--into MAILBOX]`
//! (docs/accounts.md, "Files"): mail from files into a user's store, in batches (one pack
//! fsync and one commit each), with a progress bar. It writes blobs, which only one process
//! may do at a time (docs/mailstore.md), so it holds the server lock: stop `serve` first.

use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use gatepost::accounts::quota::Writer;
use gatepost::mailstore::MailStore;
use gatepost::mailstore::db::{MailError, NewMessage, Origin};
use gatepost::store::ServerLock;
use gatepost::sync::mbox::{MboxFormat, MboxItem, MboxReader};
use indicatif::{ProgressBar, ProgressStyle};
use jiff::Timestamp;

use super::output::{self, value};
use super::{load_config, open_store};

#[derive(Args)]
#[command(group(clap::ArgGroup::new("source").required(true).multiple(false).args(["mbox", "maildir", "eml"])))]
pub struct ImportArgs {
    user: String,
    /// An mbox file.
    #[arg(long)]
    mbox: Option<PathBuf>,
    /// mboxrd (default: the only variant whose messages come back byte for byte), mboxo or
    /// mboxcl2.
    #[arg(long, default_value = "mboxrd")]
    mbox_format: String,
    /// A Maildir (its cur/ and new/; Maildir++ subfolders go under --into).
    #[arg(long)]
    maildir: Option<PathBuf>,
    /// A directory of .eml files (one message each).
    #[arg(long)]
    eml: Option<PathBuf>,
    /// The mailbox to import into (made if missing). Default: Archive/Imported-<date>.
    #[arg(long)]
    into: Option<String>,
}

/// A batch: at most this many messages or (past the first) bytes.
const BATCH_MESSAGES: usize = 500;
const BATCH_BYTES: usize = 16 << 20;

struct Pending {
    raw: Vec<u8>,
    flags: Vec<String>,
    date: Timestamp,
}

struct Importer<'a> {
    store: &'a MailStore,
    user: u32,
    batch: Vec<(u32, Pending)>,
    bytes: usize,
    filed: u64,
    refused: Vec<String>,
    bar: ProgressBar,
}

impl Importer<'_> {
    fn add(&mut self, mailbox: u32, p: Pending) -> anyhow::Result<()> {
        self.bytes += p.raw.len();
        self.batch.push((mailbox, p));
        if self.batch.len() >= BATCH_MESSAGES || self.bytes >= BATCH_BYTES {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> anyhow::Result<()> {
        let batch = std::mem::take(&mut self.batch);
        self.bytes = 0;
        // One commit per mailbox of the batch (a Maildir's folders interleave rarely).
        let mut start = 0;
        while start < batch.len() {
            let mailbox = batch[start].0;
            let end = batch[start..].iter().position(|(m, _)| *m != mailbox).map_or(batch.len(), |i| start + i);
            let news: Vec<NewMessage> = batch[start..end]
                .iter()
                .map(|(_, p)| NewMessage { raw: &p.raw, flags: &p.flags, internaldate: p.date, writer: Writer::User })
                .collect();
            let done = self.store.db.file_all(self.store.blobs.as_ref(), self.user, mailbox, &news, &Origin::Import)?;
            for (r, (_, p)) in done.into_iter().zip(&batch[start..end]) {
                match r {
                    Ok(_) => self.filed += 1,
                    Err(MailError::OverQuota(q)) => anyhow::bail!(
                        "the quota is full after {} message(s): {q}; raise it (gatepost quota set) and import again \
                         (messages already imported are not imported twice only if you import into another mailbox)",
                        self.filed
                    ),
                    Err(e) => self.refused.push(format!("a message of {} bytes: {e}", p.raw.len())),
                }
                self.bar.inc(1);
            }
            start = end;
        }
        Ok(())
    }
}

/// The mailbox `name` (canonical), made with its parents if missing.
fn mailbox(store: &MailStore, user: u32, name: &str) -> anyhow::Result<u32> {
    let levels: Vec<&str> = name.split('/').collect();
    let mut id = 0;
    for depth in 1..=levels.len() {
        let n = levels[..depth].join("/");
        id = match store.db.mailbox_id(user, &n) {
            Ok(id) => id,
            Err(_) => store.db.create_mailbox(user, &n, Timestamp::now())?,
        };
    }
    Ok(id)
}

pub fn run(config_path: &Path, args: ImportArgs) -> anyhow::Result<ExitCode> {
    let config = load_config(config_path)?;
    let (_, users) = open_store(config_path)?;
    anyhow::ensure!(users.get_user(&args.user)?.is_some(), "no user {:?}", args.user);
    drop(users);
    let _lock = ServerLock::acquire(&config.data_dir).map_err(|e| {
        anyhow::anyhow!("{e}\n  gatepost import writes the mail store's files, which only one process may do: stop gatepost serve, import, start it again")
    })?;
    let store = MailStore::open(&config.data_dir, gatepost::app::settings::quota_rule(&config), false)?;
    let user = store.db.user(&args.user, Timestamp::now())?;
    let into =
        args.into.clone().unwrap_or_else(|| format!("Archive/Imported-{}", Timestamp::now().strftime("%Y-%m-%d")));
    let into = gatepost::mailstore::db::canonical_name(&into)?;
    anyhow::ensure!(
        !into.starts_with("Accounts/") && into != "Scheduled",
        "--into {into:?}: not a folder mail can be imported into"
    );
    let target = mailbox(&store, user, &into)?;
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{bar:30}] {pos}/{len} messages, {per_sec}, ETA {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let mut imp = Importer { store: &store, user, batch: Vec::new(), bytes: 0, filed: 0, refused: Vec::new(), bar };
    let max = config.imap.max_append_size;
    if let Some(path) = &args.mbox {
        let format: MboxFormat = args.mbox_format.parse().map_err(anyhow::Error::msg)?;
        let file = std::fs::File::open(path).with_context(|| format!("--mbox {}", path.display()))?;
        imp.bar.set_length(file.metadata()?.len() / 20_000 + 1); // a guess, corrected at the end
        for item in MboxReader::new(BufReader::new(file), format, max) {
            match item.with_context(|| format!("reading {}", path.display()))? {
                MboxItem::Message(m) => {
                    let date =
                        m.from_date.or_else(|| gatepost::message::date_header(&m.raw)).unwrap_or_else(Timestamp::now);
                    imp.add(target, Pending { raw: m.raw, flags: vec![], date })?;
                }
                MboxItem::TooLarge { line, size } => {
                    imp.refused.push(format!("the message at line {line}: {size} bytes, over [imap] max_append_size"))
                }
            }
            if imp.bar.position() >= imp.bar.length().unwrap_or(0) {
                imp.bar.set_length(imp.bar.position() + 100);
            }
        }
    } else if let Some(dir) = &args.maildir {
        let folders = maildir_folders(dir)?;
        let total: usize = folders.iter().map(|f| f.1.len()).sum();
        imp.bar.set_length(total as u64);
        for (sub, files) in folders {
            let name = if sub.is_empty() { into.clone() } else { format!("{into}/{sub}") };
            let mb = mailbox(&store, user, &gatepost::mailstore::db::canonical_name(&name)?)?;
            for (path, flags) in files {
                let (raw, date) = read_file(&path, max, &mut imp.refused)?;
                if let Some(raw) = raw {
                    imp.add(mb, Pending { raw, flags, date })?;
                }
            }
        }
    } else if let Some(dir) = &args.eml {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .with_context(|| format!("--eml {}", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x.eq_ignore_ascii_case("eml")))
            .collect();
        files.sort();
        imp.bar.set_length(files.len() as u64);
        for path in files {
            let (raw, date) = read_file(&path, max, &mut imp.refused)?;
            if let Some(raw) = raw {
                imp.add(target, Pending { raw, flags: vec![], date })?;
            }
        }
    }
    imp.flush()?;
    imp.bar.finish_and_clear();
    output::println(&format!("imported {} message(s) into {}", imp.filed, value(&into)))?;
    for r in &imp.refused {
        output::eprintln(&format!("not imported: {}", value(r)));
    }
    Ok(if imp.refused.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// A message file: CRLF line ends (`message::canonical_line_ends`: a bare CR in the header
/// refuses the file), INTERNALDATE from its Date header or else the file's time.
fn read_file(path: &Path, max: u64, refused: &mut Vec<String>) -> anyhow::Result<(Option<Vec<u8>>, Timestamp)> {
    let meta = std::fs::metadata(path).with_context(|| path.display().to_string())?;
    let mtime = meta.modified().ok().and_then(|t| Timestamp::try_from(t).ok()).unwrap_or_else(Timestamp::now);
    if meta.len() > max {
        refused.push(format!("{}: {} bytes, over [imap] max_append_size", path.display(), meta.len()));
        return Ok((None, mtime));
    }
    let read = std::fs::read(path).with_context(|| path.display().to_string())?;
    let raw = match gatepost::message::canonical_line_ends(&read) {
        Ok(raw) => raw.into_owned(),
        Err(e) => {
            refused.push(format!("{}: {e}", path.display()));
            return Ok((None, mtime));
        }
    };
    let date = gatepost::message::date_header(&raw).unwrap_or(mtime);
    Ok((Some(raw), date))
}

/// A message file and its flags.
type MaildirFile = (PathBuf, Vec<String>);

/// The Maildir's folders: "" (the Maildir itself) and each Maildir++ subfolder (`.A.B` →
/// `A/B`), each with its message files and their flags (`:2,` info).
pub fn maildir_folders(dir: &Path) -> anyhow::Result<Vec<(String, Vec<MaildirFile>)>> {
    let mut out = vec![(String::new(), maildir_files(dir)?)];
    let mut subs: Vec<(String, PathBuf)> = std::fs::read_dir(dir)
        .with_context(|| format!("--maildir {}", dir.display()))?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().to_string();
            let sub = name.strip_prefix('.')?.to_string();
            (!sub.is_empty() && e.path().join("cur").is_dir()).then(|| (sub.replace('.', "/"), e.path()))
        })
        .collect();
    subs.sort();
    for (name, path) in subs {
        out.push((name, maildir_files(&path)?));
    }
    Ok(out)
}

fn maildir_files(dir: &Path) -> anyhow::Result<Vec<MaildirFile>> {
    let mut files = Vec::new();
    for sub in ["cur", "new"] {
        let Ok(entries) = std::fs::read_dir(dir.join(sub)) else { continue };
        for e in entries.filter_map(|e| e.ok()) {
            let name = e.file_name().to_string_lossy().to_string();
            if name.starts_with('.') || !e.path().is_file() {
                continue;
            }
            files.push((e.path(), maildir_flags(&name)));
        }
    }
    files.sort();
    Ok(files)
}

/// IMAP flags from a Maildir file name's `:2,` info (https://cr.yp.to/proto/maildir.html):
/// D draft, F flagged, P passed (forwarded), R replied, S seen, T trashed.
pub fn maildir_flags(name: &str) -> Vec<String> {
    let Some((_, info)) = name.rsplit_once(":2,") else { return vec![] };
    info.chars()
        .filter_map(|c| match c {
            'D' => Some("\\Draft"),
            'F' => Some("\\Flagged"),
            'P' => Some("$Forwarded"),
            'R' => Some("\\Answered"),
            'S' => Some("\\Seen"),
            'T' => Some("\\Deleted"),
            _ => None,
        })
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maildir_info_becomes_imap_flags() {
        assert_eq!(maildir_flags("1700000000.M1P2.host:2,FRS"), ["\\Flagged", "\\Answered", "\\Seen"]);
        assert_eq!(maildir_flags("1700000000.M1P2.host:2,DPT"), ["\\Draft", "$Forwarded", "\\Deleted"]);
        assert!(maildir_flags("1700000000.M1P2.host").is_empty());
        assert!(maildir_flags("1700000000.M1P2.host:2,").is_empty());
    }
}
