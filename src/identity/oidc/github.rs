//! Sign-in with GitHub (`kind = "github"`), which is OAuth 2 without OpenID
//! Connect: no discovery, no ID token. The browser goes to
//! `login/oauth/authorize` with `state` and PKCE S256; the callback's code
//! is traded at `login/oauth/access_token` (client id and secret in the
//! form, `Accept: application/json`; GitHub answers a refused code with
//! 200 and an `error` field); then, with that access token, the API's
//! `/user` gives the account, `/user/emails` the addresses, of which only
//! the **primary, verified** one is the identity, and `/user/orgs` the
//! organizations, checked against `allowed_orgs` and, with
//! `roles_claim = "orgs"`, mapped by `role_map`. Endpoints are github.com's
//! or a GitHub Enterprise Server's (`settings`); nothing here stores.

use std::collections::BTreeSet;

use rand::RngCore;
use serde::Deserialize;
use url::Url;

use super::flow::{check_state, error_or_code, fresh_pending, plain};
use super::http::{Auth, ProviderHttp};
use super::settings::{GitHubEndpoints, Protocol, ProviderSettings};
use super::{Authorization, CallbackParams, OidcError, PendingLogin, VerifiedIdentity};

/// The first page of organizations is all that is read (GitHub's largest).
/// GitHub's largest page of organizations, and how many pages are read
/// (1,000 organizations; more are logged and not read).
const ORGS_PER_PAGE: usize = 100;
const MAX_ORG_PAGES: usize = 10;

/// One GitHub (or GitHub Enterprise Server) OAuth app.
#[derive(Debug)]
pub struct GitHubClient {
    settings: ProviderSettings,
    endpoints: GitHubEndpoints,
    redirect_uri: Url,
    http: ProviderHttp,
}

#[derive(Deserialize)]
struct TokenAnswer {
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
struct User {
    id: u64,
    login: String,
}

#[derive(Deserialize)]
struct Email {
    email: String,
    #[serde(default)]
    primary: bool,
    #[serde(default)]
    verified: bool,
}

#[derive(Deserialize)]
struct Org {
    login: String,
}

impl GitHubClient {
    /// The client for `settings`, `None` unless they are of the github kind.
    pub fn new(
        settings: &ProviderSettings,
        redirect_uri: Url,
        http: ProviderHttp,
    ) -> Option<GitHubClient> {
        let Protocol::GitHub(endpoints) = &settings.protocol else {
            return None;
        };
        Some(GitHubClient {
            settings: settings.clone(),
            endpoints: (**endpoints).clone(),
            redirect_uri,
            http,
        })
    }

    pub fn settings(&self) -> &ProviderSettings {
        &self.settings
    }

    /// The authorization URL and the secrets to keep for the callback (the
    /// nonce is made but unused: GitHub sends no ID token to carry it).
    pub fn start(&self, rng: &mut impl RngCore) -> Authorization {
        let (pending, challenge) = fresh_pending(rng);
        let mut url = self.endpoints.authorize.clone();
        url.query_pairs_mut()
            .append_pair("client_id", &self.settings.client_id)
            .append_pair("redirect_uri", self.redirect_uri.as_str())
            .append_pair("scope", &self.settings.scopes.join(" "))
            .append_pair("state", pending.state.expose())
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256");
        Authorization { url, pending }
    }

    /// The callback: state, code exchange, account, verified primary
    /// address, organizations.
    #[tracing::instrument(skip_all, fields(provider = %self.settings.id))]
    pub async fn finish(
        &self,
        pending: &PendingLogin,
        callback: &CallbackParams,
    ) -> Result<VerifiedIdentity, OidcError> {
        check_state(pending, callback)?;
        let code = error_or_code(callback)?;
        let token = self.exchange_code(pending, code).await?;
        let bearer = Auth::Bearer(&token);
        let user: User = self.http.get_json(&self.endpoints.user, bearer).await?;
        let emails: Vec<Email> = self
            .http
            .get_json(&self.endpoints.emails, Auth::Bearer(&token))
            .await?;
        let primary = emails
            .into_iter()
            .find(|e| e.primary)
            .ok_or(OidcError::MissingEmail)?;
        let email = crate::store::records::normalize_email(&primary.email)
            .ok_or(OidcError::MissingEmail)?;
        if !primary.verified {
            return Err(OidcError::UnverifiedEmail { email });
        }
        let s = &self.settings;
        let wants_orgs = !self.endpoints.allowed_orgs.is_empty() || s.roles_claim.is_some();
        let orgs = if wants_orgs {
            self.orgs(&token).await?
        } else {
            Vec::new()
        };
        let allowed = &self.endpoints.allowed_orgs;
        if !allowed.is_empty()
            && !orgs
                .iter()
                .any(|o| allowed.iter().any(|a| a.eq_ignore_ascii_case(o)))
        {
            return Err(OidcError::NotInAllowedOrg {
                login: plain(&user.login, 39),
            });
        }
        let claim_values = if s.roles_claim.is_some() {
            orgs
        } else {
            Vec::new()
        };
        let mapped_roles: BTreeSet<String> = claim_values
            .iter()
            .filter_map(|v| s.role_map.get(v))
            .flatten()
            .cloned()
            .collect();
        Ok(VerifiedIdentity {
            provider: s.id.clone(),
            subject: user.id.to_string(),
            email,
            email_verified: true,
            claim_values,
            mapped_roles,
            id_token: None,
        })
    }

    /// Trades the code for an access token.
    /// Every organization of the person, page by page (`per_page`, `page`,
    /// as GitHub's REST API pages lists): a page shorter than a full one is
    /// the last.
    async fn orgs(&self, token: &str) -> Result<Vec<String>, OidcError> {
        let mut logins = Vec::new();
        for page in 1..=MAX_ORG_PAGES {
            let mut url = self.endpoints.orgs.clone();
            url.query_pairs_mut()
                .append_pair("per_page", &ORGS_PER_PAGE.to_string())
                .append_pair("page", &page.to_string());
            let orgs: Vec<Org> = self.http.get_json(&url, Auth::Bearer(token)).await?;
            let full = orgs.len() >= ORGS_PER_PAGE;
            logins.extend(orgs.into_iter().map(|o| o.login));
            if !full {
                return Ok(logins);
            }
        }
        tracing::warn!(
            provider = %self.settings.id,
            read = logins.len(),
            "GitHub lists more organizations than latchkey reads; the rest are ignored"
        );
        Ok(logins)
    }

    async fn exchange_code(&self, pending: &PendingLogin, code: &str) -> Result<String, OidcError> {
        let body = form_urlencoded::Serializer::new(String::new())
            .append_pair("client_id", &self.settings.client_id)
            .append_pair("client_secret", self.settings.client_secret.expose())
            .append_pair("code", code)
            .append_pair("redirect_uri", self.redirect_uri.as_str())
            .append_pair("code_verifier", pending.code_verifier.expose())
            .finish();
        let answer: TokenAnswer = self
            .http
            .post_form(&self.endpoints.token, Auth::None, body)
            .await?;
        match (answer.access_token, answer.error) {
            (Some(t), None) if !t.is_empty() => Ok(t),
            (_, error) => Err(OidcError::TokenRefused {
                url: self.endpoints.token.to_string(),
                error: error.map(|e| plain(&e, 64)),
            }),
        }
    }
}
