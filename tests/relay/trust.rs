//! `relay.ca_file` against a real relay (aiosmtpd, STARTTLS and AUTH) holding certificates
//! made here: the relay's own self-signed CA:TRUE certificate (what `openssl req -x509`
//! makes) is trusted for its name only and only as itself; a private CA's chain still works.

use gatepost::relay::RecipientResult::{self, Delivered};
use gatepost::relay::smtp::SmtpRelay;

use crate::peers::{start_aiosmtpd, wait_files};
use crate::support::*;

fn refused_tls(r: &RecipientResult, why: &str) -> bool {
    matches!(r, RecipientResult::Deferred(t) if t.text.contains("TLS failed: invalid peer certificate") && t.text.contains(why))
}

fn relay_trusting(url: &str, ca_file: &std::path::Path) -> SmtpRelay {
    relay(url, |c| {
        c.ca_file = Some(ca_file.to_path_buf());
        c.credentials = Some(("relayuser".into(), "relay secret".into()));
    })
}

#[tokio::test]
async fn the_relays_own_self_signed_ca_certificate() {
    if !python_peer("aiosmtpd") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let own = self_signed_ca(dir.path(), "own", &["localhost"]);
    let stranger = self_signed_ca(dir.path(), "stranger", &["localhost"]);
    let (_server, port) = start_aiosmtpd(dir.path(), &own.cert, &own.key).await;
    let m = msg("T1", "relay@gatepost.test", &["bob@example.net"], "Subject: pinned\r\n\r\nhi\r\n");

    // Accepted for its name (before: "invalid peer certificate: CaUsedAsEndEntity").
    let url = format!("smtp+starttls://localhost:{port}");
    let out = relay_trusting(&url, &own.cert).deliver_batch(std::slice::from_ref(&m)).await;
    let log = std::fs::read_to_string(dir.path().join("stderr.log")).unwrap_or_default();
    assert_eq!(out[0].recipients, [Delivered], "{out:?}\n{log}");
    assert_eq!(wait_files(&dir.path().join("out"), 1).await.len(), 1);

    // Refused for another name: the certificate names localhost only, not 127.0.0.1.
    let by_ip = format!("smtp+starttls://127.0.0.1:{port}");
    let out = relay_trusting(&by_ip, &own.cert).deliver_batch(std::slice::from_ref(&m)).await;
    assert!(refused_tls(&out[0].recipients[0], "not valid for name"), "{out:?}");

    // Refused when the file holds a different self-signed certificate for the same name.
    let out = relay_trusting(&url, &stranger.cert).deliver_batch(std::slice::from_ref(&m)).await;
    assert!(refused_tls(&out[0].recipients[0], ""), "{out:?}");
    assert_eq!(wait_files(&dir.path().join("out"), 1).await.len(), 1, "nothing else arrived");
}

#[tokio::test]
async fn a_certificate_for_another_name_is_refused_even_when_pinned() {
    if !python_peer("aiosmtpd") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let other = self_signed_ca(dir.path(), "other", &["relay.example.net"]);
    let (_server, port) = start_aiosmtpd(dir.path(), &other.cert, &other.key).await;
    let m = msg("T2", "relay@gatepost.test", &["bob@example.net"], "x\r\n");
    let out = relay_trusting(&format!("smtp+starttls://localhost:{port}"), &other.cert).deliver_batch(&[m]).await;
    assert!(refused_tls(&out[0].recipients[0], "not valid for name"), "{out:?}");
}

#[tokio::test]
async fn a_chain_from_a_private_ca_still_works() {
    if !python_peer("aiosmtpd") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (ca, leaf) = private_ca_and_leaf(dir.path(), "leaf", &["localhost"]);
    let (_server, port) = start_aiosmtpd(dir.path(), &leaf.cert, &leaf.key).await;
    let m = msg("T3", "relay@gatepost.test", &["bob@example.net"], "x\r\n");
    let out = relay_trusting(&format!("smtp+starttls://localhost:{port}"), &ca).deliver_batch(&[m]).await;
    assert_eq!(out[0].recipients, [Delivered], "{out:?}");
}

#[tokio::test]
async fn the_openssl_line_in_docs_relay_md_makes_a_certificate_that_works() {
    if !peer("openssl") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("relay-cert.pem"), dir.path().join("relay-key.pem"));
    let out = std::process::Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "3650"])
        .args(["-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = std::process::Command::new("openssl").args(["x509", "-noout", "-text", "-in"]).arg(&cert).output();
    assert!(String::from_utf8_lossy(&text.unwrap().stdout).contains("CA:TRUE"), "openssl makes a CA:TRUE certificate");
    let fake = Fake::start_tls_with(&cert, &key, |mut c| async move {
        c.hello(&[]).await;
        transaction(&mut c, &["250 Ok"], "250 2.0.0 Ok: queued as OPENSSL").await;
        quit(&mut c).await;
    })
    .await;
    let relay = relay(&format!("smtps://localhost:{}", fake.addr.port()), |c| c.ca_file = Some(cert.clone()));
    let out = relay.deliver_batch(&[msg("1", "s@x.test", &["a@y.test"], "x\r\n")]).await;
    assert_eq!(one(&out).recipients, [Delivered], "{out:?}");
}
