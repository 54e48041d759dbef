//! OpenID discovery: `{issuer}/.well-known/openid-configuration`, read once
//! per start-up or reload, and refused unless it names exactly the
//! configured issuer (OpenID Connect Discovery §4.3) and every endpoint
//! latchkey uses. The fields kept are the ones the flow needs; the rest of
//! the document is ignored.

use serde::Deserialize;
use url::Url;

use super::http::{Auth, ProviderHttp};
use super::OidcError;

/// What latchkey uses of a provider's discovery document.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ProviderMetadata {
    pub issuer: String,
    #[serde(deserialize_with = "url_de::one")]
    pub authorization_endpoint: Url,
    #[serde(deserialize_with = "url_de::one")]
    pub token_endpoint: Url,
    #[serde(deserialize_with = "url_de::one")]
    pub jwks_uri: Url,
    #[serde(default, deserialize_with = "url_de::maybe")]
    pub userinfo_endpoint: Option<Url>,
    #[serde(default, deserialize_with = "url_de::maybe")]
    pub end_session_endpoint: Option<Url>,
    /// Absent means `client_secret_basic` (the spec's default).
    #[serde(default)]
    pub token_endpoint_auth_methods_supported: Option<Vec<String>>,
    /// Absent means RS256 only.
    #[serde(default)]
    pub id_token_signing_alg_values_supported: Option<Vec<String>>,
    #[serde(default)]
    pub code_challenge_methods_supported: Option<Vec<String>>,
    /// RFC 9207: the callback carries `iss`, and must.
    #[serde(default)]
    pub authorization_response_iss_parameter_supported: bool,
}

/// Endpoint URLs, parsed while reading the document.
mod url_de {
    use serde::{Deserialize, Deserializer};
    use url::Url;

    pub fn one<'de, D: Deserializer<'de>>(d: D) -> Result<Url, D::Error> {
        let s = String::deserialize(d)?;
        Url::parse(&s).map_err(serde::de::Error::custom)
    }

    pub fn maybe<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Url>, D::Error> {
        match Option::<String>::deserialize(d)? {
            None => Ok(None),
            Some(s) => Url::parse(&s).map(Some).map_err(serde::de::Error::custom),
        }
    }
}

/// How latchkey authenticates at the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    Basic,
    Post,
}

impl ProviderMetadata {
    /// `client_secret_basic` when offered (or nothing is said), else
    /// `client_secret_post` when offered.
    pub fn client_auth(&self) -> Option<ClientAuth> {
        match &self.token_endpoint_auth_methods_supported {
            None => Some(ClientAuth::Basic),
            Some(m) if m.iter().any(|m| m == "client_secret_basic") => Some(ClientAuth::Basic),
            Some(m) if m.iter().any(|m| m == "client_secret_post") => Some(ClientAuth::Post),
            Some(_) => None,
        }
    }
}

/// The discovery URL of `issuer` (a trailing `/` is not doubled).
pub fn discovery_url(issuer: &str) -> Result<Url, url::ParseError> {
    Url::parse(&format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    ))
}

/// Fetches and checks `issuer`'s discovery document.
#[tracing::instrument(skip_all, fields(issuer = %issuer))]
pub async fn discover(http: &ProviderHttp, issuer: &str) -> Result<ProviderMetadata, OidcError> {
    let url = discovery_url(issuer).map_err(|e| OidcError::BadResponse {
        url: issuer.to_owned(),
        source: Box::new(e),
    })?;
    let meta: ProviderMetadata = http.get_json(&url, Auth::None).await?;
    if meta.issuer != issuer {
        return Err(OidcError::DiscoveryIssuerMismatch {
            url: url.to_string(),
            expected: issuer.to_owned(),
            found: meta.issuer,
        });
    }
    let unusable = |why: &str| OidcError::BadResponse {
        url: url.to_string(),
        source: why.to_owned().into(),
    };
    if meta
        .code_challenge_methods_supported
        .as_ref()
        .is_some_and(|m| !m.iter().any(|m| m == "S256"))
    {
        return Err(unusable("the provider does not offer PKCE with S256"));
    }
    if meta.client_auth().is_none() {
        return Err(unusable(
            "the token endpoint offers neither client_secret_basic nor client_secret_post",
        ));
    }
    Ok(meta)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_discovery_url_is_under_the_issuer() {
        assert_eq!(
            discovery_url("https://accounts.google.com")
                .unwrap()
                .as_str(),
            "https://accounts.google.com/.well-known/openid-configuration"
        );
        assert_eq!(
            discovery_url("https://login.microsoftonline.com/t/v2.0")
                .unwrap()
                .as_str(),
            "https://login.microsoftonline.com/t/v2.0/.well-known/openid-configuration"
        );
        assert_eq!(
            discovery_url("https://idp.example.com/realms/x/")
                .unwrap()
                .as_str(),
            "https://idp.example.com/realms/x/.well-known/openid-configuration"
        );
    }

    #[test]
    fn client_auth_prefers_basic_and_falls_back_to_post() {
        let mut m: ProviderMetadata = serde_json::from_str(
            r#"{"issuer":"https://i","authorization_endpoint":"https://i/a","token_endpoint":"https://i/t","jwks_uri":"https://i/k"}"#,
        )
        .unwrap();
        assert_eq!(m.client_auth(), Some(ClientAuth::Basic));
        m.token_endpoint_auth_methods_supported = Some(vec!["client_secret_post".into()]);
        assert_eq!(m.client_auth(), Some(ClientAuth::Post));
        m.token_endpoint_auth_methods_supported = Some(vec!["private_key_jwt".into()]);
        assert_eq!(m.client_auth(), None);
    }
}
