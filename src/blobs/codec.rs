//! A blob as stored: one format-marker byte, then the payload. The marker lets the codec
//! change without a migration (docs/mailstore.md, "Codec measurement"); a reader refuses a
//! marker it does not know rather than guess. Decoding checks the raw bytes against the
//! blob's name, so damage anywhere (marker, length, payload) is an error, never served mail.

use super::{BlobError, BlobHash};

/// The raw bytes follow.
pub const RAW: u8 = 0;
/// An LZ4 block with the raw length prepended (lz4_flex `compress_prepend_size`).
pub const LZ4: u8 = 1;

/// Compression that saves less than this fraction is not worth a decompression per read.
const MIN_SAVING_DIVISOR: usize = 8;

/// The stored form of `raw`: LZ4 when it saves at least 1/8, else raw.
pub fn encode(raw: &[u8]) -> Vec<u8> {
    let packed = lz4_flex::block::compress_prepend_size(raw);
    let (marker, payload) =
        if packed.len() <= raw.len() - raw.len() / MIN_SAVING_DIVISOR { (LZ4, &packed[..]) } else { (RAW, raw) };
    let mut out = Vec::with_capacity(payload.len() + 1);
    out.push(marker);
    out.extend_from_slice(payload);
    out
}

/// The raw bytes of a stored blob named `hash`, verified.
pub fn decode(hash: &BlobHash, stored: &[u8]) -> Result<Vec<u8>, BlobError> {
    let damaged = |why: String| BlobError::Damaged { hash: *hash, why };
    let (&marker, payload) = stored.split_first().ok_or_else(|| damaged("empty file".into()))?;
    let raw = match marker {
        RAW => payload.to_vec(),
        LZ4 => lz4(payload).map_err(damaged)?,
        other => return Err(damaged(format!("unknown format marker {other}"))),
    };
    if BlobHash::of(&raw) != *hash {
        return Err(damaged("its bytes do not match its SHA-256".into()));
    }
    Ok(raw)
}

/// LZ4 can shrink at most about 255:1, so a length prefix beyond that is damage (and would
/// otherwise make a damaged blob allocate up to 4 GiB). The output must fill the prefix exactly.
fn lz4(payload: &[u8]) -> Result<Vec<u8>, String> {
    let (prefix, block) = payload.split_first_chunk::<4>().ok_or("LZ4: no length prefix")?;
    let len = u32::from_le_bytes(*prefix) as usize;
    if len > block.len().saturating_mul(255).saturating_add(16) {
        return Err(format!("LZ4: a length of {len} bytes cannot come from {} stored bytes", block.len()));
    }
    let mut out = vec![0u8; len];
    let n = lz4_flex::block::decompress_into(block, &mut out).map_err(|e| format!("LZ4: {e}"))?;
    if n != len {
        return Err(format!("LZ4: {n} bytes where {len} were recorded"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(n: usize) -> Vec<u8> {
        b"Subject: the quarterly figures\r\n\r\nPlease find the figures attached. Regards.\r\n".repeat(n)
    }

    /// Incompressible bytes, deterministic (an LCG; no rand crate).
    fn noise(n: usize) -> Vec<u8> {
        let mut x: u32 = 12345;
        (0..n)
            .map(|_| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                (x >> 16) as u8
            })
            .collect()
    }

    #[test]
    fn round_trips_and_picks_the_codec() {
        for (raw, marker) in [(text(50), LZ4), (noise(10_000), RAW), (Vec::new(), RAW), (b"x".to_vec(), RAW)] {
            let stored = encode(&raw);
            assert_eq!(stored[0], marker, "{} bytes", raw.len());
            if marker == LZ4 {
                assert!(stored.len() < raw.len() / 4, "text compresses: {} of {}", stored.len(), raw.len());
            }
            assert_eq!(decode(&BlobHash::of(&raw), &stored).unwrap(), raw);
        }
    }

    #[test]
    fn damage_is_an_error_naming_the_blob() {
        let raw = text(50);
        let hash = BlobHash::of(&raw);
        let good = encode(&raw);
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("empty", vec![]),
            ("unknown marker", [&[9u8][..], &good[1..]].concat()),
            ("truncated", good[..good.len() / 2].to_vec()),
            ("length prefix says 1 GiB more", {
                let mut b = good.clone();
                b[4] ^= 0x40;
                b
            }),
            ("length prefix says a byte more", {
                let mut b = good.clone();
                b[1] = b[1].wrapping_add(1);
                b
            }),
            ("raw marker on compressed bytes", [&[RAW][..], &good[1..]].concat()),
            ("another blob's bytes", encode(&text(51))),
        ];
        // Every single-bit flip of the payload is caught by the decoder or the hash, or (a
        // match offset moved to an identical earlier copy) changes nothing served.
        for i in 1..good.len() {
            let mut b = good.clone();
            b[i] ^= 1 << (i % 8);
            match decode(&hash, &b) {
                Ok(same) => assert!(same == raw, "a flip at {i} served other bytes"),
                Err(e) => assert!(matches!(e, BlobError::Damaged { .. }), "flip at {i}: {e}"),
            }
        }
        for (what, stored) in cases {
            match decode(&hash, &stored) {
                Err(e @ BlobError::Damaged { .. }) => assert!(e.to_string().contains(&hash.to_string()), "{what}: {e}"),
                Err(other) => panic!("{what}: {other}"),
                Ok(bytes) => panic!("{what}: served {} bytes", bytes.len()),
            }
        }
    }
}
