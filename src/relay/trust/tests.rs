//! Handshakes in memory (a tokio duplex) between a rustls server holding generated
//! certificates and a client built by `client_config_with`, over TLS 1.2 and 1.3.

use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};

use super::*;

/// A certificate, its key, and the PEM an operator would put in a CA file.
struct Made {
    cert: CertificateDer<'static>,
    key: KeyPair,
    pem: String,
}

fn params(names: &[&str], ca: bool) -> CertificateParams {
    let mut p = CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
    p.distinguished_name.push(DnType::CommonName, names[0]);
    if ca {
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    }
    p
}

/// What `openssl req -x509 -addext subjectAltName=DNS:…` makes: self-signed, CA:TRUE.
fn self_signed_ca(names: &[&str]) -> Made {
    let key = KeyPair::generate().unwrap();
    let cert = params(names, true).self_signed(&key).unwrap();
    Made { pem: cert.pem(), cert: cert.der().clone(), key }
}

/// A private CA (its PEM) and a leaf for `names` issued by it.
fn private_ca_and_leaf(names: &[&str]) -> (Made, Made) {
    let ca_key = KeyPair::generate().unwrap();
    let ca_params = params(&["Private Relay CA"], true);
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, &ca_key);
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = params(names, false).signed_by(&leaf_key, &issuer).unwrap();
    let ca = Made { pem: ca_cert.pem(), cert: ca_cert.der().clone(), key: KeyPair::generate().unwrap() };
    (ca, Made { pem: leaf.pem(), cert: leaf.der().clone(), key: leaf_key })
}

fn private_key(k: &KeyPair) -> PrivateKeyDer<'static> {
    PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(k.serialize_der()))
}

/// The client trusting exactly the PEM text given (no system bundle).
fn client_trusting(pem: &str) -> (ClientConfig, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ca.pem");
    std::fs::write(&path, pem).unwrap();
    let config = client_config_with(Some(&path), &dir.path().join("no-bundle"), "relay.ca_file").unwrap();
    (config, dir)
}

/// Always presents the same chain and key, without checking that they belong together (so a
/// test can present someone else's certificate).
#[derive(Debug)]
struct Present(Arc<CertifiedKey>);

impl ResolvesServerCert for Present {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }
}

#[derive(Clone, Copy, Debug)]
enum Version {
    Tls12,
    Tls13,
}

/// Handshake as a client for `name` against a server presenting `chain` with `key`.
async fn handshake(
    client: &ClientConfig,
    name: &str,
    chain: Vec<CertificateDer<'static>>,
    key: &KeyPair,
    v: Version,
) -> Result<(), String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let signing = provider.key_provider.load_private_key(private_key(key)).unwrap();
    let versions: &[&rustls::SupportedProtocolVersion] = match v {
        Version::Tls12 => &[&rustls::version::TLS12],
        Version::Tls13 => &[&rustls::version::TLS13],
    };
    let server = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .unwrap()
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(Present(Arc::new(CertifiedKey::new(chain, signing)))));
    let (c, s) = tokio::io::duplex(64 * 1024);
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server));
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client.clone()));
    let name = ServerName::try_from(name.to_string()).unwrap();
    let (client_side, _server_side) = tokio::join!(connector.connect(name, c), acceptor.accept(s));
    client_side.map(|_| ()).map_err(|e| e.to_string())
}

const BOTH: [Version; 2] = [Version::Tls12, Version::Tls13];

#[tokio::test]
async fn own_self_signed_ca_certificate_is_trusted_for_its_name_only() {
    let relay = self_signed_ca(&["localhost"]);
    let (client, _dir) = client_trusting(&relay.pem);
    for v in BOTH {
        handshake(&client, "localhost", vec![relay.cert.clone()], &relay.key, v)
            .await
            .unwrap_or_else(|e| panic!("{v:?}: the pinned certificate is refused: {e}"));
        let e = handshake(&client, "relay.example.net", vec![relay.cert.clone()], &relay.key, v).await.unwrap_err();
        assert!(e.contains("not valid for name"), "{v:?}: {e}");
    }
}

#[tokio::test]
async fn plain_webpki_refuses_what_the_pin_accepts() {
    // Why the pin exists: with the file as roots only, webpki says CaUsedAsEndEntity.
    let relay = self_signed_ca(&["localhost"]);
    let mut roots = RootCertStore::empty();
    roots.add(relay.cert.clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let plain = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let e = handshake(&plain, "localhost", vec![relay.cert.clone()], &relay.key, Version::Tls13).await.unwrap_err();
    assert!(e.contains("CaUsedAsEndEntity"), "{e}");
}

#[tokio::test]
async fn another_self_signed_certificate_is_refused() {
    let trusted = self_signed_ca(&["localhost"]);
    let other = self_signed_ca(&["localhost"]); // same name, same subject, another key
    let (client, _dir) = client_trusting(&trusted.pem);
    for v in BOTH {
        let e = handshake(&client, "localhost", vec![other.cert.clone()], &other.key, v).await.unwrap_err();
        assert!(e.contains("invalid peer certificate"), "{v:?}: {e}");
    }
}

#[tokio::test]
async fn the_pinned_certificate_without_its_key_is_refused() {
    // Handshake signatures are still verified: a copy of the public certificate is useless.
    let trusted = self_signed_ca(&["localhost"]);
    let thief = KeyPair::generate().unwrap();
    let (client, _dir) = client_trusting(&trusted.pem);
    for v in BOTH {
        let e = handshake(&client, "localhost", vec![trusted.cert.clone()], &thief, v).await.unwrap_err();
        assert!(e.to_lowercase().contains("signature"), "{v:?}: {e}");
    }
}

#[tokio::test]
async fn a_chain_from_a_private_ca_still_works() {
    let (ca, leaf) = private_ca_and_leaf(&["relay.internal", "localhost"]);
    let (client, _dir) = client_trusting(&ca.pem);
    for v in BOTH {
        handshake(&client, "relay.internal", vec![leaf.cert.clone()], &leaf.key, v)
            .await
            .unwrap_or_else(|e| panic!("{v:?}: a CA-issued leaf is refused: {e}"));
        let e = handshake(&client, "other.internal", vec![leaf.cert.clone()], &leaf.key, v).await.unwrap_err();
        assert!(e.contains("not valid for name"), "{v:?}: {e}");
    }
    // A leaf from a CA that is not in the file is unknown.
    let (_, stranger) = private_ca_and_leaf(&["relay.internal"]);
    let e = handshake(&client, "relay.internal", vec![stranger.cert.clone()], &stranger.key, Version::Tls13)
        .await
        .unwrap_err();
    assert!(e.contains("UnknownIssuer") || e.contains("BadSignature"), "{e}");
}

#[tokio::test]
async fn a_file_with_several_certificates_pins_each_and_roots_each() {
    let relay = self_signed_ca(&["localhost"]);
    let (ca, leaf) = private_ca_and_leaf(&["relay.internal"]);
    let (client, _dir) = client_trusting(&format!("{}{}", relay.pem, ca.pem));
    handshake(&client, "localhost", vec![relay.cert.clone()], &relay.key, Version::Tls13).await.unwrap();
    handshake(&client, "relay.internal", vec![leaf.cert.clone()], &leaf.key, Version::Tls13).await.unwrap();
}

#[test]
fn file_errors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.pem");
    let e = client_config_with(Some(&missing), &dir.path().join("x"), "relay.ca_file").unwrap_err();
    assert!(e.starts_with("relay.ca_file") && e.contains("missing.pem"), "{e}");
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "not a certificate\n").unwrap();
    let e = client_config_with(Some(&empty), &dir.path().join("x"), "accounts.ca_file").unwrap_err();
    assert!(e.contains("accounts.ca_file") && e.contains("no certificate"), "{e}");
    let e = client_config_with(None, &dir.path().join("x"), "relay.ca_file").unwrap_err();
    assert!(e.contains("no CA certificates"), "{e}");
}
