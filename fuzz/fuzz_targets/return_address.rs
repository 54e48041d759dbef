//! cargo-fuzz target `return_address`: the property lives in `fuzz/checks/return_address.rs`,
//! shared with the test suite's replay of `fuzz/regressions/return_address/`.
#![no_main]

include!("../checks/return_address.rs");

libfuzzer_sys::fuzz_target!(|data: &[u8]| check(data));
