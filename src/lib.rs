//! latchkey: an authentication gateway. Magic-link sign-in, sessions in Redis,
//! role rules per host, path and method, identity headers for the apps behind
//! it; as a reverse proxy or as the forward-auth target of Traefik, Caddy and
//! Nginx.
//!
//! The code is in layers, each folder using only those below it: `cli`,
//! `server` (listeners), `gate` (the one router of `/.latchkey/*`, identity →
//! decision → outcome, forward-auth, the proxy handoff), `app` (the
//! composition root: `Settings` compiled once from `config`, and `App`),
//! `signin`, `http`, `upstream`, `identity`, `store`, `policy`, `tls`, `obs`,
//! `config`. A request walks down them and never back up.
//!
//! Public is only what the binary (`cli::main`), the fuzz targets, the
//! benchmarks and the integration tests reach (the config format, the
//! store contract, the parsers and policy); everything else is
//! `pub(crate)`.

// Deep async types (hyper server + TLS + upgrades) need more than the default.
#![recursion_limit = "256"]

pub mod app;
pub mod cli;
pub mod config;
pub mod gate;
pub mod http;
pub mod identity;
pub mod obs;
pub mod policy;
pub(crate) mod server;
pub mod signin;
pub mod store;
pub mod tls;
pub mod upstream;

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
