//! The request pipeline: read the request once (`Ctx`), route latchkey's own
//! URLs to `login` and `forward_auth`, and send everything else through the
//! gate: identity → decision → outcome (proxy, sign-in, or forbidden).
//!
//! This is also the one place errors are logged and rendered: inner
//! handlers return `GateError` and decide nothing about presentation. And
//! the one place every request is counted (`Metrics::request`), inside a
//! tracing span that carries its request id.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use tracing::Instrument as _;

use crate::app::App;
use crate::cookies;
use crate::error::{json, Fault, GateError};
use crate::forward_auth::{self, Flavor};
use crate::login::{self, now_ms, redirect};
use crate::metrics::{Outcome, Route};
use crate::pages::Page;
use crate::path::normalize_path;
use crate::proxy::Forward;
use crate::request::{
    forwarded_host, header_str, host_name, method_is_canonical, method_override, raw_host,
    wants_html, Client, Ctx,
};
use crate::request_id::{RequestId, X_REQUEST_ID};
use crate::rules::{Decision, Request as RuleRequest};
use crate::session::Identity;
use crate::store::StoreError;
use crate::tokens;
use crate::Body;

/// Serves one request; never fails (errors become responses). Counts its
/// outcome, and returns the request id on forward-auth answers.
pub async fn handle(
    app: Arc<App>,
    req: Request<Incoming>,
    peer: SocketAddr,
    tls: bool,
) -> Response<Body> {
    let id = RequestId::from_headers(req.headers(), &mut rand::rng());
    let span = tracing::info_span!("request", request_id = %id);
    async move {
        let html = wants_html(req.headers());
        let method = req.method().clone();
        // For the debug line below, and only when it is enabled: the path
        // alone (queries carry link tokens, `verify?token=`).
        let path =
            tracing::enabled!(tracing::Level::DEBUG).then(|| log_path(req.uri().path()).to_owned());
        let (route, result) = route(&app, req, peer, tls, html, &id).await;
        let (mut resp, outcome) = match result {
            Ok(answer) => answer,
            Err(e) => {
                match e.fault() {
                    Fault::Client => tracing::debug!(error = %e, "request refused"),
                    Fault::Upstream => tracing::warn!(error = %e, "upstream failed"),
                    Fault::Latchkey => tracing::error!(error = %e, "request failed"),
                }
                if matches!(e, GateError::Store(_)) {
                    app.metrics.store_error();
                }
                (e.respond(&app.settings.pages, html), outcome_of(&e))
            }
        };
        app.metrics.request(route, outcome);
        if matches!(route, Route::Traefik | Route::Nginx) {
            if let Some(v) = id.header_value() {
                resp.headers_mut().insert(X_REQUEST_ID, v);
            }
        }
        tracing::debug!(
            %method,
            path = path.as_deref().unwrap_or(""),
            status = resp.status().as_u16(),
            flavor = route.label(),
            outcome = outcome.label(),
            "answered"
        );
        resp
    }
    .instrument(span)
    .await
}

/// At most 256 characters of a path, for the log.
fn log_path(path: &str) -> &str {
    match path.char_indices().nth(256) {
        Some((end, _)) => &path[..end],
        None => path,
    }
}

fn outcome_of(e: &GateError) -> Outcome {
    match e {
        GateError::Store(_) => Outcome::StoreError,
        GateError::Proxy(_) => Outcome::UpstreamError,
        _ => Outcome::BadRequest,
    }
}

/// Which front door a (normalized, or raw when it did not normalize) path is.
fn route_of(path: &str) -> Route {
    match path {
        "/.latchkey/auth" => Route::Traefik,
        "/.latchkey/auth/request" => Route::Nginx,
        p if p == "/.latchkey" || p.starts_with("/.latchkey/") => Route::Pages,
        _ => Route::Proxy,
    }
}

fn context(
    app: &App,
    req: &Request<Incoming>,
    peer: SocketAddr,
    tls: bool,
    html: bool,
    id: &RequestId,
) -> Result<Ctx, GateError> {
    let headers = req.headers();
    let client = Client::resolve(peer, tls, headers, &app.settings.trusted_proxies)?;
    if !method_is_canonical(req.method()) {
        return Err(GateError::BadRequest(
            "methods are case-sensitive: GET, POST, DELETE... in capitals",
        ));
    }
    let raw = raw_host(req).ok_or(GateError::BadHost)?;
    let host = host_name(raw)?;
    let path = normalize_path(req.uri().path())?;
    Ok(Ctx {
        client,
        raw_host: raw.to_owned(),
        host,
        path,
        query: req.uri().query().map(str::to_owned),
        now: now_ms(),
        html,
        bearer: tokens::bearer_token(headers).is_some(),
        user_agent: header_str(headers, header::USER_AGENT.as_str())
            .unwrap_or("")
            .chars()
            .take(256)
            .collect(),
        request_id: id.as_str().to_owned(),
        method_override: method_override(headers)?,
    })
}

/// An answer and what it amounts to, for the metrics.
pub type Answer = (Response<Body>, Outcome);

async fn route(
    app: &Arc<App>,
    req: Request<Incoming>,
    peer: SocketAddr,
    tls: bool,
    html: bool,
    id: &RequestId,
) -> (Route, Result<Answer, GateError>) {
    let ctx = match context(app, &req, peer, tls, html, id) {
        Ok(ctx) => ctx,
        Err(e) => {
            let route = route_of(req.uri().path());
            if route == Route::Nginx {
                return (route, Ok(forward_auth::refused(&e)));
            }
            return (route, Err(e));
        }
    };
    let route = route_of(&ctx.path);
    let result = match route {
        Route::Traefik => forward_auth::handle(app, &req, &ctx, Flavor::Traefik).await,
        Route::Nginx => forward_auth::handle(app, &req, &ctx, Flavor::Nginx).await,
        Route::Pages => login::handle(app, req, &ctx)
            .await
            .map(|resp| (resp, Outcome::Allowed)),
        Route::Proxy => gate(app, req, ctx).await,
    };
    (route, result)
}

/// Looks the caller up and decides. A store error counts as "no identity"
/// only where the anonymous answer is already Allow (public paths);
/// anywhere else it is a 503, never a sign-out. Its time is the decision
/// latency in the metrics.
///
/// A request with a method override (`ctx.method_override`) is judged as
/// both methods, and the stricter decision stands: the app may run either.
pub async fn judge(
    app: &App,
    headers: &http::HeaderMap,
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
        path = log_path(target.path),
        decision = decided.as_ref().map_or("store_error", |(d, _)| d.label()),
        "judged"
    );
    decided
}

async fn decide(
    app: &App,
    headers: &http::HeaderMap,
    target: &RuleRequest<'_>,
    method_override: Option<&Method>,
    now: u64,
) -> Result<(Decision, Option<Identity>), StoreError> {
    let rules = &app.settings.rules;
    let identity = app.identify(headers, now).await;
    match identity {
        Ok(identity) => {
            let roles = identity.as_ref().map(|i| i.user.roles.as_slice());
            Ok((rules.decide_as(target, method_override, roles), identity))
        }
        Err(e) => match rules.decide_as(target, method_override, None) {
            Decision::Allow => {
                app.metrics.store_error();
                tracing::warn!(error = %e, "session store unavailable; public path served anonymously");
                Ok((Decision::Allow, None))
            }
            _ => Err(e),
        },
    }
}

async fn gate(app: &Arc<App>, mut req: Request<Incoming>, ctx: Ctx) -> Result<Answer, GateError> {
    let s = &app.settings;
    let upstream = s
        .apps
        .get(&ctx.host)
        .and_then(|a| a.upstream.as_ref())
        .ok_or(GateError::UnknownHost)?;
    let method = req.method().clone();
    // latchkey is no forward proxy: a CONNECT asks for a tunnel that no
    // rule could look into (and an upstream's 2xx would open one).
    if method == Method::CONNECT {
        return Err(GateError::MethodNotAllowed);
    }
    let target = RuleRequest {
        host: &ctx.host,
        method: &method,
        path: &ctx.path,
    };
    let (decision, identity) = judge(
        app,
        req.headers(),
        &target,
        ctx.method_override.as_ref(),
        ctx.now,
    )
    .await?;
    match decision {
        Decision::Allow => {
            // Forwarded as judged: this method (the request's own), the
            // judged host (with the port sent), the judged path.
            let host = forwarded_host(&ctx.raw_host, &ctx.host);
            let path_and_query = match &ctx.query {
                Some(q) => format!("{}?{q}", ctx.path),
                None => ctx.path.clone(),
            };
            let who = identity.as_ref().map(|i| {
                (
                    i.user.id.as_str(),
                    i.user.email.as_str(),
                    i.user.roles.as_slice(),
                )
            });
            let assertion = identity
                .as_ref()
                .and_then(|i| app.assertion(i, &ctx.host, ctx.now));
            tokens::strip_own_bearer(s, req.headers_mut());
            let fwd = Forward {
                client_ip: ctx.client.ip,
                peer_ip: ctx.client.peer,
                prior_forwarded_for: ctx.client.prior_forwarded_for.as_deref(),
                proto: ctx.client.proto,
                host: &host,
                path_and_query: &path_and_query,
                identity: who,
                assertion: assertion.as_deref(),
                headers: &s.headers,
                own_cookies: &[
                    &s.session.cookie_name,
                    cookies::csrf_name(s),
                    cookies::attempt_name(s),
                ],
                request_id: &ctx.request_id,
            };
            let started = Instant::now();
            let answer = app.proxy.forward(req, upstream, fwd).await;
            app.metrics.upstream.observe(started.elapsed());
            Ok((answer?, Outcome::Allowed))
        }
        Decision::SignIn => {
            let here = format!("{}://{}", ctx.client.proto, ctx.raw_host);
            let resp = sign_in_first(&ctx, &method, &here, &original_url(&ctx));
            Ok((resp, Outcome::SignIn))
        }
        Decision::Forbid => Ok((forbidden(app, &ctx, identity.as_ref()), Outcome::Forbidden)),
    }
}

/// The URL the person asked for, as a return address.
fn original_url(ctx: &Ctx) -> String {
    match &ctx.query {
        Some(q) => format!("{}://{}{}?{q}", ctx.client.proto, ctx.raw_host, ctx.path),
        None => format!("{}://{}{}", ctx.client.proto, ctx.raw_host, ctx.path),
    }
}

/// The sign-in page's URL at `base` (an origin) with a return address.
pub fn login_url(base: &str, rd: &str) -> String {
    let rd: String = form_urlencoded::byte_serialize(rd.as_bytes()).collect();
    format!("{base}/.latchkey/login?rd={rd}")
}

/// "Sign in first": a redirect for a person's browser (302 for safe
/// methods, 303 otherwise), a 401 for programs, and for a bearer request a
/// 401 challenge (its token did not hold).
pub fn sign_in_first(ctx: &Ctx, method: &Method, base: &str, rd: &str) -> Response<Body> {
    if ctx.bearer {
        return tokens::challenge(
            StatusCode::UNAUTHORIZED,
            tokens::INVALID_TOKEN,
            &serde_json::json!({ "error": tokens::INVALID_TOKEN }),
        );
    }
    let url = login_url(base, rd);
    if !ctx.html {
        let mut resp = json(
            StatusCode::UNAUTHORIZED,
            &serde_json::json!({ "error": "sign in first", "login_url": url }),
        );
        if let Ok(v) = HeaderValue::from_str(&url) {
            resp.headers_mut().insert(header::LOCATION, v);
        }
        return resp;
    }
    let status = if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        StatusCode::FOUND
    } else {
        StatusCode::SEE_OTHER
    };
    redirect(status, &url)
}

/// Signed in but not allowed (or a deny rule).
pub fn forbidden(app: &App, ctx: &Ctx, identity: Option<&Identity>) -> Response<Body> {
    if ctx.bearer {
        return tokens::challenge(
            StatusCode::FORBIDDEN,
            tokens::INSUFFICIENT_SCOPE,
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
