//! Bearer tokens at the HTTP edge: `POST /.latchkey/token` exchanges a
//! signed-in browser session for a short-lived bearer token,
//! `GET /.latchkey/jwks.json` publishes the public keys, and
//! [`challenge`] is the `WWW-Authenticate: Bearer` refusal an API client
//! gets (here and from gate). Making and checking the tokens is identity's
//! (`identity::bearer`, `identity::assertion`).

use std::time::Duration;

use http::{header, HeaderValue, Request, Response, StatusCode};
use hyper::body::Incoming;

use crate::http::cookies;
use crate::http::credentials;
use crate::http::error::{json, GateError};
use crate::http::request::{header_str, Ctx, Form};
use crate::identity::bearer::IssueError;
use crate::identity::keys::JWKS_MAX_AGE;
use crate::identity::secret::Secret;
use crate::identity::session::Identity;
use crate::signin::csrf::same_origin;
use crate::signin::limits::within_limit;
use crate::signin::SignIn;
use crate::Body;

/// `WWW-Authenticate` error codes (RFC 6750 §3.1).
pub const INVALID_TOKEN: &str = "invalid_token";
pub const INSUFFICIENT_SCOPE: &str = "insufficient_scope";

/// A refusal for an API client: status, JSON body and a `WWW-Authenticate:
/// Bearer` challenge naming the error.
pub fn challenge(status: StatusCode, error: &str, body: &serde_json::Value) -> Response<Body> {
    let mut resp = json(status, body);
    let value = format!("Bearer realm=\"latchkey\", error=\"{error}\"");
    if let Ok(v) = HeaderValue::from_str(&value) {
        resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    resp
}

/// `POST /.latchkey/token`: a signed-in browser session gets a short-lived
/// bearer token, `{access_token, token_type, expires_in}`, valid for
/// `tokens.ttl` and never past the session's absolute end.
///
/// CSRF: the request must come from a page on this site: a stated Origin
/// (or Referer) must be this host or public_url's, and it must carry either
/// `X-Requested-With` (a header another site cannot add without a CORS
/// preflight, which latchkey never grants) or the CSRF token (from the
/// `latchkey_csrf` cookie) in `X-CSRF-Token` or a `csrf` form field.
pub async fn exchange(
    cx: &SignIn<'_>,
    req: Request<Incoming>,
    ctx: &Ctx,
) -> Result<Response<Body>, GateError> {
    let signer = cx.signer();
    if signer.keys.is_empty() {
        return Err(GateError::NotFound);
    }
    let headers = req.headers().clone();
    if !same_origin(cx, &headers, ctx) {
        return Err(GateError::Csrf("cross-site token request"));
    }
    let is_form = header_str(&headers, header::CONTENT_TYPE)
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    let form = if is_form {
        Some(Form::read(req, cx.limits.form_body_bytes).await?)
    } else {
        None
    };
    let custom_header = headers.contains_key("x-requested-with");
    let csrf_cookies: Vec<Secret> = cookies::secrets(&headers, cx.cookies.csrf_name()).collect();
    let csrf_given = header_str(&headers, "x-csrf-token")
        .or(form.as_ref().map(|f| f.get("csrf")))
        .and_then(Secret::parse);
    let csrf_ok = csrf_given.is_some_and(|g| csrf_cookies.contains(&g));
    if !(custom_header || csrf_ok) {
        return Err(GateError::Csrf(
            "token request without X-Requested-With or CSRF token",
        ));
    }
    let credentials = credentials::read(&headers, cx.cookies);
    let signed_in = match cx.identifier.identify(&credentials, ctx.now).await? {
        Some(Identity {
            user,
            session: Some(session),
            ..
        }) => Some((user, session)),
        _ => None,
    };
    let Some((user, session)) = signed_in else {
        return Ok(json(
            StatusCode::UNAUTHORIZED,
            &serde_json::json!({ "error": "sign in first" }),
        ));
    };
    // Each token is a record in the store: a signed-in script must not
    // mint them without bound.
    let l = cx.limits;
    let key = format!("token-user:{}", user.id);
    within_limit(cx, &key, l.tokens_per_user, l.token_window).await?;
    let left = Duration::from_millis(session.expires_at.saturating_sub(ctx.now));
    let ttl = cx.token_ttl.min(left);
    let (token, record) = signer
        .issue(
            cx.store,
            &user,
            "session",
            Some(&session.hash),
            ttl,
            ctx.now,
        )
        .await
        .map_err(|e| match e {
            IssueError::Store(e) => GateError::Store(e),
            IssueError::Sign(e) => GateError::Signing(e),
        })?;
    tracing::info!(user_id = %user.id, jti = %record.jti, ip = %ctx.client.ip, "bearer token issued for a session");
    let expires_in = record.expires_at.saturating_sub(ctx.now) / 1000;
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": expires_in,
        }),
    ))
}

/// `GET /.latchkey/jwks.json`: every public key, cacheable.
pub async fn jwks(
    cx: &SignIn<'_>,
    _req: Request<Incoming>,
    _ctx: &Ctx,
) -> Result<Response<Body>, GateError> {
    let mut resp = crate::http::response::json_bytes(StatusCode::OK, cx.signer().keys.jwks());
    crate::http::response::cacheable(&mut resp, JWKS_MAX_AGE);
    Ok(resp)
}
