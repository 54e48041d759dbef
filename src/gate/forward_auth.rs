//! Forward-auth: a front proxy asks latchkey about each request and acts on
//! the answer. Two flavors share all the logic and differ only in how they
//! read the original request and how they say "sign in first":
//!
//! - `Flavor::Traefik` (`/.latchkey/auth`, also Caddy's `forward_auth`):
//!   reads X-Forwarded-Method/Host/Uri (and the scheme from
//!   X-Forwarded-Proto); "sign in first" is a 302/303 to the sign-in page
//!   for a browser, 401 for programs.
//! - `Flavor::Nginx` (`/.latchkey/auth/request`, also ingress-nginx's
//!   `auth-url`): reads X-Original-URL, or with `server.nginx_target_header =
//!   "X-Original-URI"` X-Original-URI and Host, plus X-Original-Method;
//!   "sign in first" is 401 with `Location: <sign-in URL>` (nginx turns only
//!   2xx/401/403 into decisions, so refusals are 401 or 403).
//!
//! Those headers are believed only from `trusted_proxies`; from any other
//! peer the auth request is judged as itself. Each flavor reads only its
//! proxy's form (nginx passes every client header it does not set itself to
//! the auth request, so a header of the other form is a client's), and only
//! public_url's host and `[[apps]]` hosts are judged. A 2xx always carries
//! all three identity headers and the assertion header, empty for anonymous,
//! so the front proxy's copy overwrites anything the client forged.
//!
//! A bearer request (`Authorization: Bearer`, which front proxies pass on)
//! is answered the same in both flavors: 401 or 403 with a
//! `WWW-Authenticate: Bearer` challenge, never a redirect.

use std::sync::Arc;

use http::{header, HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use hyper::body::Incoming;

use crate::app::settings::NginxTarget;
use crate::app::App;
use crate::gate::judge::{for_app, forbidden, judge, original_url, sign_in_first, step_up_first};
use crate::gate::Answer;
use crate::http::error::GateError;
use crate::http::forwarded::{self, Forwarded};
use crate::http::request::{host_name, Ctx};
use crate::obs::metrics::Outcome;
use crate::policy::path::{normalize_path, split_target};
use crate::policy::rules::{Decision, Request as RuleRequest};
use crate::signin::{login_url, step_up_url};
use crate::Body;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    Traefik,
    Nginx,
}

/// The original request, as the front proxy describes it. Public so that
/// the fuzz targets can reach the parsing; handlers use it only here.
#[derive(Debug)]
pub struct Target {
    pub method: Method,
    pub proto: String,
    pub raw_host: String,
    /// Normalized (`path::normalize_host`).
    pub host: String,
    /// Normalized (`path::normalize_path`): what the rules judge.
    pub path: String,
    pub query: Option<String>,
}

impl Target {
    /// Reads the original request from the front proxy's headers (only
    /// when `ctx.client.via_trusted_proxy`; otherwise the auth request is
    /// judged as itself). Each flavor reads only the form its proxy sends,
    /// and requires it: Traefik X-Forwarded-Host and -Uri (the scheme is
    /// `ctx.client.proto`, from X-Forwarded-Proto); Nginx the header that
    /// `nginx` names, refusing the other form unless it agrees. Headers of
    /// the other flavor are never read.
    pub fn read(
        flavor: Flavor,
        nginx: NginxTarget,
        headers: &HeaderMap,
        ctx: &Ctx,
        own_method: &Method,
    ) -> Result<Target, GateError> {
        if !ctx.client.via_trusted_proxy {
            return Ok(Target {
                method: own_method.clone(),
                proto: ctx.client.proto.to_owned(),
                raw_host: ctx.raw_host.clone(),
                host: ctx.host.clone(),
                path: ctx.path.clone(),
                query: ctx.query.clone(),
            });
        }
        let h = |which| forwarded::read(headers, which);
        let refuse = |why| Err(GateError::BadRequest(why));
        let (method, proto, raw_host, uri) = match flavor {
            Flavor::Traefik => {
                let (Some(host), Some(uri)) = (h(Forwarded::Host)?, h(Forwarded::Uri)?) else {
                    return refuse("no X-Forwarded-Host or X-Forwarded-Uri");
                };
                (h(Forwarded::Method)?, ctx.client.proto, host, uri)
            }
            Flavor::Nginx => match (
                nginx,
                h(Forwarded::OriginalUrl)?,
                h(Forwarded::OriginalUri)?,
            ) {
                (NginxTarget::Url, Some(url), uri) => {
                    let Some((proto, host, path)) = split_url(&url) else {
                        return refuse("bad X-Original-URL");
                    };
                    // ingress-nginx sends both (with `auth-method`); a
                    // client's X-Original-URI passes nginx untouched.
                    if uri.is_some_and(|u| u != path) {
                        return refuse("X-Original-URI disagrees with X-Original-URL");
                    }
                    let proto = match proto {
                        p if p.eq_ignore_ascii_case("https") => "https",
                        p if p.eq_ignore_ascii_case("http") => "http",
                        _ => return refuse("bad original scheme"),
                    };
                    let (host, path) = (host.to_owned().into(), path.to_owned().into());
                    (h(Forwarded::OriginalMethod)?, proto, host, path)
                }
                (NginxTarget::Url, None, _) => return refuse("no X-Original-URL"),
                // nginx set up to send X-Original-URI does not send this
                // one: a client did, and it passed nginx untouched.
                (NginxTarget::Uri, Some(_), _) => {
                    return refuse("X-Original-URL where nginx sends X-Original-URI")
                }
                (NginxTarget::Uri, None, Some(uri)) => (
                    h(Forwarded::OriginalMethod)?,
                    ctx.client.proto,
                    ctx.raw_host.as_str().into(),
                    uri,
                ),
                (NginxTarget::Uri, None, None) => return refuse("no X-Original-URI"),
            },
        };
        let method = match method {
            Some(m) => Method::from_bytes(m.as_bytes())
                .ok()
                .filter(crate::http::request::method_is_canonical)
                .ok_or(GateError::BadRequest("bad original method"))?,
            // Judging a DELETE as the GET nobody said it was would be one
            // method judged and another run: every front proxy sends it.
            None => return Err(GateError::BadRequest("no original method")),
        };
        let host = host_name(&raw_host)?;
        let (path, query) = split_target(&uri);
        let path = normalize_path(path)?;
        Ok(Target {
            method,
            proto: proto.to_owned(),
            raw_host: raw_host.into_owned(),
            host,
            path,
            query: query.map(str::to_owned),
        })
    }

    /// The original URL, as a return address.
    pub fn url(&self) -> String {
        original_url(
            &self.proto,
            &self.raw_host,
            &self.path,
            self.query.as_deref(),
        )
    }
}

/// "scheme://host/path?q" → (scheme, host, "/path?q").
fn split_url(url: &str) -> Option<(&str, &str, &str)> {
    let (scheme, rest) = url.split_once("://")?;
    let (host, uri) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, "/"),
    };
    Some((scheme, host, uri))
}

pub async fn handle(
    app: &Arc<App>,
    req: &Request<Incoming>,
    ctx: &Ctx,
    flavor: Flavor,
) -> Result<Answer, GateError> {
    let s = &app.settings;
    let target = Target::read(flavor, s.nginx_target, req.headers(), ctx, req.method()).and_then(
        |t| match s.knows_host(&t.host) {
            true => Ok(t),
            // Judging a host no rule was written for would let a client
            // pick the host its request is judged on.
            false => Err(GateError::UnknownHost),
        },
    );
    let target = match target {
        Ok(t) => t,
        Err(e) if flavor == Flavor::Nginx => return Ok(refused(&e)),
        Err(e) => return Err(e),
    };
    let rule_req = RuleRequest {
        host: &target.host,
        method: &target.method,
        path: &target.path,
    };
    let (decision, identity) = judge(
        app,
        req.headers(),
        &rule_req,
        ctx.method_override.as_ref(),
        ctx.now,
    )
    .await?;
    match decision {
        Decision::Allow => {
            let mut resp = crate::http::response::allow();
            let (who, assertion) = for_app(app, identity.as_ref(), &target.host, ctx.now);
            s.headers.set(resp.headers_mut(), who);
            s.headers.set_assertion(resp.headers_mut(), assertion);
            Ok((resp, Outcome::Allowed))
        }
        Decision::SignIn | Decision::StepUp => {
            let base = login_base(app, &target);
            let rd = target.url();
            let step_up = decision == Decision::StepUp;
            let first = |c: &Ctx| match step_up {
                true => step_up_first(c, &target.method, &base, &rd),
                false => sign_in_first(c, &target.method, &base, &rd),
            };
            let resp = match flavor {
                // `ctx.html` was read off these same headers.
                Flavor::Traefik => first(ctx),
                Flavor::Nginx if ctx.bearer => first(ctx),
                Flavor::Nginx => {
                    let mut resp = status_only(StatusCode::UNAUTHORIZED);
                    let url = match step_up {
                        true => step_up_url(&base, &rd),
                        false => login_url(&base, &rd),
                    };
                    if let Ok(v) = HeaderValue::from_str(&url) {
                        resp.headers_mut().insert(header::LOCATION, v);
                    }
                    resp
                }
            };
            Ok((resp, Outcome::SignIn))
        }
        Decision::Forbid => {
            let resp = match flavor {
                Flavor::Traefik => forbidden(app, ctx, identity.as_ref()),
                Flavor::Nginx if ctx.bearer => forbidden(app, ctx, identity.as_ref()),
                Flavor::Nginx => status_only(StatusCode::FORBIDDEN),
            };
            Ok((resp, Outcome::Forbidden))
        }
    }
}

/// Where a forward-auth sign-in happens: public_url when its cookie will
/// reach the target (same host, or cookie_domain covers it); else the
/// target's own host when it is a known app host (the front proxy routes
/// `/.latchkey/` there to latchkey); else public_url.
fn login_base(app: &App, target: &Target) -> String {
    let s = &app.settings;
    let covered = s
        .cookies
        .domain
        .as_deref()
        .is_some_and(|d| target.host == d || target.host.ends_with(&format!(".{d}")));
    if !covered && target.host != s.public_host && s.apps.contains_key(&target.host) {
        format!("{}://{}", target.proto, target.raw_host)
    } else {
        s.public_url.origin().ascii_serialization()
    }
}

/// A target the Nginx endpoint refuses: 403, since nginx treats any answer
/// but 2xx/401/403 as an error (500).
pub fn refused(e: &GateError) -> Answer {
    tracing::debug!(error = %e, "forward-auth target refused");
    (status_only(StatusCode::FORBIDDEN), Outcome::BadRequest)
}

fn status_only(status: StatusCode) -> Response<Body> {
    crate::http::response::empty(status)
}

#[cfg(test)]
mod tests {
    use super::split_url;

    #[test]
    fn original_urls_split_into_parts() {
        assert_eq!(
            split_url("https://app.example.com/a/b?c=d"),
            Some(("https", "app.example.com", "/a/b?c=d"))
        );
        assert_eq!(split_url("http://h:8080"), Some(("http", "h:8080", "/")));
        assert_eq!(split_url("/no/scheme"), None);
    }
}
