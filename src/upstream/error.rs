//! Why a request could not be forwarded: one small enum whose variants keep
//! their source and know their status. The caller (`gate`) logs and
//! renders; nothing here writes a response.

use std::time::Duration;

use http::StatusCode;

/// The cause of a failed connection or exchange: hyper's, hyper-util's or
/// the socket's.
pub type Cause = Box<dyn std::error::Error + Send + Sync>;

/// Why a request could not be forwarded. Each variant knows its status.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// The upstream refused or did not accept the connection.
    #[error("cannot connect to the upstream")]
    Connect(#[source] Cause),
    /// No response head within the response timeout.
    #[error("the upstream sent no response within {0:?}")]
    Timeout(Duration),
    /// The upstream connection failed otherwise (reset, bad response).
    #[error("the upstream failed")]
    Upstream(#[source] Cause),
    /// The upstream answered 101 to a request that did not ask to upgrade.
    #[error("the upstream switched protocols unasked")]
    UnaskedUpgrade,
    /// The upstream answered 101 with another protocol than `websocket`,
    /// the one asked for.
    #[error("the upstream switched to another protocol than the one asked for")]
    WrongUpgrade,
    /// A value from the client cannot be put in a header (Host, X-Forwarded-For).
    #[error("a forwarded header value is invalid")]
    HeaderValue(#[source] http::header::InvalidHeaderValue),
    /// The path and query cannot be a request target.
    #[error("invalid request target {0:?}")]
    Target(String),
}

impl ProxyError {
    /// The status the client gets.
    pub fn status(&self) -> StatusCode {
        match self {
            ProxyError::Connect(_)
            | ProxyError::Upstream(_)
            | ProxyError::UnaskedUpgrade
            | ProxyError::WrongUpgrade => StatusCode::BAD_GATEWAY,
            ProxyError::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
            ProxyError::HeaderValue(_) | ProxyError::Target(_) => StatusCode::BAD_REQUEST,
        }
    }
}
