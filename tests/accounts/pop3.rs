//! POP3 accounts against Dovecot's `dovecot-pop3d`: import by UIDL into the account's INBOX
//! and the unified INBOX, source deletions kept with `$RemovedAtSource`, tombstones, STLS,
//! `--pop3-delete-after`, and `serve` polling an account added with `pop3://`.

use std::time::Duration;

use futures_util::StreamExt;
use gatepost::mailstore::db::{FlagOp, REMOVED_AT_SOURCE};
use gatepost::net::server_url::{Protocol, ServerUrl};
use gatepost::sync::pop3::Pop3;
use gatepost::sync::pop3_pass::pop3_pass;

use crate::dovecot::{Dovecot, cert, pop3_available};
use crate::serve::{Gatepost, gatepost, text};
use crate::sync::{LOGIN, Local, PASSWORD, append, local, message, rule, session};

async fn pop3(dv: &Dovecot, scheme: &str) -> Pop3 {
    let host = if scheme == "pop3" { "127.0.0.1" } else { "localhost" };
    let url = ServerUrl::parse(&format!("{scheme}://{host}:{}", dv.pop3_port), &[Protocol::Pop3], "x").unwrap();
    let tls = std::sync::Arc::new(gatepost::relay::trust::client_config(Some(&cert()), "--ca-file").unwrap());
    Pop3::connect(&url, &tls, LOGIN, PASSWORD, Duration::from_secs(5))
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", dv.log()))
}

async fn pass(l: &Local, dv: &Dovecot, delete_after: Option<u32>) -> gatepost::sync::pass::Report {
    pop3_pass(pop3(dv, "pop3").await, &l.ctx, delete_after).await.unwrap_or_else(|e| panic!("{e}\n{}", dv.log()))
}

async fn source_count(dv: &Dovecot) -> u32 {
    let mut s = session(dv).await;
    s.select("INBOX").await.unwrap().exists
}

#[tokio::test]
async fn a_pop3_mailbox_is_imported_by_uidl_and_nothing_is_lost_or_twice() {
    if !pop3_available() {
        return;
    }
    let dv = Dovecot::start(&[(LOGIN, PASSWORD)]);
    let mut src = session(&dv).await;
    for n in 1..=4 {
        append(&mut src, "INBOX", &message(n, "pop"), None).await;
    }
    let l = local(rule());
    let r = pass(&l, &dv, None).await;
    assert_eq!(r.filed, 4, "{r:?}");
    let mut want: Vec<Vec<u8>> = (1..=4).map(|n| message(n, "pop")).collect();
    want.sort();
    assert_eq!(l.bodies("Accounts/Work/INBOX"), want, "byte for byte");
    assert_eq!(l.bodies("INBOX"), want, "in the unified INBOX too");
    assert_eq!(pass(&l, &dv, None).await.filed, 0, "nothing twice");
    assert_eq!(source_count(&dv).await, 4, "mail stays on the server by default");

    // Deleted at the source: kept here, marked. Expunged here: never fetched again.
    src.select("INBOX").await.unwrap();
    src.uid_store("1", "+FLAGS (\\Deleted)").await.unwrap().collect::<Vec<_>>().await;
    src.expunge().await.unwrap().collect::<Vec<_>>().await;
    let acc = l.store.db.mailbox_id(l.user, "Accounts/Work/INBOX").unwrap();
    let two = l.messages("Accounts/Work/INBOX").into_iter().find(|m| m.2 == message(2, "pop")).unwrap().0;
    l.store.db.store_flags(l.user, acc, &[two], FlagOp::Add, &["\\Deleted".into()], None).unwrap();
    l.store.db.expunge(l.user, acc, None).unwrap();
    let r = pass(&l, &dv, None).await;
    assert_eq!((r.filed, r.removed), (0, 1), "{r:?}");
    let one = l.messages("Accounts/Work/INBOX").into_iter().find(|m| m.2 == message(1, "pop")).unwrap();
    assert_eq!(one.1, [REMOVED_AT_SOURCE]);

    // --pop3-delete-after 0: what is here leaves the server, and is not marked removed.
    let r = pass(&l, &dv, Some(0)).await;
    assert_eq!(r.filed, 0, "{r:?}");
    assert_eq!(source_count(&dv).await, 0, "deleted at QUIT");
    let r = pass(&l, &dv, Some(0)).await;
    assert_eq!((r.filed, r.removed), (0, 0), "{r:?}");
    let kept = l.messages("Accounts/Work/INBOX");
    assert_eq!(kept.len(), 3, "the three not expunged here stay: {kept:?}");
    assert_eq!(kept.iter().filter(|m| m.1.iter().any(|f| f == REMOVED_AT_SOURCE)).count(), 1);

    // STLS works as well (the certificate is checked).
    pop3(&dv, "pop3+starttls").await.quit().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_polls_an_account_added_with_pop3() {
    if !pop3_available() {
        return;
    }
    let dv = Dovecot::start(&[(LOGIN, PASSWORD)]);
    let mut src = session(&dv).await;
    for n in 1..=3 {
        append(&mut src, "INBOX", &message(n, "served"), None).await;
    }
    let mut g = Gatepost::new("[sync]\npoll_interval = \"2s\"\n");
    let pw = g.dir.path().join("work-pw").display().to_string();
    let url = format!("pop3://127.0.0.1:{}", dv.pop3_port);
    let o = gatepost(
        &g.config,
        &["account", "add", "alice", "--name", "Work", "--address", LOGIN, "--incoming", &url, "--password-file", &pw],
    );
    assert!(o.status.success(), "{}", text(&o));
    let o = gatepost(&g.config, &["account", "set", "alice", "Work", "--pop3-delete-after", "30"]);
    assert!(o.status.success(), "{}", text(&o));
    g.serve();
    let o = gatepost(&g.config, &["account", "show", "alice", "Work", "--follow"]);
    assert!(o.status.success() && text(&o).contains("first import done, 3 messages"), "{}\n{}", text(&o), g.log());
    append(&mut src, "INBOX", &message(4, "served"), None).await;
    let mut c = g.imap().await;
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while c.select("Accounts/Work/INBOX").await.unwrap().exists < 4 {
        assert!(std::time::Instant::now() < deadline, "the next poll never came\n{}", g.log());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(source_count(&dv).await, 4, "30 days have not passed: mail stays on the server");
}
