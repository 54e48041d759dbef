//! What can go wrong signing someone in with a provider, one variant per
//! failure, each knowing its HTTP status and a short stable label for
//! metrics and logs. Messages name URLs, claims and ids, never a secret,
//! code or token.

use std::time::Duration;

use http::StatusCode;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    /// No connection (refused, DNS, TLS): the provider is down.
    #[error("could not reach the provider at {url}")]
    Unreachable {
        url: String,
        #[source]
        source: BoxError,
    },
    #[error("the provider at {url} did not answer within {after:?}")]
    Timeout { url: String, after: Duration },
    /// The provider answered, but not with success (the token endpoint's
    /// OAuth `error` code when it gave one).
    #[error("the provider answered {status} at {url}{}", error.as_deref().map(|e| format!(" ({e})")).unwrap_or_default())]
    Status {
        url: String,
        status: StatusCode,
        error: Option<String>,
    },
    #[error("the provider's answer at {url} is not what OpenID Connect specifies")]
    BadResponse {
        url: String,
        #[source]
        source: BoxError,
    },
    #[error("discovery at {url} names issuer {found:?}, not the configured {expected:?}")]
    DiscoveryIssuerMismatch {
        url: String,
        expected: String,
        found: String,
    },
    /// The provider sent the person back with `error=` (they cancelled,
    /// or the provider refused).
    #[error("the provider refused the sign-in: {error}")]
    ProviderRefused {
        error: String,
        description: Option<String>,
    },
    /// The callback's `state` is missing or not the one this sign-in made.
    #[error("the callback's state is missing or does not match this sign-in")]
    BadState,
    #[error("the callback carries no code")]
    MissingCode,
    /// A response (the callback's `iss`, or the ID token's) from another
    /// issuer than this provider's: a mix-up.
    #[error("issuer mix-up: expected {expected:?}, got {found:?}")]
    IssuerMismatch {
        expected: String,
        found: Option<String>,
    },
    /// The token endpoint answered, but with an OAuth `error` instead of a
    /// token (GitHub does so with a 200).
    #[error("the token endpoint at {url} gave no token{}", error.as_deref().map(|e| format!(" ({e})")).unwrap_or_default())]
    TokenRefused { url: String, error: Option<String> },
    /// GitHub: the account is in none of `allowed_orgs`.
    #[error("GitHub account {login:?} is in none of the allowed organizations")]
    NotInAllowedOrg { login: String },
    #[error("the token response has no ID token")]
    MissingIdToken,
    #[error("the ID token is malformed")]
    MalformedToken(#[source] jsonwebtoken::errors::Error),
    #[error("the ID token is signed with {0:?}, which this provider does not use")]
    DisallowedAlgorithm(jsonwebtoken::Algorithm),
    #[error("the ID token names key {kid:?}, which the provider does not publish")]
    UnknownKey { kid: Option<String> },
    #[error("the ID token's signature does not verify")]
    BadSignature(#[source] jsonwebtoken::errors::Error),
    #[error("the ID token expired at {exp} (now {now})")]
    Expired { exp: u64, now: u64 },
    #[error("the ID token was issued at {iat}, after now ({now})")]
    IssuedInFuture { iat: u64, now: u64 },
    #[error("the ID token is for {found:?}, not this client")]
    WrongAudience { found: Vec<String> },
    #[error("the ID token's authorized party is {found:?}, not this client")]
    WrongAuthorizedParty { found: String },
    #[error("the ID token's nonce is missing or not this sign-in's")]
    BadNonce,
    #[error("the userinfo answer is about another subject than the ID token")]
    UserinfoSubjectMismatch,
    #[error("the provider gave no email address")]
    MissingEmail,
    #[error("the provider has not verified {email}")]
    UnverifiedEmail { email: String },
    /// A provider that is not OpenID Connect (GitHub) given to the OIDC client.
    #[error("provider {provider:?} does not speak OpenID Connect")]
    NotOpenIdConnect { provider: String },
}

impl OidcError {
    /// The status of the page the person gets.
    pub fn status(&self) -> StatusCode {
        use OidcError::*;
        match self {
            Timeout { .. } => StatusCode::GATEWAY_TIMEOUT,
            Unreachable { .. }
            | Status { .. }
            | BadResponse { .. }
            | DiscoveryIssuerMismatch { .. }
            | TokenRefused { .. } => StatusCode::BAD_GATEWAY,
            // What came back through the browser: the person's (or an
            // attacker's) request is wrong.
            BadState | MissingCode | IssuerMismatch { .. } => StatusCode::BAD_REQUEST,
            ProviderRefused { .. }
            | UnverifiedEmail { .. }
            | MissingEmail
            | NotInAllowedOrg { .. } => StatusCode::FORBIDDEN,
            // What the provider sent over the back channel does not hold.
            MissingIdToken
            | MalformedToken(_)
            | DisallowedAlgorithm(_)
            | UnknownKey { .. }
            | BadSignature(_)
            | Expired { .. }
            | IssuedInFuture { .. }
            | WrongAudience { .. }
            | WrongAuthorizedParty { .. }
            | BadNonce
            | UserinfoSubjectMismatch => StatusCode::BAD_GATEWAY,
            NotOpenIdConnect { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// A short stable label (metrics, log fields).
    pub fn label(&self) -> &'static str {
        use OidcError::*;
        match self {
            Unreachable { .. } => "unreachable",
            Timeout { .. } => "timeout",
            Status { .. } => "provider_status",
            BadResponse { .. } => "bad_response",
            DiscoveryIssuerMismatch { .. } => "discovery_issuer_mismatch",
            ProviderRefused { .. } => "provider_refused",
            BadState => "bad_state",
            MissingCode => "missing_code",
            IssuerMismatch { .. } => "issuer_mismatch",
            TokenRefused { .. } => "token_refused",
            NotInAllowedOrg { .. } => "org_not_allowed",
            MissingIdToken => "missing_id_token",
            MalformedToken(_) => "malformed_token",
            DisallowedAlgorithm(_) => "disallowed_algorithm",
            UnknownKey { .. } => "unknown_key",
            BadSignature(_) => "bad_signature",
            Expired { .. } => "expired",
            IssuedInFuture { .. } => "issued_in_future",
            WrongAudience { .. } => "wrong_audience",
            WrongAuthorizedParty { .. } => "wrong_authorized_party",
            BadNonce => "bad_nonce",
            UserinfoSubjectMismatch => "userinfo_subject_mismatch",
            MissingEmail => "missing_email",
            UnverifiedEmail { .. } => "unverified_email",
            NotOpenIdConnect { .. } => "not_openid_connect",
        }
    }
}
