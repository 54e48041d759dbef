//! Identity → decision, and the answers a decision other than Allow gets.
//! `judge` looks the caller up (identity's `Identifier`, with the
//! credentials http read) and asks the rules (policy); `for_app` is what an
//! allowed request tells the app (identity headers and the assertion);
//! `sign_in_first`, `step_up_first` and `forbidden` are the refusals, shared by the proxy and
//! both forward-auth flavours, which also share `original_url`.

use std::time::Instant;

use http::{header, HeaderMap, HeaderValue, Method, Response, StatusCode};

use crate::app::App;
use crate::http::credentials;
use crate::http::error::json;
use crate::http::pages::Page;
use crate::http::request::Ctx;
use crate::identity::session::Identity;
use crate::policy::rules::{Decision, Request as RuleRequest};
use crate::signin::step_up::PASSKEY;
use crate::signin::token::{challenge, INSUFFICIENT_SCOPE, INVALID_TOKEN};
use crate::signin::{login_url, redirect, step_up_url};
use crate::store::StoreError;
use crate::Body;

/// Looks the caller up and decides. A store error counts as "no identity"
/// only where the anonymous answer is already Allow (public paths);
/// anywhere else it is a 503, never a sign-out. Its time is the decision
/// latency in the metrics.
///
/// A request with a method override (`ctx.method_override`) is judged as
/// both methods, and the stricter decision stands: the app may run either.
pub async fn judge(
    app: &App,
    headers: &HeaderMap,
    target: &RuleRequest<'_>,
    method_override: Option<&Method>,
    now: u64,
) -> Result<(Decision, Option<Identity>), StoreError> {
    let started = Instant::now();
    let decided = decide(app, headers, target, method_override, now).await;
    app.metrics.decision.observe(started.elapsed());
    // Once per decision, with exactly what the rules saw (never the query:
    // it can carry tokens). The property test in tests/it/as_judged.rs
    // compares it with what the app received.
    tracing::debug!(
        method = %target.method,
        host = target.host,
        path = super::log_path(target.path),
        decision = decided.as_ref().map_or("store_error", |(d, _)| d.label()),
        "judged"
    );
    decided
}

async fn decide(
    app: &App,
    headers: &HeaderMap,
    target: &RuleRequest<'_>,
    method_override: Option<&Method>,
    now: u64,
) -> Result<(Decision, Option<Identity>), StoreError> {
    let rules = &app.settings.rules;
    let credentials = credentials::read(headers, &app.settings.cookies);
    let identity = app.identifier().identify(&credentials, now).await;
    match identity {
        Ok(identity) => {
            let roles = identity.as_ref().map(|i| i.user.roles.as_slice());
            let passkey = identity.as_ref().is_some_and(|i| i.amr() == PASSKEY);
            let decision = rules.decide_as(target, method_override, roles, passkey);
            Ok((decision, identity))
        }
        Err(e) => match rules.decide_as(target, method_override, None, false) {
            Decision::Allow => {
                app.metrics.store_error();
                tracing::warn!(error = %e, "session store unavailable; public path served anonymously");
                Ok((Decision::Allow, None))
            }
            _ => Err(e),
        },
    }
}

/// Who the identity headers name: (id, email, roles), `None` for anonymous.
pub type Who<'i> = Option<(&'i str, &'i str, &'i [String])>;

/// What an allowed request tells the app at `host` about its caller: the
/// identity headers' values and the signed assertion (`None` for
/// anonymous, or without signing keys; reused while young, see
/// `identity::assertion_cache`).
pub fn for_app<'i>(
    app: &App,
    identity: Option<&'i Identity>,
    host: &str,
    now: u64,
) -> (Who<'i>, Option<HeaderValue>) {
    let who = identity.map(|i| {
        (
            i.user.id.as_str(),
            i.user.email.as_str(),
            i.user.roles.as_slice(),
        )
    });
    let s = &app.settings;
    let assertion = identity.and_then(|i| {
        app.assertions
            .get(s.signer(), i, host, s.assertion_ttl, now)
    });
    (who, assertion)
}

/// The URL the person asked for, as a return address.
pub fn original_url(proto: &str, raw_host: &str, path: &str, query: Option<&str>) -> String {
    match query {
        Some(q) => format!("{proto}://{raw_host}{path}?{q}"),
        None => format!("{proto}://{raw_host}{path}"),
    }
}

/// "Sign in first": a redirect for a person's browser (302 for safe
/// methods, 303 otherwise), a 401 for programs, and for a bearer request a
/// 401 challenge (its token did not hold).
pub fn sign_in_first(ctx: &Ctx, method: &Method, base: &str, rd: &str) -> Response<Body> {
    if ctx.bearer {
        return challenge(
            StatusCode::UNAUTHORIZED,
            INVALID_TOKEN,
            &serde_json::json!({ "error": INVALID_TOKEN }),
        );
    }
    send_to(ctx, method, &login_url(base, rd), "sign in first")
}

/// "Prove a passkey first" (a rule with `mfa = true`): the same answers as
/// "sign in first", pointing at the step-up page, which returns to `rd`. A
/// bearer token cannot step up: 401 `insufficient_user_authentication`
/// (RFC 9470).
pub fn step_up_first(ctx: &Ctx, method: &Method, base: &str, rd: &str) -> Response<Body> {
    if ctx.bearer {
        return challenge(
            StatusCode::UNAUTHORIZED,
            INSUFFICIENT_USER_AUTHENTICATION,
            &serde_json::json!({ "error": INSUFFICIENT_USER_AUTHENTICATION }),
        );
    }
    send_to(ctx, method, &step_up_url(base, rd), "passkey required")
}

const INSUFFICIENT_USER_AUTHENTICATION: &str = "insufficient_user_authentication";

/// A redirect to `url` for a browser, else a 401 naming it.
fn send_to(ctx: &Ctx, method: &Method, url: &str, what: &str) -> Response<Body> {
    if !ctx.html {
        let mut resp = json(
            StatusCode::UNAUTHORIZED,
            &serde_json::json!({ "error": what, "login_url": url }),
        );
        if let Ok(v) = HeaderValue::from_str(url) {
            resp.headers_mut().insert(header::LOCATION, v);
        }
        return resp;
    }
    let status = if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        StatusCode::FOUND
    } else {
        StatusCode::SEE_OTHER
    };
    redirect(status, url)
}

/// Signed in but not allowed (or a deny rule).
pub fn forbidden(app: &App, ctx: &Ctx, identity: Option<&Identity>) -> Response<Body> {
    if ctx.bearer {
        return challenge(
            StatusCode::FORBIDDEN,
            INSUFFICIENT_SCOPE,
            &serde_json::json!({ "error": "forbidden" }),
        );
    }
    if ctx.html {
        let email = identity.map(|i| i.user.email.as_str()).unwrap_or("");
        app.settings
            .pages
            .respond(StatusCode::FORBIDDEN, &Page::Forbidden { email })
    } else {
        json(
            StatusCode::FORBIDDEN,
            &serde_json::json!({ "error": "forbidden" }),
        )
    }
}
