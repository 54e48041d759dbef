//! Traefik cannot be installed here, so this is a small front proxy that
//! speaks to latchkey exactly as Traefik's ForwardAuth middleware does, with
//! the routers, middleware and services of `examples/traefik/dynamic.yml`.
//!
//! What it does, after Traefik's documentation
//! (<https://doc.traefik.io/traefik/middlewares/http/forwardauth/>, "The
//! ForwardAuth middleware delegates authentication to an external service.
//! If the service answers with a 2XX code, access is granted, and the
//! original request is performed. Otherwise, the response from the
//! authentication server is returned."; "Forward-Request Headers":
//! X-Forwarded-Method, -Proto, -Host, -Uri, -For; `authResponseHeaders`:
//! "headers to copy from the authentication server response and set on
//! forwarded request, replacing any existing conflicting headers";
//! `trustForwardHeader`: "trust all X-Forwarded-* headers") and its
//! source (`pkg/middlewares/auth/forward.go`, `writeHeader`):
//!
//! - The entry point removes X-Forwarded-* and X-Real-Ip sent by a client
//!   that is not in `forwardedHeaders.trustedIPs`, then sets
//!   X-Forwarded-Proto/-Host/-Port/-Server and X-Real-Ip itself.
//! - The auth request is a GET to `address` with no body, every header of
//!   the original request (the Cookie among them) minus hop-by-hop headers
//!   and those named in Connection; X-Forwarded-For is the prior list
//!   (trusted) followed by the peer; X-Forwarded-Method, -Proto, -Host and
//!   -Uri come from the request (or from the trusted X-Forwarded-* the entry
//!   point left). Its Host is the address's host.
//! - A non-2xx answer goes back to the client as it came (status, headers
//!   minus hop-by-hop, Location, body).
//! - On a 2xx each `authResponseHeaders` name is deleted from the request,
//!   then copied from the answer if present, and the request goes on to the
//!   service with X-Forwarded-* set as Traefik's reverse proxy sets them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;

/// Hop-by-hop headers Traefik removes from the auth request and answer.
const HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// X-Forwarded-* (and friends) the entry point drops from untrusted clients.
const ENTRY_POINT_STRIPS: &[&str] = &[
    "x-forwarded-proto",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-port",
    "x-forwarded-server",
    "x-forwarded-uri",
    "x-forwarded-method",
    "x-forwarded-prefix",
    "x-forwarded-tls-client-cert",
    "x-forwarded-tls-client-cert-info",
    "x-real-ip",
];

/// The dynamic configuration this proxy follows (examples/traefik/dynamic.yml).
#[derive(Debug, Clone)]
pub struct Config {
    /// Router `app`: this host goes through the middlewares to `app`.
    pub app_host: String,
    /// Router `latchkey`: this host goes straight to latchkey.
    pub auth_host: String,
    /// `forwardAuth.address`.
    pub address: String,
    pub latchkey: SocketAddr,
    pub app: SocketAddr,
    pub trust_forward_header: bool,
    pub auth_response_headers: Vec<String>,
    /// A `headers` middleware's `customRequestHeaders` set to "" (Traefik
    /// deletes those), run before ForwardAuth.
    pub strip_request_headers: Vec<String>,
}

/// Starts the proxy on a free loopback port; it runs until the test ends.
pub async fn start(listener: tokio::net::TcpListener, config: Config) -> SocketAddr {
    let addr = listener.local_addr().unwrap();
    let config = Arc::new(config);
    tokio::spawn(async move {
        loop {
            let Ok((stream, peer)) = listener.accept().await else {
                continue;
            };
            let config = config.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req| {
                    let config = config.clone();
                    async move { Ok::<_, Infallible>(handle(&config, req, peer).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    addr
}

async fn handle(
    config: &Config,
    req: Request<Incoming>,
    peer: SocketAddr,
) -> Response<Full<Bytes>> {
    let (mut parts, body) = req.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    let host = parts
        .headers
        .get(http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let host_name = host.split(':').next().unwrap_or("").to_owned();
    let port = host.split(':').nth(1).unwrap_or("80").to_owned();

    // The entry point (forwardedHeaders.trustedIPs: [], so nobody is trusted).
    for name in ENTRY_POINT_STRIPS {
        parts.headers.remove(*name);
    }
    set(&mut parts.headers, "x-forwarded-proto", "http");
    set(&mut parts.headers, "x-forwarded-host", &host);
    set(&mut parts.headers, "x-forwarded-port", &port);
    set(&mut parts.headers, "x-forwarded-server", "traefik-like");
    set(&mut parts.headers, "x-real-ip", &peer.ip().to_string());

    let path_and_query = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "/".into());
    let path = parts.uri.path().to_owned();

    // Routers.
    if host_name == config.auth_host {
        return forward(config.latchkey, parts, body, peer).await;
    }
    if host_name != config.app_host {
        return text(StatusCode::NOT_FOUND, "404 page not found");
    }
    if path.starts_with("/.latchkey/") {
        // Router `app-latchkey-pages`: no middleware.
        return forward(config.latchkey, parts, body, peer).await;
    }

    // Middleware `headers` (customRequestHeaders: NAME: "" deletes NAME).
    for name in &config.strip_request_headers {
        parts.headers.remove(name.as_str());
    }

    // Middleware `forwardAuth`.
    let mut auth = HeaderMap::new();
    for (k, v) in &parts.headers {
        auth.append(k.clone(), v.clone());
    }
    remove_hop_by_hop(&mut auth);
    let mut xff = peer.ip().to_string();
    if config.trust_forward_header {
        let prior: Vec<&str> = parts
            .headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        if !prior.is_empty() {
            xff = format!("{}, {xff}", prior.join(", "));
        }
    }
    set(&mut auth, "x-forwarded-for", &xff);
    let trusted = |name: &str| {
        config
            .trust_forward_header
            .then(|| parts.headers.get(name).and_then(|v| v.to_str().ok()))
            .flatten()
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    let method = trusted("x-forwarded-method").unwrap_or_else(|| parts.method.to_string());
    set(&mut auth, "x-forwarded-method", &method);
    let proto = trusted("x-forwarded-proto").unwrap_or_else(|| "http".into());
    set(&mut auth, "x-forwarded-proto", &proto);
    if let Some(p) = trusted("x-forwarded-port") {
        set(&mut auth, "x-forwarded-port", &p);
    }
    let fhost = trusted("x-forwarded-host").unwrap_or_else(|| host.clone());
    set(&mut auth, "x-forwarded-host", &fhost);
    let furi = trusted("x-forwarded-uri").unwrap_or_else(|| path_and_query.clone());
    set(&mut auth, "x-forwarded-uri", &furi);
    let address: http::Uri = config.address.parse().unwrap();
    set(
        &mut auth,
        "host",
        address.authority().map(|a| a.as_str()).unwrap_or(""),
    );
    let mut auth_req = Request::builder()
        .method("GET")
        .uri(address.path_and_query().map(|p| p.as_str()).unwrap_or("/"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    *auth_req.headers_mut() = auth;
    let answer = exchange(config.latchkey, auth_req).await;
    let (aparts, abody) = answer.into_parts();
    if !aparts.status.is_success() {
        let mut resp = Response::new(Full::new(abody));
        *resp.status_mut() = aparts.status;
        *resp.headers_mut() = aparts.headers;
        remove_hop_by_hop(resp.headers_mut());
        return resp;
    }
    for name in &config.auth_response_headers {
        parts.headers.remove(name.as_str());
        for v in aparts.headers.get_all(name.as_str()) {
            parts
                .headers
                .append(HeaderName::from_bytes(name.as_bytes()).unwrap(), v.clone());
        }
    }
    forward(config.app, parts, body, peer).await
}

/// Traefik's reverse proxy to a service: hop-by-hop headers out,
/// X-Forwarded-For appended, the client's Host kept.
async fn forward(
    to: SocketAddr,
    mut parts: http::request::Parts,
    body: Bytes,
    peer: SocketAddr,
) -> Response<Full<Bytes>> {
    remove_hop_by_hop(&mut parts.headers);
    let xff = match parts
        .headers
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
    {
        Some(prior) => format!("{prior}, {}", peer.ip()),
        None => peer.ip().to_string(),
    };
    set(&mut parts.headers, "x-forwarded-for", &xff);
    let path_and_query = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "/".into());
    let mut req = Request::builder()
        .method(parts.method.clone())
        .uri(path_and_query)
        .body(Full::new(body))
        .unwrap();
    *req.headers_mut() = parts.headers;
    let resp = exchange(to, req).await;
    let (mut rparts, rbody) = resp.into_parts();
    remove_hop_by_hop(&mut rparts.headers);
    Response::from_parts(rparts, Full::new(rbody))
}

async fn exchange(to: SocketAddr, req: Request<Full<Bytes>>) -> Response<Bytes> {
    let stream = tokio::net::TcpStream::connect(to).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let resp = sender.send_request(req).await.unwrap();
    let (parts, body) = resp.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    Response::from_parts(parts, body)
}

fn remove_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<String> = headers
        .get_all(http::header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty())
        .collect();
    for name in named.iter().map(String::as_str).chain(HOP.iter().copied()) {
        headers.remove(name);
    }
}

fn set(headers: &mut HeaderMap, name: &str, value: &str) {
    headers.insert(
        HeaderName::from_bytes(name.as_bytes()).unwrap(),
        HeaderValue::from_str(value).unwrap(),
    );
}

fn text(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *resp.status_mut() = status;
    resp
}
