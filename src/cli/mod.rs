//! The command-line tools beside `serve`: users, sessions, tokens; the demo's echo app.

pub mod admin;
pub mod echo;
pub mod tokens;
