//! The quota that grows (SPEC §7): a user starts with `initial` bytes; a write that would leave
//! less than `grow_when_free_below` free raises the limit by whole `grow_by` steps, up to an
//! optional ceiling. Nothing is ever deleted to make room, and the limit never shrinks. Pure:
//! the mail store calls `decide` inside the transaction of the write and records the growth
//! there, so a crash cannot grow the limit without the write or the write without the growth.

/// The operator's rule (`[quota]`); a user's own ceiling, when set, replaces `ceiling`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaRule {
    pub initial: u64,
    pub grow_when_free_below: u64,
    /// At least 1 (the config refuses 0).
    pub grow_by: u64,
    pub ceiling: Option<u64>,
    /// How far above the ceiling gatepost's own filings (DSNs, notices, Sent copies) may go.
    pub reserve: u64,
}

/// Who writes: a user's action (APPEND, COPY, import) or gatepost filing for the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Writer {
    User,
    System,
}

/// A write that fits, and the limit it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Admitted {
    /// The limit after the write: the old one, or grown.
    pub limit: u64,
    /// `Some((old, new))` when the limit grew; the caller records it with the write.
    pub grew: Option<(u64, u64)>,
}

/// The write does not fit even at the ceiling (IMAP `NO [OVERQUOTA]`, RFC 9208 §4.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("over quota: {used} bytes used of {limit}, and {size} more do not fit under the ceiling")]
pub struct OverQuota {
    pub limit: u64,
    pub used: u64,
    pub size: u64,
}

/// Decide a write of `size` bytes for a user at `limit` with `used` bytes. The new limit is
/// `min(ceiling, limit + k·grow_by)` for the smallest k ≥ 0 that leaves at least
/// `grow_when_free_below` free after the write, or that reaches the ceiling; never below
/// `limit`. A user write must then fit under that limit; a system write may also use the
/// reserve above the ceiling once the ceiling is reached. Over quota changes nothing.
pub fn decide(
    rule: &QuotaRule,
    ceiling: Option<u64>,
    limit: u64,
    used: u64,
    size: u64,
    writer: Writer,
) -> Result<Admitted, OverQuota> {
    let Some(after) = used.checked_add(size) else { return Err(OverQuota { limit, used, size }) };
    let wanted = after.saturating_add(rule.grow_when_free_below);
    let grown = if limit >= wanted {
        limit
    } else {
        let step = rule.grow_by.max(1);
        let steps = (wanted - limit).div_ceil(step);
        limit.saturating_add(steps.saturating_mul(step))
    };
    let capped = match ceiling {
        Some(c) if grown >= c => Some(c),
        _ => None,
    };
    let new_limit = capped.map_or(grown, |c| c.max(limit));
    let room = match (writer, capped) {
        (Writer::System, Some(_)) => new_limit.saturating_add(rule.reserve),
        _ => new_limit,
    };
    if after > room {
        return Err(OverQuota { limit, used, size });
    }
    Ok(Admitted { limit: new_limit, grew: (new_limit > limit).then_some((limit, new_limit)) })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MB: u64 = 1_000_000;
    /// SPEC §7's example: 30 MB to start, grow by 30 MB when less than 2 MB would be free.
    const SPEC: QuotaRule =
        QuotaRule { initial: 30 * MB, grow_when_free_below: 2 * MB, grow_by: 30 * MB, ceiling: None, reserve: 5 * MB };

    #[test]
    fn table() {
        use Writer::{System, User};
        struct Case {
            what: &'static str,
            ceiling: Option<u64>,
            limit: u64,
            used: u64,
            size: u64,
            writer: Writer,
            want: Result<(u64, bool), ()>,
        }
        let c =
            |what, ceiling, limit, used, size, writer, want| Case { what, ceiling, limit, used, size, writer, want };
        let cases = [
            c("plenty of room", None, 30 * MB, 0, MB, User, Ok((30 * MB, false))),
            c("exactly 2 MB left free: no growth", None, 30 * MB, 27 * MB, MB, User, Ok((30 * MB, false))),
            c("one byte under 2 MB free: one step", None, 30 * MB, 27 * MB, MB + 1, User, Ok((60 * MB, true))),
            c("a huge write takes several steps at once", None, 30 * MB, 0, 100 * MB, User, Ok((120 * MB, true))),
            c("empty write never grows a roomy limit", None, 30 * MB, 10 * MB, 0, User, Ok((30 * MB, false))),
            c(
                "growth stops at the ceiling and fits",
                Some(50 * MB),
                30 * MB,
                27 * MB,
                5 * MB,
                User,
                Ok((50 * MB, true)),
            ),
            c("at the ceiling, the write must fit", Some(50 * MB), 50 * MB, 49 * MB, MB, User, Ok((50 * MB, false))),
            c("at the ceiling, a byte more is refused", Some(50 * MB), 50 * MB, 49 * MB, MB + 1, User, Err(())),
            c("over the ceiling even after growth", Some(40 * MB), 30 * MB, 29 * MB, 20 * MB, User, Err(())),
            c("system filing uses the reserve", Some(50 * MB), 50 * MB, 49 * MB, 3 * MB, System, Ok((50 * MB, false))),
            c("system filing: reserve is finite", Some(50 * MB), 50 * MB, 49 * MB, 7 * MB, System, Err(())),
            c(
                "system filing below the ceiling grows as a user's",
                None,
                30 * MB,
                29 * MB,
                MB,
                System,
                Ok((60 * MB, true)),
            ),
            c(
                "a lowered ceiling never shrinks the limit",
                Some(20 * MB),
                60 * MB,
                10 * MB,
                MB,
                User,
                Ok((60 * MB, false)),
            ),
            c(
                "a lowered ceiling: still room under the limit",
                Some(20 * MB),
                60 * MB,
                58 * MB,
                MB,
                User,
                Ok((60 * MB, false)),
            ),
            c("a lowered ceiling: no room, no growth", Some(20 * MB), 60 * MB, 59 * MB, 2 * MB, User, Err(())),
            c("usage already over the limit (imported before)", None, 30 * MB, 40 * MB, 1, User, Ok((60 * MB, true))),
            c("sizes near u64::MAX saturate, never wrap", None, 30 * MB, u64::MAX - 5, 10, User, Err(())),
        ];
        for case in cases {
            let got = decide(&SPEC, case.ceiling, case.limit, case.used, case.size, case.writer);
            match (got, case.want) {
                (Ok(a), Ok((limit, grew))) => {
                    assert_eq!((a.limit, a.grew.is_some()), (limit, grew), "{}", case.what);
                    if let Some((old, new)) = a.grew {
                        assert_eq!((old, new), (case.limit, limit), "{}: growth recorded as (old, new)", case.what);
                    }
                }
                (Err(e), Err(())) => {
                    assert_eq!((e.limit, e.used, e.size), (case.limit, case.used, case.size), "{}", case.what)
                }
                (got, want) => panic!("{}: got {got:?}, want {want:?}", case.what),
            }
        }
    }

    /// The rule's invariants over a grid of states: the limit never shrinks nor passes the
    /// ceiling (unless it was already above), an admitted user write fits, and without a
    /// ceiling the limit grows by the fewest whole steps that keep the free threshold.
    #[test]
    fn invariants() {
        let rule = QuotaRule { grow_by: 7, grow_when_free_below: 3, ..SPEC };
        for ceiling in [None, Some(0), Some(20), Some(35)] {
            for limit in 0..40 {
                for used in 0..45 {
                    for size in 0..25 {
                        for writer in [Writer::User, Writer::System] {
                            let Ok(a) = decide(&rule, ceiling, limit, used, size, writer) else {
                                assert!(
                                    ceiling.is_some(),
                                    "only a ceiling refuses: {ceiling:?} limit {limit} used {used} size {size}"
                                );
                                continue;
                            };
                            assert!(a.limit >= limit, "{ceiling:?} limit {limit} used {used} size {size} {writer:?}");
                            assert_eq!(
                                a.grew.is_some(),
                                a.limit > limit,
                                "{ceiling:?} limit {limit} used {used} size {size} {writer:?}"
                            );
                            if writer == Writer::User {
                                assert!(
                                    used + size <= a.limit,
                                    "{ceiling:?} limit {limit} used {used} size {size} {writer:?}"
                                );
                            }
                            match ceiling {
                                Some(c) => assert!(
                                    a.limit <= c.max(limit),
                                    "{ceiling:?} limit {limit} used {used} size {size} {writer:?}"
                                ),
                                None => {
                                    assert_eq!(
                                        (a.limit - limit) % 7,
                                        0,
                                        "{ceiling:?} limit {limit} used {used} size {size} {writer:?}"
                                    );
                                    assert!(
                                        a.limit >= used + size + 3,
                                        "{ceiling:?} limit {limit} used {used} size {size} {writer:?}"
                                    );
                                    assert!(
                                        a.limit == limit || a.limit - 7 < used + size + 3,
                                        "fewest steps: {ceiling:?} limit {limit} used {used} size {size}"
                                    );
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
