//! Provider tokens: signing people in with an OpenID Connect provider
//! (`kind = "oidc"`, and the Google and Microsoft presets), and the compiled
//! `[[login.providers]]` settings every provider kind runs on.
//!
//! `settings` compiles the config; `client` is one provider's client of
//! either protocol; `github` is GitHub's OAuth 2 (no ID token, the verified
//! primary address from its emails API); `discovery` reads the provider's
//! metadata; `keys` caches its JWKS (re-fetched on an unknown `kid`, at
//! most once a minute); `flow` builds the authorization URL and turns a
//! callback into a [`VerifiedIdentity`]; `verify` checks ID tokens; `http`
//! is the client they share (hyper-util + rustls, like the upstream proxy).
//! Built on jsonwebtoken (already here for assertions) rather than the
//! `openidconnect` crate, which would bring a second crypto stack (RustCrypto
//! `rsa`, `p256`, `p384`, `ed25519-dalek`), `oauth2`, `chrono` and some 70
//! crates more. The URLs, cookies, pending-login records and sessions
//! belong to `signin`.

pub mod client;
pub mod discovery;
mod error;
pub mod flow;
pub mod github;
pub mod http;
pub mod keys;
pub mod settings;
pub mod verify;

pub use client::ProviderClient;
pub use discovery::ProviderMetadata;
pub use error::OidcError;
pub use flow::{
    Authorization, CallbackParams, OidcClient, PendingLogin, TokenSet, VerifiedIdentity,
};
pub use github::GitHubClient;
pub use http::ProviderHttp;
pub use settings::{compile_providers, ClientSecret, Protocol, ProviderKind, ProviderSettings};
pub use verify::IdToken;
