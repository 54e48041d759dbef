//! latchkey: an authentication gateway. Magic-link sign-in, sessions in Redis,
//! role rules per host, path and method, identity headers for the apps behind
//! it; as a reverse proxy or as the forward-auth target of Traefik, Caddy and
//! Nginx.
//!
//! Data flows one way: `config` (file format) → `settings` (validated and
//! compiled once) → `server` (listeners) → `gate` (identity → decision →
//! outcome), which hands off to `login`, `forward_auth` or `proxy`.

// Deep async types (hyper server + TLS + upgrades) need more than the default.
#![recursion_limit = "256"]

pub mod admin;
pub mod admin_cli;
pub mod app;
pub mod audit;
pub mod config;
pub mod cookies;
pub mod echo;
pub mod error;
pub mod forward_auth;
pub mod forwarded;
pub mod gate;
pub mod identity;
pub mod keys;
pub mod login;
pub mod mail;
pub mod metrics;
pub mod pages;
pub mod path;
pub mod proxy;
pub mod redirect;
pub mod request;
pub mod request_id;
pub mod rules;
pub mod server;
pub mod session;
pub mod session_cache;
pub mod settings;
pub mod store;
pub mod tls;
pub mod tokens;
pub mod tokens_cli;

/// The body of every response latchkey sends: its own pages (`full`) or an
/// upstream's streamed body.
pub type Body = http_body_util::combinators::BoxBody<bytes::Bytes, hyper::Error>;

/// A complete body from bytes (pages, JSON, redirects).
pub fn full(bytes: impl Into<bytes::Bytes>) -> Body {
    use http_body_util::BodyExt;
    http_body_util::Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed()
}

/// Milliseconds since the Unix epoch.
pub fn unix_ms(t: std::time::SystemTime) -> u64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
