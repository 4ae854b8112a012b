//! `gatepost import` from files: an mbox (mboxrd, bytes back exactly), a Maildir with
//! Maildir++ subfolders and flags, a directory of .eml files; refused while a server runs.

use std::path::Path;

use gatepost::mailstore::MailStore;

use crate::serve::{Gatepost, gatepost, text};
use crate::sync::rule;

fn stored(dir: &Path, mailbox: &str) -> Vec<(Vec<String>, Vec<u8>, jiff::Timestamp)> {
    let store = MailStore::open(&dir.join("data"), rule(), false).unwrap();
    let user = store.db.find_user("alice").unwrap().unwrap();
    let mbox = store.db.mailbox_id(user, mailbox).unwrap_or_else(|e| panic!("{mailbox}: {e}"));
    store
        .db
        .members(user, mbox, 1..=u32::MAX)
        .unwrap()
        .into_iter()
        .map(|m| {
            let raw = store.db.read_blob(store.blobs.as_ref(), &m.message.blob.parse().unwrap()).unwrap();
            (m.message.flags.clone(), raw, m.message.internaldate)
        })
        .collect()
}

#[test]
fn an_mbox_a_maildir_and_eml_files_are_imported_with_their_flags_and_dates() {
    let mut g = Gatepost::new("");
    let d = g.dir.path().to_path_buf();
    let mbox = d.join("old.mbox");
    std::fs::write(
        &mbox,
        "From alice@example.org Mon Jan  5 10:00:00 2015\nSubject: one\n\nbody\n>From the quoted line\n\n\
         From bob@example.org Tue Jan  6 11:00:00 2015\nSubject: two\n\nsecond\n",
    )
    .unwrap();
    let o = gatepost(&g.config, &["import", "alice", "--mbox", &mbox.display().to_string(), "--into", "Old/Mbox"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("imported 2 message(s) into Old/Mbox"), "{}", text(&o));
    let m = stored(&d, "Old/Mbox");
    assert_eq!(m.len(), 2);
    assert_eq!(m[0].1, b"Subject: one\r\n\r\nbody\r\nFrom the quoted line\r\n");
    assert_eq!(m[0].2.to_string(), "2015-01-05T10:00:00Z", "INTERNALDATE from the From_ line");

    let md = d.join("Maildir");
    for sub in ["cur", "new", "tmp", ".Lists.rust/cur", ".Lists.rust/new", ".Lists.rust/tmp"] {
        std::fs::create_dir_all(md.join(sub)).unwrap();
    }
    std::fs::write(md.join("cur/1.M1.host:2,FS"), "Subject: read\nDate: Wed, 7 Jan 2015 12:00:00 +0000\n\nx\n")
        .unwrap();
    std::fs::write(md.join("new/2.M2.host"), "Subject: new\n\ny\n").unwrap();
    std::fs::write(md.join(".Lists.rust/cur/3.M3.host:2,R"), "Subject: list\n\nz\n").unwrap();
    let o = gatepost(&g.config, &["import", "alice", "--maildir", &md.display().to_string(), "--into", "Old/Md"]);
    assert!(o.status.success() && text(&o).contains("imported 3 message(s)"), "{}", text(&o));
    let top = stored(&d, "Old/Md");
    assert_eq!(top.len(), 2);
    let read = top.iter().find(|m| m.1.starts_with(b"Subject: read")).unwrap();
    assert_eq!(read.0, ["\\Flagged", "\\Seen"]);
    assert_eq!(read.2.to_string(), "2015-01-07T12:00:00Z", "INTERNALDATE from the Date header");
    let list = stored(&d, "Old/Md/Lists/rust");
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].0, ["\\Answered"]);

    let eml = d.join("eml");
    std::fs::create_dir_all(&eml).unwrap();
    std::fs::write(eml.join("a.eml"), "Subject: eml\r\n\r\nhello\r\n").unwrap();
    std::fs::write(eml.join("notes.txt"), "not mail").unwrap();
    let o = gatepost(&g.config, &["import", "alice", "--eml", &eml.display().to_string()]);
    assert!(o.status.success(), "{}", text(&o));
    let day = jiff::Timestamp::now().strftime("%Y-%m-%d").to_string();
    assert!(text(&o).contains(&format!("imported 1 message(s) into Archive/Imported-{day}")), "{}", text(&o));

    // With a server running, import refuses and says why.
    g.serve();
    let o = gatepost(&g.config, &["import", "alice", "--eml", &eml.display().to_string()]);
    assert!(!o.status.success() && text(&o).contains("stop gatepost serve"), "{}", text(&o));
    g.kill();
    // Two sources at once are refused by the command line.
    let o = gatepost(&g.config, &["import", "alice", "--eml", "x", "--mbox", "y"]);
    assert!(!o.status.success(), "{}", text(&o));
}
