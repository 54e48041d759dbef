//! Sign-in with a passkey, from the sign-in page's button or the email
//! field's autofill (conditional mediation), both run by `passkey.js`:
//!
//! - `POST /.latchkey/passkey/login/options` (JSON `{"rd": URL}`): request
//!   options for a discoverable credential (no allow list), with a fresh
//!   challenge bound to this browser, keeping the validated return address.
//! - `POST /.latchkey/passkey/login` (the assertion, `credential.toJSON()`):
//!   the user is the one the passkey names (its user handle is the user
//!   id), the credential one of theirs; once the verifier accepts it the
//!   sign count and last use are stored and a session with amr `passkey`
//!   starts exactly as the email link's does (return address, cookie,
//!   new-device notice). The answer is `{"location": URL}`.

use http::{Request, Response, StatusCode};
use hyper::body::Incoming;

use crate::http::error::GateError;
use crate::http::request::Ctx;
use crate::identity::passkey::{parse_assertion, request_options, verify_assertion};
use crate::signin::ceremony::{self, Purpose, BODY_LIMIT};
use crate::signin::csrf::checked_json;
use crate::signin::limits::{limit, PerIp};
use crate::signin::step_up::PASSKEY;
use crate::signin::verify::{resolve_user, start_session, NewSession};
use crate::signin::SignIn;
use crate::store::Store;
use crate::Body;

/// `POST /.latchkey/passkey/login/options`.
pub async fn options(
    cx: &SignIn<'_>,
    req: Request<Incoming>,
    ctx: &Ctx,
) -> Result<Response<Body>, GateError> {
    let (headers, body) = checked_json(cx, req, ctx, BODY_LIMIT).await?;
    limit(cx, ctx, PerIp::Redemptions).await?;
    let asked: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let rd = asked["rd"]
        .as_str()
        .and_then(|rd| cx.return_policy.check(rd))
        .unwrap_or_default();
    let rp = ceremony::relying_party(cx, &headers, ctx);
    let (challenge, cookie) = ceremony::issue(cx, ctx, Purpose::SignIn, "", &rd, "").await?;
    Ok(ceremony::options(
        &request_options(&rp, &challenge, &[]),
        cookie,
    ))
}

/// `POST /.latchkey/passkey/login`.
pub async fn finish(
    cx: &SignIn<'_>,
    req: Request<Incoming>,
    ctx: &Ctx,
) -> Result<Response<Body>, GateError> {
    let (headers, body) = checked_json(cx, req, ctx, BODY_LIMIT).await?;
    limit(cx, ctx, PerIp::Redemptions).await?;
    let challenge = ceremony::take(cx, &headers, ctx, Purpose::SignIn, "").await?;
    let rp = ceremony::relying_party(cx, &headers, ctx);
    let response =
        parse_assertion(&body).map_err(|e| ceremony::refused_by_verifier(cx, ctx, "", "", &e))?;
    let Some(user_id) = response.user_handle.clone().filter(|u| !u.is_empty()) else {
        return Err(ceremony::refuse(
            cx,
            ctx,
            "",
            StatusCode::BAD_REQUEST,
            "no_user_handle",
            "This passkey did not say whose it is. Sign in another way, then add a passkey again \
             on your account page.",
        ));
    };
    let known = ceremony::user_by_id(cx, &user_id).await?;
    let record = match &known {
        Some(_) => cx.store.get_passkey(&user_id, &response.id).await?,
        None => None,
    };
    let (Some(known), Some(record)) = (known, record) else {
        return Err(ceremony::unknown_passkey(cx, ctx, &user_id));
    };
    let verified = verify_assertion(
        &rp,
        &challenge.bytes,
        &response,
        &record.credential,
        record.sign_count,
    )
    .map_err(|e| ceremony::refused_by_verifier(cx, ctx, &user_id, &record.id, &e))?;
    // Still allowed to sign in (a listed user, or the signup policy).
    let Some(user) = resolve_user(cx, &known.email, ctx.now).await? else {
        return Err(GateError::NotAllowed);
    };
    ceremony::note_use(cx, ctx, record, &verified).await?;
    tracing::info!(user_id = %user.id, "signed in with a passkey");
    let made = NewSession {
        user: &user,
        amr: PASSKEY.into(),
        extra_roles: Vec::new(),
        return_to: &challenge.return_to,
    };
    let resp = start_session(cx, &headers, ctx, made).await?;
    Ok(ceremony::landing(cx, resp))
}
