//! Property checks over a few thousand generated inputs, and a replay of the
//! fuzz seeds in `fuzz/corpus/schedule/`.

use std::path::{Path, PathBuf};

use jiff::tz::TimeZone;

use super::resolve::deliver_on_value;
use super::tests::{ctx, zone};
use super::*;

/// Small deterministic generator (xorshift64*), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

const PIECES: &[&str] = &[
    "2026",
    "2027",
    "2028",
    "9999",
    "0000",
    "-",
    "-",
    ":",
    ":",
    "T",
    "t",
    " ",
    "  ",
    "\t",
    "+",
    "+",
    "Z",
    "z",
    "01",
    "02",
    "12",
    "13",
    "23",
    "24",
    "25",
    "28",
    "29",
    "30",
    "31",
    "59",
    "60",
    "99",
    "00",
    "0",
    "7",
    "d",
    "h",
    "m",
    "w",
    ".",
    ",",
    "5",
    "123456789",
    "Dec",
    "feb",
    "Mon",
    "fri",
    "Friday",
    "tomorrow",
    "monday",
    "sun",
    "GMT",
    "UT",
    "EST",
    "CET",
    "(",
    ")",
    "(CET)",
    "+0100",
    "-0500",
    "+01:00",
    "@",
    "bob",
    "\"",
    "x",
    "é",
    "\u{1f600}",
    "\r\n",
    "\0",
    "99999999999999999999",
    "2026-12-25",
    "20261225",
    "T0930",
    "09:30",
    "09:30:00",
];

const SEEDS: &[&str] = &[
    "2026-12-25",
    "2026-12-25 09:30",
    "2026-12-25T09:30:00+01:00",
    "Fri, 25 Dec 2026 09:30:00 +0100",
    "tomorrow",
    "+3d",
    "+2h",
    "+90m",
    "monday",
    "2026-11-23T09:57:00Z",
    "2027-12-28T10:00:00Z",
];

/// Random concatenations of grammar fragments, plus single-byte mutations
/// of valid values (the inputs most likely to reach deep code paths).
fn generated(count: usize) -> Vec<String> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut out = Vec::with_capacity(count);
    while out.len() < count {
        if rng.below(2) == 0 {
            let n = 1 + rng.below(8);
            out.push((0..n).map(|_| rng.pick(PIECES)).collect());
        } else {
            let mut bytes = rng.pick(SEEDS).as_bytes().to_vec();
            let at = rng.below(bytes.len());
            match rng.below(3) {
                0 => bytes[at] = b"0123456789-:+TZ ,x"[rng.below(18)],
                1 => {
                    bytes.remove(at);
                }
                _ => bytes.insert(at, b"0123456789-: "[rng.below(13)]),
            }
            out.push(String::from_utf8_lossy(&bytes).into_owned());
        }
    }
    out
}

#[test]
fn generated_values_keep_the_release_rules() {
    let zones = [TimeZone::UTC, zone("Europe/Berlin"), zone("America/New_York"), zone("Pacific/Kiritimati")];
    let inputs = generated(4000);
    let mut accepted = 0;
    for tz in &zones {
        let c = ctx(tz);
        let earliest = c.now.checked_sub(PAST_GRACE).unwrap();
        for value in &inputs {
            let Ok(r) = deliver_on_value(value, &c) else {
                continue;
            };
            accepted += 1;
            // Never before the requested moment, never before now.
            assert_eq!(r.release, r.requested.max(c.now), "{value:?}");
            assert!(r.release <= c.latest_release(), "{value:?}");
            // Released at once only if the requested time was at most the grace ago.
            if r.exact {
                assert!(r.requested >= earliest, "{value:?} accepted from {}", r.requested);
            } else {
                // Days: the requested day is today or later in the user's zone.
                let today = tz.to_datetime(c.now).date();
                assert!(tz.to_datetime(r.requested).date() >= today, "{value:?}");
            }
        }
    }
    // The generator must reach the accepting paths, or the test proves nothing.
    assert!(accepted > 200, "only {accepted} generated values were accepted");
}

#[test]
fn generated_inputs_never_panic() {
    for value in generated(4000) {
        fuzz_one(value.as_bytes());
        fuzz_one(format!("bob+{value}@example.com").as_bytes());
    }
    for bytes in [&b""[..], b"\xff\xfe", b"+", b"@", b"+@", b"bob+\xff@x", b"2026-12-25\xff"] {
        fuzz_one(bytes);
    }
}

/// `fuzz/corpus/schedule/`, found from this source file so it works both in
/// the main crate and in a scratch crate that includes the module by path.
fn corpus_dir() -> PathBuf {
    let file = Path::new(file!());
    let here = if file.is_absolute() { file.to_path_buf() } else { Path::new(env!("CARGO_MANIFEST_DIR")).join(file) };
    let root = here.ancestors().nth(3).expect("src/schedule/tests_fuzz.rs has a crate root");
    root.join("fuzz/corpus/schedule")
}

#[test]
fn fuzz_seeds_replay() {
    let dir = corpus_dir();
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let known = ["deliver_on_", "address_", "hold_", "found_"];
        assert!(known.iter().any(|k| name.starts_with(k)), "seed name {name}");
        fuzz_one(&std::fs::read(&path).unwrap());
        seen += 1;
    }
    assert!(seen >= 20, "expected the seed corpus, found {seen} files in {}", dir.display());
}
