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
//!
//! The pieces, in the order a request meets them: `client` (`Proxy`,
//! its response timeout and `Proxy::forward`, which calls the others),
//! `send` (plain-HTTP upstreams over latchkey's own connections, and the
//! one retry), `idle` (their idle connections, one set per runtime worker), `up_body`
//! (the request body they carry),
//! `pool` (hyper-util's pooled client, for HTTPS upstreams and WebSocket
//! upgrades; the connect timeout), `target`
//! (the parsed `[[apps]].upstream` and the rewritten target), `hop`
//! (hop-by-hop headers), `identity` (the identity headers), `cookies`
//! (latchkey's own cookies), `forwarded` (`X-Forwarded-*`, `X-Real-IP`),
//! `upgrade` (WebSocket) and `error` (what can go wrong, with its status).

mod client;
mod cookies;
mod error;
mod forwarded;
mod hop;
mod identity;
mod idle;
mod pool;
mod send;
mod target;
mod up_body;
mod upgrade;

use std::net::IpAddr;

use http::HeaderValue;

pub use client::Proxy;
pub use cookies::{strip_cookie, strip_cookies};
pub use error::ProxyError;
pub use hop::remove_hop_by_hop;
pub use identity::IdentityHeaders;
pub use pool::UpstreamClient;
pub use target::Upstream;

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
    pub assertion: Option<&'a HeaderValue>,
    pub headers: &'a IdentityHeaders,
    /// latchkey's own cookies (session, CSRF, sign-in attempt): removed from
    /// the forwarded `Cookie` header, so the app never sees them.
    pub own_cookies: &'a [&'a str],
    /// Sent as `X-Request-Id`, replacing the client's.
    pub request_id: &'a str,
}

/// Header tables for the unit tests of every piece.
#[cfg(test)]
mod test_headers {
    #![allow(clippy::unwrap_used)]
    use http::header::{HeaderMap, HeaderName, HeaderValue};

    /// Header pairs as a table cell.
    pub type Pairs<'a> = &'a [(&'a str, &'a str)];
    pub type Identity<'a> = Option<(&'a str, &'a str, &'a [String])>;

    pub fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    pub fn pairs(h: &HeaderMap) -> Vec<(String, String)> {
        let mut v: Vec<_> = h
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_owned()))
            .collect();
        v.sort();
        v
    }

    pub fn owned(p: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut v: Vec<_> = p
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        v.sort();
        v
    }
}
