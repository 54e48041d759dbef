//! cargo-fuzz target `passkey_answer`: the property lives in
//! `fuzz/checks/passkey_answer.rs`, shared with the test suite's replay
//! of `fuzz/regressions/passkey_answer/`.
#![no_main]

include!("../checks/passkey_answer.rs");

libfuzzer_sys::fuzz_target!(|data: &[u8]| check(data));
