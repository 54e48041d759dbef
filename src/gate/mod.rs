//! The request pipeline: read the request once (`Ctx`), send latchkey's own
//! URLs through the one table of them (`router`), and everything else
//! through the gate (`proxy`): identity → decision (`judge`) → outcome
//! (proxy, sign-in, or forbidden). Forward-auth (`forward_auth`) judges a
//! request a front proxy describes.
//!
//! This is also the one place errors are logged and rendered ([`render`]):
//! inner handlers return `GateError` and decide nothing about presentation.
//! And the one place every request is counted (`Metrics::request`), inside
//! a tracing span that carries its request id.

pub mod forward_auth;
pub(crate) mod judge;
mod proxy;
pub(crate) mod router;

use std::net::SocketAddr;
use std::sync::Arc;

use http::{header, Request, Response};
use hyper::body::Incoming;
use tracing::Instrument as _;

use crate::app::App;
use crate::http::credentials;
use crate::http::error::{Fault, GateError};
use crate::http::request::{
    header_str, host_name, method_is_canonical, method_override, raw_host, wants_html, Client, Ctx,
};
use crate::obs::metrics::{Outcome, Route};
use crate::obs::request_id::{RequestId, X_REQUEST_ID};
use crate::policy::path::normalize_path;
use crate::Body;

pub use judge::{forbidden, judge, sign_in_first};

/// An answer and what it amounts to, for the metrics.
pub type Answer = (Response<Body>, Outcome);

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
            Err(e) => render(&app, &e, html),
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

/// An error, logged by whose fault it is and rendered for the caller (a
/// page for a browser, JSON for a program).
pub(crate) fn render(app: &App, e: &GateError, html: bool) -> Answer {
    match e.fault() {
        Fault::Client => tracing::debug!(error = %e, "request refused"),
        Fault::Upstream => tracing::warn!(error = %e, "upstream failed"),
        Fault::Latchkey => tracing::error!(error = %e, "request failed"),
    }
    if matches!(e, GateError::Store(_)) {
        app.metrics.store_error();
    }
    (e.respond(&app.settings.pages, html), outcome_of(e))
}

/// At most 256 characters of a path, for the log.
fn log_path(path: &str) -> &str {
    first_chars(path, 256)
}

/// The first `n` characters of `s` (all of it when shorter): a slice, so
/// the caller copies it once rather than char by char.
fn first_chars(s: &str, n: usize) -> &str {
    if s.len() <= n {
        return s; // n bytes hold at most n characters
    }
    match s.char_indices().nth(n) {
        Some((end, _)) => &s[..end],
        None => s,
    }
}

fn outcome_of(e: &GateError) -> Outcome {
    match e {
        GateError::Store(_) => Outcome::StoreError,
        GateError::Proxy(_) => Outcome::UpstreamError,
        _ => Outcome::BadRequest,
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
        now: app.clock.now_ms(),
        html,
        bearer: credentials::bearer_token(headers).is_some(),
        user_agent: first_chars(header_str(headers, header::USER_AGENT).unwrap_or(""), 256)
            .to_owned(),
        request_id: id.as_str().to_owned(),
        method_override: method_override(headers)?,
    })
}

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
            let route = router::metric_route(req.uri().path());
            if route == Route::Nginx {
                return (route, Ok(forward_auth::refused(&e)));
            }
            return (route, Err(e));
        }
    };
    let route = router::metric_route(&ctx.path);
    let result = match route {
        Route::Proxy => proxy::handle(app, req, ctx).await,
        _ => router::serve(app, req, &ctx).await,
    };
    (route, result)
}
