//! TLS for the listeners: rustls with the ring provider only (two providers in one process
//! panic at runtime). A missing certificate is generated when the config allows it, so the
//! development config runs on a fresh clone.

use std::path::Path;
use std::sync::Arc;

use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("TLS certificate {path}: {why}")]
    Cert { path: String, why: String },
    #[error("TLS key {path}: {why}")]
    Key { path: String, why: String },
    #[error("TLS setup: {0}")]
    Setup(String),
}

/// Load the certificate chain and key; generate a self-signed pair first when both are
/// missing and `generate` is set. Returns the config and whether it generated.
pub fn load_or_generate(cert: &Path, key: &Path, generate: bool) -> Result<(Arc<ServerConfig>, bool), TlsError> {
    let mut generated = false;
    if generate && !cert.exists() && !key.exists() {
        generate_self_signed(cert, key)?;
        generated = true;
    }
    Ok((Arc::new(server_config(cert, key)?), generated))
}

pub fn server_config(cert: &Path, key: &Path) -> Result<ServerConfig, TlsError> {
    let cert_err = |why: String| TlsError::Cert { path: cert.display().to_string(), why };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| cert_err(e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| cert_err(e.to_string()))?;
    if chain.is_empty() {
        return Err(cert_err("no certificate in the file".into()));
    }
    let key_der = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| TlsError::Key { path: key.display().to_string(), why: e.to_string() })?;
    ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Setup(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key_der)
        .map_err(|e| TlsError::Setup(format!("certificate and key do not match: {e}")))
}

/// A self-signed certificate for `localhost` and 127.0.0.1, for development only.
pub fn generate_self_signed(cert: &Path, key: &Path) -> Result<(), TlsError> {
    let setup = |e: &dyn std::fmt::Display| TlsError::Setup(format!("generating a certificate: {e}"));
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string(), "127.0.0.1".to_string()])
        .map_err(|e| setup(&e))?;
    for path in [cert, key] {
        if let Some(dir) = path.parent() {
            crate::store::integrity::private_dir_all(dir).map_err(|e| setup(&e))?;
        }
    }
    std::fs::write(cert, ck.cert.pem()).map_err(|e| setup(&e))?;
    write_private(key, ck.signing_key.serialize_pem().as_bytes()).map_err(|e| setup(&e))?;
    Ok(())
}

#[cfg(unix)]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)?;
    f.write_all(bytes)
}

#[cfg(not(unix))]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, bytes)
}

/// "TLSv1.3" style name of the negotiated version, for the record.
pub fn version_name(v: Option<rustls::ProtocolVersion>) -> String {
    match v {
        Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3".into(),
        Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2".into(),
        Some(other) => format!("{other:?}"),
        None => "TLS".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_and_loads_and_reports_bad_files() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = (dir.path().join("tls/c.pem"), dir.path().join("tls/k.pem"));
        assert!(load_or_generate(&cert, &key, false).is_err());
        let (_, generated) = load_or_generate(&cert, &key, true).unwrap();
        assert!(generated);
        let (_, generated) = load_or_generate(&cert, &key, true).unwrap();
        assert!(!generated);
        std::fs::write(&cert, "not pem").unwrap();
        let err = server_config(&cert, &key).unwrap_err().to_string();
        assert!(err.contains("c.pem"), "{err}");
    }
}
