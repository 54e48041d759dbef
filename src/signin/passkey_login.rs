//! Sign-in with a passkey, from the sign-in page's button or the email
//! field's autofill (conditional mediation), both run by `passkey.js`:
//!
//! - `POST /.latchkey/passkey/login/options` (JSON `{"rd": URL}`): request
//!   options for a discoverable credential (no allow list), with a fresh
//!   challenge bound to this browser, keeping the validated return address.
//! - `POST /.latchkey/passkey/login` (the assertion, `credential.toJSON()`):
//!   the user is the one the passkey names (its user handle is the user
//!   id), the credential one of theirs; once the verifier accepts it (and
//!   the person may still sign in) the sign count and last use are stored
//!   and a session with amr `passkey` starts exactly as the email link's
//!   does (return address, cookie, new-device notice). The answer is
//!   `{"location": URL}`.

use http::{Request, Response, StatusCode};
use hyper::body::Incoming;

use crate::http::error::GateError;
use crate::http::request::Ctx;
use crate::identity::passkey::{parse_assertion, request_options};
use crate::signin::ceremony::{self, Posted, Purpose};
use crate::signin::limits::{limit, PerIp};
use crate::signin::step_up::PASSKEY;
use crate::signin::verify::{start_session, NewSession};
use crate::signin::SignIn;
use crate::store::Store;
use crate::Body;

/// `POST /.latchkey/passkey/login/options`.
pub async fn options(
    cx: &SignIn<'_>,
    req: Request<Incoming>,
    ctx: &Ctx,
) -> Result<Response<Body>, GateError> {
    // Not counted against the redemption limit: autofill asks for options
    // on every load of the sign-in page, so a busy office behind one
    // address would run out of email-link redemptions. The answer (the
    // finish) is counted; an options request only stores a challenge for
    // five minutes, as a provider's `/start` does.
    let posted = Posted::read(cx, req, ctx).await?;
    let rd = posted.return_address(cx);
    let (challenge, cookie) = ceremony::issue(cx, ctx, Purpose::SignIn, "", &rd, "").await?;
    Ok(ceremony::options(
        &request_options(&posted.rp, &challenge, &[]),
        cookie,
    ))
}

/// `POST /.latchkey/passkey/login`.
pub async fn finish(
    cx: &SignIn<'_>,
    req: Request<Incoming>,
    ctx: &Ctx,
) -> Result<Response<Body>, GateError> {
    let Posted { headers, body, rp } = Posted::read(cx, req, ctx).await?;
    limit(cx, ctx, PerIp::Redemptions).await?;
    let challenge = ceremony::take(cx, &headers, ctx, Purpose::SignIn, "").await?;
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
    let (Some(user), Some(record)) = (known, record) else {
        return Err(ceremony::unknown_passkey(cx, ctx, &user_id));
    };
    ceremony::prove(cx, ctx, &rp, &challenge, &response, record).await?;
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
