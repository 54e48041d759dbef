//! The client side of the reverse proxy: `Proxy`, the process's
//! connections to upstreams (latchkey's own per-worker idle sets for plain
//! HTTP, `idle` and `send`; hyper-util's pooled client for HTTPS and
//! WebSocket upgrades, `pool`) with its response timeout, and
//! `Proxy::forward`, which rewrites the request with the other pieces of
//! this folder and streams both bodies. What may pass is decided before
//! (`gate`); TLS configs are built by `tls`.

use std::sync::Arc;
use std::time::Duration;

use http::header::{HeaderValue, FORWARDED, UPGRADE};
use http::{Request, Response, StatusCode, Version};
use http_body_util::BodyExt;
use hyper::body::Incoming;

use super::cookies::strip_cookies;
use super::error::ProxyError;
use super::forwarded::set_forwarded;
use super::hop::{one_value, remove_hop_by_hop};
use super::idle::IdleSets;
use super::pool::{build_client, UpstreamClient, CONNECT_TIMEOUT, IDLE_TIMEOUT};
use super::send;
use super::target::Upstream;
use super::upgrade;
use super::Forward;
use crate::obs::request_id::X_REQUEST_ID;
use crate::tls::TlsError;
use crate::Body;

/// The connections to every upstream without a CA of its own: latchkey's
/// own idle sets for plain HTTP, hyper-util's pooled client for HTTPS ones
/// (verified against the public web roots) and upgrades; one per process,
/// shared by every `App` a config reload makes: clones share the pools.
#[derive(Clone)]
pub struct Proxy {
    idle: Arc<IdleSets>,
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
            idle: Arc::new(IdleSets::new(IDLE_TIMEOUT)),
            client: build_client(tls, response_timeout.min(CONNECT_TIMEOUT)),
            response_timeout,
        })
    }

    /// The same connection pool with another response timeout (a reloaded
    /// config).
    pub fn with_timeout(&self, response_timeout: Duration) -> Proxy {
        Proxy {
            idle: self.idle.clone(),
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
        // Plain HTTP without an upgrade goes over latchkey's own connections.
        let own = upgrade.is_none() && !upstream.is_https();

        *req.uri_mut() = if own {
            upstream.origin_form(fwd.path_and_query)?
        } else {
            upstream.uri_for(fwd.path_and_query)?
        };
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
        fwd.headers.set_assertion(headers, fwd.assertion.cloned());
        if upgrade.is_some() {
            upgrade::ask(headers);
        }

        if own {
            let connect_timeout = self.response_timeout.min(CONNECT_TIMEOUT);
            let sent = send::send(&self.idle, upstream.authority(), connect_timeout, req);
            let mut resp = match tokio::time::timeout(self.response_timeout, sent).await {
                Err(_) => return Err(ProxyError::Timeout(self.response_timeout)),
                Ok(result) => result?,
            };
            if resp.status() == StatusCode::SWITCHING_PROTOCOLS {
                return Err(ProxyError::UnaskedUpgrade);
            }
            remove_hop_by_hop(resp.headers_mut());
            return Ok(resp);
        }

        let client = upstream.client.as_ref().unwrap_or(&self.client);
        let mut resp = match tokio::time::timeout(self.response_timeout, client.request(req)).await
        {
            Err(_) => return Err(ProxyError::Timeout(self.response_timeout)),
            Ok(Err(e)) if e.is_connect() => return Err(ProxyError::Connect(Box::new(e))),
            Ok(Err(e)) => return Err(ProxyError::Upstream(Box::new(e))),
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
