//! Sequence sets (RFC 3501 §9 `sequence-set`) resolved against a session's view: message
//! sequence numbers or UIDs, `*`, ranges in either order.

use imap_types::sequence::{SeqOrUid, Sequence, SequenceSet};

/// The view's UIDs named by `set`, ascending, each once. `uid`: the set holds UIDs (a UID
/// range `n:*` always includes the last message, RFC 3501 §6.4.8); otherwise sequence
/// numbers, which must exist (`Err` with the bad number: BAD).
pub fn resolve(set: &SequenceSet, uids: &[u32], uid: bool) -> Result<Vec<u32>, u32> {
    let last = if uid { uids.last().copied().unwrap_or(0) } else { uids.len() as u32 };
    let value = |s: &SeqOrUid| match s {
        SeqOrUid::Value(v) => v.get(),
        SeqOrUid::Asterisk => last,
    };
    let mut out: Vec<u32> = Vec::new();
    for seq in set.0.as_ref() {
        let (a, b) = match seq {
            Sequence::Single(s) => (value(s), value(s)),
            Sequence::Range(a, b) => {
                let (a, b) = (value(a), value(b));
                (a.min(b), a.max(b))
            }
        };
        if uid {
            let start = uids.partition_point(|&u| u < a);
            let end = uids.partition_point(|&u| u <= b);
            out.extend_from_slice(&uids[start..end]);
        } else {
            if a == 0 || b > last {
                return Err(if a == 0 { 0 } else { b });
            }
            out.extend_from_slice(&uids[(a - 1) as usize..b as usize]);
        }
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// A UID list as a compact set: `1:3,7,9:10` (COPYUID, VANISHED, SEARCH results stay lists).
pub fn compact(uids: &[u32]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < uids.len() {
        let start = uids[i];
        let mut end = start;
        while i + 1 < uids.len() && uids[i + 1] == end + 1 {
            i += 1;
            end += 1;
        }
        if !out.is_empty() {
            out.push(',');
        }
        if start == end {
            out.push_str(&start.to_string());
        } else {
            out.push_str(&format!("{start}:{end}"));
        }
        i += 1;
    }
    out
}

/// COPYUID keeps the pairing order, so ranges only where both sides run together.
pub fn compact_pairs(pairs: &[(u32, u32)]) -> (String, String) {
    let src: Vec<String> = pairs.iter().map(|p| p.0.to_string()).collect();
    let dst: Vec<String> = pairs.iter().map(|p| p.1.to_string()).collect();
    if pairs.windows(2).all(|w| w[1].0 == w[0].0 + 1 && w[1].1 == w[0].1 + 1) && pairs.len() > 1 {
        let (f, l) = (pairs[0], pairs[pairs.len() - 1]);
        return (format!("{}:{}", f.0, l.0), format!("{}:{}", f.1, l.1));
    }
    (src.join(","), dst.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(s: &str) -> SequenceSet {
        SequenceSet::try_from(s).unwrap()
    }

    #[test]
    fn sequence_numbers_and_uids() {
        let uids = [3, 5, 9, 10];
        assert_eq!(resolve(&set("1:*"), &uids, false), Ok(vec![3, 5, 9, 10]));
        assert_eq!(resolve(&set("4:2"), &uids, false), Ok(vec![5, 9, 10]));
        assert_eq!(resolve(&set("5"), &uids, false), Err(5), "no fifth message");
        assert_eq!(resolve(&set("4:6,9"), &uids, true), Ok(vec![5, 9]));
        assert_eq!(resolve(&set("20:*"), &uids, true), Ok(vec![10]), "n:* includes the last UID");
        assert_eq!(resolve(&set("1:*"), &[], true), Ok(vec![]));
        assert_eq!(resolve(&set("*"), &[], false), Err(0), "* in an empty mailbox");
    }

    #[test]
    fn compact_sets() {
        assert_eq!(compact(&[1, 2, 3, 7, 9, 10]), "1:3,7,9:10");
        assert_eq!(compact_pairs(&[(4, 1), (5, 2)]), ("4:5".into(), "1:2".into()));
        assert_eq!(compact_pairs(&[(5, 1), (4, 2)]), ("5,4".into(), "1,2".into()));
    }
}
