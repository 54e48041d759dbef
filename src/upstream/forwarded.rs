//! The forwarding headers the app receives: `X-Forwarded-For` (the trusted
//! list plus the peer), `X-Forwarded-Proto`, `X-Forwarded-Host`, `Host` and
//! `X-Real-IP`, replacing whatever the client sent. Who the real client is
//! (trusted proxies) and which host was judged come in through `Forward`.

use http::header::{HeaderMap, HeaderName, HeaderValue, HOST};

use super::error::ProxyError;
use super::Forward;

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");

/// Sets `X-Forwarded-For` (the prior list plus the peer), `-Proto`, `-Host`
/// and `X-Real-IP` (the client), replacing what the client sent.
pub(super) fn set_forwarded(headers: &mut HeaderMap, fwd: &Forward<'_>) -> Result<(), ProxyError> {
    let ip = fwd.client_ip.to_string();
    let peer = fwd.peer_ip.to_string();
    let xff = match fwd.prior_forwarded_for.map(str::trim) {
        Some(prior) if !prior.is_empty() => HeaderValue::from_str(&[prior, ", ", &peer].concat())
            .map_err(ProxyError::HeaderValue)?,
        _ => HeaderValue::from_str(&peer).map_err(ProxyError::HeaderValue)?,
    };
    let host = HeaderValue::from_str(fwd.host).map_err(ProxyError::HeaderValue)?;
    let proto = match fwd.proto {
        "https" => HeaderValue::from_static("https"),
        "http" => HeaderValue::from_static("http"),
        other => HeaderValue::from_str(other).map_err(ProxyError::HeaderValue)?,
    };
    headers.insert(
        X_REAL_IP,
        HeaderValue::from_str(&ip).map_err(ProxyError::HeaderValue)?,
    );
    headers.insert(X_FORWARDED_FOR, xff);
    headers.insert(X_FORWARDED_PROTO, proto);
    headers.insert(X_FORWARDED_HOST, host.clone());
    headers.insert(HOST, host);
    Ok(())
}
