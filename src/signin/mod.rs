//! The pages and POSTs that turn a person into a session: email link and code, logout; mail.

pub mod login;
pub mod mail;
