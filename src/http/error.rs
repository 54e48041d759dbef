//! The one error type of the request path. Each variant knows its HTTP
//! status and who is at fault; handlers return it, and `gate` logs it and
//! renders it once (a page for browsers, a short JSON body for programs).
//! Clients see a short message; details go to the log.

use std::time::Duration;

use http::{header, HeaderValue, Response, StatusCode};

use crate::http::forwarded::ForwardedError;
use crate::http::pages::{Page, Pages};
/// JSON answers are built by the one response builder; re-exported here,
/// where handlers have always found them.
pub use crate::http::response::json;
use crate::identity::keys::SignError;
use crate::identity::oidc::OidcError;
use crate::policy::path::PathError;
use crate::store::StoreError;
use crate::upstream::ProxyError;
use crate::Body;

#[derive(Debug, thiserror::Error)]
pub enum GateError {
    #[error("ambiguous or malformed path: {0}")]
    BadPath(#[from] PathError),
    #[error("missing or malformed Host")]
    BadHost,
    #[error("bad request: {0}")]
    BadRequest(&'static str),
    #[error("forwarded headers refused: {0}")]
    Forwarded(#[from] ForwardedError),
    #[error("no app is configured for this host")]
    UnknownHost,
    #[error("not found")]
    NotFound,
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("request body too large")]
    BodyTooLarge,
    #[error("form failed its CSRF check: {0}")]
    Csrf(&'static str),
    #[error("rate limit reached")]
    TooManyRequests { retry_after: Duration },
    #[error("session store unavailable: {0}")]
    Store(#[from] StoreError),
    #[error("upstream: {0}")]
    Proxy(#[from] ProxyError),
    #[error("token signing: {0}")]
    Signing(#[from] SignError),
    /// Sign-in with a provider failed at or because of the provider.
    #[error("provider sign-in: {0}")]
    Provider(#[from] OidcError),
    /// The provider's discovery has not succeeded yet (retried in the background).
    #[error("provider {0:?} is not available yet")]
    ProviderUnavailable(String),
    /// A provider callback or handoff without its live, one-time state in
    /// this browser: forged, used, expired, or from another browser.
    #[error("provider sign-in state missing, used or from another browser")]
    OAuthState,
    /// A verified address that the signup policy does not let in.
    #[error("the signup policy does not let this address in")]
    NotAllowed,
    /// A passkey ceremony refused (`signin::ceremony`): `reason` is the
    /// audit trail's word for it, `message` the sentence the person reads.
    #[error("passkey refused: {reason}")]
    Passkey {
        status: StatusCode,
        reason: &'static str,
        message: String,
    },
}

/// Who caused an error: decides the log level and what the client is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    Client,
    Upstream,
    Latchkey,
}

impl GateError {
    pub fn status(&self) -> StatusCode {
        match self {
            GateError::BadPath(_)
            | GateError::BadHost
            | GateError::BadRequest(_)
            | GateError::Forwarded(_) => StatusCode::BAD_REQUEST,
            GateError::UnknownHost | GateError::NotFound => StatusCode::NOT_FOUND,
            GateError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            GateError::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            GateError::Csrf(_) => StatusCode::FORBIDDEN,
            GateError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            GateError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
            GateError::Proxy(e) => e.status(),
            GateError::Signing(_) => StatusCode::INTERNAL_SERVER_ERROR,
            GateError::Provider(e) => e.status(),
            GateError::ProviderUnavailable(_) => StatusCode::BAD_GATEWAY,
            GateError::OAuthState => StatusCode::BAD_REQUEST,
            GateError::NotAllowed => StatusCode::FORBIDDEN,
            GateError::Passkey { status, .. } => *status,
        }
    }

    pub fn fault(&self) -> Fault {
        match self {
            GateError::Store(_) | GateError::Signing(_) => Fault::Latchkey,
            GateError::Proxy(_) | GateError::ProviderUnavailable(_) => Fault::Upstream,
            GateError::Provider(e) if e.status().is_server_error() => Fault::Upstream,
            _ => Fault::Client,
        }
    }

    fn title_and_message(&self) -> (&'static str, &str) {
        match self {
            GateError::BadPath(_) => ("Bad request", "This address is malformed or ambiguous, so it was refused."),
            GateError::BadHost => ("Bad request", "The request did not say which site it is for."),
            GateError::BadRequest(why) => ("Bad request", why),
            GateError::Forwarded(_) => ("Bad request", "The proxy in front described this request in a way that cannot be read."),
            GateError::UnknownHost => ("Not found", "No application is configured for this address."),
            GateError::NotFound => ("Not found", "There is nothing at this address."),
            GateError::MethodNotAllowed => ("Not allowed", "This page does not accept that kind of request."),
            GateError::BodyTooLarge => ("Too large", "The form sent was too large."),
            GateError::Csrf(_) => (
                "Please try again",
                "This form expired or did not come from this site. Go back, reload the page and try again.",
            ),
            GateError::TooManyRequests { .. } => (
                "Too many attempts",
                "Too many attempts from your network. Wait a few minutes and try again.",
            ),
            GateError::Store(_) => (
                "Temporarily unavailable",
                "Sign-in is temporarily unavailable. You have not been signed out; try again in a moment.",
            ),
            GateError::Proxy(_) if self.status() == StatusCode::GATEWAY_TIMEOUT => (
                "The application is slow",
                "The application did not answer in time. Try again in a moment.",
            ),
            GateError::Signing(_) => (
                "Something went wrong",
                "latchkey could not complete this request. Try again in a moment.",
            ),
            GateError::Provider(OidcError::UnverifiedEmail { .. } | OidcError::MissingEmail) => (
                "Email address not verified",
                "Your sign-in provider has not verified your email address, so it cannot sign you in here. Verify it with your provider, or sign in another way.",
            ),
            GateError::Provider(OidcError::NotInAllowedOrg { .. }) => (
                "Not allowed",
                "Your GitHub account is not a member of an organization allowed to sign in here. Ask whoever runs this site for access.",
            ),
            GateError::Provider(OidcError::ProviderRefused { .. }) => (
                "Not signed in",
                "Your sign-in provider did not sign you in (perhaps you cancelled). Start again from the sign-in page.",
            ),
            GateError::Provider(e) if e.status() == StatusCode::GATEWAY_TIMEOUT => (
                "The sign-in provider is slow",
                "Your sign-in provider did not answer in time. Try again in a moment, or sign in another way.",
            ),
            GateError::Provider(e) if e.status() == StatusCode::BAD_REQUEST => (
                "Sign-in could not be completed",
                "This sign-in could not be completed safely. Start again from the sign-in page.",
            ),
            GateError::Provider(_) => (
                "The sign-in provider is unavailable",
                "Your sign-in provider could not be reached or did not answer correctly. Try again in a moment, or sign in another way.",
            ),
            GateError::ProviderUnavailable(_) => (
                "This sign-in is unavailable",
                "Sign-in with this provider is unavailable right now: latchkey cannot reach it. Try again in a moment, or sign in another way.",
            ),
            GateError::OAuthState => (
                "Sign-in could not be completed",
                "This sign-in expired, was already used, or was started in another browser. Start again from the sign-in page.",
            ),
            GateError::NotAllowed => (
                "Not allowed",
                "This account may not sign in here. Ask whoever runs this site for access.",
            ),
            GateError::Passkey { message, .. } => ("Passkey not accepted", message),
            GateError::Proxy(_) => (
                "The application is unavailable",
                "The application behind this sign-in could not be reached. Try again in a moment.",
            ),
        }
    }

    /// The response a client sees: a page for browsers, JSON otherwise.
    pub fn respond(&self, pages: &Pages, html: bool) -> Response<Body> {
        let status = self.status();
        let (title, message) = self.title_and_message();
        let mut resp = if html {
            pages.respond(
                status,
                &Page::Error {
                    status: status.as_u16(),
                    title,
                    message,
                },
            )
        } else {
            json(
                status,
                &serde_json::json!({ "error": title, "message": message }),
            )
        };
        if let GateError::TooManyRequests { retry_after } = self {
            let secs = retry_after.as_secs().max(1);
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                resp.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        resp
    }
}
