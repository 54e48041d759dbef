//! Running latchkey in production: HTTPS (with a CA made here and a client
//! that verifies it), certificate renewal on disk, SIGHUP reload, SIGTERM
//! drain, HTTPS upstreams, and connection limits against slow and
//! oversized clients. All against the real binary and real signals.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsAcceptor;

use crate::flow::start_echo;
use crate::support::http::{raw, send};
use crate::support::latchkey::Latchkey;
use crate::support::temp_dir;
use crate::support::tls::TestCa;

/// A TLS connection to `addr` verified against `ca` for `localhost`.
async fn tls_connect(addr: SocketAddr, ca: &TestCa, alpn: &[&[u8]]) -> TlsStream<TcpStream> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    ca.client(alpn)
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap_or_else(|e| panic!("TLS handshake with {addr}: {e}"))
}

fn peer_cert(stream: &TlsStream<TcpStream>) -> Vec<u8> {
    stream.get_ref().1.peer_certificates().unwrap()[0].to_vec()
}

/// Status and body of a GET over HTTP/2.
async fn h2_get(stream: TlsStream<TcpStream>, url: &str) -> (StatusCode, String) {
    let (mut sender, conn) = hyper::client::conn::http2::handshake::<_, _, Empty<Bytes>>(
        TokioExecutor::new(),
        TokioIo::new(stream),
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    let resp = sender
        .send_request(Request::get(url).body(Empty::new()).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// An HTTP/1.1 connection kept open for several requests.
async fn h1_client(
    stream: TlsStream<TcpStream>,
) -> hyper::client::conn::http1::SendRequest<Empty<Bytes>> {
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    sender
}

async fn h1_get(
    sender: &mut hyper::client::conn::http1::SendRequest<Empty<Bytes>>,
    host: &str,
    path: &str,
) -> (StatusCode, String) {
    sender.ready().await.unwrap();
    let req = Request::get(path)
        .header("host", host)
        .body(Empty::new())
        .unwrap();
    let resp = sender.send_request(req).await.unwrap();
    let status = resp.status();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

fn echoed_header(body: &str, name: &str) -> Option<String> {
    let v: serde_json::Value =
        serde_json::from_str(body).unwrap_or_else(|e| panic!("not the echo's JSON ({e}): {body}"));
    v["headers"]
        .as_array()?
        .iter()
        .find(|p| p[0].as_str().is_some_and(|n| n.eq_ignore_ascii_case(name)))
        .and_then(|p| p[1].as_str().map(str::to_owned))
}

/// latchkey over HTTPS on `localhost`, proxying `localhost` to `upstream`;
/// `/public/**` is public.
fn https_config(port: u16, cert: &Path, key: &Path, upstream: SocketAddr, extra: &str) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:{port}"
public_url = "https://localhost:{port}"
header_read_timeout = "30s"
{extra}

[server.tls]
cert = "{}"
key = "{}"

[[apps]]
host = "localhost"
upstream = "http://{upstream}"

[[rules]]
path = "/public/**"
policy = "public"
"#,
        cert.display(),
        key.display()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_offers_h2_and_http1_with_a_verifiable_certificate() {
    let ca = TestCa::new();
    let certs = temp_dir();
    let (cert, key) = ca.leaf("first").write(certs.path());
    let echo = start_echo().await;
    let lk = Latchkey::start(|port| https_config(port, &cert, &key, echo, ""));
    let url = format!("https://localhost:{}/public/x", lk.port);

    let h2 = tls_connect(lk.addr, &ca, &[b"h2", b"http/1.1"]).await;
    assert_eq!(h2.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (status, body) = h2_get(h2, &url).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        echoed_header(&body, "x-forwarded-proto").as_deref(),
        Some("https")
    );

    let h1 = tls_connect(lk.addr, &ca, &[b"http/1.1"]).await;
    assert_eq!(h1.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    let mut sender = h1_client(h1).await;
    let (status, body) = h1_get(&mut sender, "localhost", "/public/x").await;
    assert_eq!(status, 200, "{body}");

    // A client that does not trust the test CA is refused by its own check.
    let other = TestCa::new();
    let tcp = TcpStream::connect(lk.addr).await.unwrap();
    let refused = other
        .client(&[b"h2"])
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await;
    assert!(
        refused.is_err(),
        "a certificate from another CA was accepted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewed_certificate_is_served_without_a_restart() {
    let ca = TestCa::new();
    let certs = temp_dir();
    let first = ca.leaf("first");
    let (cert, key) = first.write(certs.path());
    let echo = start_echo().await;
    let lk = Latchkey::start(|port| https_config(port, &cert, &key, echo, ""));

    let stream = tls_connect(lk.addr, &ca, &[b"http/1.1"]).await;
    assert_eq!(peer_cert(&stream), first.der);
    let mut open = h1_client(stream).await;
    assert_eq!(h1_get(&mut open, "localhost", "/public/a").await.0, 200);

    // Renewal: new key and certificate written over the old files.
    let second = ca.leaf("second");
    second.write(certs.path());
    let renewed_at = Instant::now();
    loop {
        let s = tls_connect(lk.addr, &ca, &[b"http/1.1"]).await;
        if peer_cert(&s) == second.der {
            break;
        }
        assert!(
            renewed_at.elapsed() < Duration::from_secs(20),
            "the new certificate was not served:\n{}",
            lk.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!(
        "renewed certificate served {:?} after the files changed",
        renewed_at.elapsed()
    );
    // The connection opened before the renewal still works.
    assert_eq!(h1_get(&mut open, "localhost", "/public/b").await.0, 200);

    // A broken renewal keeps the good certificate.
    std::fs::write(&cert, "-----BEGIN CERTIFICATE-----\nnot base64\n").unwrap();
    lk.wait_for_log(
        "still serving the previous certificate",
        Duration::from_secs(20),
    );
    let s = tls_connect(lk.addr, &ca, &[b"http/1.1"]).await;
    assert_eq!(peer_cert(&s), second.der);

    // SIGHUP reads the files too: fixed files are picked up by it.
    let third = ca.leaf("third");
    third.write(certs.path());
    lk.signal("HUP");
    let deadline = Instant::now() + Duration::from_secs(20);
    while peer_cert(&tls_connect(lk.addr, &ca, &[b"http/1.1"]).await) != third.der {
        assert!(Instant::now() < deadline, "{}", lk.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub(crate) fn plain_config(port: u16, upstream: &str, rules: &str, extra: &str) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:{port}"
public_url = "http://auth.test:{port}"
{extra}

[[apps]]
host = "app.test"
upstream = "{upstream}"

[[apps]]
host = "auth.test"

[[rules]]
path = "/public/**"
policy = "public"
{rules}
"#
    )
}

async fn get(addr: SocketAddr, host: &str, path: &str) -> u16 {
    send(addr, "GET", path, &[("host", host)], b"").await.status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_applies_a_changed_rule_and_keeps_running_on_a_broken_config() {
    let echo = start_echo().await;
    let upstream = format!("http://{echo}");
    let lk = Latchkey::start(|port| plain_config(port, &upstream, "", ""));
    assert_ne!(get(lk.addr, "app.test", "/reports/q1").await, 200);

    let opened = r#"
[[rules]]
path = "/reports/**"
policy = "public"
"#;
    std::fs::write(
        lk.config_path(),
        plain_config(lk.port, &upstream, opened, ""),
    )
    .unwrap();
    lk.signal("HUP");
    lk.wait_for_log("config reloaded", Duration::from_secs(10));
    assert_eq!(get(lk.addr, "app.test", "/reports/q1").await, 200);

    // Broken: two problems, both logged; the running config stays.
    let broken = r#"
[[rules]]
path = "/reports/**"
policy = "sometimes"

[session]
idle_timeout = "soon"
"#;
    std::fs::write(
        lk.config_path(),
        plain_config(lk.port, &upstream, broken, ""),
    )
    .unwrap();
    lk.signal("HUP");
    lk.wait_for_log("config reload refused", Duration::from_secs(10));
    lk.wait_for_log("session.idle_timeout", Duration::from_secs(5));
    lk.wait_for_log("\"sometimes\"", Duration::from_secs(5));
    assert_eq!(get(lk.addr, "app.test", "/reports/q1").await, 200);
    assert_ne!(get(lk.addr, "app.test", "/private").await, 200);

    // A change that needs a restart is applied where it can be and named.
    let moved = plain_config(lk.port, &upstream, "", "max_connections = 7");
    std::fs::write(lk.config_path(), moved).unwrap();
    lk.signal("HUP");
    lk.wait_for_log(
        "restart needed for: server.max_connections",
        Duration::from_secs(10),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while get(lk.addr, "app.test", "/reports/q1").await == 200 {
        assert!(Instant::now() < deadline, "rule removal not applied");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// An upstream that answers `/slow` after `delay`, and tells when a
/// request arrived.
pub(crate) async fn slow_upstream(
    delay: Duration,
) -> (SocketAddr, tokio::sync::mpsc::Receiver<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |_req: Request<hyper::body::Incoming>| {
                    let tx = tx.clone();
                    async move {
                        let _ = tx.send(()).await;
                        tokio::time::sleep(delay).await;
                        Ok::<_, std::convert::Infallible>(http::Response::new(
                            http_body_util::Full::new(Bytes::from_static(b"slow answer")),
                        ))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    (addr, rx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_a_slow_proxied_request_refuses_new_ones_and_exits_0() {
    let (upstream, mut arrived) = slow_upstream(Duration::from_millis(1500)).await;
    let rules = r#"
[[rules]]
path = "/slow"
policy = "public"
"#;
    let mut lk =
        Latchkey::start(|port| plain_config(port, &format!("http://{upstream}"), rules, ""));
    let addr = lk.addr;
    let started = Instant::now();
    let inflight =
        tokio::spawn(async move { send(addr, "GET", "/slow", &[("host", "app.test")], b"").await });
    tokio::time::timeout(Duration::from_secs(10), arrived.recv())
        .await
        .expect("the request reached the upstream");

    lk.signal("TERM");
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(addr).await.is_ok() {
        assert!(
            Instant::now() < deadline,
            "still accepting after SIGTERM:\n{}",
            lk.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let refused_after = started.elapsed();

    let resp = inflight.await.unwrap();
    assert_eq!(resp.status, 200, "{}", resp.body);
    assert_eq!(resp.body, "slow answer");
    let status = lk
        .wait_exit(Duration::from_secs(15))
        .unwrap_or_else(|| panic!("latchkey did not exit:\n{}", lk.log()));
    assert_eq!(status.code(), Some(0), "{}", lk.log());
    println!(
        "SIGTERM: refusing new connections {refused_after:?} after the slow request began; \
         it finished, and latchkey exited 0, {:?} after it began",
        started.elapsed()
    );
}

/// An HTTPS upstream with a certificate from `ca`, answering with the path.
async fn tls_upstream(ca: &TestCa) -> SocketAddr {
    let leaf = ca.leaf("upstream");
    let chain = vec![CertificateDer::from(leaf.der.clone())];
    let key = PrivateKeyDer::from_pem_slice(leaf.key_pem.as_bytes()).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(latchkey::tls::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(stream).await else {
                    return;
                };
                let svc = service_fn(|req: Request<hyper::body::Incoming>| async move {
                    Ok::<_, std::convert::Infallible>(http::Response::new(
                        http_body_util::Full::new(Bytes::from(format!(
                            "tls upstream got {}",
                            req.uri().path()
                        ))),
                    ))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), svc)
                    .await;
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_upstreams_are_verified_against_the_configured_ca() {
    let ca = TestCa::new();
    let dir = temp_dir();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca.pem()).unwrap();
    let upstream = tls_upstream(&ca).await;
    let up_port = upstream.port();
    let lk = Latchkey::start(|port| {
        format!(
            r#"
[server]
listen = "127.0.0.1:{port}"
public_url = "http://auth.test:{port}"

[[apps]]
host = "app.test"
upstream = "https://localhost:{up_port}/base"
ca_file = "{}"

[[apps]]
host = "roots.test"
upstream = "https://localhost:{up_port}"

[[rules]]
path = "/public/**"
policy = "public"
"#,
            ca_file.display()
        )
    });
    let resp = send(lk.addr, "GET", "/public/x", &[("host", "app.test")], b"").await;
    assert_eq!(resp.status, 200, "{}\n{}", resp.body, lk.log());
    assert_eq!(resp.body, "tls upstream got /base/public/x");

    // The public web roots do not vouch for the test CA: 502, not a pass.
    let resp = send(lk.addr, "GET", "/public/x", &[("host", "roots.test")], b"").await;
    assert_eq!(resp.status, 502, "{}", resp.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_listener_redirects_to_https() {
    let ca = TestCa::new();
    let certs = temp_dir();
    let (cert, key) = ca.leaf("first").write(certs.path());
    let echo = start_echo().await;
    let redirect_port = crate::support::free_port();
    let lk = Latchkey::start(|port| {
        https_config(
            port,
            &cert,
            &key,
            echo,
            &format!("http_redirect_listen = \"127.0.0.1:{redirect_port}\""),
        )
    });
    let plain: SocketAddr = format!("127.0.0.1:{redirect_port}").parse().unwrap();
    let resp = send(plain, "GET", "/public/x?y=1", &[("host", "localhost")], b"").await;
    assert_eq!(resp.status, 308);
    assert_eq!(
        resp.header("location"),
        Some(format!("https://localhost:{}/public/x?y=1", lk.port).as_str())
    );
    let resp = send(plain, "GET", "/", &[("host", "evil.example")], b"").await;
    assert_eq!(
        resp.header("location"),
        Some(format!("https://localhost:{}/", lk.port).as_str())
    );
}

/// Opens `n` connections that send a request head one byte every
/// `every`, and returns a receiver of how long each lasted until the
/// server closed it.
async fn slowloris(
    addr: SocketAddr,
    n: usize,
    every: Duration,
) -> tokio::sync::mpsc::Receiver<Duration> {
    let (tx, rx) = tokio::sync::mpsc::channel(n);
    for _ in 0..n {
        let stream = TcpStream::connect(addr).await.unwrap();
        let tx = tx.clone();
        tokio::spawn(async move {
            let began = Instant::now();
            let (mut read, mut write) = stream.into_split();
            let _ = write
                .write_all(b"GET /public/ HTTP/1.1\r\nHost: app.test\r\nX-Slow: ")
                .await;
            let mut tick = tokio::time::interval(every);
            let mut buf = [0u8; 1024];
            // Bounded: a server that never closes ends the loop after 60 s.
            for _ in 0..(60_000 / every.as_millis().max(1)) {
                tokio::select! {
                    got = read.read(&mut buf) => match got {
                        Ok(0) | Err(_) => break,
                        Ok(_) => {}
                    },
                    _ = tick.tick() => {
                        if write.write_all(b"a").await.is_err() {
                            break;
                        }
                    }
                }
            }
            let _ = tx.send(began.elapsed()).await;
        });
    }
    rx
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_do_not_starve_a_normal_request_and_are_cut_off() {
    let echo = start_echo().await;
    let upstream = format!("http://{echo}");
    let lk =
        Latchkey::start(|port| plain_config(port, &upstream, "", "header_read_timeout = \"3s\""));
    let n = 300;
    let mut closed = slowloris(lk.addr, n, Duration::from_millis(200)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    let began = Instant::now();
    let resp = send(lk.addr, "GET", "/public/ok", &[("host", "app.test")], b"").await;
    let latency = began.elapsed();
    assert_eq!(resp.status, 200, "{}", resp.body);

    let mut lasted = Vec::new();
    while lasted.len() < n {
        match tokio::time::timeout(Duration::from_secs(30), closed.recv()).await {
            Ok(Some(d)) => lasted.push(d),
            _ => panic!(
                "only {} of {n} slow connections were closed by the server",
                lasted.len()
            ),
        }
    }
    lasted.sort();
    println!(
        "with {n} slow connections open, a normal request took {latency:?}; \
         header_read_timeout 3s closed them after {:?} (first) to {:?} (last)",
        lasted[0],
        lasted[n - 1]
    );
    // Still serving afterwards.
    assert_eq!(get(lk.addr, "app.test", "/public/again").await, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_requests_get_4xx_and_limits_hold() {
    let echo = start_echo().await;
    let upstream = format!("http://{echo}");
    let lk = Latchkey::start(|port| {
        plain_config(
            port,
            &upstream,
            "",
            "max_headers = 20\nmax_header_bytes = 16384\nkeepalive_timeout = \"1s\"\nheader_read_timeout = \"30s\"",
        )
    });

    let many: String = (0..30).map(|i| format!("X-H{i}: v\r\n")).collect();
    let resp = raw(
        lk.addr,
        format!("GET /public/ HTTP/1.1\r\nHost: app.test\r\n{many}\r\n").as_bytes(),
    )
    .await;
    assert!(resp.starts_with("HTTP/1.1 431"), "{resp}");

    let big = "a".repeat(20_000);
    let resp = raw(
        lk.addr,
        format!("GET /public/ HTTP/1.1\r\nHost: app.test\r\nX-Big: {big}\r\n\r\n").as_bytes(),
    )
    .await;
    assert!(resp.starts_with("HTTP/1.1 431"), "{resp}");

    // Latchkey's own forms: limits.form_body_bytes (8 KiB by default).
    let body = format!("email={}", "b".repeat(10_000));
    let resp = send(
        lk.addr,
        "POST",
        "/.latchkey/login",
        &[
            ("host", "auth.test"),
            ("content-type", "application/x-www-form-urlencoded"),
        ],
        body.as_bytes(),
    )
    .await;
    assert_eq!(resp.status, 413, "{}", resp.body);

    // An idle kept-alive connection is closed after keepalive_timeout.
    let mut stream = TcpStream::connect(lk.addr).await.unwrap();
    stream
        .write_all(b"GET /public/ HTTP/1.1\r\nHost: app.test\r\n\r\n")
        .await
        .unwrap();
    let began = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match tokio::time::timeout(Duration::from_secs(20), stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Err(_) => panic!("an idle connection stayed open 20 s"),
        }
    }
    assert!(got.starts_with(b"HTTP/1.1 200"));
    lk.wait_for_log("idle connection closed", Duration::from_secs(5));
    println!(
        "idle keep-alive connection closed {:?} after its request (keepalive_timeout 1s)",
        began.elapsed()
    );
    assert_eq!(get(lk.addr, "app.test", "/public/still").await, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_max_connections_are_closed() {
    let echo = start_echo().await;
    let upstream = format!("http://{echo}");
    let lk = Latchkey::start(|port| {
        plain_config(
            port,
            &upstream,
            "",
            "max_connections = 3\nheader_read_timeout = \"30s\"",
        )
    });
    // Three kept-alive connections that each had an answer.
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut s = TcpStream::connect(lk.addr).await.unwrap();
        s.write_all(b"GET /public/ HTTP/1.1\r\nHost: app.test\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 4096];
        let n = s.read(&mut buf).await.unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
        held.push(s);
    }
    let mut fourth = TcpStream::connect(lk.addr).await.unwrap();
    let _ = fourth
        .write_all(b"GET /public/ HTTP/1.1\r\nHost: app.test\r\n\r\n")
        .await;
    let mut buf = [0u8; 4096];
    let got = tokio::time::timeout(Duration::from_secs(10), fourth.read(&mut buf))
        .await
        .expect("the fourth connection was neither served nor closed");
    assert!(
        matches!(got, Ok(0) | Err(_)),
        "a fourth connection was served"
    );
    lk.wait_for_log("server.max_connections reached", Duration::from_secs(5));

    held.pop();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let resp = raw(lk.addr, b"GET /public/ HTTP/1.1\r\nHost: app.test\r\n\r\n").await;
        if resp.starts_with("HTTP/1.1 200") {
            break;
        }
        assert!(Instant::now() < deadline, "a freed slot was not reused");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `listen = "127.0.0.1:0"`: the kernel picks the port, and latchkey says
/// which in its `--ready-file` (how the test harness starts it without a
/// bind-then-release race), and serves there.
#[tokio::test]
async fn listen_on_port_zero_reports_the_bound_port() {
    let lk = Latchkey::start_on(0, |_| {
        "[server]\nlisten = \"127.0.0.1:0\"\npublic_url = \"http://auth.test\"\nadmin_listen = \"127.0.0.1:0\"\n"
            .to_owned()
    });
    assert_ne!(lk.port, 0, "the ready file names the port the kernel chose");
    let ready = std::fs::read_to_string(lk.dir.path().join("ready")).unwrap();
    let admin: SocketAddr = ready
        .lines()
        .find_map(|l| l.strip_prefix("admin="))
        .unwrap_or_else(|| panic!("no admin= line in {ready:?}"))
        .parse()
        .unwrap();
    assert_ne!(admin.port(), 0);
    let me = raw(
        lk.addr,
        b"GET /.latchkey/me HTTP/1.1\r\nHost: auth.test\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(me.starts_with("HTTP/1.1 401"), "{me}");
    let health = raw(
        admin,
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
}
