//! A scripted relay for the faults a real one cannot be told to make: connections dropped
//! mid-DATA, 421 mid-transaction, broken or missing TLS, silence, an overlong reply, no
//! listener, an unresolvable name.

use std::time::{Duration, Instant};

use gatepost::relay::RecipientResult::Delivered;

use crate::support::*;

#[tokio::test]
async fn connection_dropped_mid_data_defers_and_the_rest_get_one_fresh_connection() {
    let fake = Fake::start(|mut c| async move {
        c.hello(&[]).await;
        if c.index == 1 {
            c.expect("MAIL").await;
            c.say("250 Ok").await;
            for _ in 0..2 {
                c.expect("RCPT").await;
                c.say("250 Ok").await;
            }
            c.expect("DATA").await;
            c.say("354 go").await;
            c.line().await; // one line of the body, then hang up
            return;
        }
        transaction(&mut c, &["250 Ok"], "250 2.0.0 Ok: queued as SECOND").await;
        c.expect("RSET").await;
        c.say("250 Ok").await;
        c.expect("MAIL").await;
        // Second connection dies too, before answering MAIL.
    })
    .await;
    // Larger than both socket buffers, so the hang-up is seen while writing, before the dot
    // (a body that fits in them is gone before the relay hangs up: "possibly delivered").
    let body = "Subject: big\r\n\r\n".to_string() + &"0123456789abcdef\r\n".repeat(700_000);
    let msgs = [
        msg("1", "s@x.test", &["a@y.test", "b@y.test"], &body),
        msg("2", "s@x.test", &["c@y.test"], "two\r\n"),
        msg("3", "s@x.test", &["d@y.test"], "three\r\n"),
        msg("4", "s@x.test", &["e@y.test"], "four\r\n"),
    ];
    let out = relay(&fake.url("smtp"), |_| {}).deliver_batch(&msgs).await;
    assert!(out[0].recipients.iter().all(|r| deferred_with(r, "connection lost during DATA")), "{:?}", out[0]);
    assert_eq!(out[1].recipients, [Delivered]);
    assert_eq!(out[1].reply, "250 2.0.0 Ok: queued as SECOND");
    assert!(deferred_with(&out[2].recipients[0], "connection lost during MAIL FROM"), "{:?}", out[2]);
    assert!(deferred_with(&out[3].recipients[0], "lost twice"), "{:?}", out[3]);
    assert_eq!(out[3].relay_ip, None);
    assert_eq!(fake.connections(), 2, "one fresh connection, no more");
}

#[tokio::test]
async fn reply_421_mid_transaction_defers_and_reconnects() {
    let fake = Fake::start(|mut c| async move {
        c.hello(&[]).await;
        if c.index == 1 {
            c.expect("MAIL").await;
            c.say("250 Ok").await;
            c.expect("RCPT").await;
            c.say("250 Ok").await;
            c.expect("RCPT").await;
            c.say("421 4.4.2 shutting down").await;
            return;
        }
        transaction(&mut c, &["250 Ok"], "250 Ok: queued").await;
        quit(&mut c).await;
    })
    .await;
    let msgs = [msg("1", "s@x.test", &["a@y.test", "b@y.test"], "x"), msg("2", "s@x.test", &["c@y.test"], "y")];
    let out = relay(&fake.url("smtp"), |_| {}).deliver_batch(&msgs).await;
    assert!(out[0].recipients.iter().all(|r| deferred_with(r, "421 4.4.2")), "{:?}", out[0]);
    assert_eq!(out[1].recipients, [Delivered]);
}

#[tokio::test]
async fn starttls_garbage_handshake_is_a_tls_failure() {
    let fake = Fake::start(|mut c| async move {
        c.hello(&["STARTTLS", "PIPELINING"]).await;
        c.expect("STARTTLS").await;
        c.say("220 2.0.0 Ready to start TLS").await;
        c.raw(b"this is not a TLS server hello\r\n\r\n").await;
        c.line().await;
    })
    .await;
    let relay = relay(&fake.url("smtp+starttls"), |c| c.ca_file = Some(cert_path()));
    let out = relay.deliver_batch(&[msg("1", "s@x.test", &["a@y.test"], "x")]).await;
    assert!(deferred_with(&one(&out).recipients[0], "TLS failed"), "{out:?}");
    assert!(!fake.verbs().iter().any(|v| v.ends_with("MAIL")), "{:?}", fake.log());
}

#[tokio::test]
async fn starttls_required_but_not_offered_sends_nothing_in_clear() {
    let fake = Fake::start(|mut c| async move {
        c.hello(&["PIPELINING", "AUTH PLAIN"]).await;
        c.line().await;
    })
    .await;
    let relay = relay(&fake.url("smtp+starttls"), |c| {
        c.ca_file = Some(cert_path());
        c.credentials = Some(("u".into(), "p".into()));
    });
    let out = relay.deliver_batch(&[msg("1", "s@x.test", &["a@y.test"], "x")]).await;
    assert!(deferred_with(&one(&out).recipients[0], "does not offer STARTTLS"), "{out:?}");
    let verbs = fake.verbs();
    assert!(!verbs.iter().any(|v| v.ends_with("MAIL") || v.ends_with("AUTH")), "{verbs:?}");
}

#[tokio::test]
async fn smtps_delivers_with_the_private_ca_and_refuses_an_unknown_certificate() {
    let fake = Fake::start_tls(true, |mut c| async move {
        c.hello(&["PIPELINING", "AUTH PLAIN LOGIN"]).await;
        c.expect("AUTH PLAIN ").await;
        c.say("235 2.7.0 ok").await;
        for _ in 0..3 {
            c.line().await;
        }
        c.say("250 Ok\n250 Ok\n354 go").await;
        c.data().await;
        c.say("250 2.0.0 Ok: queued as TLS1").await;
        quit(&mut c).await;
    })
    .await;
    let url = format!("smtps://localhost:{}", fake.addr.port());
    let trusted = relay(&url, |c| {
        c.ca_file = Some(cert_path());
        c.credentials = Some(("relayuser".into(), "pw".into()));
    });
    let out = trusted.deliver_batch(&[msg("1", "s@x.test", &["a@y.test"], "x")]).await;
    assert_eq!(one(&out).recipients, [Delivered], "{out:?}");
    assert_eq!(out[0].reply, "250 2.0.0 Ok: queued as TLS1");

    // Only the system store: the self-signed test certificate is not trusted.
    let untrusted = relay(&url, |_| {});
    let out = untrusted.deliver_batch(&[msg("1", "s@x.test", &["a@y.test"], "x")]).await;
    assert!(deferred_with(&one(&out).recipients[0], "TLS failed"), "{out:?}");
    assert!(deferred_with(&out[0].recipients[0], "certificate"), "{out:?}");
}

#[tokio::test]
async fn a_relay_that_never_answers_is_deferred_after_the_command_timeout() {
    let fake = Fake::start(|mut c| async move {
        c.line().await; // never greets; waits until the client hangs up
    })
    .await;
    let relay = relay(&fake.url("smtp"), |c| c.command_timeout = Duration::from_secs(1));
    let started = Instant::now();
    let out = relay.deliver_batch(&[msg("1", "s@x.test", &["a@y.test"], "x")]).await;
    let took = started.elapsed();
    assert!(deferred_with(&one(&out).recipients[0], "timed out after 1s during the greeting"), "{out:?}");
    assert!(took >= Duration::from_millis(950) && took < Duration::from_secs(4), "{took:?}");
}

#[tokio::test]
async fn a_relay_too_slow_after_the_body_is_possibly_delivered_after_the_data_timeout() {
    let fake = Fake::start(|mut c| async move {
        c.hello(&[]).await;
        c.expect("MAIL").await;
        c.say("250 Ok").await;
        c.expect("RCPT").await;
        c.say("250 Ok").await;
        c.expect("DATA").await;
        c.say("354 go").await;
        c.data().await;
        c.line().await; // no final reply
    })
    .await;
    let relay = relay(&fake.url("smtp"), |c| c.data_timeout = Duration::from_secs(1));
    let out = relay.deliver_batch(&[msg("1", "s@x.test", &["a@y.test"], "x")]).await;
    // It may have taken the message: not simply deferred (tests/relay/uncertain.rs).
    let r = &one(&out).recipients[0];
    assert!(
        matches!(r, gatepost::relay::RecipientResult::PossiblyDelivered(t) if t.contains("timed out after 1s during the end of DATA")),
        "{out:?}"
    );
}

#[tokio::test]
async fn a_relay_not_listening_is_a_connect_failure() {
    let port = free_port();
    let relay = relay(&format!("smtp://127.0.0.1:{port}"), |_| {});
    let out = relay
        .deliver_batch(&[msg("1", "s@x.test", &["a@y.test"], "x"), msg("2", "s@x.test", &["b@y.test"], "y")])
        .await;
    for d in &out {
        assert!(deferred_with(&d.recipients[0], "could not connect"), "{d:?}");
        assert_eq!((d.relay_ip, d.system_ip), (None, None));
    }
}

#[tokio::test]
async fn an_unresolvable_host_is_deferred() {
    let relay = relay("smtp://no-such-host.invalid:25", |c| c.connect_timeout = Duration::from_secs(3));
    let out = relay.deliver_batch(&[msg("1", "s@x.test", &["a@y.test"], "x")]).await;
    assert!(
        deferred_with(&one(&out).recipients[0], "could not resolve the relay host no-such-host.invalid"),
        "{out:?}"
    );
}

#[tokio::test]
async fn an_overlong_reply_is_deferred() {
    let fake = Fake::start(|mut c| async move {
        c.say("220 fake").await;
        c.expect("EHLO").await;
        let mut long = "250-x\n".repeat(500);
        long.push_str("250 end");
        c.say(&long).await;
        c.line().await;
    })
    .await;
    let out = relay(&fake.url("smtp"), |_| {}).deliver_batch(&[msg("1", "s@x.test", &["a@y.test"], "x")]).await;
    assert!(deferred_with(&one(&out).recipients[0], "overlong reply"), "{out:?}");
}

#[tokio::test]
async fn data_sent_after_the_starttls_reply_is_refused() {
    // The STARTTLS command-injection attack: bytes after 220 must not be taken as TLS-protected.
    let fake = Fake::start(|mut c| async move {
        c.hello(&["STARTTLS"]).await;
        c.expect("STARTTLS").await;
        c.raw(b"220 2.0.0 Ready\r\n250 injected\r\n").await;
        c.line().await;
    })
    .await;
    let relay = relay(&fake.url("smtp+starttls"), |c| c.ca_file = Some(cert_path()));
    let out = relay.deliver_batch(&[msg("1", "s@x.test", &["a@y.test"], "x")]).await;
    assert!(deferred_with(&one(&out).recipients[0], "sent data after its STARTTLS reply"), "{out:?}");
}

/// This machine's address on its default route (not loopback), if it has one.
fn routable_local_ip() -> Option<std::net::IpAddr> {
    let s = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    s.connect("198.51.100.1:9").ok()?; // no packet is sent
    let ip = s.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

#[tokio::test]
async fn the_password_never_goes_in_clear_to_a_remote_relay() {
    let Some(ip) = routable_local_ip() else {
        eprintln!("no non-loopback address on this machine: skipping");
        return;
    };
    let fake = Fake::start_on(ip, false, |mut c| async move {
        c.hello(&["AUTH PLAIN LOGIN"]).await;
        c.line().await;
    })
    .await;
    let relay = relay(&fake.url("smtp"), |c| c.credentials = Some(("u".into(), "secret".into())));
    let out = relay.deliver_batch(&[msg("1", "s@x.test", &["a@y.test"], "x")]).await;
    assert!(deferred_with(&one(&out).recipients[0], "refusing to send the relay password in clear"), "{out:?}");
    assert_eq!(out[0].relay_ip, Some(ip));
    assert!(!fake.verbs().iter().any(|v| v.ends_with("AUTH")), "{:?}", fake.log());
}
