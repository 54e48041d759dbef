//! One provider's client, whatever its protocol: OpenID Connect (with
//! discovery) or GitHub's OAuth 2. `signin` holds one per provider and asks
//! it for the authorization URL and, at the callback, for the person; the
//! two protocols differ only inside.

use rand::RngCore;
use url::Url;

use super::flow::{Authorization, CallbackParams, OidcClient, PendingLogin, VerifiedIdentity};
use super::github::GitHubClient;
use super::settings::ProviderSettings;
use super::verify::IdToken;
use super::OidcError;

#[derive(Debug)]
pub enum ProviderClient {
    Oidc(Box<OidcClient>),
    GitHub(Box<GitHubClient>),
}

impl From<OidcClient> for ProviderClient {
    fn from(c: OidcClient) -> ProviderClient {
        ProviderClient::Oidc(Box::new(c))
    }
}

impl From<GitHubClient> for ProviderClient {
    fn from(c: GitHubClient) -> ProviderClient {
        ProviderClient::GitHub(Box::new(c))
    }
}

impl ProviderClient {
    pub fn settings(&self) -> &ProviderSettings {
        match self {
            ProviderClient::Oidc(c) => c.settings(),
            ProviderClient::GitHub(c) => c.settings(),
        }
    }

    /// Where to send the browser, and the secrets to keep until it is back.
    pub fn start(&self, rng: &mut impl RngCore) -> Authorization {
        match self {
            ProviderClient::Oidc(c) => c.start(rng),
            ProviderClient::GitHub(c) => c.start(rng),
        }
    }

    /// The callback, to a verified identity.
    pub async fn finish(
        &self,
        pending: &PendingLogin,
        callback: &CallbackParams,
    ) -> Result<VerifiedIdentity, OidcError> {
        match self {
            ProviderClient::Oidc(c) => c.finish(pending, callback).await,
            ProviderClient::GitHub(c) => c.finish(pending, callback).await,
        }
    }

    /// RP-initiated logout at the provider, when configured and offered.
    pub fn end_session_url(
        &self,
        id_token_hint: Option<&IdToken>,
        post_logout_redirect_uri: &Url,
    ) -> Option<Url> {
        match self {
            ProviderClient::Oidc(c) => c.end_session_url(id_token_hint, post_logout_redirect_uri),
            ProviderClient::GitHub(_) => None,
        }
    }
}
