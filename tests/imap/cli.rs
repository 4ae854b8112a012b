//! `gatepost mailbox list` and `gatepost quota show|set`, run as real processes beside a
//! running server: what they print follows what IMAP clients did, and a ceiling set from the
//! command line stops the next APPEND.

use std::path::Path;
use std::process::{Command, Output};

use crate::client::{Imap, tagged};
use crate::support::TestServer;

fn gatepost(config: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gatepost")).arg("--config").arg(config).args(args).output().unwrap()
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mailbox_list_and_quota_beside_the_server() {
    let server = TestServer::start_with(
        |t| t + "[quota]\ninitial = \"1000\"\ngrow_when_free_below = \"100\"\ngrow_by = \"1000\"\n",
        std::sync::Arc::new(gatepost::clock::SystemClock),
    )
    .await;
    let config = server.dir.path().join("g.toml");
    std::fs::write(&config, crate::support::config_text(server.dir.path(), "")).unwrap();
    let addr = server.running.as_ref().unwrap().imaps_addrs[0];
    let mut c = Imap::login(addr).await;
    let r = c.cmd("CREATE \"B&APw-ro/2026\"").await;
    assert!(tagged(&r).contains("OK"), "{r:?}");
    let msg = vec![b'x'; 950];
    let r = c.append("INBOX", "\\Seen", &[b"Subject: q\r\n\r\n".as_slice(), &msg].concat()).await;
    assert!(tagged(&r).contains("OK [APPENDUID"), "{r:?}");

    let o = gatepost(&config, &["mailbox", "list", "alice"]);
    let list = text(&o);
    assert!(o.status.success(), "{list}");
    let inbox = list.lines().find(|l| l.starts_with("INBOX ")).unwrap_or_else(|| panic!("{list}"));
    assert_eq!(inbox.split_whitespace().nth(1), Some("1"), "one message: {inbox}");
    assert!(list.lines().any(|l| l.starts_with("Büro/2026 ")), "names in UTF-8: {list}");
    assert!(list.lines().any(|l| l.starts_with("Sent ") && l.contains("\\Sent")), "{list}");

    let o = gatepost(&config, &["quota", "show", "alice", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&o)));
    assert_eq!(v["used"], 964);
    assert_eq!(v["limit"], 2000, "grew one step: {v}");
    assert_eq!(v["growth"].as_array().unwrap().len(), 1);

    let o = gatepost(&config, &["quota", "set", "alice", "--ceiling", "2000"]);
    assert!(o.status.success(), "{}", text(&o));
    let m = [b"Subject: q\r\n\r\n".as_slice(), &msg].concat();
    let r = c.append("INBOX", "", &m).await;
    assert!(tagged(&r).contains("OK [APPENDUID"), "1928 of 2000: fits under the ceiling: {r:?}");
    let r = c.append("INBOX", "", &m).await;
    assert!(tagged(&r).contains("NO [OVERQUOTA]"), "the CLI's ceiling holds at once: {r:?}");
    let o = gatepost(&config, &["quota", "show", "alice"]);
    assert!(text(&o).contains("(2000 bytes)") && text(&o).contains("(1928 bytes)"), "{}", text(&o));
    let o = gatepost(&config, &["quota", "set", "alice", "--ceiling", "lots"]);
    assert!(!o.status.success() && text(&o).contains("--ceiling"), "{}", text(&o));
    let o = gatepost(&config, &["quota", "show", "nobody"]);
    assert!(!o.status.success() && text(&o).contains("no user"), "{}", text(&o));
    server.stop().await;
}

/// `store verify` beside the server: clean after real IMAP work, then a damaged blob is named.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_verify_rehashes_blobs_and_recounts() {
    let server = TestServer::start().await;
    let config = server.dir.path().join("g.toml");
    std::fs::write(&config, crate::support::config_text(server.dir.path(), "")).unwrap();
    let addr = server.running.as_ref().unwrap().imaps_addrs[0];
    let mut c = Imap::login(addr).await;
    for n in 0..3 {
        c.append("INBOX", "", format!("Subject: {n}\r\n\r\nbody {n}\r\n").as_bytes()).await;
    }
    c.cmd("SELECT INBOX").await;
    c.cmd("COPY 1:2 Archive").await;
    c.cmd("STORE 1 +FLAGS (\\Deleted \\Seen)").await;
    c.cmd("EXPUNGE").await;
    c.cmd("MOVE 1 Trash").await;
    let o = gatepost(&config, &["store", "verify"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("4 messages, 3 blobs") && text(&o).contains("mail store verify: OK"), "{}", text(&o));

    // Small messages share a pack: damage the first record's bytes (after the 8-byte magic,
    // its 32-byte name and 4-byte length).
    let packs = server.dir.path().join("blobs").join("packs");
    let file = std::fs::read_dir(&packs).unwrap().next().unwrap().unwrap().path();
    let mut bytes = std::fs::read(&file).unwrap();
    let name: String = bytes[8..40].iter().map(|b| format!("{b:02x}")).collect();
    bytes[8 + 36 + 5] ^= 0x20;
    std::fs::write(&file, &bytes).unwrap();
    let o = gatepost(&config, &["store", "verify"]);
    assert!(!o.status.success(), "{}", text(&o));
    assert!(text(&o).contains(&format!("blob {name}")), "the damaged blob is named: {}", text(&o));
    server.stop().await;
}

/// `store gc` beside the server asks it to collect; the expunged message's blob goes, the
/// kept one stays readable, and `store verify` is clean.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_gc_beside_the_server_collects_what_no_message_uses() {
    let server = TestServer::start().await;
    let config = server.dir.path().join("g.toml");
    std::fs::write(&config, crate::support::config_text(server.dir.path(), "")).unwrap();
    let addr = server.running.as_ref().unwrap().imaps_addrs[0];
    let mut c = Imap::login(addr).await;
    // A large message that does not compress gets a file of its own; a small one is packed.
    let mut x = 7u32;
    let noise: String = (0..100_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            char::from(b'a' + (x % 26) as u8)
        })
        .collect();
    c.append("INBOX", "", format!("Subject: gone\r\n\r\n{noise}\r\n").as_bytes()).await;
    c.append("INBOX", "", b"Subject: kept\r\n\r\nkept\r\n").await;
    c.cmd("SELECT INBOX").await;
    c.cmd("STORE 1 +FLAGS (\\Deleted)").await;
    c.cmd("EXPUNGE").await;
    let blob_files = || walk(&server.dir.path().join("blobs"));
    assert_eq!(blob_files(), 2, "the large message's file and the pack");
    let o = gatepost(&config, &["store", "gc"]);
    assert!(o.status.success() && text(&o).contains("collected 1 unreferenced blob"), "{}", text(&o));
    assert_eq!(blob_files(), 1, "the pack stays");
    let r = c.cmd("FETCH 1 (BODY.PEEK[TEXT])").await;
    assert!(r[0].contains("kept"), "{r:?}");
    let o = gatepost(&config, &["store", "verify"]);
    assert!(o.status.success(), "{}", text(&o));
    server.stop().await;
}

fn walk(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .map(|d| d.filter_map(Result::ok).map(|e| if e.path().is_dir() { walk(&e.path()) } else { 1 }).sum())
        .unwrap_or(0)
}
