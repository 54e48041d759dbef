//! Using a link or its code, and starting the session:
//!
//! - `GET verify` only shows a confirm button (mail scanners open links);
//!   `POST verify` uses the link once (atomic take), and only in the browser
//!   that asked (`login.same_browser`); elsewhere it says where to open it and
//!   uses nothing up.
//! - `POST code` signs in with the short code from the same email, typed into
//!   the browser that asked; `limits.code_attempts` wrong codes void it. The
//!   store compares, counts and uses up in one atomic step
//!   (`Store::check_code`), so codes fired at once buy no extra guesses.
//!
//! Either way `sign_in` finds or creates the user and `start_session`
//! starts a fresh session (a provider's sign-in, `oauth`, ends there too). Asking for the link is `link`'s; the session cookie's
//! attributes are http's.

use http::{HeaderMap, Request, Response, StatusCode};
use hyper::body::Incoming;

use crate::http::cookies;
use crate::http::error::GateError;
use crate::http::pages::Page;
use crate::http::request::{query_param, Ctx};
use crate::identity::secret::Secret;
use crate::obs::audit::AuditEvent;
use crate::obs::metrics::SignInFailure;
use crate::signin::csrf::{checked_form, csrf_token, set_csrf};
use crate::signin::device;
use crate::signin::limits::{limit, PerIp};
use crate::signin::link::may_sign_in;
use crate::signin::settings::CODE_DIGITS;
use crate::signin::time_text::human_duration;
use crate::signin::{redirect, retry_url, SignIn};
use crate::store::records::{user_id, LinkRecord, SessionRecord, TokenHash, User};
use crate::store::{CodeCheck, Store};
use crate::Body;

/// `GET /.latchkey/verify`: a confirm button for a live link.
pub async fn confirm_page(
    cx: &SignIn<'_>,
    req: Request<Incoming>,
    ctx: &Ctx,
) -> Result<Response<Body>, GateError> {
    let token = query_param(ctx.query.as_deref(), "token").and_then(|t| Secret::parse(&t));
    let live = match &token {
        Some(t) => cx.store.peek_link(&t.hash()).await?.is_some(),
        None => false,
    };
    let (Some(token), true) = (token, live) else {
        return Ok(cx.pages.respond(StatusCode::GONE, &Page::LinkInvalid));
    };
    let (csrf, set) = csrf_token(cx, req.headers());
    let mut resp = cx.pages.respond(
        StatusCode::OK,
        &Page::Confirm {
            csrf: csrf.expose(),
            token: token.expose(),
        },
    );
    set_csrf(cx, &mut resp, &csrf, set);
    Ok(resp)
}

/// The "link expired or already used" page, counted as a failed sign-in.
fn link_invalid(cx: &SignIn<'_>, ctx: &Ctx) -> Response<Body> {
    cx.refused(ctx, "", SignInFailure::Invalid);
    cx.pages.respond(StatusCode::GONE, &Page::LinkInvalid)
}

/// `POST /.latchkey/verify`: uses the link, in the browser that asked.
pub async fn verify(
    cx: &SignIn<'_>,
    req: Request<Incoming>,
    ctx: &Ctx,
) -> Result<Response<Body>, GateError> {
    let (headers, form) = checked_form(cx, req, ctx).await?;
    limit(cx, ctx, PerIp::Redemptions).await?;
    let invalid = || link_invalid(cx, ctx);
    let Some(token) = Secret::parse(form.get("token")) else {
        return Ok(invalid());
    };
    let hash = token.hash();
    let Some(link) = cx.store.peek_link(&hash).await? else {
        return Ok(invalid());
    };
    let attempts: Vec<Secret> = cookies::secrets(&headers, cx.cookies.attempt_name()).collect();
    let same_browser = TokenHash::from_hex(&link.attempt)
        .is_some_and(|want| attempts.iter().any(|a| a.hash() == want));
    if cx.login.same_browser && !same_browser {
        // Nothing used up: the link still works in the browser that asked.
        cx.refused(ctx, &user_id(&link.email), SignInFailure::WrongBrowser);
        return Ok(cx.pages.respond(
            StatusCode::FORBIDDEN,
            &Page::WrongBrowser {
                requested_ip: &link.ip,
                requested_agent: &link.user_agent,
                retry_url: &retry_url(&link.return_to),
            },
        ));
    }
    let Some(link) = cx.store.take_link(&hash).await? else {
        return Ok(invalid());
    };
    for a in &attempts {
        cx.store.delete_attempt(&a.hash()).await?;
    }
    sign_in(cx, &headers, ctx, &link).await
}

/// `POST /.latchkey/code`: the short code, in the browser that asked.
pub async fn redeem_code(
    cx: &SignIn<'_>,
    req: Request<Incoming>,
    ctx: &Ctx,
) -> Result<Response<Body>, GateError> {
    let (headers, form) = checked_form(cx, req, ctx).await?;
    limit(cx, ctx, PerIp::Redemptions).await?;
    let invalid = || link_invalid(cx, ctx);
    // Compared, counted and used up in one atomic store step: concurrent
    // guesses get no more than `code_attempts` judgements between them.
    // The first of the browser's attempt cookies that names an attempt is
    // the one judged.
    let typed = Secret::parse_code(form.get("code"), CODE_DIGITS).map(|c| c.hash());
    let mut verdict = CodeCheck::Missing;
    for a in cookies::secrets(&headers, cx.cookies.attempt_name()) {
        verdict = cx
            .store
            .check_code(&a.hash(), typed.as_ref(), cx.limits.code_attempts)
            .await?;
        if verdict != CodeCheck::Missing {
            break;
        }
    }
    let attempt = match verdict {
        CodeCheck::Match(attempt) => attempt,
        CodeCheck::Missing => return Ok(invalid()),
        CodeCheck::Voided(attempt) => {
            if let Some(h) = TokenHash::from_hex(&attempt.link) {
                cx.store.take_link(&h).await?;
            }
            cx.refused(ctx, "", SignInFailure::CodeVoided);
            return Ok(cx.pages.respond(StatusCode::GONE, &Page::LinkInvalid));
        }
        CodeCheck::Wrong { left } => {
            let error = format!(
                "That code is not right. {left} {} left.",
                if left == 1 { "try" } else { "tries" }
            );
            let (csrf, set) = csrf_token(cx, &headers);
            let expires_in = human_duration(cx.login.link_ttl);
            let mut resp = cx.pages.respond(
                StatusCode::UNPROCESSABLE_ENTITY,
                &Page::CheckEmail {
                    csrf: csrf.expose(),
                    code_digits: CODE_DIGITS,
                    expires_in: &expires_in,
                    error: Some(&error),
                    mail_down: cx.mail_stats.transport_down(),
                    retry_url: "/.latchkey/login",
                },
            );
            set_csrf(cx, &mut resp, &csrf, set);
            return Ok(resp);
        }
    };
    let Some(link) = (match TokenHash::from_hex(&attempt.link) {
        Some(h) => cx.store.take_link(&h).await?,
        None => None,
    }) else {
        return Ok(invalid());
    };
    sign_in(cx, &headers, ctx, &link).await
}

/// The link checked out: find or create the user, start a fresh session
/// (ending any the browser had), and send the browser on.
async fn sign_in(
    cx: &SignIn<'_>,
    headers: &HeaderMap,
    ctx: &Ctx,
    link: &LinkRecord,
) -> Result<Response<Body>, GateError> {
    let Some(user) = resolve_user(cx, &link.email, ctx.now).await? else {
        cx.refused(ctx, &user_id(&link.email), SignInFailure::Refused);
        return Ok(cx.pages.respond(StatusCode::GONE, &Page::LinkInvalid));
    };
    let made = NewSession {
        user: &user,
        amr: "email".into(),
        extra_roles: Vec::new(),
        return_to: &link.return_to,
    };
    let mut resp = start_session(cx, headers, ctx, made).await?;
    cookies::add(&mut resp, cx.cookies.clear_attempt());
    Ok(resp)
}

/// A session about to start: whose, how it was made, where to go next.
pub(crate) struct NewSession<'r> {
    pub user: &'r User,
    /// `email` or `oidc:ID`.
    pub amr: String,
    /// A provider's role_map roles, on top of the user's.
    pub extra_roles: Vec<String>,
    /// Validated return address ("" for the user's landing page).
    pub return_to: &'r str,
}

/// Starts a fresh session (ending any the browser had) and sends the
/// browser on: the one way every sign-in ends, link or provider.
pub(crate) async fn start_session(
    cx: &SignIn<'_>,
    headers: &HeaderMap,
    ctx: &Ctx,
    made: NewSession<'_>,
) -> Result<Response<Body>, GateError> {
    let user = made.user;
    for old in cookies::secrets(headers, &cx.cookies.session_name) {
        if let Some(cache) = cx.session_cache {
            cache.forget(&old.hash());
        }
        cx.store.revoke_session(&old.hash()).await?;
    }
    let session = cx.identifier.session;
    let token = Secret::generate(&mut rand::rng());
    let record = SessionRecord {
        user_id: user.id.clone(),
        email: user.email.clone(),
        created_at: ctx.now,
        expires_at: ctx.now + session.max_lifetime.as_millis() as u64,
        ip: ctx.client.ip.to_string(),
        user_agent: ctx.user_agent.clone(),
        amr: made.amr,
        extra_roles: made.extra_roles,
    };
    cx.store
        .create_session(&token.hash(), &record, session.idle_timeout, ctx.now)
        .await?;
    cx.audit(ctx, &user.id, AuditEvent::SignInCompleted);
    let target = if made.return_to.is_empty() {
        landing(cx, user)
    } else {
        made.return_to.to_owned()
    };
    let mut resp = redirect(StatusCode::SEE_OTHER, &target);
    cookies::add(&mut resp, cx.cookies.session(token.expose()));
    if cx.login.new_device_email {
        let device = device::note(cx, headers, ctx, user).await?;
        cookies::add(&mut resp, cx.cookies.device(device.expose()));
    }
    Ok(resp)
}

/// The user behind an address: listed in config, stored, or created now if
/// signup lets them in. `None`: may not sign in.
pub(crate) async fn resolve_user(
    cx: &SignIn<'_>,
    email: &str,
    now: u64,
) -> Result<Option<User>, GateError> {
    if let Some(u) = cx.users.get(email) {
        return Ok(Some(u.clone()));
    }
    if let Some(u) = cx.store.get_user(&user_id(email)).await? {
        return Ok(Some(u));
    }
    if !may_sign_in(cx, email).await? {
        return Ok(None);
    }
    let user = User {
        id: user_id(email),
        email: email.to_owned(),
        roles: cx.login.default_roles.clone(),
        created_at: now,
    };
    cx.store.put_user(&user).await?;
    tracing::info!(user_id = %user.id, "user created at first sign-in");
    Ok(Some(user))
}

/// Where a user goes after sign-in with no return address: the landing page
/// of the first of their roles that has one, else "/".
fn landing(cx: &SignIn<'_>, user: &User) -> String {
    user.roles
        .iter()
        .find_map(|r| cx.login.landing.get(r))
        .cloned()
        .unwrap_or_else(|| "/".into())
}
