//! Users: creating them, checking their passwords. Argon2id (PHC strings) so a stolen store
//! does not yield passwords.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use jiff::Timestamp;

use crate::store::{Store, StoreError, UserRecord};

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("user {0:?} already exists")]
    Exists(String),
    #[error("no user {0:?}")]
    NoSuchUser(String),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why a login was refused; the SMTP layer words each differently (the user must learn
/// whether to fix a password or ask the operator).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginRefusal {
    BadCredentials,
    Unverified,
    Disabled,
}

pub fn hash_password(password: &str) -> String {
    let mut salt = [0u8; 16];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut salt).expect("system randomness");
    let salt = SaltString::encode_b64(&salt).expect("16-byte salt encodes");
    Argon2::default().hash_password(password.as_bytes(), &salt).expect("argon2 hashing").to_string()
}

pub fn verify_password(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| Argon2::default().verify_password(password.as_bytes(), &h).is_ok())
}

/// User names are login names: short, lower-case, no spaces or `@` confusion.
pub fn validate_name(name: &str) -> Result<(), AccountError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c));
    if ok { Ok(()) } else { Err(AccountError::Invalid(format!("user name {name:?} must be 1-64 of a-z 0-9 . _ -"))) }
}

pub fn validate_email(email: &str) -> Result<(), AccountError> {
    match email.rsplit_once('@') {
        Some((local, domain)) if !local.is_empty() && (domain.contains('.') || domain == "localhost") => {
            if email.chars().any(|c| c.is_whitespace() || c == '<' || c == '>') {
                Err(AccountError::Invalid(format!("email {email:?} contains spaces or angle brackets")))
            } else {
                Ok(())
            }
        }
        _ => Err(AccountError::Invalid(format!("email {email:?} is not an address like name@example.com"))),
    }
}

pub fn validate_password(password: &str) -> Result<(), AccountError> {
    if password.chars().count() < 8 {
        return Err(AccountError::Invalid("password must be at least 8 characters".into()));
    }
    Ok(())
}

pub fn validate_timezone(zone: &str) -> Result<(), AccountError> {
    jiff::tz::TimeZone::get(zone)
        .map(|_| ())
        .map_err(|_| AccountError::Invalid(format!("unknown timezone {zone:?}; use an IANA name like Europe/Paris")))
}

/// Add a user added by the operator (verified at once).
pub fn add_user(
    store: &Store,
    name: &str,
    email: &str,
    password: &str,
    now: Timestamp,
) -> Result<UserRecord, AccountError> {
    validate_name(name)?;
    validate_email(email)?;
    validate_password(password)?;
    if store.get_user(name)?.is_some() {
        return Err(AccountError::Exists(name.to_string()));
    }
    let user = UserRecord {
        name: name.to_string(),
        email: email.to_string(),
        password_hash: hash_password(password),
        verified: true,
        disabled: false,
        timezone: None,
        created_at: now,
    };
    store.put_user(&user)?;
    Ok(user)
}

pub fn update_user(
    store: &Store,
    name: &str,
    change: impl FnOnce(&mut UserRecord) -> Result<(), AccountError>,
) -> Result<UserRecord, AccountError> {
    let mut user = store.get_user(name)?.ok_or_else(|| AccountError::NoSuchUser(name.to_string()))?;
    change(&mut user)?;
    store.put_user(&user)?;
    Ok(user)
}

/// Check a login. Slow on purpose (argon2): call it off the async runtime.
pub fn login(store: &Store, name: &str, password: &str) -> Result<Result<UserRecord, LoginRefusal>, StoreError> {
    let Some(user) = store.get_user(name)? else {
        // Spend the same time as a real check so user names cannot be probed by timing.
        let _ = verify_password(DUMMY_HASH, password);
        return Ok(Err(LoginRefusal::BadCredentials));
    };
    if !verify_password(&user.password_hash, password) {
        return Ok(Err(LoginRefusal::BadCredentials));
    }
    if user.disabled {
        return Ok(Err(LoginRefusal::Disabled));
    }
    if !user.verified {
        return Ok(Err(LoginRefusal::Unverified));
    }
    Ok(Ok(user))
}

const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$9bLh3Qmp6yQmnPZ8bGA2qi5E8jQkJQhxvEqEK2mR0vQ";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_and_login() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let now = Timestamp::UNIX_EPOCH;
        add_user(&store, "alice", "alice@example.com", "correct horse", now).unwrap();
        assert!(matches!(
            add_user(&store, "alice", "a@example.com", "correct horse", now),
            Err(AccountError::Exists(_))
        ));
        assert!(login(&store, "alice", "correct horse").unwrap().is_ok());
        assert_eq!(login(&store, "alice", "wrong").unwrap().unwrap_err(), LoginRefusal::BadCredentials);
        assert_eq!(login(&store, "nobody", "x").unwrap().unwrap_err(), LoginRefusal::BadCredentials);
        update_user(&store, "alice", |u| {
            u.verified = false;
            Ok(())
        })
        .unwrap();
        assert_eq!(login(&store, "alice", "correct horse").unwrap().unwrap_err(), LoginRefusal::Unverified);
        update_user(&store, "alice", |u| {
            u.disabled = true;
            Ok(())
        })
        .unwrap();
        assert_eq!(login(&store, "alice", "correct horse").unwrap().unwrap_err(), LoginRefusal::Disabled);
    }

    #[test]
    fn validation_table() {
        for bad in ["", "Alice", "a b", "a@b", &"x".repeat(65)] {
            assert!(validate_name(bad).is_err(), "{bad:?}");
        }
        for bad in ["alice", "@x.com", "a@b", "a b@x.com", "<a@x.com>"] {
            assert!(validate_email(bad).is_err(), "{bad:?}");
        }
        assert!(validate_email("a@localhost").is_ok());
        assert!(validate_password("short").is_err());
        assert!(validate_timezone("Mars/Olympus").is_err());
        assert!(validate_timezone("Asia/Shanghai").is_ok());
    }
}
