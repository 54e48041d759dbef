//! The proxy handoff: a request to an `[[apps]]` host that is not one of
//! latchkey's own URLs is judged and, when allowed, forwarded as judged
//! (its method, the judged host and path) with the identity headers and
//! the assertion, latchkey's own cookies and bearer token removed. The
//! forwarding itself (hop-by-hop headers, upgrades, the pool) is
//! `upstream`'s.

use std::sync::Arc;
use std::time::Instant;

use http::{header, HeaderMap, Method, Request};
use hyper::body::Incoming;

use crate::app::App;
use crate::gate::judge::{for_app, forbidden, judge, original_url, sign_in_first, step_up_first};
use crate::gate::Answer;
use crate::http::credentials::bearer_token;
use crate::http::error::GateError;
use crate::http::request::{forwarded_host, Ctx};
use crate::identity::keys::Keys;
use crate::obs::metrics::Outcome;
use crate::policy::rules::{Decision, Request as RuleRequest};
use crate::upstream::Forward;

pub(super) async fn handle(
    app: &Arc<App>,
    mut req: Request<Incoming>,
    ctx: Ctx,
) -> Result<Answer, GateError> {
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
            let (who, assertion) = for_app(app, identity.as_ref(), &ctx.host, ctx.now);
            strip_own_bearer(&s.keys, req.headers_mut());
            let fwd = Forward {
                client_ip: ctx.client.ip,
                peer_ip: ctx.client.peer,
                prior_forwarded_for: ctx.client.prior_forwarded_for.as_deref(),
                proto: ctx.client.proto,
                host: &host,
                path_and_query: &path_and_query,
                identity: who,
                assertion: assertion.as_ref(),
                headers: &s.headers,
                own_cookies: &s.cookies.own_names(),
                request_id: &ctx.request_id,
            };
            let started = Instant::now();
            let answer = app.proxy.forward(req, upstream, fwd).await;
            app.metrics.upstream.observe(started.elapsed());
            Ok((answer?, Outcome::Allowed))
        }
        Decision::SignIn => {
            let here = format!("{}://{}", ctx.client.proto, ctx.raw_host);
            let rd = original_url(
                ctx.client.proto,
                &ctx.raw_host,
                &ctx.path,
                ctx.query.as_deref(),
            );
            let resp = sign_in_first(&ctx, &method, &here, &rd);
            Ok((resp, Outcome::SignIn))
        }
        Decision::StepUp => {
            let here = format!("{}://{}", ctx.client.proto, ctx.raw_host);
            let rd = original_url(
                ctx.client.proto,
                &ctx.raw_host,
                &ctx.path,
                ctx.query.as_deref(),
            );
            let resp = step_up_first(&ctx, &method, &here, &rd);
            Ok((resp, Outcome::SignIn))
        }
        Decision::Forbid => Ok((forbidden(app, &ctx, identity.as_ref()), Outcome::Forbidden)),
    }
}

/// Removes `Authorization` when it holds a token latchkey made: the app
/// gets the assertion instead, never a credential it could replay. Someone
/// else's `Authorization` passes untouched.
fn strip_own_bearer(keys: &Keys, headers: &mut HeaderMap) {
    if bearer_token(headers).is_some_and(|t| keys.holds(t)) {
        headers.remove(header::AUTHORIZATION);
    }
}
