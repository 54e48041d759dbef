//! CSRF for sign-in's forms: a double-submit token (the CSRF cookie and a
//! `csrf` field that must match it), and a stated origin (Origin, else
//! Referer) that must be this host or public_url's; the passkey
//! ceremonies' JSON POSTs carry the token in an `X-Latchkey-CSRF` header
//! instead of a field. The cookie's
//! attributes are http's (`http::cookies`); the token exchange's own rule
//! (`X-Requested-With` or the token) is `token`'s, built on `same_origin`.

use bytes::Bytes;
use http::{HeaderMap, Request, Response};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;

use crate::http::cookies;
use crate::http::error::GateError;
use crate::http::request::{header_str, Ctx, Form};
use crate::identity::secret::Secret;
use crate::signin::SignIn;
use crate::Body;

/// The browser's CSRF token, or a fresh one (`true`: it must be set).
pub(super) fn csrf_token(cx: &SignIn<'_>, headers: &HeaderMap) -> (Secret, bool) {
    match cookies::secrets(headers, cx.cookies.csrf_name()).next() {
        Some(t) => (t, false),
        None => (Secret::generate(&mut rand::rng()), true),
    }
}

pub(super) fn set_csrf(cx: &SignIn<'_>, resp: &mut Response<Body>, token: &Secret, set: bool) {
    if set {
        cookies::add(resp, cx.cookies.csrf(token.expose()));
    }
}

/// The form's token must match the cookie (one of them, when the browser
/// sends more than one of that name), and a stated origin (Origin, else
/// Referer; `Origin: null` states none) must be this host or public_url's.
fn check_csrf(
    cx: &SignIn<'_>,
    headers: &HeaderMap,
    stated: &str,
    ctx: &Ctx,
) -> Result<(), GateError> {
    let cookie_tokens: Vec<Secret> = cookies::secrets(headers, cx.cookies.csrf_name()).collect();
    if cookie_tokens.is_empty() {
        return Err(GateError::Csrf("no CSRF cookie"));
    }
    let form_token = Secret::parse(stated).ok_or(GateError::Csrf("no CSRF field"))?;
    if !cookie_tokens.contains(&form_token) {
        return Err(GateError::Csrf("CSRF token mismatch"));
    }
    if !same_origin(cx, headers, ctx) {
        return Err(GateError::Csrf("cross-site form"));
    }
    Ok(())
}

/// No stated origin (Origin, else Referer), or one on this host or
/// public_url's.
pub fn same_origin(cx: &SignIn<'_>, headers: &HeaderMap, ctx: &Ctx) -> bool {
    crate::http::origin::form_is_own(headers, ctx, cx.public_url)
}

/// A POSTed form that passed the CSRF check, with the request's headers.
pub(super) async fn checked_form(
    cx: &SignIn<'_>,
    req: Request<Incoming>,
    ctx: &Ctx,
) -> Result<(HeaderMap, Form), GateError> {
    let headers = req.headers().clone();
    let form = Form::read(req, cx.limits.form_body_bytes).await?;
    check_csrf(cx, &headers, form.get("csrf"), ctx)?;
    Ok((headers, form))
}

/// The header a JSON POST states the CSRF token in.
pub(super) const CSRF_HEADER: &str = "x-latchkey-csrf";

/// A POSTed JSON body (up to `limit` bytes) that passed the CSRF check,
/// the token stated in [`CSRF_HEADER`], with the request's headers.
pub(super) async fn checked_json(
    cx: &SignIn<'_>,
    req: Request<Incoming>,
    ctx: &Ctx,
    limit: usize,
) -> Result<(HeaderMap, Bytes), GateError> {
    let headers = req.headers().clone();
    let body = Limited::new(req.into_body(), limit)
        .collect()
        .await
        .map_err(|_| GateError::BodyTooLarge)?
        .to_bytes();
    let stated = header_str(&headers, CSRF_HEADER).unwrap_or_default();
    check_csrf(cx, &headers, stated, ctx)?;
    Ok((headers, body))
}
