//! A scripted relay answering each step of the dialogue in every way that has a defined
//! outcome: refusals at greeting, MAIL, RCPT, DATA and after the body; pipelining; RSET
//! between messages; HELO fallback; AUTH LOGIN; SMTPUTF8 and 8BITMIME.

use std::time::Duration;

use gatepost::relay::RecipientResult::Delivered;
use gatepost::relay::Relay;
use gatepost::relay::smtp::{SmtpRelay, SmtpRelayConfig};

use crate::support::*;

#[tokio::test]
async fn greeting_421_defers_every_message() {
    let fake = Fake::start(|mut c| async move { c.say("421 4.3.2 Service not available, closing").await }).await;
    let relay = relay(&fake.url("smtp"), |_| {});
    let out = relay
        .deliver_batch(&[
            msg("1", "s@x.test", &["a@y.test", "b@y.test"], "m1\r\n"),
            msg("2", "s@x.test", &["c@y.test"], "m2"),
        ])
        .await;
    assert_eq!(out.len(), 2);
    for d in &out {
        assert!(d.recipients.iter().all(|r| deferred_with(r, "421 4.3.2 Service not available")), "{d:?}");
        assert_eq!(d.relay_ip, Some("127.0.0.1".parse().unwrap()));
        assert!(d.reply.starts_with("421"), "{d:?}");
    }
    assert_eq!(fake.connections(), 1, "a refused greeting is not retried within the batch");
}

#[tokio::test]
async fn greeting_554_defers_every_message() {
    // A refused greeting is about us (blocklist, relay not opened for us): retry, don't bounce.
    let fake = Fake::start(|mut c| async move { c.say("554 5.7.1 no service for you").await }).await;
    let out = relay(&fake.url("smtp"), |_| {}).deliver_batch(&[msg("1", "s@x.test", &["a@y.test"], "m")]).await;
    assert!(deferred_with(&one(&out).recipients[0], "554 5.7.1"), "{out:?}");
}

#[tokio::test]
async fn per_recipient_results_without_pipelining() {
    let fake = Fake::start(|mut c| async move {
        c.hello(&["8BITMIME", "SIZE 1000000"]).await;
        let body = transaction(
            &mut c,
            &["451 4.7.1 greylisted, try later", "250 2.1.5 Ok", "550 5.1.1 no such user"],
            "250 2.0.0 Ok: queued as 4XYZ",
        )
        .await;
        assert_eq!(body, b"Subject: t\r\n\r\n..leading dot\r\nlast line no CRLF\r\n");
        quit(&mut c).await;
    })
    .await;
    let m = msg(
        "1",
        "s@x.test",
        &["grey@y.test", "ok@y.test", "gone@y.test"],
        "Subject: t\r\n\r\n.leading dot\r\nlast line no CRLF",
    );
    let out = relay(&fake.url("smtp"), |_| {}).deliver_batch(&[m]).await;
    let d = one(&out);
    assert!(deferred_with(&d.recipients[0], "451 4.7.1 greylisted"), "{d:?}");
    assert_eq!(d.recipients[1], Delivered);
    assert!(failed_with(&d.recipients[2], "550 5.1.1 no such user"), "{d:?}");
    assert_eq!(d.reply, "250 2.0.0 Ok: queued as 4XYZ");
    assert_eq!((d.relay_ip, d.system_ip), (Some("127.0.0.1".parse().unwrap()), Some("127.0.0.1".parse().unwrap())));
    let log = fake.log();
    assert_eq!(log[1], "1 MAIL FROM:<s@x.test> SIZE=48", "{log:?}"); // ASCII body: no BODY=8BITMIME
    assert_eq!(log[2], "1 RCPT TO:<grey@y.test>");
}

#[tokio::test]
async fn pipelining_sends_a_transaction_in_one_write_and_rsets_between_messages() {
    let fake = Fake::start(|mut c| async move {
        c.hello(&["PIPELINING", "ENHANCEDSTATUSCODES"]).await;
        for n in 1..=2 {
            if n > 1 {
                c.expect("RSET").await;
                c.say("250 2.0.0 Ok").await;
            }
            // Nothing is answered until MAIL, both RCPTs and DATA have arrived: a client that
            // waited for each reply would hang here and time out.
            c.expect("MAIL FROM:").await;
            c.expect("RCPT TO:").await;
            c.expect("RCPT TO:").await;
            c.expect("DATA").await;
            c.say("250 2.1.0 Ok\n250 2.1.5 Ok\n550 5.7.1 relay denied\n354 go").await;
            c.data().await;
            c.say(&format!("250 2.0.0 Ok: queued as Q{n}")).await;
        }
        quit(&mut c).await;
    })
    .await;
    let relay = relay(&fake.url("smtp"), |c| c.command_timeout = Duration::from_secs(2));
    let msgs = [
        msg("1", "s@x.test", &["a@y.test", "b@y.test"], "one\r\n"),
        msg("2", "s@x.test", &["c@y.test", "d@y.test"], "two\r\n"),
    ];
    let out = relay.deliver_batch(&msgs).await;
    for (n, d) in out.iter().enumerate() {
        assert_eq!(d.recipients[0], Delivered, "{d:?}");
        assert!(failed_with(&d.recipients[1], "550 5.7.1 relay denied"), "{d:?}");
        assert_eq!(d.reply, format!("250 2.0.0 Ok: queued as Q{}", n + 1));
    }
    assert_eq!(fake.connections(), 1);
    assert_eq!(
        fake.verbs(),
        ["1 EHLO", "1 MAIL", "1 RCPT", "1 RCPT", "1 DATA", "1 RSET", "1 MAIL", "1 RCPT", "1 RCPT", "1 DATA", "1 QUIT"]
    );
}

#[tokio::test]
async fn pipelined_with_every_recipient_refused_sends_no_body() {
    let fake = Fake::start(|mut c| async move {
        c.hello(&["PIPELINING"]).await;
        for _ in 0..4 {
            c.line().await;
        }
        c.say("250 Ok\n450 4.2.0 mailbox busy\n550 5.1.1 unknown\n554 5.5.1 no valid recipients").await;
        quit(&mut c).await;
    })
    .await;
    let out =
        relay(&fake.url("smtp"), |_| {}).deliver_batch(&[msg("1", "s@x.test", &["a@y.test", "b@y.test"], "x")]).await;
    let d = one(&out);
    assert!(deferred_with(&d.recipients[0], "450 4.2.0") && failed_with(&d.recipients[1], "550 5.1.1"), "{d:?}");
    assert_eq!(fake.verbs().last().unwrap(), "1 QUIT");
}

#[tokio::test]
async fn end_of_data_552_fails_every_recipient() {
    let fake = Fake::start(|mut c| async move {
        c.hello(&[]).await;
        transaction(&mut c, &["250 Ok", "250 Ok"], "552 5.3.4 message too big").await;
        quit(&mut c).await;
    })
    .await;
    let out =
        relay(&fake.url("smtp"), |_| {}).deliver_batch(&[msg("1", "s@x.test", &["a@y.test", "b@y.test"], "x")]).await;
    let d = one(&out);
    assert!(d.recipients.iter().all(|r| failed_with(r, "552 5.3.4 message too big")), "{d:?}");
    assert_eq!(d.reply, "552 5.3.4 message too big");
}

#[tokio::test]
async fn end_of_data_451_defers_and_mail_530_defers() {
    let fake = Fake::start(|mut c| async move {
        c.hello(&[]).await;
        transaction(&mut c, &["250 Ok"], "451 4.3.0 queue full").await;
        c.expect("RSET").await;
        c.say("250 Ok").await;
        c.expect("MAIL FROM:").await;
        c.say("530 5.7.0 Authentication required").await;
        quit(&mut c).await;
    })
    .await;
    let msgs = [msg("1", "s@x.test", &["a@y.test"], "x"), msg("2", "s@x.test", &["b@y.test"], "y")];
    let out = relay(&fake.url("smtp"), |_| {}).deliver_batch(&msgs).await;
    assert!(deferred_with(&out[0].recipients[0], "451 4.3.0 queue full"), "{out:?}");
    assert!(deferred_with(&out[1].recipients[0], "requires authentication: 530 5.7.0"), "{out:?}");
}

#[tokio::test]
async fn helo_fallback_and_auth_login_only() {
    let fake = Fake::start(|mut c| async move {
        c.say("220 old.relay").await;
        c.expect("EHLO gatepost.test").await;
        c.say("502 5.5.2 what is EHLO").await;
        c.expect("HELO gatepost.test").await;
        c.say("250 old.relay").await;
        transaction(&mut c, &["250 Ok"], "250 Ok").await;
        quit(&mut c).await;
    })
    .await;
    let out = relay(&fake.url("smtp"), |_| {}).deliver_batch(&[msg("1", "s@x.test", &["a@y.test"], "x")]).await;
    assert_eq!(one(&out).recipients, [Delivered], "{out:?}");

    let fake = Fake::start(|mut c| async move {
        c.hello(&["AUTH LOGIN"]).await;
        c.expect("AUTH LOGIN").await;
        c.say("334 VXNlcm5hbWU6").await;
        assert_eq!(c.line().await, "cmVsYXl1c2Vy"); // relayuser
        c.say("334 UGFzc3dvcmQ6").await;
        assert_eq!(c.line().await, "c2VjcmV0"); // secret
        c.say("235 2.7.0 Authentication successful").await;
        transaction(&mut c, &["250 Ok"], "250 Ok").await;
        quit(&mut c).await;
    })
    .await;
    // Plain smtp:// may carry the password only to a loopback relay (this one).
    let relay = relay(&fake.url("smtp"), |c| c.credentials = Some(("relayuser".into(), "secret".into())));
    let out = relay.deliver_batch(&[msg("1", "s@x.test", &["a@y.test"], "x")]).await;
    assert_eq!(one(&out).recipients, [Delivered], "{out:?}");
}

#[tokio::test]
async fn smtputf8_and_8bitmime_are_used_when_offered_and_needed() {
    let fake = Fake::start(|mut c| async move {
        c.hello(&["8BITMIME", "SMTPUTF8"]).await;
        let mail = c.expect("MAIL FROM:<s@x.test>").await;
        assert_eq!(mail, "MAIL FROM:<s@x.test> SMTPUTF8 BODY=8BITMIME");
        c.say("250 Ok").await;
        c.expect("RCPT TO:<δοκιμή@παράδειγμα.δοκιμή>").await;
        c.say("250 Ok").await;
        c.expect("DATA").await;
        c.say("354 go").await;
        c.data().await;
        c.say("250 Ok").await;
        quit(&mut c).await;
    })
    .await;
    let m = msg("1", "s@x.test", &["δοκιμή@παράδειγμα.δοκιμή"], "Subject: café\r\n\r\nnaïve\r\n");
    let out = relay(&fake.url("smtp"), |_| {}).deliver_batch(&[m]).await;
    assert_eq!(one(&out).recipients, [Delivered], "{out:?}");

    // Without SMTPUTF8, the non-ASCII recipient fails; the others still go.
    let fake = Fake::start(|mut c| async move {
        c.hello(&[]).await;
        assert_eq!(c.expect("MAIL").await, "MAIL FROM:<s@x.test>");
        c.say("250 Ok").await;
        assert_eq!(c.expect("RCPT").await, "RCPT TO:<plain@y.test>");
        c.say("250 Ok").await;
        c.expect("DATA").await;
        c.say("354 go").await;
        c.data().await;
        c.say("250 Ok").await;
        quit(&mut c).await;
    })
    .await;
    let m = msg("1", "s@x.test", &["δοκιμή@παράδειγμα.δοκιμή", "plain@y.test"], "x\r\n");
    let out = relay(&fake.url("smtp"), |_| {}).deliver_batch(&[m]).await;
    let d = one(&out);
    assert!(failed_with(&d.recipients[0], "SMTPUTF8"), "{d:?}");
    assert_eq!(d.recipients[1], Delivered);
}

#[tokio::test]
async fn an_address_with_replaced_bytes_is_never_sent() {
    // "j\u{FFFD}rg@…" is what 8-bit bytes without SMTPUTF8 became before they were refused
    // at submission: another mailbox. Even with SMTPUTF8 at the relay, it is not offered.
    let fake = Fake::start(|mut c| async move {
        c.hello(&["SMTPUTF8"]).await;
        if c.index == 2 {
            return quit(&mut c).await; // the second message has nothing it may send
        }
        assert_eq!(c.expect("MAIL").await, "MAIL FROM:<s@x.test>");
        c.say("250 Ok").await;
        assert_eq!(c.expect("RCPT").await, "RCPT TO:<plain@y.test>");
        c.say("250 Ok").await;
        c.expect("DATA").await;
        c.say("354 go").await;
        c.data().await;
        c.say("250 Ok").await;
        quit(&mut c).await;
    })
    .await;
    let m = msg("1", "s@x.test", &["j\u{FFFD}rg@y.test", "plain@y.test"], "x\r\n");
    let out = relay(&fake.url("smtp"), |_| {}).deliver_batch(&[m]).await;
    let d = one(&out);
    assert!(failed_with(&d.recipients[0], "cannot be sent"), "{d:?}");
    assert_eq!(d.recipients[1], Delivered);
    let m = msg("2", "j\u{FFFD}rg@x.test", &["plain@y.test"], "x\r\n");
    let out = relay(&fake.url("smtp"), |_| {}).deliver_batch(&[m]).await;
    assert!(failed_with(&one(&out).recipients[0], "envelope sender contains characters"), "{out:?}");
    assert!(!fake.verbs().contains(&"2 MAIL".to_string()), "{:?}", fake.log());
}

#[tokio::test]
async fn usable_through_the_relay_trait() {
    let fake = Fake::start(|mut c| async move {
        c.hello(&[]).await;
        transaction(&mut c, &["250 Ok"], "250 Ok: queued as T").await;
        quit(&mut c).await;
    })
    .await;
    let relay: std::sync::Arc<dyn Relay> = std::sync::Arc::new(relay(&fake.url("smtp"), |_| {}));
    // Spawned: the future is Send, as the dispatcher needs.
    let out = tokio::spawn(async move { relay.deliver_batch(&[msg("1", "s@x.test", &["a@y.test"], "x")]).await })
        .await
        .unwrap();
    assert_eq!(one(&out).recipients, [Delivered]);
}

#[test]
fn bad_configs_are_refused_at_startup() {
    let base = || SmtpRelayConfig {
        host: "localhost".into(),
        port: 587,
        security: gatepost::relay::smtp::Security::StartTls,
        credentials: None,
        ca_file: None,
        helo_name: "gatepost.test".into(),
        connect_timeout: Duration::from_secs(1),
        command_timeout: Duration::from_secs(1),
        data_timeout: Duration::from_secs(1),
    };
    let mut c = base();
    c.ca_file = Some(repo().join("no-such-ca.pem"));
    let e = SmtpRelay::new(c).err().unwrap();
    assert!(e.contains("no-such-ca.pem"), "{e}");
    let mut c = base();
    c.ca_file = Some(repo().join("Cargo.toml"));
    assert!(SmtpRelay::new(c).err().unwrap().contains("no certificate"));
    let mut c = base();
    c.helo_name = "two words".into();
    assert!(SmtpRelay::new(c).is_err());
    assert!(SmtpRelay::new(base()).is_ok() || !std::path::Path::new("/etc/ssl/certs/ca-certificates.crt").exists());
}

#[tokio::test]
async fn many_pipelined_recipients_go_in_windows() {
    const N: usize = 250;
    let bursts = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = bursts.clone();
    let fake = Fake::start(move |mut c| {
        let bursts = seen.clone();
        async move {
            c.hello(&["PIPELINING"]).await;
            // Take whatever arrives until the client goes quiet (waiting for replies), then
            // answer it all: the burst sizes are the client's windows.
            'outer: loop {
                let mut lines = vec![c.line().await];
                while let Some(l) = c.line_within(Duration::from_millis(300)).await {
                    lines.push(l);
                }
                bursts.lock().unwrap().push(lines.len());
                let replies: Vec<&str> = lines.iter().map(|l| if l == "DATA" { "354 go" } else { "250 Ok" }).collect();
                c.say(&replies.join("\n")).await;
                if lines.last().is_some_and(|l| l == "DATA") {
                    break 'outer;
                }
            }
            c.data().await;
            c.say("250 Ok: queued as MANY").await;
            quit(&mut c).await;
        }
    })
    .await;
    let rcpts: Vec<String> = (0..N).map(|i| format!("user{i}@y.test")).collect();
    let rcpts: Vec<&str> = rcpts.iter().map(String::as_str).collect();
    let out = relay(&fake.url("smtp"), |_| {}).deliver_batch(&[msg("1", "s@x.test", &rcpts, "x")]).await;
    assert_eq!(one(&out).recipients, vec![Delivered; N]);
    // MAIL + 250 RCPT + DATA = 252 commands, in windows of 100.
    assert_eq!(*bursts.lock().unwrap(), [100, 100, 52]);
}

#[tokio::test]
async fn a_552_to_rcpt_is_temporary_and_the_codes_travel_typed() {
    // RFC 5321 §4.5.3.1.10: old servers say 552 for "too many recipients"; the client must
    // treat it as 452 and try those recipients again later, not bounce them.
    let fake = Fake::start(|mut c| async move {
        c.hello(&[]).await;
        let body = transaction(
            &mut c,
            &["250 2.1.5 Ok", "552 5.5.3 too many recipients", "550 5.1.1 no such user"],
            "250 2.0.0 Ok",
        )
        .await;
        assert_eq!(body, b"x\r\n");
        quit(&mut c).await;
    })
    .await;
    let out = relay(&fake.url("smtp"), |_| {})
        .deliver_batch(&[msg("1", "s@x.test", &["a@y.test", "b@y.test", "c@y.test"], "x\r\n")])
        .await;
    let d = one(&out);
    assert_eq!(d.recipients[0], Delivered);
    let gatepost::relay::RecipientResult::Deferred(later) = &d.recipients[1] else { panic!("552 deferred: {d:?}") };
    let gatepost::relay::RecipientResult::Failed(gone) = &d.recipients[2] else { panic!("550 failed: {d:?}") };
    // The relay's code and enhanced code arrive as they were sent, not read back from text.
    let code = |r: &gatepost::relay::Refusal| r.reply.as_ref().map(|r| (r.code, r.enhanced.clone()));
    assert_eq!(code(later), Some((552, Some("5.5.3".into()))));
    assert_eq!((code(gone), gone.enhanced()), (Some((550, Some("5.1.1".into()))), Some("5.1.1")));
    assert_eq!(gone.text, "550 5.1.1 no such user");
}
