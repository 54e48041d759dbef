//! cargo-fuzz target `headers`: the property lives in `fuzz/checks/headers.rs`,
//! shared with the test suite's replay of `fuzz/regressions/headers/`.
#![no_main]

include!("../checks/headers.rs");

libfuzzer_sys::fuzz_target!(|data: &[u8]| check(data));
