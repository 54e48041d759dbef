//! Signing out: `GET /.latchkey/logout` asks to confirm (a link alone must
//! not end a session), `POST` ends every session cookie the browser sent,
//! clears the cookie, and goes back to a (validated) `rd` or the "signed
//! out" page. Bearer tokens exchanged from those sessions die with them
//! (identity's `bearer` checks the session). A session made with a
//! provider whose `logout = true` and which advertises an
//! `end_session_endpoint` is also ended there (RP-initiated logout): the
//! browser goes to the provider with `client_id` and
//! `post_logout_redirect_uri` = public_url's `/.latchkey/signed-out` (no
//! `id_token_hint`: latchkey keeps no provider token), which `GET` serves.

use http::{Request, Response, StatusCode};
use hyper::body::Incoming;

use crate::http::cookies;
use crate::http::credentials;
use crate::http::error::GateError;
use crate::http::pages::Page;
use crate::http::request::Ctx;
use crate::obs::audit::AuditEvent;
use crate::signin::csrf::{checked_form, csrf_token, set_csrf};
use crate::signin::{redirect, SignIn};
use crate::store::Store;
use crate::Body;

/// `GET /.latchkey/logout`: the confirm form.
pub async fn confirm_page(
    cx: &SignIn<'_>,
    req: Request<Incoming>,
    _ctx: &Ctx,
) -> Result<Response<Body>, GateError> {
    let (csrf, set) = csrf_token(cx, req.headers());
    let mut resp = cx.pages.respond(
        StatusCode::OK,
        &Page::LogoutConfirm {
            csrf: csrf.expose(),
        },
    );
    set_csrf(cx, &mut resp, &csrf, set);
    Ok(resp)
}

/// `POST /.latchkey/logout`.
pub async fn logout(
    cx: &SignIn<'_>,
    req: Request<Incoming>,
    ctx: &Ctx,
) -> Result<Response<Body>, GateError> {
    let (headers, form) = checked_form(cx, req, ctx).await?;
    let credentials = credentials::read(&headers, cx.cookies);
    let mut amr = None;
    // Every session cookie the browser sent ends: it is cleared below.
    if !credentials.sessions.is_empty() {
        // Whose session it was, for the audit trail.
        let who = cx.identifier.identify(&credentials, ctx.now).await?;
        amr = who
            .as_ref()
            .and_then(|i| i.session.as_ref())
            .map(|s| s.amr.clone());
        let id = who.map(|i| i.user.id).unwrap_or_default();
        let mut ended = false;
        for token in &credentials.sessions {
            if let Some(cache) = cx.session_cache {
                cache.forget(&token.hash());
            }
            ended |= cx.store.revoke_session(&token.hash()).await?;
        }
        if ended {
            cx.audit(ctx, &id, AuditEvent::SignedOut);
        }
    }
    let at_provider = amr.as_deref().and_then(|amr| provider_logout(cx, amr));
    let mut resp = match (at_provider, cx.return_policy.check(form.get("rd"))) {
        (Some(url), _) => redirect(StatusCode::SEE_OTHER, url.as_str()),
        (None, Some(rd)) => redirect(StatusCode::SEE_OTHER, &rd),
        (None, None) => cx.pages.respond(
            StatusCode::OK,
            &Page::SignedOut {
                login_url: "/.latchkey/login",
            },
        ),
    };
    cookies::add(&mut resp, cx.cookies.clear_session());
    Ok(resp)
}

/// Where the provider that made this session (`amr` = `oidc:ID`) ends
/// its own session, when it is configured to and offers it.
fn provider_logout(cx: &SignIn<'_>, amr: &str) -> Option<url::Url> {
    let id = amr.strip_prefix("oidc:")?;
    let slot = cx.providers.iter().find(|p| p.settings.id == id)?;
    let back = cx.public_url.join("/.latchkey/signed-out").ok()?;
    slot.client()?.end_session_url(None, &back)
}

/// `GET /.latchkey/signed-out`: where a provider sends the person back
/// after its logout.
pub async fn signed_out_page(
    cx: &SignIn<'_>,
    _req: Request<Incoming>,
    _ctx: &Ctx,
) -> Result<Response<Body>, GateError> {
    Ok(cx.pages.respond(
        StatusCode::OK,
        &Page::SignedOut {
            login_url: "/.latchkey/login",
        },
    ))
}
