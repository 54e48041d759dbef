//! Forwarding an allowed request to its app (reverse-proxy mode).
//!
//! This module owns what happens to a request after the gate has said
//! "allow": the identity headers the app sees (and the forged ones it must
//! never see), the session cookie that must not leak upstream, hop-by-hop
//! headers, `X-Forwarded-*`, the rewritten target, pooled HTTP/1.1
//! connections to the upstreams, streaming both bodies, and tunnelling
//! upgraded connections (WebSocket). It decides nothing: who may pass, the
//! normalized path and the real client address (trusted proxies) come in as
//! arguments. It returns errors that know their status; the caller logs and
//! renders them.
//!
//! `Host` is the host the client asked for, like nginx's
//! `proxy_set_header Host $host`: apps build their absolute links from it, and
//! the upstream's own address (often `127.0.0.1:3000`) means nothing to a
//! browser. It is the host that was judged, in its normalized spelling
//! (`App.Example.com.:443` arrives as `app.example.com:443`), so an app that
//! routes by name sees the name the rules saw. The same value is in
//! `X-Forwarded-Host`.

use std::net::IpAddr;
use std::time::Duration;

use http::header::{
    HeaderMap, HeaderName, HeaderValue, CONNECTION, COOKIE, FORWARDED, HOST, TE, TRAILER,
    TRANSFER_ENCODING, UPGRADE,
};
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{Request, Response, StatusCode, Uri, Version};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};

use crate::config::HeadersConfig;
use crate::obs::request_id::X_REQUEST_ID;
use crate::tls::TlsError;
use crate::Body;

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");
const KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
const PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");
const HTTP2_SETTINGS: HeaderName = HeaderName::from_static("http2-settings");

/// The one protocol a request may switch to through latchkey (RFC 6455's
/// token, compared without regard to case). h2c in particular never passes:
/// an app that switched to it would serve every request inside the tunnel
/// unjudged (and RFC 9113 §3.1 retires that upgrade anyway).
const WEBSOCKET: &[u8] = b"websocket";

/// Hop-by-hop headers (RFC 9110 §7.6.1, plus the legacy `Keep-Alive` and
/// `Proxy-Connection`, and h2c's `HTTP2-Settings`, RFC 7540 §3.2.1): they
/// describe one connection and are never forwarded.
const HOP_BY_HOP: [HeaderName; 10] = [
    CONNECTION,
    KEEP_ALIVE,
    PROXY_CONNECTION,
    HTTP2_SETTINGS,
    TE,
    TRAILER,
    TRANSFER_ENCODING,
    UPGRADE,
    http::header::PROXY_AUTHENTICATE,
    http::header::PROXY_AUTHORIZATION,
];

/// Headers an identity header may not be named after: latchkey sets or
/// removes these itself, so an identity in them would be lost or harmful.
const RESERVED: [&str; 8] = [
    "host",
    "cookie",
    "content-length",
    "content-type",
    "authorization",
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
];

/// Identity header names, pre-built once (no allocation per request).
#[derive(Debug, Clone)]
pub struct IdentityHeaders {
    pub user_id: HeaderName,
    pub email: HeaderName,
    pub roles: HeaderName,
    /// The signed identity assertion (`X-Auth-Assertion`).
    pub assertion: HeaderName,
}

impl IdentityHeaders {
    /// Checks and builds the three names from `[headers]`. Every problem
    /// names its key: `headers.email: "X Auth" is not a valid header name`.
    pub fn from_config(cfg: &HeadersConfig) -> Result<IdentityHeaders, Vec<String>> {
        let mut problems = Vec::new();
        let mut parse = |key: &str, value: &str| -> Option<HeaderName> {
            let name = match HeaderName::from_bytes(value.as_bytes()) {
                Ok(name) => name,
                Err(_) => {
                    problems.push(format!(
                        "headers.{key}: {value:?} is not a valid header name \
                         (expected letters, digits and '-', like \"X-Auth-Email\")"
                    ));
                    return None;
                }
            };
            let hop_by_hop = HOP_BY_HOP;
            let reserved = RESERVED
                .iter()
                .copied()
                .chain(hop_by_hop.iter().map(HeaderName::as_str))
                .find(|r| same_name(name.as_str().as_bytes(), r.as_bytes()));
            if let Some(r) = reserved {
                problems.push(format!(
                    "headers.{key}: {value:?} cannot be used, latchkey manages the {r:?} header itself \
                     (expected a name of your own, like \"X-Auth-Email\")"
                ));
                return None;
            }
            Some(name)
        };
        let user_id = parse("user_id", &cfg.user_id);
        let email = parse("email", &cfg.email);
        let roles = parse("roles", &cfg.roles);
        let assertion = parse("assertion", &cfg.assertion);
        let (Some(user_id), Some(email), Some(roles), Some(assertion)) =
            (user_id, email, roles, assertion)
        else {
            return Err(problems);
        };
        let named = [
            ("user_id", &user_id),
            ("email", &email),
            ("roles", &roles),
            ("assertion", &assertion),
        ];
        for (i, (a_key, a)) in named.iter().enumerate() {
            for (b_key, b) in &named[i + 1..] {
                if same_name(a.as_str().as_bytes(), b.as_str().as_bytes()) {
                    problems.push(format!(
                        "headers.{b_key}: {:?} is the same header as headers.{a_key} \
                         (expected different names)",
                        b.as_str()
                    ));
                }
            }
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(IdentityHeaders {
            user_id,
            email,
            roles,
            assertion,
        })
    }

    /// Whether `name` is one of the four, once lower-cased with `_` read
    /// as `-` (some servers and CGI-style apps treat the two alike).
    fn matches(&self, name: &HeaderName) -> bool {
        let n = name.as_str().as_bytes();
        [&self.user_id, &self.email, &self.roles, &self.assertion]
            .iter()
            .any(|own| same_name(n, own.as_str().as_bytes()))
    }

    /// Removes every header that is one of the four names after
    /// lower-casing and mapping `_` to `-`: `X_Auth_Email`, `x-auth-email`,
    /// `X-AUTH-EMAIL` and all their duplicates are gone. Allocates only when
    /// there is something to remove.
    pub fn strip(&self, headers: &mut HeaderMap) {
        let mut doomed: Vec<HeaderName> = Vec::new();
        for name in headers.keys() {
            if self.matches(name) {
                doomed.push(name.clone());
            }
        }
        for name in &doomed {
            headers.remove(name);
        }
    }

    /// Sets all three headers, replacing any present (roles joined with
    /// `,`). `None` is an anonymous request: all three present and empty, so
    /// that a front proxy copying them overwrites forged ones.
    ///
    /// A value that cannot be a header value (control characters such as
    /// CR or LF) is sent empty and logged, never sent raw.
    pub fn set(&self, headers: &mut HeaderMap, identity: Option<(&str, &str, &[String])>) {
        let (user_id, email, roles) = match identity {
            Some((user_id, email, roles)) => (
                value_or_empty(&self.user_id, user_id.as_bytes()),
                value_or_empty(&self.email, email.as_bytes()),
                value_or_empty(&self.roles, roles.join(",").as_bytes()),
            ),
            None => (
                HeaderValue::from_static(""),
                HeaderValue::from_static(""),
                HeaderValue::from_static(""),
            ),
        };
        headers.insert(self.user_id.clone(), user_id);
        headers.insert(self.email.clone(), email);
        headers.insert(self.roles.clone(), roles);
    }

    /// Sets the assertion header, replacing any present; `None` (anonymous,
    /// or no signing keys) sends it empty, like the other three.
    pub fn set_assertion(&self, headers: &mut HeaderMap, assertion: Option<&str>) {
        let value = value_or_empty(&self.assertion, assertion.unwrap_or("").as_bytes());
        headers.insert(self.assertion.clone(), value);
    }
}

fn value_or_empty(name: &HeaderName, bytes: &[u8]) -> HeaderValue {
    HeaderValue::from_bytes(bytes).unwrap_or_else(|_| {
        tracing::warn!(header = %name, "identity value is not a valid header value; sent empty");
        HeaderValue::from_static("")
    })
}

/// Header names equal after ASCII lower-casing and reading `_` as `-`.
fn same_name(a: &[u8], b: &[u8]) -> bool {
    fn fold(c: u8) -> u8 {
        if c == b'_' {
            b'-'
        } else {
            c.to_ascii_lowercase()
        }
    }
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| fold(*x) == fold(*y))
}

/// The comma-separated tokens of every `Connection` header, trimmed.
fn connection_tokens(headers: &HeaderMap) -> impl Iterator<Item = &[u8]> {
    headers
        .get_all(CONNECTION)
        .iter()
        .flat_map(|v| v.as_bytes().split(|b| *b == b','))
        .map(<[u8]>::trim_ascii)
        .filter(|t| !t.is_empty())
}

/// Whether the request asks to switch to WebSocket and nothing else:
/// `Connection: upgrade` and exactly one `Upgrade` header that is exactly
/// `websocket`. Any other upgrade (`h2c`, `websocket, h2c`, two `Upgrade`
/// headers, `TLS/1.2`) is not one: its headers are removed as hop-by-hop
/// and the request is forwarded as a plain request.
fn is_websocket_upgrade(headers: &HeaderMap) -> bool {
    one_value(headers, &UPGRADE).is_some_and(is_websocket)
        && connection_tokens(headers).any(|t| t.eq_ignore_ascii_case(b"upgrade"))
}

/// `Upgrade: websocket`, in any case, with nothing else listed.
fn is_websocket(protocol: &HeaderValue) -> bool {
    protocol
        .as_bytes()
        .trim_ascii()
        .eq_ignore_ascii_case(WEBSOCKET)
}

/// Removes hop-by-hop headers (`Connection`, `Keep-Alive`,
/// `Proxy-Connection`, `HTTP2-Settings`, `TE`, `Trailer`, `Transfer-Encoding`, `Upgrade`,
/// `Proxy-Authenticate`, `Proxy-Authorization`) and every header named in
/// `Connection`.
pub fn remove_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = connection_tokens(headers)
        .filter_map(|t| HeaderName::from_bytes(t).ok())
        .collect();
    for name in &named {
        headers.remove(name);
    }
    for name in &HOP_BY_HOP {
        headers.remove(name);
    }
}

/// Removes cookie `name` from every `Cookie` header, keeping the others
/// byte-for-byte, separators included; drops a header left empty.
/// Allocates only when a header carries the cookie.
pub fn strip_cookie(headers: &mut HeaderMap, name: &str) {
    strip_cookies(headers, &[name]);
}

/// `strip_cookie` for several names in one pass over the `Cookie` headers.
pub fn strip_cookies(headers: &mut HeaderMap, names: &[&str]) {
    let doomed = |pair: &[u8]| {
        let name = cookie_name(pair);
        names.iter().any(|n| !n.is_empty() && n.as_bytes() == name)
    };
    let carries = |v: &HeaderValue| v.as_bytes().split(|b| *b == b';').any(doomed);
    if !headers.get_all(COOKIE).iter().any(carries) {
        return;
    }
    let mut kept_values = Vec::new();
    for value in headers.get_all(COOKIE) {
        if !carries(value) {
            kept_values.push(value.clone());
            continue;
        }
        let mut kept: Vec<u8> = Vec::with_capacity(value.len());
        for pair in value.as_bytes().split(|b| *b == b';') {
            if cookie_name(pair).is_empty() || doomed(pair) {
                continue;
            }
            if !kept.is_empty() {
                kept.push(b';');
            }
            kept.extend_from_slice(pair);
        }
        let kept = kept.trim_ascii();
        if !kept.is_empty() {
            // Pieces of a valid header value are valid header values.
            if let Ok(v) = HeaderValue::from_bytes(kept) {
                kept_values.push(v);
            }
        }
    }
    headers.remove(COOKIE);
    for v in kept_values {
        headers.append(COOKIE, v);
    }
}

/// The name of one `name=value` pair of a `Cookie` header, trimmed.
fn cookie_name(pair: &[u8]) -> &[u8] {
    let end = pair.iter().position(|b| *b == b'=').unwrap_or(pair.len());
    pair.get(..end).unwrap_or(pair).trim_ascii()
}

/// A parsed `[[apps]].upstream`: `http://127.0.0.1:3000`, or with a path
/// prefix, `http://h:3000/base` (then `/x?q` is forwarded as `/base/x?q`),
/// or `https://...`, verified against the public web roots unless a CA file
/// was given ([`Upstream::trusting`]).
#[derive(Debug, Clone)]
pub struct Upstream {
    scheme: Scheme,
    authority: Authority,
    /// Its own client when it trusts a CA of its own; else the shared one.
    client: Option<UpstreamClient>,
    /// The path prefix without its trailing `/`; empty for none.
    prefix: String,
}

impl Upstream {
    /// Parses and checks an upstream URL. The message says what was wrong
    /// and what is expected; the caller adds the key.
    pub fn parse(s: &str) -> Result<Upstream, String> {
        const EXPECTED: &str = "expected http(s)://host:port or http(s)://host:port/prefix";
        let uri: Uri = s
            .parse()
            .map_err(|e| format!("{s:?} is not a valid URL ({e}); {EXPECTED}"))?;
        let scheme = match uri.scheme_str() {
            Some("http") => Scheme::HTTP,
            Some("https") => Scheme::HTTPS,
            Some(other) => return Err(format!("{s:?} has scheme {other:?}; {EXPECTED}")),
            None => return Err(format!("{s:?} has no scheme; {EXPECTED}")),
        };
        let authority = match uri.authority() {
            Some(a) if !a.host().is_empty() => a.clone(),
            _ => return Err(format!("{s:?} has no host; {EXPECTED}")),
        };
        if authority.as_str().contains('@') {
            return Err(format!(
                "{s:?} contains user information, which is not supported; {EXPECTED}"
            ));
        }
        if uri.query().is_some() {
            return Err(format!("{s:?} has a query string; {EXPECTED}"));
        }
        let prefix = uri.path().trim_end_matches('/').to_owned();
        Ok(Upstream {
            scheme,
            authority,
            client: None,
            prefix,
        })
    }

    pub fn is_https(&self) -> bool {
        self.scheme == Scheme::HTTPS
    }

    /// Verifies this (https) upstream against the CA certificates in
    /// `ca_file` only, with a connection pool of its own.
    pub fn trusting(mut self, ca_file: &std::path::Path) -> Result<Upstream, TlsError> {
        let tls = crate::tls::client_config(Some(ca_file))?;
        self.client = Some(build_client(tls, CONNECT_TIMEOUT));
        Ok(self)
    }

    /// The URI the upstream receives: its authority, the prefix, then
    /// `path_and_query` (which must start with `/`).
    fn uri_for(&self, path_and_query: &str) -> Result<Uri, ProxyError> {
        if !path_and_query.starts_with('/') {
            return Err(ProxyError::Target(path_and_query.to_owned()));
        }
        let pq = if self.prefix.is_empty() {
            PathAndQuery::try_from(path_and_query)
        } else {
            PathAndQuery::try_from([self.prefix.as_str(), path_and_query].concat())
        }
        .map_err(|_| ProxyError::Target(path_and_query.to_owned()))?;
        let mut parts = http::uri::Parts::default();
        parts.scheme = Some(self.scheme.clone());
        parts.authority = Some(self.authority.clone());
        parts.path_and_query = Some(pq);
        Uri::from_parts(parts).map_err(|_| ProxyError::Target(path_and_query.to_owned()))
    }
}

impl std::fmt::Display for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}://{}{}", self.scheme, self.authority, self.prefix)
    }
}

/// What the caller knows about one allowed request.
#[derive(Debug, Clone, Copy)]
pub struct Forward<'a> {
    /// The real client (already resolved through trusted proxies): sent as
    /// `X-Real-IP`.
    pub client_ip: IpAddr,
    /// The TCP peer: appended to `X-Forwarded-For`, as every proxy appends
    /// the address it was connected from.
    pub peer_ip: IpAddr,
    /// `X-Forwarded-For` from a trusted peer (all its lines), to append to;
    /// `None` starts fresh (an untrusted peer's `X-Forwarded-For` is dropped).
    pub prior_forwarded_for: Option<&'a str>,
    /// `"http"` or `"https"`, as seen by the client.
    pub proto: &'a str,
    /// The host that was judged, normalized, with the port the client sent
    /// (`request::forwarded_host`): sent as `Host` and `X-Forwarded-Host`.
    pub host: &'a str,
    /// The normalized path plus the original query: what the upstream gets.
    pub path_and_query: &'a str,
    /// `(user id, email, roles)`, or `None` for an anonymous request.
    pub identity: Option<(&'a str, &'a str, &'a [String])>,
    /// The signed identity assertion, when there is one.
    pub assertion: Option<&'a str>,
    pub headers: &'a IdentityHeaders,
    /// latchkey's own cookies (session, CSRF, sign-in attempt): removed from
    /// the forwarded `Cookie` header, so the app never sees them.
    pub own_cookies: &'a [&'a str],
    /// Sent as `X-Request-Id`, replacing the client's.
    pub request_id: &'a str,
}

/// Why a request could not be forwarded. Each variant knows its status.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// The upstream refused or did not accept the connection.
    #[error("cannot connect to the upstream")]
    Connect(#[source] hyper_util::client::legacy::Error),
    /// No response head within the response timeout.
    #[error("the upstream sent no response within {0:?}")]
    Timeout(Duration),
    /// The upstream connection failed otherwise (reset, bad response).
    #[error("the upstream failed")]
    Upstream(#[source] hyper_util::client::legacy::Error),
    /// The upstream answered 101 to a request that did not ask to upgrade.
    #[error("the upstream switched protocols unasked")]
    UnaskedUpgrade,
    /// The upstream answered 101 with another protocol than `websocket`,
    /// the one asked for.
    #[error("the upstream switched to another protocol than the one asked for")]
    WrongUpgrade,
    /// A value from the client cannot be put in a header (Host, X-Forwarded-For).
    #[error("a forwarded header value is invalid")]
    HeaderValue(#[source] http::header::InvalidHeaderValue),
    /// The path and query cannot be a request target.
    #[error("invalid request target {0:?}")]
    Target(String),
}

impl ProxyError {
    /// The status the client gets.
    pub fn status(&self) -> StatusCode {
        match self {
            ProxyError::Connect(_)
            | ProxyError::Upstream(_)
            | ProxyError::UnaskedUpgrade
            | ProxyError::WrongUpgrade => StatusCode::BAD_GATEWAY,
            ProxyError::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
            ProxyError::HeaderValue(_) | ProxyError::Target(_) => StatusCode::BAD_REQUEST,
        }
    }
}

/// Pooled connections to upstreams, plain or TLS as their URL says.
pub type UpstreamClient = Client<HttpsConnector<HttpConnector>, Incoming>;

/// Longest wait for an upstream's TCP connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

fn build_client(tls: rustls::ClientConfig, connect_timeout: Duration) -> UpstreamClient {
    let mut http = HttpConnector::new();
    http.set_nodelay(true);
    http.set_connect_timeout(Some(connect_timeout));
    http.enforce_http(false);
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    Client::builder(TokioExecutor::new())
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(Duration::from_secs(90))
        .build(connector)
}

/// The pooled HTTP/1.1 client to every upstream without a CA of its own
/// (HTTPS ones verified against the public web roots); one per process,
/// shared by every `App` a config reload makes: clones share the pool.
#[derive(Clone)]
pub struct Proxy {
    client: UpstreamClient,
    response_timeout: Duration,
}

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proxy")
            .field("response_timeout", &self.response_timeout)
            .finish_non_exhaustive()
    }
}

impl Proxy {
    /// A client with keep-alive pooling and `TCP_NODELAY`. A request fails
    /// with [`ProxyError::Timeout`] when its response head has not arrived
    /// within `response_timeout` (connecting included).
    pub fn new(response_timeout: Duration) -> Result<Proxy, TlsError> {
        let tls = crate::tls::client_config(None)?;
        Ok(Proxy {
            client: build_client(tls, response_timeout.min(CONNECT_TIMEOUT)),
            response_timeout,
        })
    }

    /// The same connection pool with another response timeout (a reloaded
    /// config).
    pub fn with_timeout(&self, response_timeout: Duration) -> Proxy {
        Proxy {
            client: self.client.clone(),
            response_timeout,
        }
    }

    /// Forwards `req` to `upstream` and returns its response, both bodies
    /// streamed, never buffered.
    ///
    /// On the way up: removes the client's identity headers and the session
    /// cookie, hop-by-hop headers and those `Connection` names, and
    /// `Forwarded` (not ours, so not to be trusted); sets `X-Forwarded-For`
    /// (`peer_ip` appended to `prior_forwarded_for` when given), `X-Forwarded-Proto`,
    /// `X-Forwarded-Host`, `X-Real-IP`, `X-Request-Id` and the identity headers; sets
    /// `Host` to `fwd.host`; targets `upstream` + `path_and_query`.
    /// On the way down: removes hop-by-hop headers.
    ///
    /// A WebSocket upgrade (`Connection: upgrade` + `Upgrade: websocket`,
    /// nothing else) is forwarded as `Connection: upgrade` and `Upgrade:
    /// websocket`; when the upstream answers 101 with `Upgrade: websocket`,
    /// both upgraded connections are joined in a spawned task. Any other
    /// upgrade is removed with the hop-by-hop headers, and a 101 that
    /// switches to anything else, or that nobody asked for, is a 502. The
    /// server must serve connections with upgrades enabled for the client
    /// side to complete.
    pub async fn forward(
        &self,
        mut req: Request<Incoming>,
        upstream: &Upstream,
        fwd: Forward<'_>,
    ) -> Result<Response<Body>, ProxyError> {
        let upgrade = is_websocket_upgrade(req.headers()).then(|| hyper::upgrade::on(&mut req));

        *req.uri_mut() = upstream.uri_for(fwd.path_and_query)?;
        *req.version_mut() = Version::HTTP_11;
        let headers = req.headers_mut();
        remove_hop_by_hop(headers);
        fwd.headers.strip(headers);
        strip_cookies(headers, fwd.own_cookies);
        headers.remove(FORWARDED);
        set_forwarded(headers, &fwd)?;
        headers.insert(
            X_REQUEST_ID,
            HeaderValue::from_str(fwd.request_id).map_err(ProxyError::HeaderValue)?,
        );
        fwd.headers.set(headers, fwd.identity);
        fwd.headers.set_assertion(headers, fwd.assertion);
        if upgrade.is_some() {
            headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
            headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
        }

        let client = upstream.client.as_ref().unwrap_or(&self.client);
        let mut resp = match tokio::time::timeout(self.response_timeout, client.request(req)).await
        {
            Err(_) => return Err(ProxyError::Timeout(self.response_timeout)),
            Ok(Err(e)) if e.is_connect() => return Err(ProxyError::Connect(e)),
            Ok(Err(e)) => return Err(ProxyError::Upstream(e)),
            Ok(Ok(resp)) => resp,
        };

        let switched = resp.status() == StatusCode::SWITCHING_PROTOCOLS;
        let up_protocol = one_value(resp.headers(), &UPGRADE).cloned();
        remove_hop_by_hop(resp.headers_mut());
        if switched {
            let Some(client_upgrade) = upgrade else {
                return Err(ProxyError::UnaskedUpgrade);
            };
            match up_protocol {
                Some(protocol) if is_websocket(&protocol) => {
                    resp.headers_mut().insert(UPGRADE, protocol);
                }
                _ => return Err(ProxyError::WrongUpgrade),
            }
            resp.headers_mut()
                .insert(CONNECTION, HeaderValue::from_static("upgrade"));
            let upstream_upgrade = hyper::upgrade::on(&mut resp);
            tokio::spawn(async move {
                match tokio::try_join!(client_upgrade, upstream_upgrade) {
                    Ok((client, upstream)) => {
                        let mut client = TokioIo::new(client);
                        let mut upstream = TokioIo::new(upstream);
                        if let Err(e) =
                            tokio::io::copy_bidirectional(&mut client, &mut upstream).await
                        {
                            tracing::debug!(error = %e, "upgraded connection ended with an error");
                        }
                    }
                    Err(e) => tracing::debug!(error = %e, "upgrade did not complete"),
                }
            });
        }
        Ok(resp.map(|body| body.boxed()))
    }
}

/// A header's value when it is sent exactly once.
fn one_value<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Option<&'a HeaderValue> {
    let mut values = headers.get_all(name).iter();
    match (values.next(), values.next()) {
        (Some(v), None) => Some(v),
        _ => None,
    }
}

/// Sets `X-Forwarded-For` (the prior list plus the peer), `-Proto`, `-Host`
/// and `X-Real-IP` (the client), replacing what the client sent.
fn set_forwarded(headers: &mut HeaderMap, fwd: &Forward<'_>) -> Result<(), ProxyError> {
    let ip = fwd.client_ip.to_string();
    let peer = fwd.peer_ip.to_string();
    let xff = match fwd.prior_forwarded_for.map(str::trim) {
        Some(prior) if !prior.is_empty() => HeaderValue::from_str(&[prior, ", ", &peer].concat())
            .map_err(ProxyError::HeaderValue)?,
        _ => HeaderValue::from_str(&peer).map_err(ProxyError::HeaderValue)?,
    };
    let host = HeaderValue::from_str(fwd.host).map_err(ProxyError::HeaderValue)?;
    let proto = match fwd.proto {
        "https" => HeaderValue::from_static("https"),
        "http" => HeaderValue::from_static("http"),
        other => HeaderValue::from_str(other).map_err(ProxyError::HeaderValue)?,
    };
    headers.insert(
        X_REAL_IP,
        HeaderValue::from_str(&ip).map_err(ProxyError::HeaderValue)?,
    );
    headers.insert(X_FORWARDED_FOR, xff);
    headers.insert(X_FORWARDED_PROTO, proto);
    headers.insert(X_FORWARDED_HOST, host.clone());
    headers.insert(HOST, host);
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Header pairs as a table cell.
    type Pairs<'a> = &'a [(&'a str, &'a str)];
    type Identity<'a> = Option<(&'a str, &'a str, &'a [String])>;

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    fn pairs(h: &HeaderMap) -> Vec<(String, String)> {
        let mut v: Vec<_> = h
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_owned()))
            .collect();
        v.sort();
        v
    }

    fn owned(p: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut v: Vec<_> = p
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        v.sort();
        v
    }

    fn default_headers() -> IdentityHeaders {
        IdentityHeaders::from_config(&HeadersConfig::default()).unwrap()
    }

    #[test]
    fn strip_removes_every_spelling_and_duplicate() {
        let cases: &[(Pairs, Pairs)] = &[
            (&[("x-auth-email", "a@x")], &[]),
            (&[("X-AUTH-EMAIL", "a@x")], &[]),
            (&[("X_Auth_Email", "a@x")], &[]),
            (&[("x_auth-email", "a@x")], &[]),
            (&[("x-auth_user_id", "1")], &[]),
            (&[("X_Auth_Assertion", "forged.jwt.sig")], &[]),
            (&[("x-auth-roles", "admin"), ("x-auth-roles", "root")], &[]),
            (
                &[
                    ("x-auth-email", "a"),
                    ("x_auth_email", "b"),
                    ("X-Auth-Roles", "c"),
                    ("x-auth-user-id", "d"),
                    ("x-other", "kept"),
                ],
                &[("x-other", "kept")],
            ),
            (&[("x-auth-emails", "kept")], &[("x-auth-emails", "kept")]),
            (&[("x-auth-emai", "kept")], &[("x-auth-emai", "kept")]),
            (&[("accept", "*/*")], &[("accept", "*/*")]),
        ];
        let ids = default_headers();
        for (input, want) in cases {
            let mut h = map(input);
            ids.strip(&mut h);
            assert_eq!(pairs(&h), owned(want), "input {input:?}");
        }
    }

    #[test]
    fn strip_uses_configured_names() {
        let cfg = HeadersConfig {
            user_id: "Remote-User".into(),
            email: "Remote-Email".into(),
            roles: "Remote-Groups".into(),
            ..HeadersConfig::default()
        };
        let ids = IdentityHeaders::from_config(&cfg).unwrap();
        let mut h = map(&[
            ("remote_user", "x"),
            ("REMOTE-EMAIL", "y"),
            ("x-auth-email", "z"),
        ]);
        ids.strip(&mut h);
        assert_eq!(pairs(&h), owned(&[("x-auth-email", "z")]));
    }

    #[test]
    fn set_replaces_and_fills_all_three() {
        let ids = default_headers();
        let roles = vec!["admin".to_owned(), "member".to_owned()];
        let no_roles: Vec<String> = vec![];
        let cases: &[(Identity, Pairs)] = &[
            (
                Some(("u1", "a@x.com", &roles)),
                &[
                    ("x-auth-user-id", "u1"),
                    ("x-auth-email", "a@x.com"),
                    ("x-auth-roles", "admin,member"),
                ],
            ),
            (
                Some(("u2", "b@x.com", &no_roles)),
                &[
                    ("x-auth-user-id", "u2"),
                    ("x-auth-email", "b@x.com"),
                    ("x-auth-roles", ""),
                ],
            ),
            (
                None,
                &[
                    ("x-auth-user-id", ""),
                    ("x-auth-email", ""),
                    ("x-auth-roles", ""),
                ],
            ),
            (
                Some(("u3", "evil@x\r\nX-Injected: 1", &no_roles)),
                &[
                    ("x-auth-user-id", "u3"),
                    ("x-auth-email", ""),
                    ("x-auth-roles", ""),
                ],
            ),
        ];
        for (identity, want) in cases {
            let mut h = map(&[("x-auth-email", "forged"), ("x-auth-email", "forged2")]);
            ids.set(&mut h, *identity);
            assert_eq!(pairs(&h), owned(want), "identity {identity:?}");
        }
    }

    #[test]
    fn from_config_names_the_key() {
        let cases: &[(&str, &str, &str, &[&str])] = &[
            ("X-A", "X-B", "X-C", &[]),
            (
                "X-A",
                "X Auth",
                "X-C",
                &["headers.email: \"X Auth\" is not a valid header name"],
            ),
            ("", "X-B", "X-C", &["headers.user_id: \"\" is not a valid"]),
            (
                "X-A",
                "X-B",
                "Cookie",
                &["headers.roles: \"Cookie\" cannot be used"],
            ),
            (
                "Connection",
                "X-B",
                "X-C",
                &["headers.user_id: \"Connection\" cannot"],
            ),
            (
                "X-A",
                "X_A",
                "X-C",
                &["headers.email: \"x_a\" is the same header as headers.user_id"],
            ),
            (
                "X:A",
                "X-B",
                "X B",
                &["headers.user_id: \"X:A\"", "headers.roles: \"X B\""],
            ),
        ];
        for (user_id, email, roles, want) in cases {
            let cfg = HeadersConfig {
                user_id: (*user_id).into(),
                email: (*email).into(),
                roles: (*roles).into(),
                ..HeadersConfig::default()
            };
            match IdentityHeaders::from_config(&cfg) {
                Ok(_) => assert!(want.is_empty(), "{cfg:?} passed, expected {want:?}"),
                Err(problems) => {
                    assert_eq!(problems.len(), want.len(), "{problems:?}");
                    for (p, w) in problems.iter().zip(want.iter()) {
                        assert!(p.starts_with(w), "{p:?} should start with {w:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn hop_by_hop_and_connection_named_headers_go() {
        let cases: &[(Pairs, Pairs)] = &[
            (
                &[
                    ("connection", "keep-alive"),
                    ("keep-alive", "timeout=5"),
                    ("proxy-connection", "keep-alive"),
                    ("te", "trailers"),
                    ("trailer", "x-checksum"),
                    ("transfer-encoding", "chunked"),
                    ("upgrade", "websocket"),
                    ("proxy-authenticate", "Basic"),
                    ("proxy-authorization", "Basic eA=="),
                    ("accept", "*/*"),
                ],
                &[("accept", "*/*")],
            ),
            (
                &[
                    ("connection", "close, X-Secret"),
                    ("connection", " x-other ,,"),
                    ("x-secret", "1"),
                    ("x-other", "2"),
                    ("x-kept", "3"),
                ],
                &[("x-kept", "3")],
            ),
            (&[("connection", "bad header name, x-a"), ("x-a", "1")], &[]),
            (
                &[("http2-settings", "AAMAAABk"), ("x-kept", "3")],
                &[("x-kept", "3")],
            ),
            (&[("x-kept", "3")], &[("x-kept", "3")]),
        ];
        for (input, want) in cases {
            let mut h = map(input);
            remove_hop_by_hop(&mut h);
            assert_eq!(pairs(&h), owned(want), "input {input:?}");
        }
    }

    #[test]
    fn only_an_exact_websocket_upgrade_is_one() {
        let cases: &[(Pairs, bool)] = &[
            (&[("connection", "Upgrade"), ("upgrade", "websocket")], true),
            (
                &[
                    ("connection", "keep-alive, upgrade"),
                    ("upgrade", "WebSocket"),
                ],
                true,
            ),
            (
                &[
                    ("connection", "x"),
                    ("connection", "upgrade"),
                    ("upgrade", "websocket"),
                ],
                true,
            ),
            (
                &[
                    ("connection", "Upgrade, HTTP2-Settings"),
                    ("upgrade", "h2c"),
                ],
                false,
            ),
            (
                &[("connection", "Upgrade"), ("upgrade", "websocket, h2c")],
                false,
            ),
            (
                &[("connection", "Upgrade"), ("upgrade", "h2c, websocket")],
                false,
            ),
            (
                &[
                    ("connection", "Upgrade"),
                    ("upgrade", "websocket"),
                    ("upgrade", "h2c"),
                ],
                false,
            ),
            (
                &[("connection", "Upgrade"), ("upgrade", "websocket/13")],
                false,
            ),
            (&[("connection", "Upgrade"), ("upgrade", "")], false),
            (&[("connection", "Upgrade")], false),
            (
                &[("connection", "keep-alive"), ("upgrade", "websocket")],
                false,
            ),
            (&[("upgrade", "websocket")], false),
        ];
        for (input, want) in cases {
            assert_eq!(is_websocket_upgrade(&map(input)), *want, "{input:?}");
        }
    }

    #[test]
    fn strip_cookie_keeps_the_others_byte_for_byte() {
        let cases: &[(&[&str], &[&str])] = &[
            (&["latchkey_session=abc"], &[]),
            (&["a=1; latchkey_session=abc; b=2"], &["a=1; b=2"]),
            (&["a=1;latchkey_session=abc;b=2"], &["a=1;b=2"]),
            (&["latchkey_session=abc;b=\"x y\""], &["b=\"x y\""]),
            (&["a=1;latchkey_session=abc"], &["a=1"]),
            (&["a=1", "latchkey_session=abc", "b=%20"], &["a=1", "b=%20"]),
            (&["latchkey_session=1; latchkey_session=2; c=3"], &["c=3"]),
            (
                &["latchkey_session_old=1;  x=latchkey_session"],
                &["latchkey_session_old=1;  x=latchkey_session"],
            ),
            (&["a=1; b=2"], &["a=1; b=2"]),
            (&[" latchkey_session = abc ; d=4"], &["d=4"]),
            (&["latchkey_session"], &[]),
            (&["a=1; ; latchkey_session=x"], &["a=1"]),
        ];
        for (input, want) in cases {
            let mut h = HeaderMap::new();
            for v in *input {
                h.append(COOKIE, HeaderValue::from_str(v).unwrap());
            }
            strip_cookie(&mut h, "latchkey_session");
            let got: Vec<&str> = h
                .get_all(COOKIE)
                .iter()
                .map(|v| v.to_str().unwrap())
                .collect();
            assert_eq!(got, *want, "input {input:?}");
        }
    }

    #[test]
    fn strip_cookies_removes_every_named_cookie_in_one_pass() {
        let own = ["latchkey_session", "latchkey_csrf", "latchkey_attempt"];
        let cases: &[(&[&str], &[&str])] = &[
            (
                &["a=1; latchkey_session=s; latchkey_csrf=c; b=2; latchkey_attempt=t"],
                &["a=1; b=2"],
            ),
            (
                &["latchkey_csrf=c", "x=latchkey_attempt"],
                &["x=latchkey_attempt"],
            ),
            (
                &["latchkey_csrf_x=1; latchkey=2"],
                &["latchkey_csrf_x=1; latchkey=2"],
            ),
            (&["latchkey_attempt=1", "latchkey_session=2"], &[]),
        ];
        for (input, want) in cases {
            let mut h = HeaderMap::new();
            for v in *input {
                h.append(COOKIE, HeaderValue::from_str(v).unwrap());
            }
            strip_cookies(&mut h, &own);
            let got: Vec<&str> = h
                .get_all(COOKIE)
                .iter()
                .map(|v| v.to_str().unwrap())
                .collect();
            assert_eq!(got, *want, "input {input:?}");
        }
    }

    #[test]
    fn strip_cookie_leaves_untouched_header_alone() {
        let mut h = map(&[("cookie", "a=1;b=2;  c=3")]);
        strip_cookie(&mut h, "latchkey_session");
        assert_eq!(h.get(COOKIE).unwrap(), "a=1;b=2;  c=3");
    }

    #[test]
    fn upstream_parse() {
        let ok: &[(&str, &str, &str)] = &[
            (
                "http://127.0.0.1:3000",
                "/x?q=1",
                "http://127.0.0.1:3000/x?q=1",
            ),
            ("http://127.0.0.1:3000/", "/", "http://127.0.0.1:3000/"),
            ("http://h:3000/base", "/x?q", "http://h:3000/base/x?q"),
            ("http://h/base/", "/", "http://h/base/"),
            ("http://[::1]:8080", "/a", "http://[::1]:8080/a"),
            ("https://h:8443/p", "/a", "https://h:8443/p/a"),
        ];
        for (s, pq, want) in ok {
            let up = Upstream::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"));
            assert_eq!(up.uri_for(pq).unwrap().to_string(), *want, "{s} + {pq}");
        }
        let bad: &[(&str, &str)] = &[
            ("ftp://h", "has scheme \"ftp\""),
            ("127.0.0.1:3000", "has no scheme"),
            ("/path", "has no scheme"),
            ("http://u:p@h", "user information"),
            ("http://h/?x=1", "query string"),
            ("http://h :1", "is not a valid URL"),
            ("", "is not a valid URL"),
        ];
        for (s, want) in bad {
            match Upstream::parse(s) {
                Ok(u) => panic!("{s:?} parsed as {u}"),
                Err(e) => assert!(e.contains(want), "{s:?}: {e:?} lacks {want:?}"),
            }
        }
    }

    #[test]
    fn targets_must_be_origin_form() {
        let up = Upstream::parse("http://h:1").unwrap();
        for pq in ["", "*", "x", "http://evil/"] {
            assert_eq!(
                up.uri_for(pq).unwrap_err().status(),
                StatusCode::BAD_REQUEST,
                "{pq:?}"
            );
        }
    }
}
