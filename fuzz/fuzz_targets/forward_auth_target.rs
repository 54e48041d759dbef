//! cargo-fuzz target `forward_auth_target`: the property lives in `fuzz/checks/forward_auth_target.rs`,
//! shared with the test suite's replay of `fuzz/regressions/forward_auth_target/`.
#![no_main]

include!("../checks/forward_auth_target.rs");

libfuzzer_sys::fuzz_target!(|data: &[u8]| check(data));
