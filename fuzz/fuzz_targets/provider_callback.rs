//! cargo-fuzz target `provider_callback`: the property lives in
//! `fuzz/checks/provider_callback.rs`, shared with the test suite's replay
//! of `fuzz/regressions/provider_callback/`.
#![no_main]

include!("../checks/provider_callback.rs");

libfuzzer_sys::fuzz_target!(|data: &[u8]| check(data));
