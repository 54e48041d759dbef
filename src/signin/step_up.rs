//! The step-up page, `GET /.latchkey/step-up?rd=URL`: where a rule with
//! `mfa = true` sends a person whose session has not proved a passkey.
//! It asks for one and, once proved, returns to the exact URL asked for
//! (validated like every return address). Someone not signed in is sent to
//! sign in first (and comes back here); a session that already proved a
//! passkey goes straight on. Without a passkey the page says how to add
//! one (the account page).

use http::{Request, Response, StatusCode};
use hyper::body::Incoming;

use crate::http::credentials;
use crate::http::error::GateError;
use crate::http::pages::Page;
use crate::http::request::Ctx;
use crate::signin::csrf::{csrf_token, set_csrf};
use crate::signin::{login_url, redirect, step_up_url, SignIn};
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
    let (csrf, set) = csrf_token(cx, req.headers());
    let mut resp = cx.pages.respond(
        StatusCode::OK,
        &Page::StepUp {
            csrf: csrf.expose(),
            email: &identity.user.email,
            rd: &rd,
            passkeys: 0,
        },
    );
    set_csrf(cx, &mut resp, &csrf, set);
    Ok(resp)
}
