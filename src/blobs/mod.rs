//! Message bytes, stored once per installation and named by their SHA-256 (docs/mailstore.md).
//! A blob is compressed behind a format marker (`codec`), written durably before anything
//! references it, and verified on every read: bytes that do not hash to their name are an
//! error naming the blob, never served. Behind `BlobStore` so another backend (S3) can serve
//! the same mail store; `files` is the embedded default and `memory` serves tests.

pub mod codec;
pub mod files;
pub mod memory;
pub mod packs;

use std::fmt;
use std::str::FromStr;

/// The SHA-256 of a blob's raw (uncompressed) bytes.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BlobHash(pub [u8; 32]);

impl BlobHash {
    pub fn of(raw: &[u8]) -> BlobHash {
        let digest = ring::digest::digest(&ring::digest::SHA256, raw);
        BlobHash(digest.as_ref().try_into().expect("SHA-256 is 32 bytes"))
    }
}

impl fmt::Display for BlobHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for BlobHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BlobHash({self})")
    }
}

impl FromStr for BlobHash {
    type Err = BlobError;
    /// 64 lower-case hex digits, as `Display` writes them.
    fn from_str(s: &str) -> Result<Self, BlobError> {
        let bad = || BlobError::BadName(s.to_string());
        if s.len() != 64 || !s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
            return Err(bad());
        }
        let mut out = [0u8; 32];
        for (i, pair) in s.as_bytes().chunks(2).enumerate() {
            out[i] = u8::from_str_radix(std::str::from_utf8(pair).map_err(|_| bad())?, 16).map_err(|_| bad())?;
        }
        Ok(BlobHash(out))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("blob {0} is not stored")]
    Missing(BlobHash),
    /// The stored bytes do not decode, or decode to bytes with another hash.
    #[error("blob {hash} is damaged: {why}")]
    Damaged { hash: BlobHash, why: String },
    #[error("{0:?} is not a blob name (64 hex digits)")]
    BadName(String),
    #[error("blob {hash}: {context}: {source}")]
    Io { hash: BlobHash, context: &'static str, source: std::io::Error },
}

/// Where a blob's bytes are, as its store said when it stored them. The mail store keeps it
/// beside the blob's reference count, in the transaction that references the blob; no row
/// means `Own` (every blob stored before packs, and every large one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// Under its own name (a file of its own; an object of an object store).
    Own,
    /// In a pack: the offset and length of its stored bytes (`packs.rs`).
    Packed { pack: u64, offset: u64, len: u32 },
}

/// Where blobs live. Calls block (file I/O): async callers use `spawn_blocking`.
pub trait BlobStore: Send + Sync {
    /// Store `raw` durably (on disk when this returns) and return its name and place. Bytes
    /// already stored under their own name are not written again.
    fn put(&self, raw: &[u8]) -> Result<(BlobHash, Place), BlobError>;
    /// Store many at once, each with its hash (`BlobHash::of`, computed by the caller once):
    /// a backend with packs makes them durable under one fsync (bulk import).
    fn put_all(&self, blobs: &[(BlobHash, &[u8])]) -> Result<Vec<(BlobHash, Place)>, BlobError> {
        blobs.iter().map(|(_, raw)| self.put(raw)).collect()
    }
    /// The raw bytes, verified against `hash`.
    fn get(&self, hash: &BlobHash, place: Place) -> Result<Vec<u8>, BlobError>;
    fn contains(&self, hash: &BlobHash) -> Result<bool, BlobError>;
    /// For garbage collection only (docs/mailstore.md: the rule for when a blob may go).
    /// Packed bytes are not deleted one by one: their pack is compacted.
    fn delete(&self, hash: &BlobHash) -> Result<(), BlobError>;
    /// The packs, for the collector to compact (a backend without packs has none).
    fn packs(&self) -> Option<&packs::Packs> {
        None
    }
    /// Names of blobs stored under their own name (the collector's look for debris).
    fn own_names(&self) -> Result<Vec<BlobHash>, BlobError> {
        Ok(Vec::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_bad_names_are_refused() {
        let h = BlobHash::of(b"hello");
        let text = h.to_string();
        assert_eq!(text, "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824");
        assert_eq!(text.parse::<BlobHash>().unwrap(), h);
        for bad in ["", "2cf2", &text.to_uppercase(), &format!("{}g", &text[..63]), &format!("{text}00")] {
            assert!(matches!(bad.parse::<BlobHash>(), Err(BlobError::BadName(_))), "{bad:?}");
        }
    }
}
