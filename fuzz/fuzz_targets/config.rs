//! cargo-fuzz target `config`: the property lives in `fuzz/checks/config.rs`,
//! shared with the test suite's replay of `fuzz/regressions/config/`.
#![no_main]

include!("../checks/config.rs");

libfuzzer_sys::fuzz_target!(|data: &[u8]| check(data));
