//! The tokens latchkey signs with `keys`, and what they say:
//!
//! - **Identity assertions** (`X-Auth-Assertion`, `typ: JWT`, this file):
//!   made on every allowed request with an identity, for the app at `aud`
//!   (its host name); `iss` is public_url's origin, `sub` the user id, with
//!   `email`, `roles`, `iat` and a short `exp` (`assertion.ttl`). Apps
//!   verify them against `GET /.latchkey/jwks.json` (served by signin).
//! - **Bearer tokens** (`Authorization: Bearer`, `typ: at+jwt`, `aud` =
//!   public_url's origin, `bearer.rs`): for API clients.
//!
//! The different `typ` and `aud` mean an assertion an app received can never
//! be replayed to latchkey as a bearer token, nor a bearer token passed off
//! to an app as an assertion. Without signing keys there are no assertions
//! (the header is sent empty), no bearer tokens, and the JWKS is empty.
//! Which headers carry an assertion is upstream's (`IdentityHeaders`).

use std::time::Duration;

use serde::Serialize;

use crate::identity::keys::{Keys, Typ};
use crate::identity::session::Identity;

/// The keys and the issuer (public_url's origin) every token is made and
/// checked with.
#[derive(Clone, Copy)]
pub struct Signer<'a> {
    pub keys: &'a Keys,
    pub issuer: &'a str,
}

#[derive(Serialize)]
struct AssertionClaims<'a> {
    iss: &'a str,
    aud: &'a str,
    sub: &'a str,
    email: &'a str,
    roles: &'a [String],
    /// How the person signed in: `email`, `oidc:ID`, or `token`.
    amr: &'a str,
    iat: u64,
    exp: u64,
}

impl Signer<'_> {
    /// The identity assertion for `identity` calling the app at `host`,
    /// valid for `ttl`; `None` without signing keys (or if signing failed,
    /// which is logged).
    pub fn assertion(
        &self,
        identity: &Identity,
        host: &str,
        ttl: Duration,
        now_ms: u64,
    ) -> Option<String> {
        if self.keys.is_empty() {
            return None;
        }
        let iat = now_ms / 1000;
        let claims = AssertionClaims {
            iss: self.issuer,
            aud: host,
            sub: &identity.user.id,
            email: &identity.user.email,
            roles: &identity.user.roles,
            amr: identity.amr(),
            iat,
            exp: iat + ttl.as_secs().max(1),
        };
        match self.keys.sign(Typ::Assertion, &claims) {
            Ok(jwt) => Some(jwt),
            Err(e) => {
                tracing::error!(error = %e, "could not sign an identity assertion; sent none");
                None
            }
        }
    }
}
