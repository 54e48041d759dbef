//! `proxy::Proxy::forward` for real over TCP: a small test server whose
//! handler calls `forward`, in front of the echo app (or a purpose-built
//! upstream), and assertions on what the upstream received.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use latchkey::config::HeadersConfig;
use latchkey::upstream::{Forward, IdentityHeaders, Proxy, Upstream};
use latchkey::{full, Body};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::support::http::{raw, send, Browser, Resp};

/// What the test proxy's handler tells `forward` about every request.
#[derive(Clone)]
struct Spec {
    client_ip: IpAddr,
    /// The TCP peer `forward` is told about (appended to X-Forwarded-For).
    peer_ip: IpAddr,
    /// Whether the peer counts as a trusted proxy (its X-Forwarded-For is kept).
    trusted: bool,
    proto: &'static str,
    identity: Option<(String, String, Vec<String>)>,
    /// The normalized target to forward; `None` forwards the request's own.
    path_and_query: Option<String>,
    timeout: Duration,
}

impl Default for Spec {
    fn default() -> Spec {
        Spec {
            client_ip: "203.0.113.7".parse().unwrap(),
            peer_ip: "203.0.113.7".parse().unwrap(),
            trusted: false,
            proto: "http",
            identity: Some((
                "u-1".into(),
                "alice@example.com".into(),
                vec!["admin".into(), "member".into()],
            )),
            path_and_query: None,
            timeout: Duration::from_secs(10),
        }
    }
}

struct ProxyState {
    proxy: Proxy,
    upstream: Upstream,
    headers: IdentityHeaders,
    spec: Spec,
}

/// Serves `service` on a fresh loopback port, with upgrades; returns the
/// address and a count of accepted connections.
async fn serve<S, F>(service: S) -> (SocketAddr, Arc<AtomicUsize>)
where
    S: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<Body>> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            count.fetch_add(1, Ordering::SeqCst);
            let service = service.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req| {
                    let fut = service(req);
                    async move { Ok::<_, Infallible>(fut.await) }
                });
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection_with_upgrades(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    (addr, accepted)
}

async fn start_echo() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(latchkey::cli::echo::serve(listener, std::future::pending()));
    addr
}

/// The test proxy in front of `upstream` ("http://host:port[/prefix]").
async fn start_proxy(upstream: &str, spec: Spec) -> SocketAddr {
    let state = Arc::new(ProxyState {
        proxy: Proxy::new(spec.timeout).unwrap(),
        upstream: Upstream::parse(upstream).unwrap(),
        headers: IdentityHeaders::from_config(&HeadersConfig::default()).unwrap(),
        spec,
    });
    serve(move |req| {
        let state = state.clone();
        async move { proxy_handler(&state, req).await }
    })
    .await
    .0
}

async fn proxy_handler(state: &ProxyState, req: Request<Incoming>) -> Response<Body> {
    let spec = &state.spec;
    let text = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let host = text("host").unwrap_or_default();
    let prior = if spec.trusted {
        text("x-forwarded-for")
    } else {
        None
    };
    let path_and_query = spec.path_and_query.clone().unwrap_or_else(|| {
        req.uri()
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_owned()
    });
    let fwd = Forward {
        client_ip: spec.client_ip,
        peer_ip: spec.peer_ip,
        prior_forwarded_for: prior.as_deref(),
        proto: spec.proto,
        host: &host,
        path_and_query: &path_and_query,
        identity: spec
            .identity
            .as_ref()
            .map(|(u, e, r)| (u.as_str(), e.as_str(), r.as_slice())),
        assertion: None,
        headers: &state.headers,
        own_cookies: &["latchkey_session"],
        request_id: "test-request-id",
    };
    match state.proxy.forward(req, &state.upstream, fwd).await {
        Ok(resp) => resp,
        Err(e) => {
            let mut resp = Response::new(full(e.to_string()));
            *resp.status_mut() = e.status();
            resp
        }
    }
}

/// Echo behind a test proxy with `spec`.
async fn echo_proxy(spec: Spec) -> SocketAddr {
    let echo = start_echo().await;
    start_proxy(&format!("http://{echo}"), spec).await
}

/// Values of header `name` in the echo's JSON, in order.
fn echoed(json: &Value, name: &str) -> Vec<String> {
    json["headers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|pair| pair[0].as_str().unwrap().eq_ignore_ascii_case(name))
        .map(|pair| pair[1].as_str().unwrap().to_owned())
        .collect()
}

fn echoed_names(json: &Value) -> Vec<String> {
    json["headers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|pair| pair[0].as_str().unwrap().to_owned())
        .collect()
}

async fn get(addr: SocketAddr, target: &str, headers: &[(&str, &str)]) -> Resp {
    let resp = send(addr, "GET", target, headers, b"").await;
    assert_eq!(resp.status, 200, "{}", resp.body);
    resp
}

#[tokio::test]
async fn identity_headers_replace_every_forged_spelling() {
    let addr = echo_proxy(Spec::default()).await;
    let forged = [
        ("X-Auth-Email", "mallory@example.com"),
        ("x-auth-email", "m2@example.com"),
        ("X_Auth_Email", "m3@example.com"),
        ("x_auth_email", "m4@example.com"),
        ("X-AUTH-ROLES", "root"),
        ("X-Auth-Roles", "root2"),
        ("X_AUTH_ROLES", "root3"),
        ("X-Auth-User-Id", "0"),
        ("x_auth-user_id", "0"),
        ("X-Auth-Other", "kept"),
    ];
    let json = get(addr, "/", &forged).await.json();
    assert_eq!(echoed(&json, "x-auth-user-id"), ["u-1"]);
    assert_eq!(echoed(&json, "x-auth-email"), ["alice@example.com"]);
    assert_eq!(echoed(&json, "x-auth-roles"), ["admin,member"]);
    assert_eq!(echoed(&json, "x-auth-other"), ["kept"]);
    for name in echoed_names(&json) {
        assert!(!name.contains('_'), "{name} reached the upstream: {json}");
    }
    let body = json.to_string();
    for value in ["mallory", "m2@", "m3@", "m4@", "root"] {
        assert!(
            !body.contains(value),
            "{value} reached the upstream: {body}"
        );
    }
}

#[tokio::test]
async fn anonymous_request_gets_three_empty_identity_headers() {
    let addr = echo_proxy(Spec {
        identity: None,
        ..Spec::default()
    })
    .await;
    let json = get(addr, "/", &[("X-Auth-Email", "forged@example.com")])
        .await
        .json();
    for name in ["x-auth-user-id", "x-auth-email", "x-auth-roles"] {
        assert_eq!(echoed(&json, name), [""], "{name}: {json}");
    }
}

#[tokio::test]
async fn session_cookie_is_removed_and_other_cookies_stay() {
    let addr = echo_proxy(Spec::default()).await;
    let cases: &[(&[&str], &[&str])] = &[
        (&["a=1; latchkey_session=SECRET1; b=2"], &["a=1; b=2"]),
        (&["latchkey_session=SECRET2"], &[]),
        (&["theme=dark", "latchkey_session=SECRET3"], &["theme=dark"]),
        (&["x=1;latchkey_session=SECRET4;y=2"], &["x=1;y=2"]),
        (
            &["latchkey_session_hint=yes"],
            &["latchkey_session_hint=yes"],
        ),
    ];
    for (sent, want) in cases {
        let headers: Vec<(&str, &str)> = sent.iter().map(|c| ("Cookie", *c)).collect();
        let json = get(addr, "/", &headers).await.json();
        assert_eq!(echoed(&json, "cookie"), *want, "sent {sent:?}");
        assert!(!json.to_string().contains("SECRET"), "{json}");
    }
}

#[tokio::test]
async fn hop_by_hop_and_connection_named_headers_are_removed() {
    let addr = echo_proxy(Spec::default()).await;
    let json = get(
        addr,
        "/",
        &[
            ("Connection", "keep-alive, X-Secret"),
            ("X-Secret", "hop"),
            ("Keep-Alive", "timeout=5"),
            ("Proxy-Connection", "keep-alive"),
            ("TE", "trailers"),
            ("Trailer", "X-Checksum"),
            ("Upgrade", "h2c"),
            ("Proxy-Authorization", "Basic dXNlcjpwYXNz"),
            ("X-Kept", "end-to-end"),
        ],
    )
    .await
    .json();
    for name in [
        "connection",
        "x-secret",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "upgrade",
        "proxy-authorization",
    ] {
        assert!(echoed(&json, name).is_empty(), "{name} reached: {json}");
    }
    assert_eq!(echoed(&json, "x-kept"), ["end-to-end"]);
}

#[tokio::test]
async fn hop_by_hop_headers_are_removed_from_the_response() {
    let (up, _) = serve(|_req| async {
        Response::builder()
            .header("Connection", "X-Up-Secret")
            .header("X-Up-Secret", "1")
            .header("Keep-Alive", "timeout=5")
            .header("Proxy-Authenticate", "Basic")
            .header("Trailer", "X-Sum")
            .header("X-Kept", "yes")
            .body(full("ok"))
            .unwrap()
    })
    .await;
    let addr = start_proxy(&format!("http://{up}"), Spec::default()).await;
    let resp = get(addr, "/", &[]).await;
    assert_eq!(resp.body, "ok");
    assert_eq!(resp.header("x-kept"), Some("yes"));
    for name in [
        "connection",
        "x-up-secret",
        "keep-alive",
        "proxy-authenticate",
        "trailer",
    ] {
        assert_eq!(resp.header(name), None, "{name}: {:?}", resp.headers);
    }
}

#[tokio::test]
async fn forwarded_headers_start_fresh_for_untrusted_peers() {
    let addr = echo_proxy(Spec::default()).await;
    let json = get(
        addr,
        "/",
        &[
            ("Host", "app.example.com"),
            ("X-Forwarded-For", "6.6.6.6"),
            ("X-Forwarded-Proto", "https"),
            ("X-Forwarded-Host", "evil.example.net"),
            ("X-Real-IP", "6.6.6.6"),
            ("Forwarded", "for=6.6.6.6;proto=https"),
        ],
    )
    .await
    .json();
    assert_eq!(echoed(&json, "x-forwarded-for"), ["203.0.113.7"]);
    assert_eq!(echoed(&json, "x-forwarded-proto"), ["http"]);
    assert_eq!(echoed(&json, "x-forwarded-host"), ["app.example.com"]);
    assert_eq!(echoed(&json, "x-real-ip"), ["203.0.113.7"]);
    assert_eq!(echoed(&json, "host"), ["app.example.com"], "Host kept");
    assert!(echoed(&json, "forwarded").is_empty(), "{json}");
}

#[tokio::test]
async fn forwarded_for_is_appended_for_trusted_peers() {
    let addr = echo_proxy(Spec {
        trusted: true,
        proto: "https",
        client_ip: "198.51.100.1".parse().unwrap(),
        peer_ip: "2001:db8::7".parse().unwrap(),
        ..Spec::default()
    })
    .await;
    let json = get(
        addr,
        "/",
        &[
            ("Host", "app.example.com:8443"),
            ("X-Forwarded-For", "198.51.100.1, 10.0.0.2"),
        ],
    )
    .await
    .json();
    assert_eq!(
        echoed(&json, "x-forwarded-for"),
        ["198.51.100.1, 10.0.0.2, 2001:db8::7"],
        "the prior list plus the peer"
    );
    assert_eq!(echoed(&json, "x-real-ip"), ["198.51.100.1"], "the client");
    assert_eq!(echoed(&json, "x-forwarded-proto"), ["https"]);
    assert_eq!(echoed(&json, "x-forwarded-host"), ["app.example.com:8443"]);
    assert_eq!(echoed(&json, "host"), ["app.example.com:8443"]);
}

#[tokio::test]
async fn upstream_receives_the_normalized_path_and_original_query() {
    let echo = start_echo().await;
    let normalized = "/a/b/c?x=%41&y=..%2F";
    let spec = Spec {
        path_and_query: Some(normalized.into()),
        ..Spec::default()
    };
    let plain = start_proxy(&format!("http://{echo}"), spec.clone()).await;
    let prefixed = start_proxy(&format!("http://{echo}/base/"), spec).await;
    for (addr, want) in [(plain, normalized), (prefixed, "/base/a/b/c?x=%41&y=..%2F")] {
        let out = raw(
            addr,
            b"GET /a/./b//%63?x=%41&y=..%2F HTTP/1.1\r\nHost: app\r\nAccept: application/json\r\nConnection: close\r\n\r\n",
        )
        .await;
        assert!(out.starts_with("HTTP/1.1 200"), "{out}");
        let body = &out[out.find("\r\n\r\n").unwrap() + 4..];
        let json: Value = serde_json::from_str(body).unwrap();
        assert_eq!(json["uri"], want, "{json}");
    }
}

#[tokio::test]
async fn five_megabyte_request_body_streams_through() {
    let addr = echo_proxy(Spec::default()).await;
    let body: Vec<u8> = (0..5 * 1024 * 1024)
        .map(|i| b'a' + (i % 26) as u8)
        .collect();
    let resp = send(addr, "POST", "/upload", &[], &body).await;
    assert_eq!(resp.status, 200, "{}", resp.body);
    let json = resp.json();
    assert_eq!(json["body_len"], body.len() as u64);
    assert_eq!(
        json["body"].as_str().unwrap().as_bytes(),
        &body[..64 * 1024]
    );
}

#[tokio::test]
async fn chunked_request_body_is_reframed_correctly() {
    let addr = echo_proxy(Spec::default()).await;
    let out = raw(
        addr,
        b"POST /c HTTP/1.1\r\nHost: app\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
    )
    .await;
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    assert!(out.contains(r#""body":"hello world""#), "{out}");
    assert!(out.contains(r#""body_len":11"#), "{out}");
}

/// A response body fed from a channel, so the test decides when each chunk
/// is produced.
struct ChannelBody(tokio::sync::mpsc::Receiver<Bytes>);

impl hyper::body::Body for ChannelBody {
    type Data = Bytes;
    type Error = hyper::Error;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        self.0.poll_recv(cx).map(|b| b.map(|b| Ok(Frame::data(b))))
    }
}

#[tokio::test]
async fn large_response_streams_without_buffering() {
    const CHUNK: usize = 64 * 1024;
    const CHUNKS: usize = 160; // 10 MiB
    let (go_tx, go_rx) = tokio::sync::watch::channel(false);
    let (up, _) = serve(move |_req| {
        let mut go = go_rx.clone();
        async move {
            let (tx, rx) = tokio::sync::mpsc::channel(4);
            tokio::spawn(async move {
                let _ = tx.send(Bytes::from(vec![b'x'; CHUNK])).await;
                // The rest only once the client has seen the first chunk:
                // a buffering proxy would wait forever here.
                let _ = go.wait_for(|go| *go).await;
                for _ in 1..CHUNKS {
                    if tx.send(Bytes::from(vec![b'x'; CHUNK])).await.is_err() {
                        return;
                    }
                }
            });
            Response::new(ChannelBody(rx).boxed())
        }
    })
    .await;
    let addr = start_proxy(&format!("http://{up}"), Spec::default()).await;

    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let req = Request::get("/big")
        .header("host", "app")
        .body(http_body_util::Empty::<Bytes>::new())
        .unwrap();
    let resp = tokio::time::timeout(Duration::from_secs(10), sender.send_request(req))
        .await
        .expect("response head in time")
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let mut body = resp.into_body();
    let mut received = 0;
    while received < CHUNK {
        let frame = tokio::time::timeout(Duration::from_secs(10), body.frame())
            .await
            .expect("first chunk arrives before the upstream finished")
            .unwrap()
            .unwrap();
        received += frame.data_ref().map_or(0, Bytes::len);
    }
    go_tx.send(true).unwrap();
    while let Some(frame) = tokio::time::timeout(Duration::from_secs(20), body.frame())
        .await
        .expect("rest of the body in time")
    {
        received += frame.unwrap().data_ref().map_or(0, Bytes::len);
    }
    assert_eq!(received, CHUNK * CHUNKS);
}

#[tokio::test]
async fn upstream_connections_are_pooled() {
    let (up, accepted) = serve(|_req| async { Response::new(full("ok")) }).await;
    let addr = start_proxy(&format!("http://{up}"), Spec::default()).await;
    for _ in 0..5 {
        assert_eq!(get(addr, "/", &[]).await.body, "ok");
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 1, "one pooled connection");
}

#[tokio::test]
async fn upstream_down_is_502() {
    let down = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let addr = start_proxy(&format!("http://{down}"), Spec::default()).await;
    let resp = send(addr, "GET", "/", &[], b"").await;
    assert_eq!(resp.status, 502, "{}", resp.body);
}

#[tokio::test]
async fn silent_upstream_is_504_after_the_timeout() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream); // accepted, never answered
        }
    });
    let timeout = Duration::from_millis(300);
    let addr = start_proxy(
        &format!("http://{silent}"),
        Spec {
            timeout,
            ..Spec::default()
        },
    )
    .await;
    let started = Instant::now();
    let resp = send(addr, "GET", "/", &[], b"").await;
    let took = started.elapsed();
    assert_eq!(resp.status, 504, "{}", resp.body);
    assert!(took >= timeout, "answered after {took:?}");
    assert!(took < Duration::from_secs(5), "answered after {took:?}");
}

#[tokio::test]
async fn upgrade_tunnels_bytes_both_ways() {
    let addr = echo_proxy(Spec::default()).await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(
            b"GET /ws HTTP/1.1\r\nHost: app\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
              Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
        )
        .await
        .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut byte))
            .await
            .expect("101 in time")
            .unwrap();
        assert_eq!(n, 1, "closed after {:?}", String::from_utf8_lossy(&head));
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(head.contains("upgrade: websocket"), "{head}");
    assert!(head.contains("connection: upgrade"), "{head}");

    for message in [b"ping-1".to_vec(), vec![7u8; 200 * 1024], b"bye".to_vec()] {
        stream.write_all(&message).await.unwrap();
        let mut back = vec![0u8; message.len()];
        tokio::time::timeout(Duration::from_secs(10), stream.read_exact(&mut back))
            .await
            .expect("echo in time")
            .unwrap();
        assert_eq!(back, message);
    }
}

#[tokio::test]
async fn echo_html_page_shows_identity_through_the_proxy() {
    let addr = echo_proxy(Spec::default()).await;
    let browser = Browser::new(addr).with_host("app.example.com");
    let resp = browser.get("/page?q='x'&r=%3Cb%3E", &[]).await;
    assert_eq!(resp.status, 200);
    assert!(resp
        .header("content-type")
        .unwrap()
        .starts_with("text/html"));
    assert!(resp
        .body
        .contains("Signed in as <strong>alice@example.com</strong>"));
    assert!(
        resp.body
            .contains("&#x2f;page?q=&#x27;x&#x27;&amp;r=%3Cb%3E"),
        "{}",
        resp.body
    );
    assert!(resp.body.contains("app.example.com"));
}

#[tokio::test]
async fn browser_keeps_and_deletes_cookies() {
    let (up, _) = serve(|req: Request<Incoming>| async move {
        let cookies = req
            .headers()
            .get("cookie")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let mut resp = Response::builder();
        match req.uri().path() {
            "/set" => {
                resp = resp
                    .header("set-cookie", "a=1; Path=/; HttpOnly")
                    .header("set-cookie", "b=2; Max-Age=3600")
                    .header("set-cookie", "c=3; Expires=Wed, 01 Jan 2100 00:00:00 GMT")
            }
            "/del" => {
                resp = resp.header("set-cookie", "a=; Max-Age=0").header(
                    "set-cookie",
                    "b=gone; Expires=Thu, 01 Jan 1970 00:00:00 GMT",
                )
            }
            _ => {}
        }
        resp.body(full(cookies)).unwrap()
    })
    .await;
    let browser = Browser::new(up);
    assert_eq!(browser.get("/set", &[]).await.body, "");
    assert_eq!(browser.get("/", &[]).await.body, "a=1; b=2; c=3");
    browser.get("/del", &[]).await;
    assert_eq!(browser.cookie("a"), None);
    assert_eq!(browser.cookie("c").as_deref(), Some("3"));
    browser.set_cookie("d", "4");
    assert_eq!(browser.get("/", &[]).await.body, "c=3; d=4");
    assert_eq!(
        browser.get("/", &[("Cookie", "only=me")]).await.body,
        "only=me"
    );
    browser.clear();
    assert_eq!(browser.get("/", &[]).await.body, "");
}
