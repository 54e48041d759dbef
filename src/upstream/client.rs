//! The client side of the reverse proxy: one pooled HTTP/1.1 client per
//! process (and one per upstream that trusts a CA of its own), the connect
//! and response timeouts, and `Proxy::forward`, which rewrites the request
//! with the other pieces of this folder and streams both bodies. What may
//! pass is decided before (`gate`); TLS configs are built by `tls`.

use std::net::IpAddr;
use std::time::Duration;

use http::header::{HeaderValue, FORWARDED, UPGRADE};
use http::{Request, Response, StatusCode, Version};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use super::cookies::strip_cookies;
use super::error::ProxyError;
use super::forwarded::set_forwarded;
use super::hop::{one_value, remove_hop_by_hop};
use super::identity::IdentityHeaders;
use super::target::Upstream;
use super::upgrade;
use crate::obs::request_id::X_REQUEST_ID;
use crate::tls::TlsError;
use crate::Body;

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

/// Pooled connections to upstreams, plain or TLS as their URL says.
pub type UpstreamClient = Client<HttpsConnector<HttpConnector>, Incoming>;

/// Longest wait for an upstream's TCP connection.
pub(super) const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

pub(super) fn build_client(tls: rustls::ClientConfig, connect_timeout: Duration) -> UpstreamClient {
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
        let upgrade = upgrade::asked(&mut req);

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
            upgrade::ask(headers);
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
            upgrade::join(&mut resp, upgrade, up_protocol)?;
        }
        Ok(resp.map(|body| body.boxed()))
    }
}
