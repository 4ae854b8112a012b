//! Credentials gatepost must use itself — a connected account's password, later an OAuth2
//! refresh token — sealed at rest under the operator's key (`[secrets] key_file`,
//! docs/accounts.md "Credentials"). A user's own gatepost password is never stored this way:
//! that one is only checked, so it is hashed (argon2).
//!
//! ChaCha20-Poly1305 (ring's, already in the tree) with a random 96-bit nonce per seal and the
//! owner's identity (user and account name) as associated data, so a sealed record copied to
//! another account does not open. The record says its kind (`password`, `oauth2` later) and
//! which key sealed it (a fingerprint) outside the ciphertext: `account show` names the kind
//! without opening it, and a record sealed under another key is named as such, not as damage.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("secrets.key_file {path}: {why}")]
    KeyFile { path: PathBuf, why: String },
    #[error("no secrets key: set [secrets] key_file (a file of 64 hex digits, e.g. `openssl rand -hex 32`, mode 0600)")]
    NoKey,
    #[error("this credential was sealed under another key (fingerprint {sealed}; the key now is {current})")]
    OtherKey { sealed: String, current: String },
    #[error("this credential does not open: damaged, or sealed for another account")]
    DoesNotOpen,
    #[error("sealed credential damaged: {0}")]
    Damaged(String),
}

/// What is sealed. The tag is the record's kind; a new kind is a new variant, no migration.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Secret {
    Password { password: String },
}

impl Secret {
    pub fn kind(&self) -> &'static str {
        match self {
            Secret::Password { .. } => "password",
        }
    }
}

/// Never printed, even by `{:?}`.
impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({}, redacted)", self.kind())
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        match self {
            Secret::Password { password } => password.zeroize(),
        }
    }
}

/// A sealed credential as stored.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Sealed {
    pub kind: String,
    /// Fingerprint of the key that sealed it (hex, 16 digits).
    pub key: String,
    /// base64 of nonce ‖ ciphertext ‖ tag.
    pub data: String,
}

pub struct SealKey {
    key: LessSafeKey,
    fingerprint: String,
}

impl fmt::Debug for SealKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SealKey({})", self.fingerprint)
    }
}

const KEY_LEN: usize = 32;

impl SealKey {
    fn from_bytes(bytes: &[u8; KEY_LEN]) -> SealKey {
        let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
        let fingerprint = digest.as_ref()[..8].iter().map(|b| format!("{b:02x}")).collect();
        let key = LessSafeKey::new(UnboundKey::new(&CHACHA20_POLY1305, bytes).expect("32 bytes is a ChaCha20 key"));
        SealKey { key, fingerprint }
    }

    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// Read the key file: 64 hex digits (surrounding white space allowed).
    pub fn load(path: &Path) -> Result<SealKey, SecretError> {
        let bad = |why: String| SecretError::KeyFile { path: path.to_path_buf(), why };
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| bad(format!("cannot read it: {e}")))?);
        let hex = text.trim();
        if hex.len() != KEY_LEN * 2 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad(format!("must hold {} hex digits (e.g. `openssl rand -hex 32`)", KEY_LEN * 2)));
        }
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        for (i, pair) in hex.as_bytes().chunks(2).enumerate() {
            let s = std::str::from_utf8(pair).expect("hex digits are ASCII");
            bytes[i] = u8::from_str_radix(s, 16).expect("checked hex");
        }
        Ok(SealKey::from_bytes(&bytes))
    }

    /// Make a new key file (owner-only; never over an existing file).
    pub fn generate(path: &Path) -> Result<SealKey, SecretError> {
        use std::os::unix::fs::OpenOptionsExt;
        let bad = |why: String| SecretError::KeyFile { path: path.to_path_buf(), why };
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        SystemRandom::new().fill(bytes.as_mut()).map_err(|_| bad("no random numbers".into()))?;
        let hex = Zeroizing::new(bytes.iter().map(|b| format!("{b:02x}")).collect::<String>());
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            crate::store::integrity::private_dir_all(dir)
                .map_err(|e| bad(format!("cannot make its directory: {e}")))?;
        }
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| bad(format!("cannot create it: {e}")))?;
        f.write_all(format!("{}\n", hex.as_str()).as_bytes())
            .and_then(|()| f.sync_all())
            .map_err(|e| bad(format!("cannot write it: {e}")))?;
        Ok(SealKey::from_bytes(&bytes))
    }

    /// The configured key: loaded, generated when allowed and missing, or why not.
    pub fn from_config(key_file: Option<&Path>, generate_if_missing: bool) -> Result<SealKey, SecretError> {
        let path = key_file.ok_or(SecretError::NoKey)?;
        if generate_if_missing && !path.exists() {
            return SealKey::generate(path);
        }
        SealKey::load(path)
    }

    pub fn seal(&self, secret: &Secret, owner: &[u8]) -> Sealed {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new().fill(&mut nonce).expect("the system has random numbers");
        let mut data = Zeroizing::new(serde_json::to_vec(secret).expect("a secret serialises"));
        self.key
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(owner), &mut *data)
            .expect("sealing cannot fail below ring's length limit");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&data);
        Sealed { kind: secret.kind().to_string(), key: self.fingerprint.clone(), data: B64.encode(out) }
    }

    pub fn open(&self, sealed: &Sealed, owner: &[u8]) -> Result<Secret, SecretError> {
        if sealed.key != self.fingerprint {
            return Err(SecretError::OtherKey { sealed: sealed.key.clone(), current: self.fingerprint.clone() });
        }
        let raw = B64.decode(&sealed.data).map_err(|e| SecretError::Damaged(format!("not base64: {e}")))?;
        if raw.len() < NONCE_LEN {
            return Err(SecretError::Damaged("too short".into()));
        }
        let (nonce, body) = raw.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| SecretError::Damaged("nonce".into()))?;
        let mut body = Zeroizing::new(body.to_vec());
        let plain = self.key.open_in_place(nonce, Aad::from(owner), &mut body).map_err(|_| SecretError::DoesNotOpen)?;
        let secret: Secret =
            serde_json::from_slice(plain).map_err(|e| SecretError::Damaged(format!("contents: {e}")))?;
        if secret.kind() != sealed.kind {
            return Err(SecretError::Damaged(format!("labelled {} but holds {}", sealed.kind, secret.kind())));
        }
        Ok(secret)
    }
}

/// The associated data that binds a sealed credential to its account.
pub fn owner(user: &str, account: &str) -> Vec<u8> {
    format!("gatepost account\0{user}\0{account}").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pw(s: &str) -> Secret {
        Secret::Password { password: s.into() }
    }

    #[test]
    fn seals_opens_and_binds_to_its_owner_and_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys/secrets.key");
        let key = SealKey::from_config(Some(&path), true).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        let again = SealKey::from_config(Some(&path), true).unwrap();
        assert_eq!(key.fingerprint(), again.fingerprint(), "generated once, then loaded");

        let alice_work = owner("alice", "work");
        let sealed = key.seal(&pw("hunter2 secret"), &alice_work);
        assert_eq!(sealed.kind, "password");
        assert!(!sealed.data.contains("hunter2") && !serde_json::to_string(&sealed).unwrap().contains("hunter2"));
        assert_ne!(key.seal(&pw("hunter2 secret"), &alice_work).data, sealed.data, "a fresh nonce each time");
        assert_eq!(again.open(&sealed, &alice_work).unwrap(), pw("hunter2 secret"));

        // Copied to another account, it does not open.
        assert!(matches!(key.open(&sealed, &owner("alice", "home")), Err(SecretError::DoesNotOpen)));
        assert!(matches!(key.open(&sealed, &owner("bob", "work")), Err(SecretError::DoesNotOpen)));
        // Any flipped bit is refused.
        let mut raw = B64.decode(&sealed.data).unwrap();
        for i in [0, NONCE_LEN, raw.len() - 1] {
            raw[i] ^= 1;
            let bad = Sealed { data: B64.encode(&raw), ..sealed.clone() };
            assert!(key.open(&bad, &alice_work).is_err(), "bit flipped at {i}");
            raw[i] ^= 1;
        }
        // A relabelled kind is damage.
        let relabelled = Sealed { kind: "oauth2".into(), ..sealed.clone() };
        assert!(matches!(key.open(&relabelled, &alice_work), Err(SecretError::Damaged(_))));
        // Another key names itself.
        let other = SealKey::generate(&dir.path().join("other.key")).unwrap();
        let e = other.open(&sealed, &alice_work).unwrap_err();
        assert!(matches!(e, SecretError::OtherKey { .. }) && e.to_string().contains(key.fingerprint()), "{e}");
        // Debug never shows the secret.
        assert!(!format!("{:?}", pw("hunter2")).contains("hunter2"));
    }

    #[test]
    fn key_files_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(SealKey::from_config(None, true), Err(SecretError::NoKey)));
        let missing = dir.path().join("missing.key");
        let e = SealKey::from_config(Some(&missing), false).unwrap_err();
        assert!(e.to_string().contains("cannot read it"), "{e}");
        for bad in ["", "abc", &"g".repeat(64), &"a".repeat(63), &"a".repeat(66)] {
            let p = dir.path().join("bad.key");
            std::fs::write(&p, bad).unwrap();
            let e = SealKey::load(&p).unwrap_err();
            assert!(e.to_string().contains("64 hex digits"), "{bad:?}: {e}");
        }
        let p = dir.path().join("good.key");
        std::fs::write(&p, format!("  {}\n", "0f".repeat(32))).unwrap();
        assert_eq!(SealKey::load(&p).unwrap().fingerprint().len(), 16);
        assert!(SealKey::generate(&p).is_err(), "never over an existing file");
    }
}
