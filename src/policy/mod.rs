//! Pure policy: rules and `decide()`, path normalization, return addresses,
//! role names. No I/O.

pub mod path;
pub mod redirect;
pub mod roles;
pub mod rules;

pub use roles::check_role_name;
