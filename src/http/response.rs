//! The one response builder: every answer latchkey itself produces (pages,
//! JSON, redirects, empty refusals, plain text) is made here, so its
//! security headers are set once and agree everywhere. What an answer says
//! and which status it has is the caller's business; the bytes of pages are
//! `pages`'s. Responses proxied from an app are the app's and never pass
//! through here.
//!
//! Every answer carries:
//! - `Cache-Control: no-store`: sign-in pages, redirects carrying return
//!   addresses, identities and refusals are personal; only [`cacheable`]
//!   (the public JWKS) lifts it.
//! - `X-Content-Type-Options: nosniff`: a JSON or text body is never run as
//!   a script or shown as HTML.
//! - `Referrer-Policy: same-origin` (pages sent from a link token choose
//!   `no-referrer`): return addresses and queries never leak to other sites.
//! - `X-Frame-Options: DENY` and a `Content-Security-Policy` with
//!   `frame-ancestors 'none'`: nothing of latchkey's is framed (clickjacking).
//!   Non-HTML answers get `default-src 'none'`; HTML pages bring their own
//!   policy (the hash of their one stylesheet) and also
//!   `Cross-Origin-Opener-Policy: same-origin`.
//!
//! Not HSTS: whether a host is HTTPS-only is the deployment's decision (it
//! sticks to the apps behind latchkey too), and the front proxy sets it.

use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Response, StatusCode};

use crate::Body;

/// The policy of every answer that is not an HTML page: load nothing, be
/// framed by no one.
pub const DEFAULT_CSP: &str = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'";

const JSON: &str = "application/json";
const TEXT: &str = "text/plain; charset=utf-8";
const HTML: &str = "text/html; charset=utf-8";
const SCRIPT: &str = "text/javascript; charset=utf-8";

/// What a page's links and forms tell the next site about where they came
/// from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Referrer {
    /// The full URL to latchkey's own origin, nothing to others.
    SameOrigin,
    /// Nothing, anywhere: pages whose URL carries a link token. Their forms
    /// then post `Origin: null`, which the CSRF check reads as "no origin
    /// stated" (the CSRF token still has to match).
    NoReferrer,
}

impl Referrer {
    fn value(self) -> HeaderValue {
        HeaderValue::from_static(match self {
            Referrer::SameOrigin => "same-origin",
            Referrer::NoReferrer => "no-referrer",
        })
    }
}

/// The headers every answer of latchkey's own carries (see the module
/// text). Callers that change one afterwards say why.
fn secure(h: &mut HeaderMap) {
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::REFERRER_POLICY, Referrer::SameOrigin.value());
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(DEFAULT_CSP),
    );
}

/// An answer: `status`, `body` of `content_type` (none for an empty body),
/// and the security headers.
pub fn build(
    status: StatusCode,
    content_type: Option<&'static str>,
    body: impl Into<Bytes>,
) -> Response<Body> {
    let mut resp = Response::new(crate::full(body));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    secure(h);
    if let Some(t) = content_type {
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static(t));
    }
    resp
}

/// A JSON answer.
pub fn json(status: StatusCode, value: &serde_json::Value) -> Response<Body> {
    build(status, Some(JSON), value.to_string())
}

/// A JSON answer whose body is already serialized (the JWKS).
pub fn json_bytes(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    build(status, Some(JSON), body)
}

/// A plain-text answer (the admin listener, the HTTP-to-HTTPS redirect).
pub fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    build(status, Some(TEXT), body)
}

/// A same-origin script (the passkey ceremonies' `passkey.js`).
pub fn script(body: &'static str) -> Response<Body> {
    build(StatusCode::OK, Some(SCRIPT), body)
}

/// A status and nothing else (forward-auth refusals).
pub fn empty(status: StatusCode) -> Response<Body> {
    build(status, None, Bytes::new())
}

/// A redirect to `location` (left out if it cannot be a header value).
pub fn redirect(status: StatusCode, location: &str) -> Response<Body> {
    let mut resp = empty(status);
    if let Ok(v) = HeaderValue::from_str(location) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp
}

/// An HTML page under `csp` (the page's own policy, which must keep
/// `frame-ancestors 'none'`).
pub fn html(
    status: StatusCode,
    body: String,
    csp: &HeaderValue,
    referrer: Referrer,
) -> Response<Body> {
    let mut resp = build(status, Some(HTML), body);
    let h = resp.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, csp.clone());
    h.insert(header::REFERRER_POLICY, referrer.value());
    h.insert(
        HeaderName::from_static("cross-origin-opener-policy"),
        HeaderValue::from_static("same-origin"),
    );
    resp
}

/// Lets shared caches keep `resp` for `max_age`: only for what is the same
/// for everyone and secret to no one (the public keys).
pub fn cacheable(resp: &mut Response<Body>, max_age: Duration) {
    let value = format!("public, max-age={}", max_age.as_secs());
    if let Ok(v) = HeaderValue::from_str(&value) {
        resp.headers_mut().insert(header::CACHE_CONTROL, v);
    }
}

/// Forward-auth's "allow": 200 and `Cache-Control: no-store` only. The
/// front proxy copies headers of this answer into the app's request
/// (Traefik's `authResponseHeadersRegex = "^X-"` is its documented
/// example), and no browser ever sees it, so it carries nothing else.
pub fn allow() -> Response<Body> {
    let mut resp = Response::new(crate::full(Bytes::new()));
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The headers of [`secure`], as an integration test checks them too.
    fn assert_secure(resp: &Response<Body>, what: &str) {
        let h = resp.headers();
        assert_eq!(h["x-content-type-options"], "nosniff", "{what}");
        assert_eq!(h["x-frame-options"], "DENY", "{what}");
        assert!(h.contains_key("referrer-policy"), "{what}");
        let csp = h["content-security-policy"].to_str().unwrap_or_default();
        assert!(csp.contains("frame-ancestors 'none'"), "{what}: {csp}");
    }

    #[test]
    fn every_builder_sets_the_security_headers() {
        let csp = HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'");
        let cases = [
            (
                "json",
                json(StatusCode::BAD_REQUEST, &serde_json::json!({})),
            ),
            ("json_bytes", json_bytes(StatusCode::OK, "{}")),
            ("text", text(StatusCode::NOT_FOUND, "x")),
            ("empty", empty(StatusCode::UNAUTHORIZED)),
            ("redirect", redirect(StatusCode::FOUND, "/x")),
            (
                "html",
                html(
                    StatusCode::FORBIDDEN,
                    "<p>".into(),
                    &csp,
                    Referrer::SameOrigin,
                ),
            ),
        ];
        for (what, resp) in &cases {
            assert_secure(resp, what);
            assert_eq!(resp.headers()["cache-control"], "no-store", "{what}");
        }
        let content_type = |i: usize| cases[i].1.headers().get("content-type").cloned();
        assert_eq!(content_type(0).unwrap(), "application/json");
        assert_eq!(content_type(2).unwrap(), "text/plain; charset=utf-8");
        assert!(content_type(3).is_none(), "no body, no type");
        assert_eq!(cases[4].1.headers()["location"], "/x");
        let page = cases[5].1.headers();
        assert_eq!(page["content-type"], "text/html; charset=utf-8");
        assert_eq!(page["content-security-policy"], csp);
        assert_eq!(page["referrer-policy"], "same-origin");
        assert_eq!(page["cross-origin-opener-policy"], "same-origin");
        assert!(!cases[0]
            .1
            .headers()
            .contains_key("cross-origin-opener-policy"));
    }

    #[test]
    fn pages_choose_their_referrer_and_the_jwks_may_be_cached() {
        let csp = HeaderValue::from_static(DEFAULT_CSP);
        let r = html(StatusCode::OK, String::new(), &csp, Referrer::NoReferrer);
        assert_eq!(r.headers()["referrer-policy"], "no-referrer");
        let mut r = json_bytes(StatusCode::OK, "{}");
        cacheable(&mut r, Duration::from_secs(300));
        assert_eq!(r.headers()["cache-control"], "public, max-age=300");
        assert_secure(&r, "cacheable");
    }

    #[test]
    fn an_unusable_location_is_left_out() {
        let r = redirect(StatusCode::SEE_OTHER, "/a\nb");
        assert!(!r.headers().contains_key("location"));
        assert_secure(&r, "redirect");
    }

    #[test]
    fn forward_auth_allow_carries_no_store_only() {
        let r = allow();
        assert_eq!(r.status(), StatusCode::OK);
        let names: Vec<&str> = r.headers().keys().map(|k| k.as_str()).collect();
        assert_eq!(names, ["cache-control"]);
    }
}
