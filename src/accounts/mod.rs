//! Users: creating and changing them, checking their passwords. Argon2id (PHC strings) so a
//! stolen store does not yield passwords.
//!
//! The login door every protocol shares lives here: [`login::Login`] (one async call per
//! attempt) with its parts — the bounded password pool (`pool`), the failure throttle
//! (`throttle`), the verified-password cache (`cache`), remembered successful (IP, user)
//! pairs (`known`) — and the follower of the store's per-user change feed (`changes`) that
//! ends sessions of changed accounts. `docs/login.md` describes the whole.

pub mod cache;
pub mod changes;
mod known;
pub mod login;
pub mod pool;
pub mod quota;
pub mod throttle;

use std::cell::RefCell;

use argon2::password_hash::{Output, PasswordHash, PasswordHasher, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
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

thread_local! {
    /// This thread's argon2 working memory (19 MiB at gatepost's cost), kept between checks.
    /// Allocating it per check left each thread's malloc arena holding its own copy after
    /// the free: a storm of wrong logins grew the process by 19 MiB per thread that ever ran
    /// a check. The password pool runs checks on a fixed set of threads (`pool.rs`), so the
    /// memory is `max_parallel_verifications × 19 MiB`, once.
    static ARGON2_MEMORY: RefCell<Vec<Block>> = const { RefCell::new(Vec::new()) };
}

/// Whether `password` matches the PHC string `hash` (argon2). The comparison of the outputs
/// is constant-time (`password_hash::Output`).
pub fn verify_password(hash: &str, password: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else { return false };
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else { return false };
    let (Ok(algorithm), Ok(params)) = (Algorithm::try_from(parsed.algorithm), Params::try_from(&parsed)) else {
        return false;
    };
    let Ok(version) = parsed.version.map_or(Ok(Version::default()), Version::try_from) else { return false };
    let mut salt_bytes = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_bytes) else { return false };
    let mut out = vec![0u8; expected.len()];
    let blocks = params.block_count();
    let hashed = ARGON2_MEMORY.with_borrow_mut(|memory| {
        if memory.len() < blocks {
            memory.resize(blocks, Block::default());
        }
        Argon2::new(algorithm, version, params).hash_password_into_with_memory(
            password.as_bytes(),
            salt,
            &mut out,
            &mut memory[..blocks],
        )
    });
    hashed.is_ok() && Output::new(&out).is_ok_and(|o| o == expected)
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
        generation: 0,
    };
    if !store.insert_user(&user)? {
        return Err(AccountError::Exists(name.to_string()));
    }
    Ok(store.get_user(name)?.unwrap_or(user))
}

/// Change a user. Every change (password, disabled, timezone, addresses …) goes through here,
/// so it bumps the user's generation in the same transaction: a running server ends the
/// user's older sessions and drops cached password checks within two seconds.
pub fn update_user(
    store: &Store,
    name: &str,
    change: impl FnOnce(&mut UserRecord) -> Result<(), AccountError>,
) -> Result<UserRecord, AccountError> {
    store.update_user(name, change)?.ok_or_else(|| AccountError::NoSuchUser(name.to_string()))
}

/// Why this account may not log in even with the right password (disabled, unverified):
/// checked after the password, so only someone who knows it learns the account's state.
pub fn refusal_for(user: &UserRecord) -> Option<LoginRefusal> {
    if user.disabled {
        Some(LoginRefusal::Disabled)
    } else if !user.verified {
        Some(LoginRefusal::Unverified)
    } else {
        None
    }
}

/// Verified instead of a missing user's hash, so unknown names cost the same argon2 time and
/// cannot be probed by timing.
pub const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$9bLh3Qmp6yQmnPZ8bGA2qi5E8jQkJQhxvEqEK2mR0vQ";

#[cfg(test)]
mod tests;
