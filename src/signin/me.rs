//! `GET /.latchkey/me`: who the caller is, as JSON, for single-page apps
//! and scripts (`{authenticated, user: {id, email, roles}, expires_at}`),
//! or 401 (with a `WWW-Authenticate` challenge for a bearer request). The
//! lookup is identity's.

use http::{Request, Response, StatusCode};
use hyper::body::Incoming;

use crate::http::credentials;
use crate::http::error::{json, GateError};
use crate::http::request::Ctx;
use crate::identity::session::Identity;
use crate::signin::time_text::rfc3339;
use crate::signin::token::{challenge, INVALID_TOKEN};
use crate::signin::SignIn;
use crate::Body;

pub async fn me(
    cx: &SignIn<'_>,
    req: Request<Incoming>,
    ctx: &Ctx,
) -> Result<Response<Body>, GateError> {
    let credentials = credentials::read(req.headers(), cx.cookies);
    match cx.identifier.identify(&credentials, ctx.now).await? {
        Some(identity) => Ok(json(StatusCode::OK, &me_json(&identity))),
        None if ctx.bearer => Ok(challenge(
            StatusCode::UNAUTHORIZED,
            INVALID_TOKEN,
            &serde_json::json!({ "authenticated": false }),
        )),
        None => Ok(json(
            StatusCode::UNAUTHORIZED,
            &serde_json::json!({ "authenticated": false }),
        )),
    }
}

fn me_json(identity: &Identity) -> serde_json::Value {
    // A session's idle end (just slid forward), or a bearer token's `exp`.
    let expires_at = identity
        .session
        .as_ref()
        .map(|s| s.idle_expires_at.min(s.expires_at))
        .or(identity.token.as_ref().map(|t| t.expires_at))
        .map(rfc3339);
    serde_json::json!({
        "authenticated": true,
        "user": {
            "id": identity.user.id,
            "email": identity.user.email,
            "roles": identity.user.roles,
        },
        "amr": identity.amr(),
        "expires_at": expires_at,
    })
}
