#![no_main]
//! Fuzz target `imap_session`: arbitrary client bytes through imap-next's framing and the
//! IMAP session over a real mail store; the check lives in `tests/fuzz_seeds/checks.rs`.

use libfuzzer_sys::fuzz_target;

#[path = "../../tests/fuzz_seeds/checks.rs"]
mod checks;

fuzz_target!(|data: &[u8]| {
    checks::imap_session(data);
});
