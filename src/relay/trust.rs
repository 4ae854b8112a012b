//! Which server certificates gatepost trusts when it connects out (to the relay now, to an
//! external account's IMAP/SMTP server with `--ca-file` later).
//!
//! A CA file named by the operator holds either a private CA or the server's own
//! self-signed certificate. webpki accepts the first but refuses the second when it says
//! CA:TRUE (`CaUsedAsEndEntity`), which is what `openssl req -x509` makes. So a certificate
//! from the file that the server presents *byte for byte* is trusted as exactly itself (a
//! pin, like DANE-EE in RFC 7671): the host name is still checked by webpki and the
//! handshake signatures are still verified with its key. Anything else goes through the
//! normal webpki verifier, with the file's certificates (and the system bundle) as roots.
//!
//! Pinning every certificate of the file, not only self-signed ones, trusts nothing new:
//! whoever can complete a handshake with a certificate from the file holds its private key,
//! and with a CA's key could issue any leaf it liked anyway.

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{WebPkiServerVerifier, verify_server_name};
use rustls::crypto::{WebPkiSupportedAlgorithms, verify_tls12_signature, verify_tls13_signature};
use rustls::server::ParsedCertificate;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

/// The system CA bundle (Debian's path), trusted beside any CA file.
pub const SYSTEM_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// A TLS client configuration trusting `ca_file` (roots, and pins for the exact certificates
/// in it) and the system bundle (required when there is no `ca_file`). `what` names the
/// setting in errors, e.g. `relay.ca_file`.
pub fn client_config(ca_file: Option<&Path>, what: &str) -> Result<ClientConfig, String> {
    client_config_with(ca_file, Path::new(SYSTEM_CA_BUNDLE), what)
}

/// As `client_config`, with the system bundle's path given (tests leave it out).
pub fn client_config_with(ca_file: Option<&Path>, system: &Path, what: &str) -> Result<ClientConfig, String> {
    let pinned = match ca_file {
        Some(path) => read_certificates(path, what)?,
        None => Vec::new(),
    };
    build(pinned, ca_file.is_some(), system, &format!("{what} {}", path_of(ca_file)))
}

/// As `client_config`, with the extra certificates given as PEM text (an account keeps the
/// text of its `--ca-file` in its record).
pub fn client_config_pem(pem: &str, what: &str) -> Result<ClientConfig, String> {
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(pem.as_bytes()).collect::<Result<_, _>>().map_err(|e| format!("{what}: {e}"))?;
    if certs.is_empty() {
        return Err(format!("{what}: no certificate in it"));
    }
    build(certs, true, Path::new(SYSTEM_CA_BUNDLE), what)
}

/// A connected account's trust: the system roots, plus the PEM text of its `--ca-file` when
/// it has one (kept in its record).
pub fn account_client_config(ca_pem: Option<&str>, what: &str) -> Result<ClientConfig, String> {
    match ca_pem {
        Some(pem) => client_config_pem(pem, what),
        None => client_config(None, what),
    }
}

fn build(pinned: Vec<CertificateDer<'static>>, extra: bool, system: &Path, what: &str) -> Result<ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    for cert in &pinned {
        roots.add(cert.clone()).map_err(|e| format!("{what}: {e}"))?;
    }
    if system.is_file() {
        let certs = CertificateDer::pem_file_iter(system)
            .map_err(|e| format!("system CA bundle {}: {e}", system.display()))?
            .filter_map(Result::ok);
        roots.add_parsable_certificates(certs);
    } else if !extra {
        return Err(format!(
            "no CA certificates to verify the server with: {} is missing (install ca-certificates) \
             and {} is not set",
            system.display(),
            what.trim_end()
        ));
    }
    if roots.is_empty() {
        return Err("no usable CA certificate to verify the server with".into());
    }
    let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| format!("TLS setup: {e}"))?;
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?;
    let config = if pinned.is_empty() {
        builder.with_webpki_verifier(webpki).with_no_client_auth()
    } else {
        let verifier = PinnedOrWebPki { pinned, webpki, algorithms: provider.signature_verification_algorithms };
        builder.dangerous().with_custom_certificate_verifier(Arc::new(verifier)).with_no_client_auth()
    };
    Ok(config)
}

fn path_of(p: Option<&Path>) -> String {
    p.map(|p| p.display().to_string()).unwrap_or_default()
}

/// Every certificate in a PEM file; none at all is an error (a wrong file named).
fn read_certificates(path: &Path, what: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let shown = path.display();
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("{what} {shown}: {e}"))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{what} {shown}: {e}"))?;
    if certs.is_empty() {
        return Err(format!("{what} {shown}: no certificate in the file"));
    }
    Ok(certs)
}

/// A certificate from the CA file presented as is: trusted as itself (name checked).
/// Anything else: webpki with the file and the system bundle as roots.
#[derive(Debug)]
pub struct PinnedOrWebPki {
    pinned: Vec<CertificateDer<'static>>,
    webpki: Arc<WebPkiServerVerifier>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for PinnedOrWebPki {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if self.pinned.iter().any(|p| p.as_ref() == end_entity.as_ref()) {
            // The validity dates of a pin are not checked (RFC 7671 §5.1): the operator's
            // file is the trust, and it is withdrawn by removing the certificate from it.
            verify_server_name(&ParsedCertificate::try_from(end_entity)?, server_name)?;
            return Ok(ServerCertVerified::assertion());
        }
        self.webpki.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests;
