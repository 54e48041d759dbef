//! A small HTTP/1.1 client for the integration tests: one request per fresh
//! connection (`send`), a browser-like cookie jar (`Browser`), and raw bytes
//! over TCP (`raw`) for request targets no client library would send.
//! Everything panics with a clear message on failure: these are tests.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Request};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long any one exchange may take before the test fails.
const TIMEOUT: Duration = Duration::from_secs(30);

/// A whole response.
#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: String,
}

impl Resp {
    /// The first value of header `name`, if it is text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body as JSON, or a panic that shows the body.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| {
            panic!("response ({}) is not JSON: {e}\n{}", self.status, self.body)
        })
    }

    /// Every `Set-Cookie` value, in order.
    pub fn set_cookies(&self) -> Vec<String> {
        self.headers
            .get_all(http::header::SET_COOKIE)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect()
    }
}

/// Sends exactly the request given (no redirects followed, no normalization
/// of the target) over a fresh HTTP/1.1 connection to `addr`. The target
/// must be one `http::Uri` accepts (no raw `<`, `"`, spaces...); use [`raw`]
/// for anything else. `Host` is
/// `addr` unless `headers` has one. Repeated names in `headers` are sent as
/// repeated headers.
pub async fn send(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Resp {
    let mut req = Request::builder()
        .method(method)
        .uri(target)
        .body(Full::new(Bytes::copy_from_slice(body)))
        .unwrap_or_else(|e| panic!("cannot build {method} {target}: {e}"));
    let h = req.headers_mut();
    for (name, value) in headers {
        let name = HeaderName::from_bytes(name.as_bytes())
            .unwrap_or_else(|e| panic!("bad header name {name:?}: {e}"));
        let value = HeaderValue::from_bytes(value.as_bytes())
            .unwrap_or_else(|e| panic!("bad header value {value:?}: {e}"));
        h.append(name, value);
    }
    if !h.contains_key(http::header::HOST) {
        h.insert(
            http::header::HOST,
            HeaderValue::from_str(&addr.to_string()).expect("addr is a valid Host"),
        );
    }
    let exchange = async {
        let stream = TcpStream::connect(addr)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to {addr}: {e}"));
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap_or_else(|e| panic!("handshake with {addr}: {e}"));
        tokio::spawn(conn);
        let resp = sender
            .send_request(req)
            .await
            .unwrap_or_else(|e| panic!("{method} {target} to {addr}: {e}"));
        let (parts, body) = resp.into_parts();
        let body = body
            .collect()
            .await
            .unwrap_or_else(|e| panic!("reading the body of {method} {target}: {e}"))
            .to_bytes();
        Resp {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        }
    };
    tokio::time::timeout(TIMEOUT, exchange)
        .await
        .unwrap_or_else(|_| panic!("{method} {target} to {addr} took over {TIMEOUT:?}"))
}

/// One simulated browser: a cookie jar and browser-like default headers
/// (`Accept: text/html,...`, `User-Agent: latchkey-test-browser`).
///
/// Cookies from `Set-Cookie` are stored by name (Domain and Path are
/// ignored; one jar per `Browser`) and deleted by `Max-Age=0` or a past
/// `Expires`. Methods take `&self` so a `Browser` can be shared.
#[derive(Debug)]
pub struct Browser {
    addr: SocketAddr,
    host: Option<String>,
    jar: Mutex<BTreeMap<String, String>>,
}

impl Browser {
    pub fn new(addr: SocketAddr) -> Browser {
        Browser {
            addr,
            host: None,
            jar: Mutex::new(BTreeMap::new()),
        }
    }

    /// Sends `Host: host` on every request (a request's own `Host` in its
    /// headers still wins).
    pub fn with_host(mut self, host: &str) -> Browser {
        self.host = Some(host.to_owned());
        self
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub async fn get(&self, target: &str, headers: &[(&str, &str)]) -> Resp {
        self.request("GET", target, headers, b"").await
    }

    /// POSTs `form` as `application/x-www-form-urlencoded`.
    pub async fn post_form(
        &self,
        target: &str,
        form: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> Resp {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let mut all: Vec<(&str, &str)> =
            vec![("Content-Type", "application/x-www-form-urlencoded")];
        all.extend_from_slice(headers);
        self.request("POST", target, &all, body.as_bytes()).await
    }

    /// Any request, with the jar's cookies and the default headers; a header
    /// given here replaces the default of the same name (a `Cookie` given
    /// here replaces the jar's for this request).
    pub async fn request(
        &self,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Resp {
        let given = |name: &str| headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(name));
        let cookie = self.cookie_header();
        let mut all: Vec<(&str, &str)> = Vec::new();
        let defaults = [
            (
                "Accept",
                "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
            ),
            ("User-Agent", "latchkey-test-browser"),
        ];
        for (k, v) in defaults {
            if !given(k) {
                all.push((k, v));
            }
        }
        if let Some(host) = &self.host {
            if !given("host") {
                all.push(("Host", host));
            }
        }
        if !cookie.is_empty() && !given("cookie") {
            all.push(("Cookie", &cookie));
        }
        all.extend_from_slice(headers);
        let resp = send(self.addr, method, target, &all, body).await;
        self.store(&resp);
        resp
    }

    /// The jar's value for cookie `name`.
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.lock().get(name).cloned()
    }

    pub fn set_cookie(&self, name: &str, value: &str) {
        self.lock().insert(name.to_owned(), value.to_owned());
    }

    pub fn remove_cookie(&self, name: &str) {
        self.lock().remove(name);
    }

    /// Empties the jar.
    pub fn clear(&self) {
        self.lock().clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, String>> {
        self.jar.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn cookie_header(&self) -> String {
        self.lock()
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn store(&self, resp: &Resp) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        let mut jar = self.lock();
        for line in resp.set_cookies() {
            let c = cookie::Cookie::parse(line.clone())
                .unwrap_or_else(|e| panic!("unparsable Set-Cookie {line:?}: {e}"));
            let expired = c.max_age().is_some_and(|age| age.whole_seconds() <= 0)
                || c.expires_datetime()
                    .is_some_and(|t| c.max_age().is_none() && t.unix_timestamp() <= now);
            if expired {
                jar.remove(c.name());
            } else {
                jar.insert(c.name().to_owned(), c.value().to_owned());
            }
        }
    }
}

/// Writes `request` as-is over a fresh TCP connection and reads the
/// response as text: until the server closes, until a complete response
/// (by `Content-Length` or the last chunk) has arrived, or until 2 s pass
/// with nothing new.
pub async fn raw(addr: SocketAddr, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {addr}: {e}"));
    stream
        .write_all(request)
        .await
        .unwrap_or_else(|e| panic!("writing to {addr}: {e}"));
    let mut got = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        match tokio::time::timeout(Duration::from_secs(2), stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
            Ok(Ok(n)) => {
                got.extend_from_slice(&buf[..n]);
                if response_complete(&got) {
                    break;
                }
            }
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

/// Whether `bytes` hold one complete response (best effort; 1xx other than
/// 101 and bodies framed by close are left to the caller's wait).
fn response_complete(bytes: &[u8]) -> bool {
    let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&bytes[..end]).to_ascii_lowercase();
    let body = &bytes[end + 4..];
    let status = head.split_whitespace().nth(1).unwrap_or("");
    if status == "101" || status == "204" || status == "304" {
        return true;
    }
    for line in head.lines().skip(1) {
        if let Some((name, value)) = line.split_once(':') {
            let value = value.trim();
            match name.trim() {
                "content-length" => {
                    return value.parse::<usize>().is_ok_and(|n| body.len() >= n);
                }
                "transfer-encoding" if value.contains("chunked") => {
                    return body.ends_with(b"0\r\n\r\n");
                }
                _ => {}
            }
        }
    }
    false
}
