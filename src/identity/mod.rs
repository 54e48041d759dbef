//! Who is calling: secrets and session records, keys and assertions, bearer tokens, the session cache, and the lookup that joins them.

pub mod cache;
pub mod identify;
pub mod keys;
pub mod secret;
pub mod session;
pub mod tokens;
