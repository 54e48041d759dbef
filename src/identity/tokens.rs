//! The tokens latchkey signs with `keys`, and what they say:
//!
//! - **Identity assertions** (`X-Auth-Assertion`, `typ: JWT`): made on every
//!   allowed request with an identity, for the app at `aud` (its host name);
//!   `iss` is public_url's origin, `sub` the user id, with `email`, `roles`,
//!   `iat` and a short `exp` (`assertion.ttl`). Apps verify them against
//!   `GET /.latchkey/jwks.json`.
//! - **Bearer tokens** (`Authorization: Bearer`, `typ: at+jwt`, `aud` =
//!   public_url's origin): for API clients. Each has a record in the store
//!   under its `jti`; a request is let in only while that record lives and
//!   its user exists, with the user's current roles (the token carries
//!   none). `POST /.latchkey/token` exchanges a signed-in session for a
//!   short one; `latchkey tokens issue` makes long ones.
//!
//! The different `typ` and `aud` mean an assertion an app received can never
//! be replayed to latchkey as a bearer token, nor a bearer token passed off
//! to an app as an assertion. Without signing keys there are no assertions
//! (the header is sent empty), no bearer tokens, and the JWKS is empty.

use std::time::Duration;

use http::{header, HeaderMap, HeaderValue, Request, Response, StatusCode};
use hyper::body::Incoming;
use rand::RngCore;
use serde::{Deserialize, Serialize};

use crate::app::settings::Settings;
use crate::app::App;
use crate::http::cookies;
use crate::http::error::{json, GateError};
use crate::http::request::{header_str, Ctx, Form};
use crate::identity::keys::{SignError, Typ};
use crate::identity::secret::Secret;
use crate::identity::session::Identity;
use crate::signin::login::{same_origin, within_limit};
use crate::store::records::{TokenHash, TokenRecord, User};
use crate::store::{Store, StoreError, StoreResult};
use crate::Body;

/// `WWW-Authenticate` error codes (RFC 6750 §3.1).
pub const INVALID_TOKEN: &str = "invalid_token";
pub const INSUFFICIENT_SCOPE: &str = "insufficient_scope";

/// How long verifiers may cache the JWKS. Rotation waits at least this
/// long between publishing a key and signing with it.
pub const JWKS_MAX_AGE: Duration = Duration::from_secs(300);

#[derive(Serialize)]
struct AssertionClaims<'a> {
    iss: &'a str,
    aud: &'a str,
    sub: &'a str,
    email: &'a str,
    roles: &'a [String],
    iat: u64,
    exp: u64,
}

#[derive(Serialize, Deserialize)]
struct AccessClaims {
    iss: String,
    aud: String,
    sub: String,
    jti: String,
    iat: u64,
    exp: u64,
}

/// A bearer token could not be issued.
#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    #[error("session store: {0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Sign(#[from] SignError),
}

/// The token of an `Authorization: Bearer <token>` header (scheme in any case).
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = header_str(headers, header::AUTHORIZATION.as_str())?;
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Removes `Authorization` when it holds a token latchkey made: the app
/// gets the assertion instead, never a credential it could replay. Someone
/// else's `Authorization` passes untouched.
pub fn strip_own_bearer(settings: &Settings, headers: &mut HeaderMap) {
    if bearer_token(headers).is_some_and(|t| settings.keys.holds(t)) {
        headers.remove(header::AUTHORIZATION);
    }
}

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

/// The issuer of every token: public_url's origin, no trailing slash.
fn issuer(settings: &Settings) -> String {
    settings.public_url.origin().ascii_serialization()
}

/// A jti: 128 random bits, hex.
fn new_jti() -> String {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn is_jti(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl App {
    /// The identity assertion for `identity` calling the app at `host`;
    /// `None` without signing keys (or if signing failed, which is logged).
    pub fn assertion(&self, identity: &Identity, host: &str, now_ms: u64) -> Option<String> {
        let s = &self.settings;
        if s.keys.is_empty() {
            return None;
        }
        let iat = now_ms / 1000;
        let iss = issuer(s);
        let claims = AssertionClaims {
            iss: &iss,
            aud: host,
            sub: &identity.user.id,
            email: &identity.user.email,
            roles: &identity.user.roles,
            iat,
            exp: iat + s.assertion_ttl.as_secs().max(1),
        };
        match s.keys.sign(Typ::Assertion, &claims) {
            Ok(jwt) => Some(jwt),
            Err(e) => {
                tracing::error!(error = %e, "could not sign an identity assertion; sent none");
                None
            }
        }
    }

    /// Who a bearer token latchkey made speaks for: its signature, kind,
    /// audience and expiry check out, its record is in the store, and its
    /// user still exists (configured users win, as for sessions). `Ok(None)`
    /// for any token that does not; the reason goes to the debug log.
    pub(crate) async fn identify_bearer(
        &self,
        token: &str,
        now: u64,
    ) -> StoreResult<Option<Identity>> {
        let s = &self.settings;
        let iss = issuer(s);
        let claims: AccessClaims = match s.keys.verify(token, Typ::Access, &iss, &iss) {
            Ok(c) => c,
            Err(e) => {
                tracing::debug!(error = %e, "bearer token refused");
                return Ok(None);
            }
        };
        if !is_jti(&claims.jti) {
            tracing::debug!("bearer token refused: malformed jti");
            return Ok(None);
        }
        let Some((record, stored_user)) = self.store.get_token(&claims.jti).await? else {
            tracing::debug!(jti = %claims.jti, "bearer token refused: revoked or expired");
            return Ok(None);
        };
        if record.user_id != claims.sub {
            tracing::warn!(jti = %claims.jti, "bearer token refused: its record names another user");
            return Ok(None);
        }
        let user = match s.users.get(&record.email) {
            Some(configured) => configured.clone(),
            None => match stored_user {
                Some(u) => u,
                None => {
                    tracing::debug!(jti = %claims.jti, "bearer token refused: its user was removed");
                    return Ok(None);
                }
            },
        };
        if let Some(hex) = &record.session {
            // Exchanged from a session: alive only with it, and its use
            // slides that session's idle end like a cookie request would.
            let touched = match TokenHash::from_hex(hex) {
                Some(hash) => {
                    self.store
                        .touch_session(&hash, s.session.idle_timeout, now)
                        .await?
                }
                None => None,
            };
            if touched.is_none_or(|(session, _)| session.user_id != record.user_id) {
                tracing::debug!(jti = %claims.jti, "bearer token refused: its session ended");
                return Ok(None);
            }
        }
        Ok(Some(Identity {
            user,
            session: None,
            token: Some(record),
        }))
    }
}

/// Makes a bearer token for `user`, valid for `ttl`, and stores its record
/// (it works only while the record lives). Returns the token and the record.
pub async fn issue(
    settings: &Settings,
    store: &impl Store,
    user: &User,
    name: &str,
    session: Option<&TokenHash>,
    ttl: Duration,
    now_ms: u64,
) -> Result<(String, TokenRecord), IssueError> {
    if settings.keys.is_empty() {
        return Err(SignError::NoKey.into());
    }
    let iat = now_ms / 1000;
    let exp = iat + ttl.as_secs().max(1);
    let record = TokenRecord {
        jti: new_jti(),
        user_id: user.id.clone(),
        email: user.email.clone(),
        name: name.to_owned(),
        created_at: now_ms,
        expires_at: exp * 1000,
        session: session.map(TokenHash::to_hex),
    };
    let iss = issuer(settings);
    let claims = AccessClaims {
        iss: iss.clone(),
        aud: iss,
        sub: user.id.clone(),
        jti: record.jti.clone(),
        iat,
        exp,
    };
    let jwt = settings.keys.sign(Typ::Access, &claims)?;
    store.put_token(&record, now_ms).await?;
    Ok((jwt, record))
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
    app: &App,
    req: Request<Incoming>,
    ctx: &Ctx,
) -> Result<Response<Body>, GateError> {
    let s = &app.settings;
    if s.keys.is_empty() {
        return Err(GateError::NotFound);
    }
    let headers = req.headers().clone();
    if !same_origin(app, &headers, ctx) {
        return Err(GateError::Csrf("cross-site token request"));
    }
    let is_form = header_str(&headers, header::CONTENT_TYPE.as_str())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    let form = if is_form {
        Some(Form::read(req, s.limits.form_body_bytes).await?)
    } else {
        None
    };
    let custom_header = headers.contains_key("x-requested-with");
    let csrf_cookies: Vec<Secret> = cookies::secrets(&headers, cookies::csrf_name(s)).collect();
    let csrf_given = header_str(&headers, "x-csrf-token")
        .or(form.as_ref().map(|f| f.get("csrf")))
        .and_then(Secret::parse);
    let csrf_ok = csrf_given.is_some_and(|g| csrf_cookies.contains(&g));
    if !(custom_header || csrf_ok) {
        return Err(GateError::Csrf(
            "token request without X-Requested-With or CSRF token",
        ));
    }
    let signed_in = match app.identify(&headers, ctx.now).await? {
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
    let l = &s.limits;
    let key = format!("token-user:{}", user.id);
    within_limit(app, &key, l.tokens_per_user, l.token_window).await?;
    let left = Duration::from_millis(session.expires_at.saturating_sub(ctx.now));
    let ttl = s.token_ttl.min(left);
    let (token, record) = issue(
        s,
        app.store.as_ref(),
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
pub fn jwks(app: &App) -> Response<Body> {
    let mut resp = crate::http::response::json_bytes(StatusCode::OK, app.settings.keys.jwks());
    crate::http::response::cacheable(&mut resp, JWKS_MAX_AGE);
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(value: &'static str) -> HeaderMap {
        let mut m = HeaderMap::new();
        m.insert(header::AUTHORIZATION, HeaderValue::from_static(value));
        m
    }

    #[test]
    fn bearer_tokens_are_read_from_authorization() {
        assert_eq!(bearer_token(&h("Bearer abc.def.ghi")), Some("abc.def.ghi"));
        assert_eq!(bearer_token(&h("bearer  abc ")), Some("abc"));
        assert_eq!(bearer_token(&h("Basic dXNlcjpwdw==")), None);
        assert_eq!(bearer_token(&h("Bearer ")), None);
        assert_eq!(bearer_token(&HeaderMap::new()), None);
    }

    #[test]
    fn jtis_are_hex_and_unique() {
        let (a, b) = (new_jti(), new_jti());
        assert_eq!(a.len(), 32);
        assert!(is_jti(&a));
        assert_ne!(a, b);
        assert!(!is_jti("a:b"));
        assert!(!is_jti(""));
    }
}
