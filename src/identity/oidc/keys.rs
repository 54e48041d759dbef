//! The provider's signing keys (its JWKS), cached per provider and fetched
//! again when an ID token names a key id the cache does not hold: that is
//! how a key rotation at the provider reaches latchkey. A re-fetch happens
//! at most once per [`REFETCH_INTERVAL`] (by the `Clock`), so a flood of
//! tokens with made-up key ids cannot turn into a flood of requests to the
//! provider. The load at discovery is not a re-fetch: a rotation right after
//! latchkey started is followed at the first token that names the new key. Keys of types or algorithms jsonwebtoken cannot use (or meant
//! for encryption) are skipped, not fatal.

use std::time::Duration;

use jsonwebtoken::jwk::{Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use url::Url;

use super::http::{Auth, ProviderHttp};
use super::OidcError;
use crate::obs::clock::Clock;

/// Least time between two fetches of one provider's keys.
pub const REFETCH_INTERVAL: Duration = Duration::from_secs(60);

/// One provider's keys and when they were last fetched.
#[derive(Debug)]
pub struct KeyCache {
    jwks_uri: Url,
    state: tokio::sync::Mutex<KeySet>,
}

#[derive(Debug)]
struct KeySet {
    keys: Vec<Jwk>,
    /// When an unknown `kid` last made the cache fetch again; `None` before
    /// the first time.
    refetched_ms: Option<u64>,
}

#[derive(serde::Deserialize)]
struct RawSet {
    keys: Vec<serde_json::Value>,
}

impl KeyCache {
    /// Fetches the keys at `jwks_uri` now.
    #[tracing::instrument(skip_all, fields(jwks_uri = %jwks_uri))]
    pub async fn load(http: &ProviderHttp, jwks_uri: Url) -> Result<KeyCache, OidcError> {
        let keys = fetch(http, &jwks_uri).await?;
        Ok(KeyCache {
            jwks_uri,
            state: tokio::sync::Mutex::new(KeySet {
                keys,
                refetched_ms: None,
            }),
        })
    }

    /// The key ids the cache holds now.
    pub async fn kids(&self) -> Vec<Option<String>> {
        let state = self.state.lock().await;
        state.keys.iter().map(|k| k.common.key_id.clone()).collect()
    }

    /// The key that verifies a token with this `kid` and `alg`; when none
    /// is cached and the last fetch is old enough, the keys are fetched
    /// again first.
    pub async fn key_for(
        &self,
        http: &ProviderHttp,
        kid: Option<&str>,
        alg: Algorithm,
        clock: &Clock,
    ) -> Result<DecodingKey, OidcError> {
        let mut state = self.state.lock().await;
        if let Some(key) = pick(&state.keys, kid, alg) {
            return DecodingKey::from_jwk(key).map_err(OidcError::MalformedToken);
        }
        let now = clock.now_ms();
        let due = state
            .refetched_ms
            .is_none_or(|last| now.saturating_sub(last) >= REFETCH_INTERVAL.as_millis() as u64);
        if !due {
            tracing::debug!(
                kid,
                "unknown key id; keys were fetched again less than a minute ago"
            );
            return Err(OidcError::UnknownKey {
                kid: kid.map(str::to_owned),
            });
        }
        tracing::info!(kid, jwks_uri = %self.jwks_uri, "unknown key id; fetching the provider's keys again");
        state.refetched_ms = Some(now);
        state.keys = fetch(http, &self.jwks_uri).await?;
        match pick(&state.keys, kid, alg) {
            Some(key) => DecodingKey::from_jwk(key).map_err(OidcError::MalformedToken),
            None => Err(OidcError::UnknownKey {
                kid: kid.map(str::to_owned),
            }),
        }
    }
}

async fn fetch(http: &ProviderHttp, jwks_uri: &Url) -> Result<Vec<Jwk>, OidcError> {
    let raw: RawSet = http.get_json(jwks_uri, Auth::None).await?;
    Ok(raw
        .keys
        .into_iter()
        .filter_map(|v| serde_json::from_value::<Jwk>(v).ok())
        .filter(|k| !matches!(k.common.public_key_use, Some(PublicKeyUse::Encryption)))
        .collect())
}

/// The key named `kid` (or, without a kid, the only key that fits `alg`),
/// if its own `alg`, when it names one, is `alg`.
fn pick<'a>(keys: &'a [Jwk], kid: Option<&str>, alg: Algorithm) -> Option<&'a Jwk> {
    let fits = |k: &&Jwk| {
        k.common
            .key_algorithm
            .is_none_or(|ka| format!("{ka:?}") == format!("{alg:?}"))
            && DecodingKey::from_jwk(k).is_ok_and(|d| d.family() == alg.family())
    };
    match kid {
        Some(kid) => keys
            .iter()
            .filter(|k| k.common.key_id.as_deref() == Some(kid))
            .find(fits),
        None => {
            let mut fitting = keys.iter().filter(fits);
            let first = fitting.next();
            if fitting.next().is_some() {
                None
            } else {
                first
            }
        }
    }
}
