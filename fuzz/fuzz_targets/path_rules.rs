//! cargo-fuzz target `path_rules`: the property lives in `fuzz/checks/path_rules.rs`,
//! shared with the test suite's replay of `fuzz/regressions/path_rules/`.
#![no_main]

include!("../checks/path_rules.rs");

libfuzzer_sys::fuzz_target!(|data: &[u8]| check(data));
