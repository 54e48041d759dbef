//! Pure policy: rules and `decide()`, path normalization, return addresses. No I/O.

pub mod path;
pub mod redirect;
pub mod rules;
