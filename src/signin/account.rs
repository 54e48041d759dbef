//! The account page people manage themselves on: `GET /.latchkey/account`
//! shows who is signed in (email, roles, how this session was made) and
//! every live session of theirs (browser and OS summarised from the
//! User-Agent, IP, started, last seen, "this one"); `POST
//! /.latchkey/account/sessions` ends one of them (field `session`, its id
//! as `latchkey sessions list` shows it) or every one but this (field
//! `all` = `others`). The person's passkeys are listed there too, with
//! rename and remove (`passkeys`) and "Add a passkey". Ending goes through the store, like `sessions
//! revoke`, so every instance refuses the session on its next request (the
//! session cache hears it from Redis); this instance forgets it at once.
//! Anyone not signed in by a session cookie is sent to sign in.

use http::{Request, Response, StatusCode};
use hyper::body::Incoming;

use crate::http::credentials;
use crate::http::error::GateError;
use crate::http::pages::{describe_user_agent, Page, PasskeyRow, SessionRow};
use crate::http::request::query_param;
use crate::http::request::Ctx;
use crate::identity::session::Identity;
use crate::obs::audit::AuditEvent;
use crate::signin::csrf::{checked_form, csrf_token, set_csrf};
use crate::signin::time_text::date_time;
use crate::signin::{login_url, redirect, SignIn};
use crate::store::records::{SessionInfo, TokenHash};
use crate::store::Store;
use crate::Body;

pub(super) const ACCOUNT: &str = "/.latchkey/account";

/// The caller's identity when it comes from a session cookie.
pub(super) async fn signed_in(
    cx: &SignIn<'_>,
    headers: &http::HeaderMap,
    ctx: &Ctx,
) -> Result<Option<(Identity, TokenHash)>, GateError> {
    let credentials = credentials::read(headers, cx.cookies);
    let identity = cx.identifier.identify(&credentials, ctx.now).await?;
    Ok(identity.and_then(|i| {
        let hash = i.session.as_ref()?.hash;
        Some((i, hash))
    }))
}

fn to_sign_in() -> Response<Body> {
    redirect(StatusCode::FOUND, &login_url("", ACCOUNT))
}

/// How a session's `amr` reads on the page.
pub fn how_made(amr: &str) -> String {
    match amr {
        "email" => "an email link or code".into(),
        "passkey" => "a passkey".into(),
        other => match other.strip_prefix("oidc:") {
            Some(id) => format!("the provider {id}"),
            None => other.to_owned(),
        },
    }
}

/// One session as the page lists it. Last seen is when its idle end was
/// last slid (within `store::slide_step` of the last request).
fn row(info: &SessionInfo, idle_ms: u64, current: &str) -> SessionRow {
    let r = &info.record;
    let seen = info
        .idle_expires_at
        .saturating_sub(idle_ms)
        .max(r.created_at);
    SessionRow {
        id: info.id.clone(),
        browser: describe_user_agent(&r.user_agent),
        ip: r.ip.clone(),
        started: date_time(r.created_at),
        last_seen: date_time(seen),
        current: info.id == current,
    }
}

/// `GET /.latchkey/account`.
pub async fn page(
    cx: &SignIn<'_>,
    req: Request<Incoming>,
    ctx: &Ctx,
) -> Result<Response<Body>, GateError> {
    let Some((identity, hash)) = signed_in(cx, req.headers(), ctx).await? else {
        return Ok(to_sign_in());
    };
    let current = hash.to_hex();
    let idle_ms = cx.identifier.session.idle_timeout.as_millis() as u64;
    let mut sessions = cx.store.list_sessions(&identity.user.id, ctx.now).await?;
    // This one first, then the most recently started.
    sessions.sort_by_key(|s| (s.id != current, std::cmp::Reverse(s.record.created_at)));
    let rows: Vec<SessionRow> = sessions.iter().map(|s| row(s, idle_ms, &current)).collect();
    let notice = match query_param(req.uri().query(), "ended").as_deref() {
        Some("1") => Some("That session has ended."),
        Some("others") => Some("Every other session has ended."),
        Some("none") => Some("That session had already ended."),
        _ => match query_param(req.uri().query(), "passkey").as_deref() {
            Some("added") => Some("Your passkey was added. You can sign in with it from now on."),
            Some("renamed") => Some("The passkey was renamed."),
            Some("removed") => Some("The passkey was removed. It no longer signs you in."),
            Some("none") => Some("That passkey was already gone."),
            _ => None,
        },
    };
    let passkeys: Vec<PasskeyRow> = cx
        .store
        .list_passkeys(&identity.user.id)
        .await?
        .into_iter()
        .map(|p| PasskeyRow {
            created: date_time(p.created_at),
            last_used: if p.last_used == 0 {
                "never".into()
            } else {
                date_time(p.last_used)
            },
            id: p.id,
            name: p.name,
        })
        .collect();
    let (csrf, set) = csrf_token(cx, req.headers());
    let how = how_made(identity.amr());
    let mut resp = cx.pages.respond(
        StatusCode::OK,
        &Page::Account {
            csrf: csrf.expose(),
            email: &identity.user.email,
            roles: &identity.user.roles,
            how: &how,
            sessions: &rows,
            passkeys: &passkeys,
            notice,
        },
    );
    set_csrf(cx, &mut resp, &csrf, set);
    Ok(resp)
}

/// `POST /.latchkey/account/sessions`: fields `session` (an id) or `all`
/// = `others`, and `csrf`. Only the caller's own sessions can be named:
/// another person's id is "already ended", like one that never was.
pub async fn end_sessions(
    cx: &SignIn<'_>,
    req: Request<Incoming>,
    ctx: &Ctx,
) -> Result<Response<Body>, GateError> {
    let (headers, form) = checked_form(cx, req, ctx).await?;
    let Some((identity, hash)) = signed_in(cx, &headers, ctx).await? else {
        return Ok(to_sign_in());
    };
    let current = hash.to_hex();
    let mine = cx.store.list_sessions(&identity.user.id, ctx.now).await?;
    let (targets, outcome): (Vec<&SessionInfo>, &str) = match (form.get("session"), form.get("all"))
    {
        ("", "others") => (mine.iter().filter(|s| s.id != current).collect(), "others"),
        (id, "") if TokenHash::from_hex(id).is_some() => {
            (mine.iter().filter(|s| s.id == id).collect(), "1")
        }
        _ => {
            return Err(GateError::BadRequest(
                "expected a field `session` (a session id) or `all` = `others`",
            ))
        }
    };
    let mut ended = 0;
    for s in &targets {
        let Some(h) = TokenHash::from_hex(&s.id) else {
            continue;
        };
        if let Some(cache) = cx.session_cache {
            cache.forget(&h);
        }
        if cx.store.revoke_session(&h).await? {
            ended += 1;
        }
    }
    if ended > 0 {
        cx.audit(ctx, &identity.user.id, AuditEvent::SessionsRevoked);
    }
    let outcome = if ended == 0 && outcome == "1" {
        "none"
    } else {
        outcome
    };
    Ok(redirect(
        StatusCode::SEE_OTHER,
        &format!("{ACCOUNT}?ended={outcome}"),
    ))
}
