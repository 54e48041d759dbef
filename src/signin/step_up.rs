//! The step-up page, `GET /.latchkey/step-up?rd=URL`: where a rule with
//! `mfa = true` sends a person whose session has not proved a passkey.
//! It asks for one of theirs and, once proved, replaces the session with
//! a new one (new token, amr `passkey`, the same person and roles; the old
//! one revoked) and returns to the exact URL asked for (validated like
//! every return address). Someone not signed in is sent to sign in first
//! (and comes back here); a session that already proved a passkey goes
//! straight on. Without a passkey the page says how to add one (the
//! account page).
//!
//! The ceremony, run by `passkey.js`: `POST /.latchkey/step-up/options`
//! (JSON `{"rd": URL}`) answers request options allowing only this
//! person's passkeys; `POST /.latchkey/step-up` takes the assertion and
//! answers `{"location": URL}`.

use http::{Request, Response, StatusCode};
use hyper::body::Incoming;

use crate::http::credentials;
use crate::http::error::GateError;
use crate::http::pages::Page;
use crate::http::request::Ctx;
use crate::identity::passkey::{parse_assertion, request_options};
use crate::obs::audit::AuditEvent;
use crate::signin::ceremony::{self, Posted, Purpose};
use crate::signin::csrf::{csrf_token, set_csrf};
use crate::signin::verify::{start_session, NewSession};
use crate::signin::{login_url, redirect, step_up_url, SignIn};
use crate::store::Store;
use crate::Body;

/// The `amr` of a session that proved a passkey.
pub const PASSKEY: &str = "passkey";

/// `GET /.latchkey/step-up`.
pub async fn page(
    cx: &SignIn<'_>,
    req: Request<Incoming>,
    ctx: &Ctx,
) -> Result<Response<Body>, GateError> {
    let raw = crate::http::request::query_param(req.uri().query(), "rd").unwrap_or_default();
    let rd = cx.return_policy.check(&raw).unwrap_or_default();
    let credentials = credentials::read(req.headers(), cx.cookies);
    let identity = cx.identifier.identify(&credentials, ctx.now).await?;
    let Some(identity) = identity.filter(|i| i.session.is_some()) else {
        return Ok(redirect(
            StatusCode::FOUND,
            &login_url("", &step_up_url("", &rd)),
        ));
    };
    if identity.amr() == PASSKEY {
        let to = if rd.is_empty() { "/" } else { rd.as_str() };
        return Ok(redirect(StatusCode::SEE_OTHER, to));
    }
    let passkeys = cx.store.list_passkeys(&identity.user.id).await?.len();
    let (csrf, set) = csrf_token(cx, req.headers());
    let mut resp = cx.pages.respond(
        StatusCode::OK,
        &Page::StepUp {
            csrf: csrf.expose(),
            email: &identity.user.email,
            rd: &rd,
            passkeys,
        },
    );
    set_csrf(cx, &mut resp, &csrf, set);
    Ok(resp)
}

/// `POST /.latchkey/step-up/options`.
pub async fn options(
    cx: &SignIn<'_>,
    req: Request<Incoming>,
    ctx: &Ctx,
) -> Result<Response<Body>, GateError> {
    let (posted, identity) = Posted::read_signed_in(cx, req, ctx).await?;
    let user_id = &identity.user.id;
    let allow: Vec<String> = cx
        .store
        .list_passkeys(user_id)
        .await?
        .into_iter()
        .map(|p| p.id)
        .collect();
    if allow.is_empty() {
        return Err(ceremony::refuse(
            cx,
            ctx,
            user_id,
            StatusCode::BAD_REQUEST,
            "no_passkey",
            "You have no passkey yet. Add one on your account page, then come back.",
        ));
    }
    let rd = posted.return_address(cx);
    let (challenge, cookie) = ceremony::issue(cx, ctx, Purpose::StepUp, user_id, &rd, "").await?;
    Ok(ceremony::options(
        &request_options(&posted.rp, &challenge, &allow),
        cookie,
    ))
}

/// `POST /.latchkey/step-up`: the assertion, by one of this session's
/// person's passkeys.
pub async fn finish(
    cx: &SignIn<'_>,
    req: Request<Incoming>,
    ctx: &Ctx,
) -> Result<Response<Body>, GateError> {
    let (Posted { headers, body, rp }, identity) = Posted::read_signed_in(cx, req, ctx).await?;
    let user_id = identity.user.id.clone();
    let challenge = ceremony::take(cx, &headers, ctx, Purpose::StepUp, &user_id).await?;
    let response = parse_assertion(&body)
        .map_err(|e| ceremony::refused_by_verifier(cx, ctx, &user_id, "", &e))?;
    if response
        .user_handle
        .as_deref()
        .is_some_and(|h| h != user_id)
    {
        return Err(ceremony::refuse(
            cx,
            ctx,
            &user_id,
            StatusCode::BAD_REQUEST,
            "other_user",
            "This passkey belongs to another account. Use one of your own passkeys.",
        ));
    }
    let Some(record) = cx.store.get_passkey(&user_id, &response.id).await? else {
        return Err(ceremony::unknown_passkey(cx, ctx, &user_id));
    };
    // The person as stored or listed, without this session's provider
    // roles (those go along as extra roles below).
    let Some(user) = ceremony::user_by_id(cx, &user_id).await? else {
        return Err(GateError::NotAllowed);
    };
    ceremony::prove(cx, ctx, &rp, &challenge, &response, record).await?;
    cx.audit(ctx, &user_id, AuditEvent::SteppedUp);
    // The provider's role_map roles of the old session go along.
    let extra_roles: Vec<String> = identity
        .user
        .roles
        .iter()
        .filter(|r| !user.roles.contains(r))
        .cloned()
        .collect();
    let to = if challenge.return_to.is_empty() {
        "/".to_owned()
    } else {
        challenge.return_to
    };
    let made = NewSession {
        user: &user,
        amr: PASSKEY.into(),
        extra_roles,
        return_to: &to,
    };
    let resp = start_session(cx, &headers, ctx, made).await?;
    Ok(ceremony::landing(cx, resp))
}
