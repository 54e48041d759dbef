//! The authorization-code flow with one OpenID provider, from the URL the
//! browser is sent to, to a verified identity.
//!
//! [`OidcClient::discover`] reads the provider's metadata and keys;
//! [`OidcClient::start`] makes the authorization URL with a fresh `state`,
//! `nonce` and PKCE (S256) verifier, returned as a [`PendingLogin`] for the
//! caller to keep server-side; [`OidcClient::finish`] takes the callback's
//! query and that record, checks `state` and the RFC 9207 `iss`, exchanges
//! the code (client_secret_basic or _post, as the provider offers),
//! verifies the ID token, completes missing claims from userinfo and
//! insists on a verified email. Where the pending record lives, cookies and
//! sessions belong to `signin`; this module does no storage.

use std::collections::BTreeSet;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use rand::RngCore;
use serde::Deserialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use url::Url;

use super::discovery::{discover, ClientAuth, ProviderMetadata};
use super::http::{Auth, ProviderHttp};
use super::keys::KeyCache;
use super::settings::{ClientSecret, Protocol, ProviderSettings};
use super::verify::{verify_id_token, Expected, IdClaims, IdToken};
use super::OidcError;
use crate::identity::secret::Secret;
use crate::obs::clock::Clock;

/// One discovered OpenID provider.
#[derive(Debug)]
pub struct OidcClient {
    settings: ProviderSettings,
    issuer: String,
    redirect_uri: Url,
    metadata: ProviderMetadata,
    keys: KeyCache,
    http: ProviderHttp,
    clock: Clock,
}

/// Where to send the browser, and what to keep until it comes back.
#[derive(Debug)]
pub struct Authorization {
    pub url: Url,
    pub pending: PendingLogin,
}

/// The secrets of one sign-in in progress, kept server-side (never in the
/// browser) until the callback. `Debug` shows none of them.
#[derive(Debug)]
pub struct PendingLogin {
    pub state: Secret,
    pub nonce: Secret,
    pub code_verifier: Secret,
}

impl PendingLogin {
    /// Rebuilds a record read back from the store; `None` unless all three
    /// have the shape `Secret::generate` makes.
    pub fn from_parts(state: &str, nonce: &str, code_verifier: &str) -> Option<PendingLogin> {
        Some(PendingLogin {
            state: Secret::parse(state)?,
            nonce: Secret::parse(nonce)?,
            code_verifier: Secret::parse(code_verifier)?,
        })
    }
}

/// The callback's query as sent; `Debug` hides the code.
#[derive(Default, Clone, PartialEq, Eq)]
pub struct CallbackParams {
    pub code: Option<String>,
    pub state: Option<String>,
    pub iss: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
    /// A parameter appeared twice (RFC 6749 §3.1 forbids it): refused.
    pub repeated: bool,
}

impl std::fmt::Debug for CallbackParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallbackParams")
            .field("code", &self.code.as_ref().map(|_| ".."))
            .field("state", &self.state.as_ref().map(|_| ".."))
            .field("iss", &self.iss)
            .field("error", &self.error)
            .field("repeated", &self.repeated)
            .finish()
    }
}

impl CallbackParams {
    /// Parses the callback's query string (without the `?`).
    pub fn from_query(query: &str) -> CallbackParams {
        let mut p = CallbackParams::default();
        for (k, v) in form_urlencoded::parse(query.as_bytes()) {
            let slot = match &*k {
                "code" => &mut p.code,
                "state" => &mut p.state,
                "iss" => &mut p.iss,
                "error" => &mut p.error,
                "error_description" => &mut p.error_description,
                _ => continue,
            };
            if slot.is_some() {
                p.repeated = true;
            }
            *slot = Some(v.into_owned());
        }
        p
    }
}

/// A person the provider vouches for, with a verified email.
#[derive(Debug, Clone)]
pub struct VerifiedIdentity {
    /// The provider's id in the config (`corp`).
    pub provider: String,
    /// The provider's `sub`.
    pub subject: String,
    /// Normalized as the email link normalizes addresses.
    pub email: String,
    /// Always true: an unverified address is an error, not an identity.
    pub email_verified: bool,
    /// The values of `roles_claim`, as the provider sent them.
    pub claim_values: Vec<String>,
    /// `role_map` applied to `claim_values`.
    pub mapped_roles: BTreeSet<String>,
    /// For RP-initiated logout (`id_token_hint`); none from GitHub.
    pub id_token: Option<IdToken>,
}

impl VerifiedIdentity {
    /// How the session was made, for `amr`: `oidc:corp`.
    pub fn amr(&self) -> String {
        format!("oidc:{}", self.provider)
    }
}

/// What the token endpoint answered; `Debug` hides both tokens.
pub struct TokenSet {
    pub access_token: String,
    pub id_token: IdToken,
}

impl std::fmt::Debug for TokenSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenSet(..)")
    }
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    id_token: Option<String>,
}

impl OidcClient {
    /// Discovery and the keys, for `settings` (an OpenID kind) whose
    /// callback is `redirect_uri`.
    #[tracing::instrument(skip_all, fields(provider = %settings.id))]
    pub async fn discover(
        settings: &ProviderSettings,
        redirect_uri: Url,
        http: ProviderHttp,
        clock: Clock,
    ) -> Result<OidcClient, OidcError> {
        let Protocol::OpenIdConnect { issuer } = &settings.protocol else {
            return Err(OidcError::NotOpenIdConnect {
                provider: settings.id.clone(),
            });
        };
        let metadata = discover(&http, issuer).await?;
        let keys = KeyCache::load(&http, metadata.jwks_uri.clone()).await?;
        tracing::info!(issuer = %issuer, "provider discovered");
        Ok(OidcClient {
            settings: settings.clone(),
            issuer: issuer.clone(),
            redirect_uri,
            metadata,
            keys,
            http,
            clock,
        })
    }

    pub fn settings(&self) -> &ProviderSettings {
        &self.settings
    }

    pub fn metadata(&self) -> &ProviderMetadata {
        &self.metadata
    }

    pub fn keys(&self) -> &KeyCache {
        &self.keys
    }

    /// The authorization URL and the secrets to keep for the callback.
    pub fn start(&self, rng: &mut impl RngCore) -> Authorization {
        let (pending, challenge) = fresh_pending(rng);
        let mut url = self.metadata.authorization_endpoint.clone();
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.settings.client_id)
            .append_pair("redirect_uri", self.redirect_uri.as_str())
            .append_pair("scope", &self.settings.scopes.join(" "))
            .append_pair("state", pending.state.expose())
            .append_pair("nonce", pending.nonce.expose())
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256");
        Authorization { url, pending }
    }

    /// The callback: checks, exchange, verification, claims, identity.
    #[tracing::instrument(skip_all, fields(provider = %self.settings.id))]
    pub async fn finish(
        &self,
        pending: &PendingLogin,
        callback: &CallbackParams,
    ) -> Result<VerifiedIdentity, OidcError> {
        let code = self.check_callback(pending, callback)?;
        let tokens = self.exchange_code(pending, code).await?;
        let claims = self
            .verify(&tokens.id_token, pending.nonce.expose())
            .await?;
        self.identity(claims, &tokens).await
    }

    /// `state`, `iss` and `error` of the callback; the code when all hold.
    pub fn check_callback<'a>(
        &self,
        pending: &PendingLogin,
        callback: &'a CallbackParams,
    ) -> Result<&'a str, OidcError> {
        check_state(pending, callback)?;
        // RFC 9207: a provider that says it sends `iss` must, and it must be its own.
        match &callback.iss {
            Some(iss) if *iss != self.issuer => {
                return Err(OidcError::IssuerMismatch {
                    expected: self.issuer.clone(),
                    found: Some(iss.clone()),
                })
            }
            None if self.metadata.authorization_response_iss_parameter_supported => {
                return Err(OidcError::IssuerMismatch {
                    expected: self.issuer.clone(),
                    found: None,
                })
            }
            _ => {}
        }
        error_or_code(callback)
    }

    /// Trades the code for tokens at the token endpoint.
    #[tracing::instrument(skip_all, fields(provider = %self.settings.id))]
    pub async fn exchange_code(
        &self,
        pending: &PendingLogin,
        code: &str,
    ) -> Result<TokenSet, OidcError> {
        let basic;
        // In a block: the serializer is not `Send`, so it must not live
        // across the await.
        let (auth, body) = {
            let mut form = form_urlencoded::Serializer::new(String::new());
            form.append_pair("grant_type", "authorization_code")
                .append_pair("code", code)
                .append_pair("redirect_uri", self.redirect_uri.as_str())
                .append_pair("code_verifier", pending.code_verifier.expose());
            let auth = match self.metadata.client_auth() {
                Some(ClientAuth::Post) => {
                    form.append_pair("client_id", &self.settings.client_id)
                        .append_pair("client_secret", self.settings.client_secret.expose());
                    Auth::None
                }
                _ => {
                    basic =
                        basic_credentials(&self.settings.client_id, &self.settings.client_secret);
                    Auth::Basic(&basic)
                }
            };
            (auth, form.finish())
        };
        let resp: TokenResponse = self
            .http
            .post_form(&self.metadata.token_endpoint, auth, body)
            .await?;
        let id_token = resp.id_token.ok_or(OidcError::MissingIdToken)?;
        Ok(TokenSet {
            access_token: resp.access_token,
            id_token: IdToken::new(id_token),
        })
    }

    /// Verifies an ID token from this provider for this client and `nonce`.
    pub async fn verify(&self, token: &IdToken, nonce: &str) -> Result<IdClaims, OidcError> {
        let algorithms = self
            .metadata
            .id_token_signing_alg_values_supported
            .as_deref()
            .unwrap_or(&[]);
        let expected = Expected {
            issuer: &self.issuer,
            client_id: &self.settings.client_id,
            nonce,
            algorithms,
        };
        verify_id_token(token, &expected, &self.keys, &self.http, &self.clock).await
    }

    /// The person, from verified claims completed by userinfo when the ID
    /// token lacks the email, its verification or the roles claim.
    pub async fn identity(
        &self,
        claims: IdClaims,
        tokens: &TokenSet,
    ) -> Result<VerifiedIdentity, OidcError> {
        let s = &self.settings;
        let mut all = claims.other;
        let lacks = |all: &Map<String, Value>| {
            !all.contains_key("email")
                || !s.verified_email_claims.iter().any(|c| all.contains_key(*c))
                || s.roles_claim.as_ref().is_some_and(|c| !all.contains_key(c))
        };
        if let (true, Some(url)) = (lacks(&all), &self.metadata.userinfo_endpoint) {
            let info: Map<String, Value> = self
                .http
                .get_json(url, Auth::Bearer(&tokens.access_token))
                .await?;
            if info.get("sub").and_then(Value::as_str) != Some(claims.sub.as_str()) {
                return Err(OidcError::UserinfoSubjectMismatch);
            }
            for (k, v) in info {
                all.entry(k).or_insert(v);
            }
        }
        let raw_email = all
            .get("email")
            .and_then(Value::as_str)
            .ok_or(OidcError::MissingEmail)?;
        let email =
            crate::store::records::normalize_email(raw_email).ok_or(OidcError::MissingEmail)?;
        let verified = s.verified_email_claims.iter().any(|c| {
            matches!(all.get(*c), Some(Value::Bool(true)))
                || all.get(*c).and_then(Value::as_str) == Some("true")
        });
        if !verified {
            return Err(OidcError::UnverifiedEmail { email });
        }
        let claim_values: Vec<String> = match s.roles_claim.as_ref().and_then(|c| all.get(c)) {
            Some(Value::String(v)) => vec![v.clone()],
            Some(Value::Array(vs)) => vs
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
            _ => Vec::new(),
        };
        let mapped_roles = claim_values
            .iter()
            .filter_map(|v| s.role_map.get(v))
            .flatten()
            .cloned()
            .collect();
        Ok(VerifiedIdentity {
            provider: s.id.clone(),
            subject: claims.sub,
            email,
            email_verified: true,
            claim_values,
            mapped_roles,
            id_token: Some(tokens.id_token.clone()),
        })
    }

    /// RP-initiated logout: where to send the person when `logout = true`
    /// and the provider advertises `end_session_endpoint`.
    pub fn end_session_url(
        &self,
        id_token_hint: Option<&IdToken>,
        post_logout_redirect_uri: &Url,
    ) -> Option<Url> {
        if !self.settings.logout {
            return None;
        }
        let mut url = self.metadata.end_session_endpoint.clone()?;
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("client_id", &self.settings.client_id)
                .append_pair(
                    "post_logout_redirect_uri",
                    post_logout_redirect_uri.as_str(),
                );
            if let Some(hint) = id_token_hint {
                q.append_pair("id_token_hint", hint.expose());
            }
        }
        Some(url)
    }
}

/// The callback's `state` is this sign-in's (in constant time), and no
/// parameter came twice.
pub(super) fn check_state(
    pending: &PendingLogin,
    callback: &CallbackParams,
) -> Result<(), OidcError> {
    let state_ok = !callback.repeated
        && callback
            .state
            .as_deref()
            .is_some_and(|s| bool::from(s.as_bytes().ct_eq(pending.state.expose().as_bytes())));
    if state_ok {
        Ok(())
    } else {
        Err(OidcError::BadState)
    }
}

/// The provider's `error=` (kept to printable ASCII, cut short), or the code.
pub(super) fn error_or_code(callback: &CallbackParams) -> Result<&str, OidcError> {
    if let Some(error) = &callback.error {
        return Err(OidcError::ProviderRefused {
            error: plain(error, 64),
            description: callback.error_description.as_deref().map(|d| plain(d, 200)),
        });
    }
    callback
        .code
        .as_deref()
        .filter(|c| !c.is_empty())
        .ok_or(OidcError::MissingCode)
}

/// `s` with only printable ASCII and spaces, at most `max` characters: safe
/// for a log line and a page.
pub(super) fn plain(s: &str, max: usize) -> String {
    s.chars()
        .filter(|c| c.is_ascii_graphic() || *c == ' ')
        .take(max)
        .collect()
}

/// A fresh state, nonce and PKCE verifier, and the verifier's S256 challenge.
pub(super) fn fresh_pending(rng: &mut impl RngCore) -> (PendingLogin, String) {
    let pending = PendingLogin {
        state: Secret::generate(rng),
        nonce: Secret::generate(rng),
        code_verifier: Secret::generate(rng),
    };
    let challenge =
        URL_SAFE_NO_PAD.encode(Sha256::digest(pending.code_verifier.expose().as_bytes()));
    (pending, challenge)
}

/// RFC 6749 §2.3.1: both parts form-urlencoded, then Base64.
fn basic_credentials(client_id: &str, secret: &ClientSecret) -> String {
    let enc = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    STANDARD.encode(format!("{}:{}", enc(client_id), enc(secret.expose())))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn callback_params_refuse_repeats_and_hide_the_code() {
        let p = CallbackParams::from_query("code=abc&state=s1&iss=https%3A%2F%2Fi");
        assert_eq!(p.code.as_deref(), Some("abc"));
        assert_eq!(p.iss.as_deref(), Some("https://i"));
        assert!(!p.repeated);
        assert!(!format!("{p:?}").contains("abc"));
        assert!(CallbackParams::from_query("state=a&state=b").repeated);
    }

    #[test]
    fn basic_credentials_encode_both_parts() {
        let v = basic_credentials("my app", &ClientSecret::new("a:b+c"));
        let decoded = String::from_utf8(STANDARD.decode(v).unwrap()).unwrap();
        assert_eq!(decoded, "my+app:a%3Ab%2Bc");
    }
}
