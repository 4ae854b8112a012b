#![no_main]
//! Fuzz target `autoconfig`: the check lives in `tests/fuzz_seeds/checks.rs`, shared with the
//! seed replay test (`cargo test --test fuzz_seeds`).

use libfuzzer_sys::fuzz_target;

#[path = "../../tests/fuzz_seeds/checks.rs"]
mod checks;

fuzz_target!(|data: &[u8]| {
    checks::autoconfig(data);
});
