//! Verifying an ID token (OpenID Connect Core §3.1.3.7): the signature by
//! the provider's published key, with an algorithm the provider uses (never
//! `none`, never an HMAC keyed by the client secret), then `iss`, `aud`,
//! `azp`, `exp` and `iat` (with [`LEEWAY`], by latchkey's `Clock`) and the
//! `nonce` this sign-in made. The signature comes first: nothing in an
//! unverified token is believed.

use std::time::Duration;

use jsonwebtoken::{Algorithm, Validation};
use serde::Deserialize;
use serde_json::{Map, Value};
use subtle::ConstantTimeEq;

use super::http::ProviderHttp;
use super::keys::KeyCache;
use super::OidcError;
use crate::obs::clock::Clock;

/// Clock difference tolerated between latchkey and the provider.
pub const LEEWAY: Duration = Duration::from_secs(60);

/// An ID token as received: no `Display`, `Debug` hides it.
#[derive(Clone, PartialEq, Eq)]
pub struct IdToken(String);

impl IdToken {
    pub fn new(raw: impl Into<String>) -> IdToken {
        IdToken(raw.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for IdToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IdToken(..)")
    }
}

/// `aud` is one string or a list.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    pub fn as_slice(&self) -> &[String] {
        match self {
            Audience::One(a) => std::slice::from_ref(a),
            Audience::Many(a) => a,
        }
    }
}

/// The claims of an ID token: the registered ones typed, the rest as JSON.
#[derive(Debug, Clone, Deserialize)]
pub struct IdClaims {
    pub iss: String,
    pub sub: String,
    pub aud: Audience,
    pub exp: u64,
    pub iat: u64,
    #[serde(default)]
    pub nonce: Option<String>,
    #[serde(default)]
    pub azp: Option<String>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// What the token must say.
pub struct Expected<'a> {
    pub issuer: &'a str,
    pub client_id: &'a str,
    pub nonce: &'a str,
    /// The provider's `id_token_signing_alg_values_supported` (RS256 when
    /// it says nothing).
    pub algorithms: &'a [String],
}

/// Checks `token` and returns its claims.
#[tracing::instrument(skip_all)]
pub async fn verify_id_token(
    token: &IdToken,
    expected: &Expected<'_>,
    keys: &KeyCache,
    http: &ProviderHttp,
    clock: &Clock,
) -> Result<IdClaims, OidcError> {
    let header = jsonwebtoken::decode_header(token.expose()).map_err(OidcError::MalformedToken)?;
    let alg = header.alg;
    let advertised = if expected.algorithms.is_empty() {
        alg == Algorithm::RS256
    } else {
        expected
            .algorithms
            .iter()
            .any(|a| a.parse::<Algorithm>().ok() == Some(alg))
    };
    if !advertised || alg.family() == jsonwebtoken::AlgorithmFamily::Hmac {
        return Err(OidcError::DisallowedAlgorithm(alg));
    }
    let key = keys
        .key_for(http, header.kid.as_deref(), alg, clock)
        .await?;

    // jsonwebtoken checks the signature (and alg); the claims are checked
    // below, against latchkey's clock, each with its own error.
    let mut validation = Validation::new(alg);
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    let data =
        jsonwebtoken::decode::<IdClaims>(token.expose(), &key, &validation).map_err(|e| match e
            .kind()
        {
            jsonwebtoken::errors::ErrorKind::InvalidSignature => OidcError::BadSignature(e),
            _ => OidcError::MalformedToken(e),
        })?;
    let claims = data.claims;
    check_claims(&claims, expected, clock.now_ms() / 1000)?;
    Ok(claims)
}

/// The claim checks, on a token whose signature holds.
pub fn check_claims(c: &IdClaims, expected: &Expected<'_>, now: u64) -> Result<(), OidcError> {
    if c.iss != expected.issuer {
        return Err(OidcError::IssuerMismatch {
            expected: expected.issuer.to_owned(),
            found: Some(c.iss.clone()),
        });
    }
    let aud = c.aud.as_slice();
    if !aud.iter().any(|a| a == expected.client_id) {
        return Err(OidcError::WrongAudience {
            found: aud.to_vec(),
        });
    }
    match &c.azp {
        Some(azp) if azp != expected.client_id => {
            return Err(OidcError::WrongAuthorizedParty { found: azp.clone() });
        }
        None if aud.len() > 1 => {
            return Err(OidcError::WrongAuthorizedParty {
                found: String::new(),
            });
        }
        _ => {}
    }
    let leeway = LEEWAY.as_secs();
    if now > c.exp.saturating_add(leeway) {
        return Err(OidcError::Expired { exp: c.exp, now });
    }
    if c.iat > now.saturating_add(leeway) {
        return Err(OidcError::IssuedInFuture { iat: c.iat, now });
    }
    let nonce_ok = c
        .nonce
        .as_deref()
        .is_some_and(|n| bool::from(n.as_bytes().ct_eq(expected.nonce.as_bytes())));
    if !nonce_ok {
        return Err(OidcError::BadNonce);
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const NOW: u64 = 1_800_000_000;

    fn claims(edit: impl FnOnce(&mut Value)) -> IdClaims {
        let mut v = serde_json::json!({
            "iss": "https://idp.example.com", "sub": "u1", "aud": "latchkey",
            "exp": NOW + 300, "iat": NOW - 5, "nonce": "n-1", "email": "a@example.com",
        });
        edit(&mut v);
        serde_json::from_value(v).unwrap()
    }

    fn check(c: &IdClaims) -> Result<(), OidcError> {
        let expected = Expected {
            issuer: "https://idp.example.com",
            client_id: "latchkey",
            nonce: "n-1",
            algorithms: &[],
        };
        check_claims(c, &expected, NOW)
    }

    #[test]
    fn each_claim_is_checked_with_its_own_error() {
        assert!(check(&claims(|_| {})).is_ok());
        type Case = (&'static str, fn(&mut Value), &'static str);
        let cases: [Case; 9] = [
            (
                "other issuer",
                |v| v["iss"] = "https://evil.example.com".into(),
                "issuer_mismatch",
            ),
            (
                "other audience",
                |v| v["aud"] = "other-app".into(),
                "wrong_audience",
            ),
            (
                "audience list without us",
                |v| v["aud"] = serde_json::json!(["a", "b"]),
                "wrong_audience",
            ),
            (
                "two audiences, no azp",
                |v| v["aud"] = serde_json::json!(["latchkey", "b"]),
                "wrong_authorized_party",
            ),
            (
                "azp of another client",
                |v| v["azp"] = "other-app".into(),
                "wrong_authorized_party",
            ),
            (
                "expired past the leeway",
                |v| v["exp"] = (NOW - 61).into(),
                "expired",
            ),
            (
                "issued in the future",
                |v| v["iat"] = (NOW + 61).into(),
                "issued_in_future",
            ),
            ("other nonce", |v| v["nonce"] = "n-2".into(), "bad_nonce"),
            (
                "no nonce",
                |v| drop(v.as_object_mut().unwrap().remove("nonce")),
                "bad_nonce",
            ),
        ];
        for (what, edit, label) in cases {
            let err = check(&claims(edit)).unwrap_err();
            assert_eq!(err.label(), label, "{what}: {err}");
        }
    }

    #[test]
    fn small_clock_differences_are_tolerated() {
        assert!(check(&claims(|v| v["exp"] = (NOW - 59).into())).is_ok());
        assert!(check(&claims(|v| v["iat"] = (NOW + 59).into())).is_ok());
        assert!(check(&claims(|v| {
            v["aud"] = serde_json::json!(["latchkey", "b"]);
            v["azp"] = "latchkey".into();
        }))
        .is_ok());
    }

    #[test]
    fn the_token_never_shows_in_debug() {
        assert_eq!(
            format!("{:?}", IdToken::new("eyJ.secret.sig")),
            "IdToken(..)"
        );
    }
}
