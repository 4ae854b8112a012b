//! Reaching an account's server: each step named, each failure told apart (docs/accounts.md,
//! "Checking an account").

use std::sync::Arc;
use std::time::Duration;

use gatepost::net::server_url::{Protocol, ServerUrl};
use gatepost::sync::connect::{CheckError, Target, connect};
use gatepost::sync::problem::{Problem, Step};

use crate::dovecot::{Dovecot, available, cert};

fn url(s: &str) -> ServerUrl {
    ServerUrl::parse(s, &[Protocol::Imap, Protocol::Pop3], "incoming server").unwrap()
}

fn trusting_the_test_cert() -> Arc<rustls::ClientConfig> {
    Arc::new(gatepost::relay::trust::client_config(Some(&cert()), "--ca-file").unwrap())
}

async fn check(
    u: &str,
    login: &str,
    password: &str,
    tls: Arc<rustls::ClientConfig>,
) -> Result<Vec<String>, CheckError> {
    let u = url(u);
    let t = Target { url: &u, login, password, tls, step_timeout: Duration::from_secs(5) };
    let mut c = connect(&t).await?;
    c.session.logout().await.unwrap();
    Ok(c.capabilities)
}

#[tokio::test]
async fn a_good_account_logs_in_over_imaps_and_starttls() {
    if !available() {
        return;
    }
    let dv = Dovecot::start(&[("alice@example.com", "right horse")]);
    for u in [format!("imaps://localhost:{}", dv.imaps_port), format!("imap+starttls://localhost:{}", dv.imap_port)] {
        let caps = check(&u, "alice@example.com", "right horse", trusting_the_test_cert())
            .await
            .unwrap_or_else(|e| panic!("{u}: {e}\n{}", dv.log()));
        assert!(caps.contains(&"IMAP4REV1".to_string()) && caps.contains(&"IDLE".to_string()), "{caps:?}");
    }
    // Plain text is allowed to this machine only (Dovecot calls loopback secure).
    let plain = format!("imap://127.0.0.1:{}", dv.imap_port);
    let caps = check(&plain, "alice@example.com", "right horse", trusting_the_test_cert()).await;
    assert!(caps.is_ok(), "{caps:?}");
}

#[tokio::test]
async fn a_wrong_password_is_named_at_the_login_step() {
    if !available() {
        return;
    }
    let dv = Dovecot::start(&[("alice@example.com", "right horse")]);
    let e = check(
        &format!("imaps://localhost:{}", dv.imaps_port),
        "alice@example.com",
        "Tr0ub4dor-guess",
        trusting_the_test_cert(),
    )
    .await
    .unwrap_err();
    assert_eq!((e.step, e.problem), (Step::Login, Problem::WrongPassword), "{e}");
    assert!(!e.to_string().contains("Tr0ub4dor"), "the password is never echoed: {e}");
    assert_eq!(e.detail, "[AUTHENTICATIONFAILED] Authentication failed.", "the server's own words");
}

#[tokio::test]
async fn certificate_problems_are_named_at_the_tls_step() {
    if !available() {
        return;
    }
    let dv = Dovecot::start(&[("alice@example.com", "right horse")]);
    // The test certificate names localhost and 127.0.0.1, not 127.0.0.2.
    let e = check(
        &format!("imaps://127.0.0.2:{}", dv.imaps_port),
        "alice@example.com",
        "right horse",
        trusting_the_test_cert(),
    )
    .await
    .unwrap_err();
    assert_eq!((e.step, e.problem), (Step::Tls, Problem::CertWrongHost), "{e}");
    // Without --ca-file the self-signed certificate is from an unknown issuer.
    let system = Arc::new(gatepost::relay::trust::client_config(None, "--ca-file").unwrap());
    let e = check(&format!("imaps://localhost:{}", dv.imaps_port), "alice@example.com", "right horse", system.clone())
        .await
        .unwrap_err();
    assert_eq!((e.step, e.problem), (Step::Tls, Problem::CertUnknownIssuer), "{e}");
    let e = check(&format!("imap+starttls://localhost:{}", dv.imap_port), "alice@example.com", "right horse", system)
        .await
        .unwrap_err();
    assert_eq!((e.step, e.problem), (Step::Tls, Problem::CertUnknownIssuer), "{e}");
}

#[tokio::test]
async fn network_faults_are_named_by_their_step() {
    let tls = Arc::new(gatepost::relay::trust::client_config(Some(&cert()), "--ca-file").unwrap());
    // Nothing listens.
    let closed = crate::ports::free_port();
    let e = check(&format!("imaps://127.0.0.1:{closed}"), "a", "b", tls.clone()).await.unwrap_err();
    assert_eq!((e.step, e.problem), (Step::Tcp, Problem::Unreachable), "{e}");
    // No such host (the .invalid top-level domain never resolves, RFC 2606).
    let e = check("imaps://no-such-host.invalid", "a", "b", tls.clone()).await.unwrap_err();
    assert_eq!((e.step, e.problem), (Step::Dns, Problem::NoSuchHost), "{e}");
    // Plain text to a remote host is refused before anything is sent.
    let e = check("imap://imap.example.com", "a", "b", tls.clone()).await.unwrap_err();
    assert_eq!(e.problem, Problem::PlainText, "{e}");
    // A server that accepts and never speaks: the TLS step times out (a scripted fault).
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = silent.local_addr().unwrap().port();
    let hold = tokio::spawn(async move {
        let (_s, _) = silent.accept().await.unwrap();
        tokio::time::sleep(Duration::from_secs(30)).await;
    });
    let u = url(&format!("imaps://127.0.0.1:{port}"));
    let t = Target { url: &u, login: "a", password: "b", tls, step_timeout: Duration::from_millis(300) };
    let e = connect(&t).await.err().expect("a silent server fails");
    assert_eq!((e.step, e.problem), (Step::Tls, Problem::Timeout), "{e}");
    hold.abort();
    // A server that sends an endless line before STARTTLS: refused at once, memory bounded.
    let flood = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = flood.local_addr().unwrap().port();
    let hold = tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        let (mut s, _) = flood.accept().await.unwrap();
        let chunk = vec![b'A'; 64 << 10];
        while s.write_all(&chunk).await.is_ok() {}
    });
    let u = url(&format!("imap+starttls://127.0.0.1:{port}"));
    let t = Target { url: &u, login: "a", password: "b", tls: t.tls.clone(), step_timeout: Duration::from_secs(5) };
    let e = connect(&t).await.err().expect("a flooding server fails");
    assert_eq!((e.step, e.problem), (Step::StartTls, Problem::Protocol), "{e}");
    assert!(e.detail.contains("longer than 8 KiB"), "{e}");
    hold.abort();
}
