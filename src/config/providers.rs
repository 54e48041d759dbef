//! `[[login.providers]]` as users write it: one table per identity
//! provider (OpenID Connect, or the Google, Microsoft and GitHub presets).
//!
//! Every field is kept as written (`kind` a string, the issuer a string) so
//! that `identity::oidc::settings::compile_providers` can check all of them
//! in one pass and name the key that is wrong. The client secret is hidden
//! from `Debug`, since `FileConfig` is printed in some errors and tests.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    /// `[a-z0-9-]`; part of the URLs `/.latchkey/oauth/{id}/...`.
    pub id: String,
    /// `oidc`, `google`, `microsoft` or `github`.
    pub kind: String,
    /// The button's label; the presets have a default.
    #[serde(default)]
    pub name: Option<String>,
    /// `oidc` only: discovery at `{issuer}/.well-known/openid-configuration`.
    #[serde(default)]
    pub issuer: Option<String>,
    pub client_id: String,
    /// Exactly one of `client_secret` and `client_secret_file`.
    #[serde(default)]
    pub client_secret: Option<String>,
    #[serde(default)]
    pub client_secret_file: Option<String>,
    /// Absent: the kind's defaults (`openid email profile` for OIDC).
    #[serde(default)]
    pub scopes: Option<Vec<String>>,
    /// A claim whose values `role_map` turns into latchkey roles.
    #[serde(default)]
    pub roles_claim: Option<String>,
    #[serde(default)]
    pub role_map: BTreeMap<String, Vec<String>>,
    /// `microsoft` only: the directory (tenant) id or domain.
    #[serde(default)]
    pub tenant: Option<String>,
    /// `github` only: a person must belong to one of these organizations.
    #[serde(default)]
    pub allowed_orgs: Option<Vec<String>>,
    /// `github` only: a GitHub Enterprise Server's address
    /// (`https://github.example.com`); absent means github.com.
    #[serde(default)]
    pub enterprise_url: Option<String>,
    /// Also end the session at the provider (RP-initiated logout).
    #[serde(default)]
    pub logout: bool,
}

impl fmt::Debug for ProviderConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProviderConfig")
            .field("id", &self.id)
            .field("kind", &self.kind)
            .field("name", &self.name)
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret.as_ref().map(|_| ".."))
            .field("client_secret_file", &self.client_secret_file)
            .field("scopes", &self.scopes)
            .field("roles_claim", &self.roles_claim)
            .field("role_map", &self.role_map)
            .field("tenant", &self.tenant)
            .field("allowed_orgs", &self.allowed_orgs)
            .field("enterprise_url", &self.enterprise_url)
            .field("logout", &self.logout)
            .finish()
    }
}
