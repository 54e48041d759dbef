//! Adversarial tables against the real binary: path confusion in proxy mode
//! and through both forward-auth endpoints, open redirects at every place a
//! return address is followed, forged identity and forwarded headers, mail
//! scanners, abuse limits, CSRF, cookies and page headers. Adding a hostile
//! input is adding one line to a table.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use http::{HeaderMap, HeaderName, HeaderValue};

use crate::flow::{
    code_of, csrf_of, echoed, echoed_header, link_token, open_link, request_link, sign_in, Stack,
};
use crate::support::http::{raw, send, Browser, Resp};
use crate::support::latchkey::Latchkey;
use crate::support::proxies::FrontProxy;

// --- raw requests -------------------------------------------------------------

/// Sends `GET target` byte for byte (no client library would send most of
/// these targets) with `headers`, and parses the answer.
async fn raw_get(addr: SocketAddr, target: &[u8], headers: &[(&str, &[u8])]) -> Resp {
    let mut req = b"GET ".to_vec();
    req.extend_from_slice(target);
    req.extend_from_slice(b" HTTP/1.1\r\n");
    for (name, value) in headers {
        req.extend_from_slice(name.as_bytes());
        req.extend_from_slice(b": ");
        req.extend_from_slice(value);
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"Connection: close\r\n\r\n");
    parse_response(&raw(addr, &req).await)
}

fn parse_response(text: &str) -> Resp {
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no complete response head in {text:?}"));
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"));
    let mut headers = HeaderMap::new();
    for line in lines {
        if let Some((k, v)) = line.split_once(':') {
            if let (Ok(k), Ok(v)) = (
                HeaderName::from_bytes(k.trim().as_bytes()),
                HeaderValue::from_str(v.trim()),
            ) {
                headers.append(k, v);
            }
        }
    }
    let chunked = headers
        .get("transfer-encoding")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"chunked"));
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_owned()
    };
    Resp {
        status,
        headers,
        body,
    }
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].strip_prefix("\r\n").unwrap_or(&rest[n..]);
    }
    out
}

// --- 1. path confusion --------------------------------------------------------

/// How latchkey must treat a request target.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// 400 (or 403 from the Nginx endpoint): ambiguous, never judged.
    Refused,
    /// Judged and forwarded as this path (plus the query), which is under
    /// `/admin/**`: admins only. (The path documents how it is judged.)
    #[allow(dead_code)]
    Admin(&'static str),
    /// ... under `/public/**`: anyone.
    Public(&'static str),
    /// ... anywhere else: any signed-in user.
    Other(&'static str),
}
use Expect::{Admin, Other, Public, Refused};

/// (target, in proxy mode, through forward-auth). Targets are sent raw.
const PATHS: &[(&str, Expect, Expect)] = &[
    ("/admin/x", Admin("/admin/x"), Admin("")),
    ("/admin", Admin("/admin"), Admin("")),
    ("/admin/", Admin("/admin/"), Admin("")),
    (
        "/admin/x?next=/public/",
        Admin("/admin/x?next=/public/"),
        Admin(""),
    ),
    // Case-sensitive by default (see case_insensitive_paths below).
    ("/Admin/x", Other("/Admin/x"), Other("")),
    ("/ADMIN/X", Other("/ADMIN/X"), Other("")),
    // Whole segments only.
    ("/administrator", Other("/administrator"), Other("")),
    ("/admin-panel/x", Other("/admin-panel/x"), Other("")),
    ("/admin.php", Other("/admin.php"), Other("")),
    ("/publicity/x", Other("/publicity/x"), Other("")),
    // Trailing dots and spaces are other names (except for IIS, below).
    ("/admin./x", Other("/admin./x"), Other("")),
    ("/admin%2e/x", Other("/admin./x"), Other("")),
    ("/admin%20/x", Other("/admin%20/x"), Other("")),
    ("/admin..;/x", Other("/admin..;/x"), Other("")),
    // Dot segments, plain and encoded in any case: resolved before judging.
    ("/public/../admin/x", Admin("/admin/x"), Admin("")),
    ("/public/./../admin/x", Admin("/admin/x"), Admin("")),
    ("/public/%2e%2e/admin/x", Admin("/admin/x"), Admin("")),
    ("/public/%2E%2E/admin/x", Admin("/admin/x"), Admin("")),
    ("/public/.%2e/admin/x", Admin("/admin/x"), Admin("")),
    ("/public/%2e./admin/x", Admin("/admin/x"), Admin("")),
    ("/public/%2E%2e/admin/x", Admin("/admin/x"), Admin("")),
    ("/public/x/../../admin/x", Admin("/admin/x"), Admin("")),
    (
        "/public/x/%2e%2e/%2e%2e/admin/x",
        Admin("/admin/x"),
        Admin(""),
    ),
    ("/public/%2e/../admin/x", Admin("/admin/x"), Admin("")),
    ("/admin/../admin/x", Admin("/admin/x"), Admin("")),
    ("/admin/x/..", Admin("/admin/"), Admin("")),
    ("/admin/x/.", Admin("/admin/x/"), Admin("")),
    ("/publicx/../admin", Admin("/admin"), Admin("")),
    ("/.latchkey/../admin/x", Admin("/admin/x"), Admin("")),
    ("/admin/../public/x", Public("/public/x"), Public("")),
    // Only dots and spaces: Windows reads `...` and `.. ` as `..`.
    ("/public/...", Refused, Refused),
    ("/public/.../admin/x", Refused, Refused),
    ("/public/..%20/admin/x", Refused, Refused),
    ("/public/.%20./admin/x", Refused, Refused),
    (
        "/public/x?/../../admin/x",
        Public("/public/x?/../../admin/x"),
        Public(""),
    ),
    // Climbing above the root.
    ("/../admin/x", Refused, Refused),
    ("/public/../../admin/x", Refused, Refused),
    ("/%2e%2e/admin/x", Refused, Refused),
    // Double encoding: an upstream that decodes twice would see "..".
    ("/public/%252e%252e/admin/x", Refused, Refused),
    ("/public/%252E%252E/admin/x", Refused, Refused),
    ("/public/%25%32%65%25%32%65/admin/x", Refused, Refused),
    ("/admin%2500/x", Refused, Refused),
    ("/public/%252f../admin/x", Refused, Refused),
    // Encoded slashes and backslashes, raw backslashes.
    ("/public/..%2fadmin/x", Refused, Refused),
    ("/public/..%2Fadmin/x", Refused, Refused),
    ("/public%2f..%2fadmin/x", Refused, Refused),
    ("/public/%2e%2e%2fadmin/x", Refused, Refused),
    ("/public/..%5cadmin/x", Refused, Refused),
    ("/public/..%5Cadmin/x", Refused, Refused),
    ("/public/..\\admin/x", Refused, Refused),
    ("/public\\..\\admin\\x", Refused, Refused),
    ("/admin\\x", Refused, Refused),
    // Path parameters: stripped for judging (also after an encoded `;`).
    ("/admin;/x", Admin("/admin;/x"), Admin("")),
    (
        "/admin;jsessionid=1/x",
        Admin("/admin;jsessionid=1/x"),
        Admin(""),
    ),
    ("/;x/admin/x", Admin("/;x/admin/x"), Admin("")),
    ("/admin%3b/x", Admin("/admin%3B/x"), Admin("")),
    ("/admin%3Bx=1/x", Admin("/admin%3Bx=1/x"), Admin("")),
    ("/public;x/../admin/x", Admin("/admin/x"), Admin("")),
    ("/public/..;/admin/x", Refused, Refused),
    ("/public/.;/admin/x", Refused, Refused),
    ("/public/%2e%2e;/admin/x", Refused, Refused),
    ("/public/..;x=1/admin/x", Refused, Refused),
    ("/public/..%3B/admin/x", Refused, Refused),
    ("/public/.%3b/admin/x", Refused, Refused),
    // Repeated slashes.
    ("//admin/x", Admin("/admin/x"), Admin("")),
    ("///admin///x", Admin("/admin/x"), Admin("")),
    ("/admin//x", Admin("/admin/x"), Admin("")),
    ("/public//../admin/x", Refused, Refused),
    ("/admin//../public/x", Refused, Refused),
    // NUL and other control characters, raw or encoded.
    ("/admin%00/x", Refused, Refused),
    ("/admin\0/x", Refused, Refused),
    ("/admin%09/x", Refused, Refused),
    ("/admin%0d%0a/x", Refused, Refused),
    ("/admin%7f/x", Refused, Refused),
    // Overlong UTF-8 and IIS-style %u escapes.
    ("/public/%c0%ae%c0%ae/admin/x", Refused, Refused),
    ("/public/..%c0%afadmin/x", Refused, Refused),
    ("/public/..%e0%80%afadmin/x", Refused, Refused),
    ("/public/%u002e%u002e/admin/x", Refused, Refused),
    ("/public/%%32%65%%32%65/admin/x", Refused, Refused),
    // Unreserved escapes are decoded: these ARE /admin.
    ("/%61dmin/x", Admin("/admin/x"), Admin("")),
    ("/%61%64%6D%69%6E/x", Admin("/admin/x"), Admin("")),
    ("/%41dmin/x", Other("/Admin/x"), Other("")),
    // Unicode look-alikes: letters are other names; separators refused.
    ("/%EF%BD%81dmin/x", Other("/%EF%BD%81dmin/x"), Other("")),
    ("/%D0%B0dmin/x", Other("/%D0%B0dmin/x"), Other("")),
    ("/public/%EF%BC%8E%EF%BC%8E/admin/x", Refused, Refused),
    ("/admin%EF%BC%8Fx", Refused, Refused),
    ("/public/%E2%80%A5/admin/x", Refused, Refused),
    // Raw UTF-8 is percent-encoded in proxy mode; a forward-auth header
    // that is not ASCII is refused rather than read as absent.
    ("/\u{FF41}dmin/x", Other("/%EF%BD%81dmin/x"), Refused),
    // Fragments are never sent: the proxy cuts the target at `#` (and
    // forwards what it judged); forward-auth refuses a raw `#`.
    ("/admin#/../public/x", Admin("/admin"), Refused),
    ("/public/x#/../../admin/x", Public("/public/x"), Refused),
];

/// Would any common upstream reading of `uri` (as is, decoded once or
/// twice; `\` as `/`; path parameters cut; dot segments resolved; empty
/// segments skipped) land under /admin?
fn reads_as_admin(uri: &str) -> bool {
    let path = uri.split('?').next().unwrap_or("");
    let once = percent_decode(path.as_bytes());
    let twice = percent_decode(&once);
    [path.as_bytes().to_vec(), once, twice].iter().any(|p| {
        let text = String::from_utf8_lossy(p).replace('\\', "/");
        let mut stack: Vec<&str> = Vec::new();
        for seg in text.split('/') {
            let seg = seg.split(';').next().unwrap_or("");
            match seg {
                "" | "." => {}
                ".." => {
                    stack.pop();
                }
                s => stack.push(s),
            }
        }
        stack.first() == Some(&"admin")
    })
}

fn percent_decode(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(v) = u8::from_str_radix(&String::from_utf8_lossy(&bytes[i + 1..i + 3]), 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Who {
    Anonymous,
    Bob,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    Proxy,
    Traefik,
    Nginx,
}

/// What one attempt must produce; `None` when it did.
fn judge_attempt(mode: Mode, who: Who, expect: Expect, target: &str, r: &Resp) -> Option<String> {
    let forwarded = |path: &str| -> Option<String> {
        if mode != Mode::Proxy {
            return (r.status != 200).then(|| format!("expected 200, got {}", r.status));
        }
        if r.status != 200 {
            return Some(format!("expected the app's answer, got {}", r.status));
        }
        let uri = r.json()["uri"].as_str().unwrap_or("").to_owned();
        if uri != path {
            return Some(format!("upstream received {uri:?}, expected {path:?}"));
        }
        if reads_as_admin(&uri) {
            return Some(format!("upstream received {uri:?}, which reads as /admin"));
        }
        None
    };
    let status_is = |want: &[u16]| -> Option<String> {
        (!want.contains(&r.status)).then(|| format!("expected {want:?}, got {}", r.status))
    };
    let _ = target;
    match (expect, who) {
        (Refused, _) if mode == Mode::Proxy => status_is(&[400]),
        (Refused, _) => status_is(&[400, 403]),
        (Public(p), _) => forwarded(p),
        (Admin(_) | Other(_), Who::Anonymous) => status_is(&[401]),
        (Admin(_), Who::Bob) => status_is(&[403]),
        (Other(p), Who::Bob) => forwarded(p),
    }
}

#[tokio::test]
async fn path_confusion_never_reaches_admin_in_any_mode() {
    assert!(PATHS.len() >= 50, "at least 50 bypass attempts");
    let stack = Stack::start("").await;
    let bob = stack.browser();
    sign_in(&stack, &bob, "bob@example.com").await;
    let session = format!(
        "latchkey_session={}",
        bob.cookie("latchkey_session").expect("session")
    );
    let host = stack.host();
    let mut failures = Vec::new();
    for (target, in_proxy, in_forward_auth) in PATHS {
        for who in [Who::Anonymous, Who::Bob] {
            for mode in [Mode::Proxy, Mode::Traefik, Mode::Nginx] {
                let mut headers: Vec<(&str, Vec<u8>)> =
                    vec![("Accept", b"application/json".to_vec())];
                if who == Who::Bob {
                    headers.push(("Cookie", session.clone().into_bytes()));
                }
                let request_target: Vec<u8> = match mode {
                    Mode::Proxy => {
                        headers.push(("Host", host.clone().into_bytes()));
                        target.as_bytes().to_vec()
                    }
                    Mode::Traefik => {
                        headers.push(("Host", host.clone().into_bytes()));
                        headers.push(("X-Forwarded-Method", b"GET".to_vec()));
                        headers.push(("X-Forwarded-Proto", b"http".to_vec()));
                        headers.push(("X-Forwarded-Host", b"app.test".to_vec()));
                        headers.push(("X-Forwarded-Uri", target.as_bytes().to_vec()));
                        b"/.latchkey/auth".to_vec()
                    }
                    Mode::Nginx => {
                        headers.push(("Host", b"auth.test".to_vec()));
                        let mut url = b"http://app.test".to_vec();
                        url.extend_from_slice(target.as_bytes());
                        headers.push(("X-Original-URL", url));
                        headers.push(("X-Original-Method", b"GET".to_vec()));
                        b"/.latchkey/auth/request".to_vec()
                    }
                };
                let h: Vec<(&str, &[u8])> =
                    headers.iter().map(|(k, v)| (*k, v.as_slice())).collect();
                let r = raw_get(stack.lk.addr, &request_target, &h).await;
                let expect = if mode == Mode::Proxy {
                    *in_proxy
                } else {
                    *in_forward_auth
                };
                if let Some(why) = judge_attempt(mode, who, expect, target, &r) {
                    failures.push(format!("{mode:?} {who:?} {target:?}: {why}"));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} attempts went wrong:\n{}",
        failures.len(),
        PATHS.len() * 6,
        failures.join("\n")
    );
}

#[tokio::test]
async fn case_insensitive_paths_guard_every_spelling_for_iis_like_upstreams() {
    let stack = Stack::start("[access]\ncase_insensitive_paths = true\n").await;
    let bob = stack.browser();
    sign_in(&stack, &bob, "bob@example.com").await;
    let json = [("accept", "application/json")];
    for path in [
        "/admin/x",
        "/ADMIN/x",
        "/Admin/x",
        "/%41dmin/x",
        "/admin./x",
        "/ADMIN%20/x",
        "/admin.%20./x",
        "/AdMiN;x/y",
    ] {
        let r = bob.get(path, &json).await;
        assert_eq!(r.status, 403, "{path}: {}", r.body);
    }
    let r = bob.get("/administrator", &json).await;
    assert_eq!(r.status, 200, "still whole segments only");
}

// --- 2. return addresses ----------------------------------------------------------

const RETURN_ADDRESSES: &[&str] = &[
    "//evil.example",
    "//evil.example/",
    "///evil.example",
    "////evil.example/x",
    "/\\evil.example",
    "/\\/evil.example",
    "\\/evil.example",
    "\\\\evil.example",
    "https:evil.example",
    "https:/evil.example",
    "https:///evil.example",
    "http:\\\\evil.example",
    "http://evil.example",
    "https://evil.example/",
    "HTTPS://EVIL.EXAMPLE/",
    "https://app.test@evil.example/",
    "https://app.test:x@evil.example/",
    "https://evil.example@app.test/",
    "https://evil.example\\@app.test/",
    "https://evil.example#@app.test/",
    "https://evil.example?@app.test/",
    "https://app.test.evil.example/",
    "https://evil.example/app.test",
    "https://app.test%2eevil.example/",
    "https://evil.example%2fapp.test/",
    "/%2f%2fevil.example",
    "/%2F/evil.example",
    "/%5cevil.example",
    "/%09/evil.example",
    "/\t/evil.example",
    "/\n/evil.example",
    "\t//evil.example",
    "\r\n//evil.example",
    " //evil.example",
    "//evil.example ",
    "/.//evil.example",
    "/x/..//evil.example",
    "/%2e%2e//evil.example",
    "javascript:alert(1)",
    "JaVaScRiPt:alert(1)",
    " javascript:alert(1)",
    "java\tscript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "vbscript:msgbox(1)",
    "https://[::1]/",
    "http://[::ffff:127.0.0.1]/",
    "http://127.0.0.1/",
    "http://0x7f.1/",
    "http://2130706433/",
    "https://evil.example./",
    "https://app.test.evil.example./",
    "https://\u{430}pp.test/",
    "https://app.t\u{435}st/",
    "https://evil.example:443@app.test/",
    "//app.test@evil.example",
    "https://evil%2Eexample/",
    "ftp://app.test/",
];

/// Where a browser on `app.test` would go with this Location: nowhere but
/// app.test or auth.test (public_url's host), over http(s).
fn stays_home(location: &str, port: u16) -> Result<(), String> {
    let base = url::Url::parse(&format!("http://app.test:{port}/.latchkey/verify"))
        .map_err(|e| e.to_string())?;
    let to = base
        .join(location)
        .map_err(|e| format!("{location:?} does not parse: {e}"))?;
    let host = to.host_str().unwrap_or("");
    let home = matches!(to.scheme(), "http" | "https")
        && (host == "app.test" || host == "auth.test")
        && to.username().is_empty()
        && to.password().is_none();
    if home {
        Ok(())
    } else {
        Err(format!("{location:?} leads to {to}"))
    }
}

/// The value of hidden field `name` in a page, unescaped.
fn field_of(page: &str, name: &str) -> String {
    let at = page
        .find(&format!("name=\"{name}\""))
        .unwrap_or_else(|| panic!("no {name} field in page:\n{page}"));
    let tail = &page[at..];
    let v = tail.find("value=\"").expect("value") + 7;
    let raw = &tail[v..v + tail[v..].find('"').expect("end of value")];
    raw.replace("&#x2f;", "/")
        .replace("&#x2F;", "/")
        .replace("&#47;", "/")
        .replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

#[tokio::test]
async fn return_addresses_never_leave_home() {
    assert!(RETURN_ADDRESSES.len() >= 30);
    let stack = Stack::start(
        "[limits]\nlinks_per_email = 100000\nlinks_per_ip = 100000\nverify_per_ip = 100000\n",
    )
    .await;
    let port = stack.lk.port;
    let mut failures = Vec::new();
    let mut check = |place: &str, rd: &str, location: Option<&str>| {
        if let Some(l) = location {
            if let Err(e) = stays_home(l, port) {
                failures.push(format!("{place}, rd {rd:?}: {e}"));
            }
        }
    };
    for rd in RETURN_ADDRESSES {
        let b = stack.browser();
        // The sign-in page carries only a safe address in its form.
        let q: String = form_urlencoded::byte_serialize(rd.as_bytes()).collect();
        let page = b.get(&format!("/.latchkey/login?rd={q}"), &[]).await;
        assert_eq!(page.status, 200, "{rd:?}");
        let kept = field_of(&page.body, "rd");
        if !kept.is_empty() {
            check("login page", rd, Some(&kept));
        }

        // The link: POST login with rd, then verify.
        let sent = request_link(&b, "alice@example.com", rd).await;
        assert_eq!(sent.status, 200, "{rd:?}: {}", sent.body);
        let mail = stack
            .smtp
            .wait_for("alice@example.com", Duration::from_secs(10))
            .await;
        let done = open_link(&b, &link_token(&mail.text)).await;
        assert_eq!(done.status, 303, "{rd:?}: {}", done.body);
        check("after verify", rd, done.header("location"));

        // The code, in a fresh browser.
        let c = stack.browser();
        let sent = request_link(&c, "alice@example.com", rd).await;
        let csrf = csrf_of(&sent.body);
        let mail = stack
            .smtp
            .wait_for("alice@example.com", Duration::from_secs(10))
            .await;
        let done = c
            .post_form(
                "/.latchkey/code",
                &[("code", &code_of(&mail.text)), ("csrf", &csrf)],
                &[],
            )
            .await;
        assert_eq!(done.status, 303, "{rd:?}: {}", done.body);
        check("after code", rd, done.header("location"));

        // Logout with rd.
        let confirm = b.get("/.latchkey/logout", &[]).await;
        let csrf = csrf_of(&confirm.body);
        let out = b
            .post_form("/.latchkey/logout", &[("csrf", &csrf), ("rd", rd)], &[])
            .await;
        assert!(matches!(out.status, 200 | 303), "{rd:?}: {}", out.status);
        check("after logout", rd, out.header("location"));
    }
    assert!(
        failures.is_empty(),
        "open redirects:\n{}",
        failures.join("\n")
    );
}

// --- 3. forged identity -----------------------------------------------------------

const FORGED: &[&str] = &[
    "X-Auth-Email",
    "x-auth-email",
    "X-AUTH-EMAIL",
    "X_Auth_Email",
    "x_auth_email",
    "X-Auth_Email",
    "X-Auth-User-Id",
    "X_AUTH_USER_ID",
    "x-auth-user_id",
    "X-Auth-Roles",
    "x_auth_roles",
    "X-AUTH_ROLES",
];

/// Every received header that folds (case, `_` as `-`) to `name`.
fn folded(seen: &serde_json::Value, name: &str) -> Vec<(String, String)> {
    let fold = |s: &str| s.to_ascii_lowercase().replace('_', "-");
    seen["headers"]
        .as_array()
        .expect("headers")
        .iter()
        .filter(|p| p[0].as_str().is_some_and(|n| fold(n) == fold(name)))
        .map(|p| {
            (
                p[0].as_str().unwrap_or("").to_owned(),
                p[1].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn forged_identity_headers_never_reach_the_app() {
    let stack = Stack::start("").await;
    let bob = stack.browser();
    sign_in(&stack, &bob, "bob@example.com").await;
    let session = format!(
        "latchkey_session={}",
        bob.cookie("latchkey_session").expect("session")
    );
    let host = stack.host();
    for (path, cookie, email, roles) in [
        ("/public/x", None, "", ""),
        (
            "/reports",
            Some(session.as_str()),
            "bob@example.com",
            "member",
        ),
    ] {
        let mut headers: Vec<(&str, &[u8])> =
            vec![("Host", host.as_bytes()), ("Accept", b"application/json")];
        // Each spelling, twice.
        for name in FORGED.iter().chain(FORGED) {
            let value: &[u8] = if name.to_ascii_lowercase().contains("roles") {
                b"admin"
            } else {
                b"mallory@example.com"
            };
            headers.push((name, value));
        }
        if let Some(c) = cookie {
            headers.push(("Cookie", c.as_bytes()));
        }
        let r = raw_get(stack.lk.addr, path.as_bytes(), &headers).await;
        let seen = echoed(&r);
        assert_eq!(
            folded(&seen, "x-auth-email"),
            vec![("x-auth-email".to_owned(), email.to_owned())],
            "{path}"
        );
        assert_eq!(
            folded(&seen, "x-auth-roles"),
            vec![("x-auth-roles".to_owned(), roles.to_owned())],
            "{path}"
        );
        assert_eq!(folded(&seen, "x-auth-user-id").len(), 1, "{path}");
    }

    // Forward-auth: a 2xx carries each identity header once, latchkey's.
    for cookie in [None, Some(session.as_str())] {
        let mut headers: Vec<(&str, &[u8])> = vec![
            ("Host", host.as_bytes()),
            ("X-Forwarded-Method", b"GET"),
            ("X-Forwarded-Host", b"app.test"),
            ("X-Forwarded-Uri", b"/public/x"),
        ];
        for name in FORGED {
            headers.push((name, b"forged"));
        }
        if let Some(c) = cookie {
            headers.push(("Cookie", c.as_bytes()));
        }
        let r = raw_get(stack.lk.addr, b"/.latchkey/auth", &headers).await;
        assert_eq!(r.status, 200);
        for name in ["x-auth-email", "x-auth-roles", "x-auth-user-id"] {
            let values: Vec<_> = r.headers.get_all(name).iter().collect();
            assert_eq!(values.len(), 1, "{name}");
            assert_ne!(values[0], "forged", "{name}");
        }
        assert!(!r.headers.keys().any(|k| k.as_str().contains('_')));
        let want = if cookie.is_some() {
            "bob@example.com"
        } else {
            ""
        };
        assert_eq!(r.header("x-auth-email"), Some(want));
    }
}

#[tokio::test]
async fn forwarded_headers_from_untrusted_peers_are_ignored() {
    // Loopback (where the test connects from) is not a trusted proxy here.
    let stack = Stack::start_opts(crate::flow::Opts {
        scheme: "http",
        trusted_proxies: r#"["10.0.0.0/8"]"#,
        extra: "[limits]\nlinks_per_ip = 2\n",
        ..Default::default()
    })
    .await;
    let host = stack.host();
    let forged: &[(&str, &str)] = &[
        ("host", &host),
        ("accept", "application/json"),
        ("x-forwarded-for", "6.6.6.6"),
        ("x-forwarded-proto", "https"),
        ("x-forwarded-host", "evil.example"),
        ("x-real-ip", "6.6.6.6"),
    ];
    let r = send(stack.lk.addr, "GET", "/public/x", forged, b"").await;
    let seen = echoed(&r);
    assert_eq!(echoed_header(&seen, "x-forwarded-for"), vec!["127.0.0.1"]);
    assert_eq!(echoed_header(&seen, "x-forwarded-proto"), vec!["http"]);
    assert_eq!(echoed_header(&seen, "x-forwarded-host"), vec![host.clone()]);

    // Forward-auth headers from an untrusted peer: the auth request is
    // judged as itself (not public), not as the /public/ path it names.
    let r = send(
        stack.lk.addr,
        "GET",
        "/.latchkey/auth",
        &[
            ("host", &host),
            ("accept", "application/json"),
            ("x-forwarded-method", "GET"),
            ("x-forwarded-host", "app.test"),
            ("x-forwarded-uri", "/public/x"),
        ],
        b"",
    )
    .await;
    assert_eq!(
        r.status, 401,
        "X-Forwarded-Uri ignored from an untrusted peer"
    );
    let r = send(
        stack.lk.addr,
        "GET",
        "/.latchkey/auth/request",
        &[
            ("host", &host),
            ("accept", "application/json"),
            ("x-original-url", "http://app.test/public/x"),
        ],
        b"",
    )
    .await;
    assert_eq!(
        r.status, 401,
        "X-Original-URL ignored from an untrusted peer"
    );

    // The per-IP limit counts the real peer, whatever X-Forwarded-For says.
    let mut statuses = Vec::new();
    for i in 0..3 {
        let b = stack.browser();
        let page = b.get("/.latchkey/login", &[]).await;
        let xff = format!("203.0.113.{i}");
        let r = b
            .post_form(
                "/.latchkey/login",
                &[("email", "bob@example.com"), ("csrf", &csrf_of(&page.body))],
                &[("x-forwarded-for", &xff)],
            )
            .await;
        statuses.push(r.status);
    }
    assert_eq!(statuses, vec![200, 200, 429]);
    let mail = stack
        .smtp
        .wait_for("bob@example.com", Duration::from_secs(10))
        .await;
    assert!(mail.text.contains("127.0.0.1") && !mail.text.contains("203.0.113"));
}

// --- 4. scanner-proof links -----------------------------------------------------

/// A mail scanner opens the link every way it can before the person does.
async fn play_scanner(stack: &Stack, token: &str) {
    let target = format!("/.latchkey/verify?token={token}");
    let host = stack.host();
    for _ in 0..2 {
        let r = send(stack.lk.addr, "GET", &target, &[("host", &host)], b"").await;
        assert_eq!(r.status, 200, "GET shows the confirm page");
    }
    let r = send(stack.lk.addr, "HEAD", &target, &[("host", &host)], b"").await;
    assert_eq!(r.status, 200);
    // Auto-submits the confirm form from a fresh cookie jar.
    let scanner = stack.browser();
    let r = open_link(&scanner, token).await;
    assert_eq!(r.status, 403, "another browser uses nothing up");
    assert!(
        r.body.contains("browser you used") && r.body.contains("127.0.0.1"),
        "says where to open the link: {}",
        r.body
    );
    assert!(scanner.cookie("latchkey_session").is_none());
    // Posts the form without any cookie at all.
    let body = format!("token={token}&csrf=x");
    let r = send(
        stack.lk.addr,
        "POST",
        "/.latchkey/verify",
        &[
            ("host", &host),
            ("content-type", "application/x-www-form-urlencoded"),
        ],
        body.as_bytes(),
    )
    .await;
    assert_eq!(r.status, 403);
}

#[tokio::test]
async fn mail_scanners_use_nothing_up_and_the_person_still_signs_in() {
    let stack = Stack::start("").await;

    // With the link.
    let person = stack.browser();
    request_link(&person, "bob@example.com", "/reports").await;
    let mail = stack
        .smtp
        .wait_for("bob@example.com", Duration::from_secs(10))
        .await;
    let token = link_token(&mail.text);
    play_scanner(&stack, &token).await;
    let done = open_link(&person, &token).await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(done.header("location"), Some("/reports"));
    assert!(person.cookie("latchkey_session").is_some());

    // With the code, after the scanner has been at the link.
    let person = stack.browser();
    let sent = request_link(&person, "alice@example.com", "").await;
    let csrf = csrf_of(&sent.body);
    let mail = stack
        .smtp
        .wait_for("alice@example.com", Duration::from_secs(10))
        .await;
    play_scanner(&stack, &link_token(&mail.text)).await;
    let done = person
        .post_form(
            "/.latchkey/code",
            &[("code", &code_of(&mail.text)), ("csrf", &csrf)],
            &[],
        )
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert!(person.cookie("latchkey_session").is_some());
}

// --- 5. abuse limits ----------------------------------------------------------------

#[tokio::test]
async fn abuse_limits_answer_429_where_people_look_and_stay_silent_where_it_would_tell() {
    let stack =
        Stack::start("[limits]\nlinks_per_ip = 4\nlinks_per_email = 2\nverify_per_ip = 3\n").await;
    let b = stack.browser();

    // Per address: the third request gets the same page and no mail.
    let pages: Vec<Resp> = {
        let mut v = Vec::new();
        for _ in 0..3 {
            v.push(request_link(&b, "bob@example.com", "").await);
        }
        v
    };
    assert!(pages.iter().all(|p| p.status == 200));
    assert_eq!(pages[1].body, pages[2].body, "silent: the same page");
    for _ in 0..2 {
        stack
            .smtp
            .wait_for("bob@example.com", Duration::from_secs(10))
            .await;
    }
    // Why there is no third mail: that request was refused as over the
    // limit (and logged so) instead of a link being made.
    stack
        .lk
        .wait_for_audit(
            "sign_in_refused",
            Some("rate_limited"),
            "bob@example.com",
            1,
            Duration::from_secs(10),
        )
        .await;
    assert_eq!(
        stack
            .lk
            .audit_count("sign_in_requested", None, "bob@example.com"),
        2,
        "two links made, not three"
    );
    let to_bob = stack
        .smtp
        .messages()
        .iter()
        .filter(|m| m.to.iter().any(|t| t.contains("bob@")))
        .count();
    assert_eq!(to_bob, 2, "no third mail");

    // Per IP: the fifth request is refused with Retry-After, on a page.
    let r = request_link(&b, "alice@example.com", "").await;
    assert_eq!(r.status, 200);
    let r = request_link(&b, "alice@example.com", "").await;
    assert_eq!(r.status, 429, "{}", r.body);
    let retry: u64 = r
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .expect("Retry-After in seconds");
    assert!(retry > 0 && retry <= 15 * 60, "{retry}");
    assert!(r
        .header("content-type")
        .is_some_and(|c| c.starts_with("text/html")));
    assert!(r.body.contains("Too many"), "{}", r.body);

    // Verify and code attempts per IP (one budget).
    let page = b.get("/.latchkey/login", &[]).await;
    let csrf = csrf_of(&page.body);
    let bogus = "A".repeat(43);
    for _ in 0..3 {
        let r = b
            .post_form(
                "/.latchkey/verify",
                &[("token", &bogus), ("csrf", &csrf)],
                &[],
            )
            .await;
        assert_eq!(r.status, 410);
    }
    let r = b
        .post_form(
            "/.latchkey/verify",
            &[("token", &bogus), ("csrf", &csrf)],
            &[],
        )
        .await;
    assert_eq!(r.status, 429);
    assert!(r.header("retry-after").is_some());
    let r = b
        .post_form(
            "/.latchkey/code",
            &[("code", "123456"), ("csrf", &csrf)],
            &[],
        )
        .await;
    assert_eq!(r.status, 429);
    assert!(r.header("retry-after").is_some());
}

/// Accepts SMTP connections and never says a word: a mail server that hangs.
async fn hanging_smtp() -> SocketAddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = l.local_addr().expect("addr");
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = l.accept().await {
            held.push(s);
        }
    });
    addr
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[tokio::test]
async fn check_your_email_does_not_wait_for_mail() {
    // Structural: the mail server hangs, and a known address still gets
    // its page (mail goes out from a background queue).
    let smtp = hanging_smtp().await;
    let lk = Latchkey::start(|port| {
        format!(
            r#"
[server]
listen = "127.0.0.1:{port}"
public_url = "http://127.0.0.1:{port}"

[mail]
transport = "smtp"
smtp_url = "smtp://{smtp}"
from = "Sign-in <login@example.com>"

[limits]
links_per_ip = 1000
links_per_email = 1000

[[users]]
email = "bob@example.com"
roles = ["member"]
"#
        )
    });
    let b = Browser::new(lk.addr);
    let mut known = Vec::new();
    let mut unknown = Vec::new();
    let mut bodies = Vec::new();
    for i in 0..30 {
        let page = b.get("/.latchkey/login", &[]).await;
        let csrf = csrf_of(&page.body);
        let email = if i % 2 == 0 {
            "bob@example.com"
        } else {
            "nobody@example.com"
        };
        let t = Instant::now();
        let r = b
            .post_form(
                "/.latchkey/login",
                &[("email", email), ("csrf", &csrf)],
                &[],
            )
            .await;
        let took = t.elapsed();
        assert_eq!(r.status, 200, "{email}: {}", r.body);
        if i % 2 == 0 {
            known.push(took);
        } else {
            unknown.push(took);
        }
        bodies.push(r.body);
    }
    assert!(
        bodies.windows(2).all(|w| w[0] == w[1]),
        "same page for both"
    );
    println!(
        "check-your-email with a hanging SMTP server, 15 each: median known {:?}, unknown {:?}",
        median(known),
        median(unknown)
    );
}

// --- 6. CSRF, cookies, headers ---------------------------------------------------

#[tokio::test]
async fn every_post_needs_the_csrf_token_and_a_same_site_origin() {
    let stack = Stack::start("").await;
    let b = stack.browser();
    let page = b.get("/.latchkey/login", &[]).await;
    let csrf = csrf_of(&page.body);
    let own = format!("http://{}", stack.host());
    let forms: &[(&str, &[(&str, &str)])] = &[
        ("/.latchkey/login", &[("email", "bob@example.com")]),
        ("/.latchkey/verify", &[("token", "x")]),
        ("/.latchkey/code", &[("code", "123456")]),
        ("/.latchkey/logout", &[]),
    ];
    for (path, fields) in forms {
        let with = |token: &str| {
            let mut f: Vec<(&str, String)> =
                fields.iter().map(|(k, v)| (*k, (*v).to_owned())).collect();
            f.push(("csrf", token.to_owned()));
            f
        };
        let post = |form: Vec<(&'static str, String)>, headers: Vec<(&'static str, String)>| {
            let b = &b;
            async move {
                let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
                let headers: Vec<(&str, &str)> =
                    headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
                b.post_form(path, &form, &headers).await
            }
        };
        let no_token: Vec<(&str, String)> =
            fields.iter().map(|(k, v)| (*k, (*v).to_owned())).collect();
        let refused = [
            ("no token", post(no_token, vec![]).await),
            (
                "wrong token",
                post(with("A".repeat(43).as_str()), vec![]).await,
            ),
            (
                "no cookie",
                post(with(&csrf), vec![("cookie", "theme=dark".into())]).await,
            ),
            (
                "cross-site Origin",
                post(with(&csrf), vec![("origin", "http://evil.example".into())]).await,
            ),
            (
                "cross-site Referer",
                post(
                    with(&csrf),
                    vec![("referer", "http://evil.example/page".into())],
                )
                .await,
            ),
            (
                "look-alike Origin",
                post(with(&csrf), vec![("origin", format!("{own}.evil.example"))]).await,
            ),
        ];
        for (what, r) in refused {
            assert_eq!(r.status, 403, "{path}, {what}: {}", r.body);
        }
        for origin in [own.clone(), "null".to_owned()] {
            let r = post(with(&csrf), vec![("origin", origin.clone())]).await;
            assert_ne!(r.status, 403, "{path} from Origin {origin}: {}", r.body);
        }
    }
}

#[tokio::test]
async fn https_sessions_use_host_prefixed_cookies_that_rotate_at_sign_in() {
    let stack = Stack::start_opts(crate::flow::Opts {
        scheme: "https",
        trusted_proxies: r#"["127.0.0.1"]"#,
        extra: "",
        ..Default::default()
    })
    .await;
    let name = "__Host-latchkey_session";

    // Fixation: a session value planted before sign-in (here a real one,
    // bob's) is never the session after.
    let bob = stack.browser();
    sign_in(&stack, &bob, "bob@example.com").await;
    let planted = bob.cookie(name).expect("bob's session");
    let victim = stack.browser();
    victim.set_cookie(name, &planted);
    let sent = request_link(&victim, "alice@example.com", "/").await;
    assert!(sent
        .set_cookies()
        .iter()
        .all(|c| c.starts_with("__Host-") && c.contains("Secure") && c.contains("Path=/")));
    let mail = stack
        .smtp
        .wait_for("alice@example.com", Duration::from_secs(10))
        .await;
    let done = open_link(&victim, &link_token(&mail.text)).await;
    assert_eq!(done.status, 303, "{}", done.body);
    let set = done
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with(&format!("{name}=")))
        .expect("session cookie set");
    assert!(set.contains("Secure") && set.contains("Path=/") && set.contains("HttpOnly"));
    assert!(!set.to_ascii_lowercase().contains("domain="), "{set}");
    let fresh = victim.cookie(name).expect("session");
    assert_ne!(fresh, planted, "a new session id at sign-in");
    let me = |cookie: String| {
        let addr = stack.lk.addr;
        let host = stack.host();
        async move {
            send(
                addr,
                "GET",
                "/.latchkey/me",
                &[("host", &host), ("cookie", &format!("{name}={cookie}"))],
                b"",
            )
            .await
        }
    };
    assert_eq!(me(fresh).await.json()["user"]["email"], "alice@example.com");
    let planted_me = me(planted).await;
    assert_ne!(
        planted_me.json()["user"]["email"],
        "alice@example.com",
        "the planted value never becomes alice's session"
    );

    // A made-up value is replaced too.
    let victim = stack.browser();
    let made_up = "A".repeat(43);
    victim.set_cookie(name, &made_up);
    sign_in(&stack, &victim, "bob@example.com").await;
    assert_ne!(victim.cookie(name).as_deref(), Some(made_up.as_str()));
}

#[tokio::test]
async fn with_a_cookie_domain_the_session_cookie_is_not_host_prefixed() {
    let stack = Stack::start_opts(crate::flow::Opts {
        scheme: "https",
        trusted_proxies: r#"["127.0.0.1"]"#,
        extra: "[session]\ncookie_domain = \"app.test\"\n",
        ..Default::default()
    })
    .await;
    let b = stack.browser();
    sign_in(&stack, &b, "bob@example.com").await;
    assert!(b.cookie("latchkey_session").is_some());
    assert!(b.cookie("__Host-latchkey_session").is_none());
}

#[tokio::test]
async fn pages_send_security_headers_and_the_verify_page_no_referrer() {
    let stack = Stack::start("").await;
    let b = stack.browser();
    let login = b.get("/.latchkey/login", &[]).await;
    let check = request_link(&b, "bob@example.com", "").await;
    let mail = stack
        .smtp
        .wait_for("bob@example.com", Duration::from_secs(10))
        .await;
    let token = link_token(&mail.text);
    let confirm = b
        .get(&format!("/.latchkey/verify?token={token}"), &[])
        .await;
    let invalid = b
        .get(&format!("/.latchkey/verify?token={}", "A".repeat(43)), &[])
        .await;
    let wrong_browser = open_link(&stack.browser(), &token).await;
    let logout = b.get("/.latchkey/logout", &[]).await;
    let forbidden = {
        let bob = stack.browser();
        sign_in(&stack, &bob, "bob@example.com").await;
        bob.get("/admin/x", &[]).await
    };
    let pages = [
        ("login", &login),
        ("check email", &check),
        ("confirm", &confirm),
        ("link invalid", &invalid),
        ("wrong browser", &wrong_browser),
        ("logout", &logout),
        ("forbidden", &forbidden),
    ];
    for (what, p) in pages {
        let csp = p.header("content-security-policy").unwrap_or("");
        assert!(
            csp.contains("default-src") && csp.contains("frame-ancestors 'none'"),
            "{what}: {csp}"
        );
        assert_eq!(p.header("x-frame-options"), Some("DENY"), "{what}");
        assert_eq!(
            p.header("x-content-type-options"),
            Some("nosniff"),
            "{what}"
        );
        assert!(p.header("referrer-policy").is_some(), "{what}");
    }
    assert_eq!(confirm.header("referrer-policy"), Some("no-referrer"));
    assert_eq!(invalid.header("referrer-policy"), Some("no-referrer"));

    // With no-referrer, Chromium posts the confirm form with `Origin: null`:
    // the matching CSRF token is enough.
    let csrf = csrf_of(&confirm.body);
    let done = b
        .post_form(
            "/.latchkey/verify",
            &[("token", &token), ("csrf", &csrf)],
            &[("origin", "null")],
        )
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
}

// --- issue 11: forwarded headers and forward-auth targets (findings 2, 3, 6) ---
//
// What latchkey judges must be what the app receives: forwarded headers are
// read whole (every line), each forward-auth flavor believes only the form
// its proxy sends, and only hosts latchkey knows are judged. nginx's part
// runs through real nginx (examples/nginx as shipped, or in the README's
// X-Original-URI variant).

/// What a case must produce: the app's answer for this path (the front proxy
/// forwarded it), or this status without reaching the app.
#[derive(Debug, Clone, Copy)]
enum Seen {
    App(&'static str),
    Status(u16),
}
use Seen::{App, Status};

fn check_seen(want: Seen, r: &Resp) -> Result<(), String> {
    let uri = (r.status == 200)
        .then(|| serde_json::from_str::<serde_json::Value>(&r.body).ok())
        .flatten()
        .and_then(|v| v["uri"].as_str().map(str::to_owned));
    match (want, uri) {
        (Status(s), None) if r.status == s => Ok(()),
        (App(path), Some(u)) if u == path => Ok(()),
        (Status(s), _) => Err(format!("expected {s}, got {}: {}", r.status, r.body)),
        (App(path), _) => Err(format!(
            "expected the app to serve {path}, got {}: {}",
            r.status, r.body
        )),
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum As {
    Anon,
    Bob,
    Alice,
}
use As::{Alice, Anon, Bob};

/// The latchkey stack plus `app.example.com` as a forward-auth app whose
/// `/ops/**` is for admins (a host-scoped rule), with bob's (member) and
/// alice's (admin) session cookies.
struct Signed {
    stack: Stack,
    bob: String,
    alice: String,
}

const FORWARD_AUTH_APP: &str = r#"
[[apps]]
host = "app.example.com"

[[rules]]
host = "app.example.com"
path = "/ops/**"
policy = "roles"
roles = ["admin"]
"#;

async fn signed_stack(env: &[(&str, &str)]) -> Signed {
    let stack = Stack::start_opts(crate::flow::Opts {
        extra: FORWARD_AUTH_APP,
        env,
        ..Default::default()
    })
    .await;
    let mut cookies = Vec::new();
    for email in ["bob@example.com", "alice@example.com"] {
        let b = stack.browser();
        sign_in(&stack, &b, email).await;
        let token = b.cookie("latchkey_session").expect("session");
        cookies.push(format!("latchkey_session={token}"));
    }
    let alice = cookies.pop().unwrap_or_default();
    let bob = cookies.pop().unwrap_or_default();
    Signed { stack, bob, alice }
}

/// `GET target` to `addr` as `who`, byte for byte, with `Host: host`, a
/// program's Accept (so "sign in first" stays 401) and `extra` lines.
async fn get_as(
    addr: SocketAddr,
    s: &Signed,
    who: As,
    target: &str,
    host: &str,
    extra: &[(&str, &str)],
) -> Resp {
    let mut h: Vec<(&str, &[u8])> =
        vec![("Host", host.as_bytes()), ("Accept", b"application/json")];
    match who {
        Anon => {}
        Bob => h.push(("Cookie", s.bob.as_bytes())),
        Alice => h.push(("Cookie", s.alice.as_bytes())),
    }
    h.extend(extra.iter().map(|(k, v)| (*k, v.as_bytes())));
    raw_get(addr, target.as_bytes(), &h).await
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum NginxSends {
    /// examples/nginx as shipped: X-Original-URL.
    Url,
    /// The README's alternative: X-Original-URI (and Host).
    Uri,
}

/// examples/nginx changed to the README's alternative: X-Original-URI
/// instead of X-Original-URL (whatever the shipped line builds it from).
fn sends_original_uri(site: String) -> String {
    let line = site
        .lines()
        .find(|l| {
            l.trim_start()
                .starts_with("proxy_set_header X-Original-URL ")
        })
        .expect("examples/nginx sets X-Original-URL")
        .to_owned();
    site.replace(
        &line,
        "        proxy_set_header X-Original-URI $request_uri;",
    )
}

/// latchkey's `server.nginx_target_header` (`DEFAULT`: unset, X-Original-URL).
const DEFAULT: Option<&str> = None;
const URI_KEY: Option<&str> = Some("X-Original-URI");

type H = &'static [(&'static str, &'static str)];

type FormCase = (NginxSends, Option<&'static str>, As, &'static str, H, Seen);

/// Finding 2, through real nginx with Host `app.example.com`: (what nginx
/// sends, latchkey's key, who, target, headers the client adds, outcome).
#[rustfmt::skip]
const NGINX_FORMS: &[FormCase] = &[
    // The finding: nginx sends X-Original-URI, the client adds a URL.
    (NginxSends::Uri, DEFAULT, Anon, "/admin/secret", &[("X-Original-URL", "http://app.example.com/public/x")], Status(403)),
    (NginxSends::Uri, URI_KEY, Anon, "/admin/secret", &[("X-Original-URL", "http://app.example.com/public/x")], Status(403)),
    // ...even one that agrees: in this setup it is always a client's.
    (NginxSends::Uri, URI_KEY, Anon, "/public/x", &[("X-Original-URL", "http://app.example.com/public/x")], Status(403)),
    (NginxSends::Uri, URI_KEY, Bob, "/ops/x", &[("X-Original-URL", "http://auth.test/ops/x")], Status(403)),
    // nginx's X-Original-URI setup without the key: nothing is judged.
    (NginxSends::Uri, DEFAULT, Anon, "/public/x", &[], Status(403)),
    // The Traefik form is never read here (the host used to come from a
    // client's X-Forwarded-Host).
    (NginxSends::Uri, DEFAULT, Bob, "/ops/x", &[("X-Forwarded-Host", "auth.test")], Status(403)),
    (NginxSends::Uri, URI_KEY, Bob, "/ops/x", &[("X-Forwarded-Host", "auth.test")], Status(403)),
    (NginxSends::Uri, URI_KEY, Anon, "/admin/secret", &[("X-Forwarded-Uri", "/public/x")], Status(401)),
    // The setup working as it should.
    (NginxSends::Uri, URI_KEY, Anon, "/public/x?q=1", &[], App("/public/x?q=1")),
    (NginxSends::Uri, URI_KEY, Anon, "/admin/secret", &[], Status(401)),
    (NginxSends::Uri, URI_KEY, Bob, "/ops/x", &[], Status(403)),
    (NginxSends::Uri, URI_KEY, Alice, "/ops/x", &[], App("/ops/x")),
    // The shipped X-Original-URL setup: a client's X-Original-URI must agree
    // (ingress-nginx with auth-method sends both, from $request_uri).
    (NginxSends::Url, DEFAULT, Anon, "/admin/secret", &[("X-Original-URI", "/public/x")], Status(403)),
    (NginxSends::Url, DEFAULT, Anon, "/public/x?a=1", &[("X-Original-URI", "/public/x")], Status(403)),
    (NginxSends::Url, DEFAULT, Anon, "/public/x", &[("X-Original-URI", "/public/x")], App("/public/x")),
    (NginxSends::Url, DEFAULT, Anon, "/admin/secret", &[("X-Original-URL", "http://app.example.com/public/x")], Status(401)),
    (NginxSends::Url, DEFAULT, Anon, "/admin/secret", &[("X-Forwarded-Uri", "/public/x"), ("X-Forwarded-Host", "app.example.com")], Status(401)),
    (NginxSends::Url, DEFAULT, Bob, "/ops/x", &[], Status(403)),
    (NginxSends::Url, DEFAULT, Alice, "/ops/x", &[], App("/ops/x")),
    // The key naming the form nginx does not send: refused, not guessed.
    (NginxSends::Url, URI_KEY, Anon, "/public/x", &[], Status(403)),
];

#[tokio::test]
async fn nginx_endpoint_believes_only_the_form_nginx_is_set_up_to_send() {
    let mut failures = Vec::new();
    for sends in [NginxSends::Url, NginxSends::Uri] {
        for key in [DEFAULT, URI_KEY] {
            let cases: Vec<_> = NGINX_FORMS
                .iter()
                .filter(|c| c.0 == sends && c.1 == key)
                .collect();
            if cases.is_empty() {
                continue;
            }
            let env: Vec<(&str, &str)> = key
                .map(|k| ("LATCHKEY_SERVER__NGINX_TARGET_HEADER", k))
                .into_iter()
                .collect();
            let s = signed_stack(&env).await;
            let port = crate::support::free_port();
            let nginx =
                FrontProxy::nginx_with(port, s.stack.lk.addr, s.stack._echo, |site| match sends {
                    NginxSends::Url => site,
                    NginxSends::Uri => sends_original_uri(site),
                });
            let host = format!("app.example.com:{port}");
            for (_, _, who, target, extra, want) in cases {
                let r = get_as(nginx.addr, &s, *who, target, &host, extra).await;
                if let Err(e) = check_seen(*want, &r) {
                    failures.push(format!(
                        "nginx sends {sends:?}, key {key:?}, {who:?} {target} {extra:?}: {e}"
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Finding 3 through real nginx (examples/nginx as shipped): (who, request
/// target, Host, headers the client adds, outcome); `{port}` is nginx's.
#[rustfmt::skip]
const NGINX_HOSTS: &[(As, &str, &str, H, Seen)] = &[
    (Bob, "/ops/x", "app.example.com:{port}", &[], Status(403)),
    // nginx's default server (the app's) catches a Host it does not serve.
    (Bob, "/ops/x", "other.test", &[], Status(403)),
    (Bob, "/ops/x", "other.test:{port}", &[], Status(403)),
    (Anon, "/public/x", "other.test", &[], Status(403)),
    (Bob, "/ops/x", "127.0.0.1:{port}", &[], Status(403)),
    // Absolute form: nginx routes by the request line's host while Host
    // ($http_host) names another, even one latchkey knows.
    (Bob, "http://app.example.com:{port}/ops/x", "other.test", &[], Status(403)),
    (Bob, "http://app.example.com:{port}/ops/x", "auth.test", &[], Status(403)),
    (Bob, "http://app.example.com:{port}/ops/x", "auth.test:{port}", &[], Status(403)),
    // Spellings of the app's own host are the app's.
    (Bob, "/ops/x", "APP.example.COM:{port}", &[], Status(403)),
    (Bob, "/ops/x", "app.example.com.:{port}", &[], Status(403)),
    (Bob, "/ops/x", "app.example.com:{port}", &[("X-Forwarded-Host", "auth.test")], Status(403)),
    // Allowed where the rules allow.
    (Bob, "/reports", "app.example.com:{port}", &[], App("/reports")),
    (Alice, "/ops/x", "app.example.com:{port}", &[], App("/ops/x")),
    (Alice, "http://app.example.com:{port}/ops/y", "auth.test", &[], App("/ops/y")),
];

#[tokio::test]
async fn nginx_judges_the_host_it_routed_by_and_only_known_hosts() {
    let s = signed_stack(&[]).await;
    let port = crate::support::free_port();
    let nginx = FrontProxy::nginx(port, s.stack.lk.addr, s.stack._echo);
    let p = port.to_string();
    let mut failures = Vec::new();
    for (who, target, host, extra, want) in NGINX_HOSTS {
        let (target, host) = (target.replace("{port}", &p), host.replace("{port}", &p));
        let r = get_as(nginx.addr, &s, *who, &target, &host, extra).await;
        if let Err(e) = check_seen(*want, &r) {
            failures.push(format!("{who:?} {target} Host {host} {extra:?}: {e}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{}\n--- nginx log ---\n{}",
        failures.join("\n"),
        nginx.log()
    );
}

/// Finding 3 at both endpoints directly (the test's loopback peer is a
/// trusted proxy): (endpoint, forwarded headers, who, status).
#[rustfmt::skip]
const TARGET_HOSTS: &[(&str, H, As, u16)] = &[
    ("/.latchkey/auth", &[("X-Forwarded-Method", "GET"), ("X-Forwarded-Host", "other.test"), ("X-Forwarded-Uri", "/ops/x")], Bob, 404),
    ("/.latchkey/auth", &[("X-Forwarded-Method", "GET"), ("X-Forwarded-Host", "other.test"), ("X-Forwarded-Uri", "/public/x")], Anon, 404),
    ("/.latchkey/auth", &[("X-Forwarded-Method", "GET"), ("X-Forwarded-Host", "[::1]"), ("X-Forwarded-Uri", "/ops/x")], Bob, 404),
    ("/.latchkey/auth", &[("X-Forwarded-Method", "GET"), ("X-Forwarded-Host", "app.example.com"), ("X-Forwarded-Uri", "/ops/x")], Bob, 403),
    ("/.latchkey/auth", &[("X-Forwarded-Method", "GET"), ("X-Forwarded-Host", "App.Example.com:8443"), ("X-Forwarded-Uri", "/ops/x")], Bob, 403),
    ("/.latchkey/auth", &[("X-Forwarded-Method", "GET"), ("X-Forwarded-Host", "app.example.com"), ("X-Forwarded-Uri", "/ops/x")], Alice, 200),
    // public_url's host is known (and no rule is scoped to it).
    ("/.latchkey/auth", &[("X-Forwarded-Method", "GET"), ("X-Forwarded-Host", "auth.test"), ("X-Forwarded-Uri", "/ops/x")], Bob, 200),
    // The target is required, not defaulted to "/" on the auth request's host.
    ("/.latchkey/auth", &[("X-Forwarded-Uri", "/public/x")], Anon, 400),
    ("/.latchkey/auth", &[("X-Forwarded-Method", "GET"), ("X-Forwarded-Host", "app.example.com")], Anon, 400),
    ("/.latchkey/auth/request", &[("X-Original-URL", "http://other.test/ops/x"), ("X-Original-Method", "GET")], Bob, 403),
    ("/.latchkey/auth/request", &[("X-Original-URL", "http://other.test/public/x"), ("X-Original-Method", "GET")], Anon, 403),
    ("/.latchkey/auth/request", &[("X-Original-URL", "https://10.0.0.1/ops/x"), ("X-Original-Method", "GET")], Bob, 403),
    ("/.latchkey/auth/request", &[("X-Original-URL", "http://app.example.com/ops/x"), ("X-Original-Method", "GET")], Bob, 403),
    ("/.latchkey/auth/request", &[("X-Original-URL", "http://app.example.com/ops/x"), ("X-Original-Method", "GET")], Alice, 200),
    ("/.latchkey/auth/request", &[], Anon, 403),
];

#[tokio::test]
async fn forward_auth_judges_only_public_url_and_app_hosts() {
    let s = signed_stack(&[]).await;
    let host = s.stack.host();
    let mut failures = Vec::new();
    for (endpoint, headers, who, want) in TARGET_HOSTS {
        let r = get_as(s.stack.lk.addr, &s, *who, endpoint, &host, headers).await;
        if r.status != *want {
            failures.push(format!(
                "{endpoint} {headers:?} {who:?}: expected {want}, got {}: {}",
                r.status, r.body
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Finding 6, proxy mode; the test's loopback peer is a trusted proxy, like
/// HAProxy with `option forwardfor` appending its own line after a client's:
/// (X-Forwarded-For lines, status, the app's X-Real-IP, its X-Forwarded-For).
#[rustfmt::skip]
const XFF_LINES: &[(&[&str], u16, &str, &str)] = &[
    (&["6.6.6.6", "203.0.113.9"], 200, "203.0.113.9", "6.6.6.6, 203.0.113.9, 127.0.0.1"),
    (&["6.6.6.6, 6.6.6.6", "203.0.113.9"], 200, "203.0.113.9", "6.6.6.6, 6.6.6.6, 203.0.113.9, 127.0.0.1"),
    (&["203.0.113.9"], 200, "203.0.113.9", "203.0.113.9, 127.0.0.1"),
    (&[], 200, "127.0.0.1", "127.0.0.1"),
    // A trusted hop is skipped, on any line.
    (&["6.6.6.6, 203.0.113.9", "127.0.0.1"], 200, "203.0.113.9", "6.6.6.6, 203.0.113.9, 127.0.0.1, 127.0.0.1"),
    (&["127.0.0.5"], 200, "127.0.0.5", "127.0.0.5, 127.0.0.1"),
    // Empty lines and elements are skipped; ports and brackets are read.
    (&["", "203.0.113.9"], 200, "203.0.113.9", "203.0.113.9, 127.0.0.1"),
    (&["203.0.113.9,"], 200, "203.0.113.9", "203.0.113.9,, 127.0.0.1"),
    (&[", ,", "203.0.113.9"], 200, "203.0.113.9", "203.0.113.9, 127.0.0.1"),
    (&["203.0.113.9:5123"], 200, "203.0.113.9", "203.0.113.9:5123, 127.0.0.1"),
    (&["[2001:db8::9]:443"], 200, "2001:db8::9", "[2001:db8::9]:443, 127.0.0.1"),
    (&["::ffff:203.0.113.9"], 200, "203.0.113.9", "::ffff:203.0.113.9, 127.0.0.1"),
    // Left of the client: the client's business, passed on as it came.
    (&["not-an-ip, 203.0.113.9"], 200, "203.0.113.9", "not-an-ip, 203.0.113.9, 127.0.0.1"),
    // Reached past trusted proxies: unreadable, refused.
    (&["203.0.113.9, unknown"], 400, "", ""),
    (&["unknown"], 400, "", ""),
    (&["203.0.113.9", "127.0.0.1, _hidden"], 400, "", ""),
    (&["203.0.113.9 127.0.0.1"], 400, "", ""),
];

#[tokio::test]
async fn every_x_forwarded_for_line_counts_and_the_peer_is_appended() {
    let stack = Stack::start("").await;
    let host = stack.host();
    let mut failures = Vec::new();
    for (lines, status, real_ip, xff) in XFF_LINES {
        let mut h: Vec<(&str, &[u8])> =
            vec![("Host", host.as_bytes()), ("Accept", b"application/json")];
        h.extend(lines.iter().map(|l| ("X-Forwarded-For", l.as_bytes())));
        let r = raw_get(stack.lk.addr, b"/public/x", &h).await;
        if r.status != *status {
            failures.push(format!(
                "{lines:?}: expected {status}, got {}: {}",
                r.status, r.body
            ));
            continue;
        }
        if *status != 200 {
            continue;
        }
        let seen = r.json();
        let got = (
            echoed_header(&seen, "x-real-ip"),
            echoed_header(&seen, "x-forwarded-for"),
        );
        if got != (vec![real_ip.to_string()], vec![xff.to_string()]) {
            failures.push(format!(
                "{lines:?}: the app got X-Real-IP {:?}, X-Forwarded-For {:?}",
                got.0, got.1
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Finding 6, the other forwarded headers from a trusted peer: (endpoint,
/// header lines, status). A one-value header on two lines is refused: 400,
/// 403 from the Nginx endpoint. `app.test` is proxied.
#[rustfmt::skip]
const REPEATED: &[(&str, H, u16)] = &[
    ("/public/x", &[("X-Forwarded-Proto", "https"), ("X-Forwarded-Proto", "http")], 400),
    ("/public/x", &[("X-Forwarded-Proto", "https, http")], 400),
    ("/public/x", &[("X-Forwarded-Proto", "ftp")], 400),
    ("/public/x", &[("X-Forwarded-Proto", "https")], 200),
    ("/.latchkey/auth", &[("X-Forwarded-Method", "GET"), ("X-Forwarded-Host", "app.test"), ("X-Forwarded-Uri", "/public/x")], 200),
    ("/.latchkey/auth", &[("X-Forwarded-Method", "GET"), ("X-Forwarded-Host", "app.test"), ("X-Forwarded-Uri", "/public/x"), ("X-Forwarded-For", "6.6.6.6"), ("X-Forwarded-For", "203.0.113.9")], 200),
    ("/.latchkey/auth", &[("X-Forwarded-Method", "GET"), ("X-Forwarded-Host", "app.test"), ("X-Forwarded-Uri", "/public/x"), ("X-Forwarded-For", "unknown")], 400),
    ("/.latchkey/auth", &[("X-Forwarded-Method", "GET"), ("X-Forwarded-Host", "app.test"), ("X-Forwarded-Host", "auth.test"), ("X-Forwarded-Uri", "/public/x")], 400),
    ("/.latchkey/auth", &[("X-Forwarded-Method", "GET"), ("X-Forwarded-Host", "app.test"), ("X-Forwarded-Uri", "/public/x"), ("X-Forwarded-Uri", "/admin/x")], 400),
    ("/.latchkey/auth", &[("X-Forwarded-Host", "app.test"), ("X-Forwarded-Uri", "/public/x"), ("X-Forwarded-Method", "GET"), ("X-Forwarded-Method", "POST")], 400),
    ("/.latchkey/auth", &[("X-Forwarded-Method", "GET"), ("X-Forwarded-Host", "app.test"), ("X-Forwarded-Uri", "/public/x"), ("X-Forwarded-Proto", "http"), ("X-Forwarded-Proto", "https")], 400),
    ("/.latchkey/auth/request", &[("X-Original-URL", "http://app.test/public/x"), ("X-Original-Method", "GET")], 200),
    ("/.latchkey/auth/request", &[("X-Original-URL", "http://app.test/public/x"), ("X-Original-Method", "GET"), ("X-Original-URL", "http://app.test/admin/x")], 403),
    ("/.latchkey/auth/request", &[("X-Original-URL", "http://app.test/public/x"), ("X-Original-Method", "GET"), ("X-Original-Method", "POST")], 403),
    ("/.latchkey/auth/request", &[("X-Original-URL", "http://app.test/public/x"), ("X-Original-Method", "GET"), ("X-Original-URI", "/public/x"), ("X-Original-URI", "/public/x")], 403),
    ("/.latchkey/auth/request", &[("X-Original-URL", "http://app.test/public/x"), ("X-Original-Method", "GET"), ("X-Forwarded-Proto", "https"), ("X-Forwarded-Proto", "http")], 403),
    ("/.latchkey/auth/request", &[("X-Original-URL", "http://app.test/public/x"), ("X-Original-Method", "GET"), ("X-Forwarded-For", "unknown")], 403),
];

#[tokio::test]
async fn repeated_one_value_forwarded_headers_are_refused() {
    let stack = Stack::start("").await;
    let host = stack.host();
    let mut failures = Vec::new();
    for (endpoint, lines, status) in REPEATED {
        let mut h: Vec<(&str, &[u8])> =
            vec![("Host", host.as_bytes()), ("Accept", b"application/json")];
        h.extend(lines.iter().map(|(k, v)| (*k, v.as_bytes())));
        let r = raw_get(stack.lk.addr, endpoint.as_bytes(), &h).await;
        if r.status != *status {
            failures.push(format!(
                "{endpoint} {lines:?}: expected {status}, got {}: {}",
                r.status, r.body
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Finding 6 where it matters: the per-IP limit and the email's "Requested
/// from IP" follow the trusted proxy's line, not the client's forged one.
#[tokio::test]
async fn rate_limits_and_mail_count_the_hop_the_trusted_proxy_appended() {
    let stack = Stack::start("[limits]\nlinks_per_ip = 2\n").await;
    type Line = fn(u8) -> String;
    // (email, the forged line and the proxy's line of attempt i, statuses)
    let cases: [(&str, Line, Line, [u16; 3]); 2] = [
        // Varying the forged line does not dodge the limit...
        (
            "bob@example.com",
            |i| format!("198.51.100.{i}"),
            |_| "203.0.113.50".into(),
            [200, 200, 429],
        ),
        // ...and one forged line does not pool everyone into one bucket.
        (
            "alice@example.com",
            |_| "6.6.6.6".into(),
            |i| format!("203.0.113.{i}"),
            [200, 200, 200],
        ),
    ];
    for (email, forged, proxy, want) in cases {
        let mut statuses = Vec::new();
        for i in 1..=3 {
            let b = stack.browser();
            let page = b.get("/.latchkey/login", &[]).await;
            let (forged, proxy) = (forged(i), proxy(i));
            let r = b
                .post_form(
                    "/.latchkey/login",
                    &[("email", email), ("csrf", &csrf_of(&page.body))],
                    &[("x-forwarded-for", &forged), ("x-forwarded-for", &proxy)],
                )
                .await;
            statuses.push(r.status);
        }
        assert_eq!(statuses, want, "{email}");
        // The queue sends in parallel: whichever mail comes first names
        // one of the proxy's hops, never a forged one.
        let mail = stack.smtp.wait_for(email, Duration::from_secs(10)).await;
        assert!(
            (1..=3).any(|i| mail
                .text
                .contains(&format!("Requested from IP {} using", proxy(i)))),
            "{email}: {}",
            mail.text
        );
        assert!(
            (1..=3).all(|i| !mail.text.contains(&forged(i))),
            "{email}: {}",
            mail.text
        );
    }
}

// --- issue 11: limits, links and cookies -----------------------------------------
//
// Every counter that limits guessing holds under concurrent fire, against
// the memory store and a real redis-server; IPv6 clients are counted per
// prefix; links in mail come only from configured origins; a Cookie header
// with bytes latchkey cannot read keeps the person signed in.

/// Which store a stack runs on.
#[derive(Debug, Clone, Copy)]
enum StoreKind {
    Memory,
    Redis,
}

/// A stack on `kind` with `extra` config and an admin listener (for metrics).
async fn limits_stack(kind: StoreKind, extra: &str) -> (Stack, SocketAddr) {
    let admin: SocketAddr = format!("127.0.0.1:{}", crate::support::free_port())
        .parse()
        .unwrap();
    let admin_text = admin.to_string();
    let env = [("LATCHKEY_SERVER__ADMIN_LISTEN", admin_text.as_str())];
    let stack = Stack::start_opts(crate::flow::Opts {
        extra,
        env: &env,
        redis_toml: match kind {
            StoreKind::Memory => Some(""),
            StoreKind::Redis => None,
        },
        ..crate::flow::Opts::default()
    })
    .await;
    crate::support::wait_for_port(admin, "latchkey admin listener");
    (stack, admin)
}

/// The value of one metric line (`name{labels}`), 0 when absent.
async fn metric(admin: SocketAddr, line: &str) -> u64 {
    let r = send(admin, "GET", "/metrics", &[], b"").await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body
        .lines()
        .find_map(|l| l.strip_prefix(line)?.trim().parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}

/// One request of a burst: method, target, headers, body.
struct Shot {
    method: &'static str,
    target: String,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
}

impl Shot {
    /// A form POST from a browser that holds `cookie`, on `host`.
    fn form(target: &str, host: &str, cookie: &str, form: &[(&str, &str)]) -> Shot {
        Shot {
            method: "POST",
            target: target.to_owned(),
            headers: vec![
                ("host".into(), host.as_bytes().to_vec()),
                (
                    "content-type".into(),
                    b"application/x-www-form-urlencoded".to_vec(),
                ),
                ("accept".into(), b"text/html".to_vec()),
                ("cookie".into(), cookie.as_bytes().to_vec()),
            ],
            body: form_urlencoded::Serializer::new(String::new())
                .extend_pairs(form)
                .finish()
                .into_bytes(),
        }
    }

    /// The same request as if forwarded by a trusted proxy for `client`.
    fn from(mut self, client: &str) -> Shot {
        self.headers
            .push(("x-forwarded-for".into(), client.as_bytes().to_vec()));
        self
    }
}

/// Opens one connection per shot first, then sends every request at once,
/// so that they reach latchkey together; answers in the shots' order.
async fn burst(addr: SocketAddr, shots: Vec<Shot>) -> Vec<Resp> {
    use http_body_util::{BodyExt, Full};
    let mut senders = Vec::new();
    for _ in &shots {
        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .unwrap();
        tokio::spawn(conn);
        senders.push(sender);
    }
    let mut set = tokio::task::JoinSet::new();
    for (i, (mut sender, shot)) in senders.into_iter().zip(shots).enumerate() {
        let mut req = http::Request::builder()
            .method(shot.method)
            .uri(&shot.target)
            .body(Full::new(bytes::Bytes::from(shot.body)))
            .unwrap();
        for (k, v) in shot.headers {
            req.headers_mut().append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_bytes(&v).unwrap(),
            );
        }
        set.spawn(async move {
            let resp = sender.send_request(req).await.unwrap();
            let (parts, body) = resp.into_parts();
            let body = body.collect().await.unwrap().to_bytes();
            let resp = Resp {
                status: parts.status.as_u16(),
                headers: parts.headers,
                body: String::from_utf8_lossy(&body).into_owned(),
            };
            (i, resp)
        });
    }
    let mut out = set.join_all().await;
    out.sort_by_key(|(i, _)| *i);
    out.into_iter().map(|(_, r)| r).collect()
}

fn count(resps: &[Resp], status: u16) -> usize {
    resps.iter().filter(|r| r.status == status).count()
}

fn statuses(resps: &[Resp]) -> Vec<u16> {
    resps.iter().map(|r| r.status).collect()
}

/// `name=value; ...` of the browser's cookies named here.
fn jar(b: &Browser, names: &[&str]) -> String {
    names
        .iter()
        .filter_map(|n| b.cookie(n).map(|v| format!("{n}={v}")))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Finding 5: 24 wrong codes and the right one, fired at once at one
/// sign-in attempt. At most `code_attempts` (3) of them may be judged:
/// a "not right, N left" answer, a sign-in, or the one that voids the code.
/// After the burst the right code fails.
async fn wrong_codes_at_once(kind: StoreKind) {
    let (stack, admin) = limits_stack(
        kind,
        "[limits]\nverify_per_ip = 10000\nlinks_per_email = 100\nlinks_per_ip = 100\n",
    )
    .await;
    let voided_line = "latchkey_sign_ins_failed_total{reason=\"code_voided\"}";
    for round in 0..4 {
        let b = stack.browser();
        let sent = request_link(&b, "bob@example.com", "").await;
        assert_eq!(sent.status, 200, "{}", sent.body);
        let mail = stack
            .smtp
            .wait_for("bob@example.com", Duration::from_secs(10))
            .await;
        let code = code_of(&mail.text);
        let csrf = csrf_of(&sent.body);
        let cookie = jar(&b, &["latchkey_csrf", "latchkey_attempt"]);
        let wrong: Vec<String> = (0..1_000_000u32)
            .map(|n| format!("{n:06}"))
            .filter(|c| *c != code)
            .take(24)
            .collect();
        let mut shots: Vec<Shot> = wrong
            .iter()
            .map(|c| {
                Shot::form(
                    "/.latchkey/code",
                    &stack.host(),
                    &cookie,
                    &[("code", c), ("csrf", &csrf)],
                )
            })
            .collect();
        shots.push(Shot::form(
            "/.latchkey/code",
            &stack.host(),
            &cookie,
            &[("code", &code), ("csrf", &csrf)],
        ));
        let before = metric(admin, voided_line).await;
        let resps = burst(stack.lk.addr, shots).await;
        let voided = metric(admin, voided_line).await - before;
        let (tries_left, signed_in) = (count(&resps, 422) as u64, count(&resps, 303) as u64);
        let judged = tries_left + signed_in + voided;
        assert!(
            judged <= 3,
            "{kind:?} round {round}: {judged} codes judged ({tries_left} \"not right\", \
             {signed_in} signed in, {voided} voiding); at most code_attempts = 3: {:?}",
            statuses(&resps)
        );
        assert!(
            signed_in == 0 || voided == 0,
            "{kind:?} round {round}: signed in on a voided code: {:?}",
            statuses(&resps)
        );
        assert!(
            resps.iter().all(|r| [303, 410, 422].contains(&r.status)),
            "{kind:?}: {:?}",
            statuses(&resps)
        );
        let after = b
            .post_form(
                "/.latchkey/code",
                &[("code", &code), ("csrf", &csrf)],
                &[("cookie", &cookie)],
            )
            .await;
        assert_eq!(
            after.status, 410,
            "{kind:?}: the right code after the burst"
        );
    }

    // One by one: three wrong codes void it; the right one then fails.
    let b = stack.browser();
    let sent = request_link(&b, "bob@example.com", "").await;
    let mail = stack
        .smtp
        .wait_for("bob@example.com", Duration::from_secs(10))
        .await;
    let code = code_of(&mail.text);
    let csrf = csrf_of(&sent.body);
    let other = if code == "000000" { "111111" } else { "000000" };
    let mut got = Vec::new();
    for c in [other, other, other, code.as_str()] {
        let r = b
            .post_form("/.latchkey/code", &[("code", c), ("csrf", &csrf)], &[])
            .await;
        got.push(r.status);
    }
    assert_eq!(got, [422, 422, 410, 410], "{kind:?}");
}

#[tokio::test]
async fn wrong_codes_fired_at_once_are_judged_at_most_code_attempts_times_memory() {
    wrong_codes_at_once(StoreKind::Memory).await;
}

#[tokio::test]
async fn wrong_codes_fired_at_once_are_judged_at_most_code_attempts_times_redis() {
    wrong_codes_at_once(StoreKind::Redis).await;
}

/// The class: each counter that limits guessing (links per client IP,
/// links per address, redemptions per IP, bearer tokens per user) lets
/// exactly its cap through when 20 requests arrive at once.
async fn every_cap_holds_at_once(kind: StoreKind) {
    let dir = crate::support::temp_dir();
    let key = crate::assertion::write_key(dir.path(), "a", latchkey::identity::keys::Alg::Es256);
    let extra = format!(
        "{}\n[limits]\nlinks_per_ip = 5\nlinks_per_email = 3\nverify_per_ip = 4\ntokens_per_user = 3\n",
        crate::assertion::assertion_toml(&[("a", &key)], "")
    );
    let (stack, _admin) = limits_stack(kind, &extra).await;
    let host = stack.host();
    let b = stack.browser();
    let page = b.get("/.latchkey/login", &[]).await;
    let csrf = csrf_of(&page.body);
    let cookie = jar(&b, &["latchkey_csrf"]);
    let login = |email: &str| {
        Shot::form(
            "/.latchkey/login",
            &host,
            &cookie,
            &[("email", email), ("csrf", &csrf)],
        )
    };

    // Links per client IP: 5 of 20 pass, the rest get 429.
    let shots = (0..20)
        .map(|i| login(&format!("nobody{i}@example.com")).from("198.51.100.1"))
        .collect();
    let r = burst(stack.lk.addr, shots).await;
    assert_eq!(
        (count(&r, 200), count(&r, 429)),
        (5, 15),
        "{kind:?} links per IP: {:?}",
        statuses(&r)
    );

    // Links per address: 20 at once for bob from 20 addresses: 3 mails.
    let shots = (0..20)
        .map(|i| login("bob@example.com").from(&format!("198.51.100.{}", 100 + i)))
        .collect();
    let r = burst(stack.lk.addr, shots).await;
    assert_eq!(count(&r, 200), 20, "{kind:?}: {:?}", statuses(&r));
    for _ in 0..3 {
        stack
            .smtp
            .wait_for("bob@example.com", Duration::from_secs(10))
            .await;
    }
    // The other 17 were refused as over the limit (and logged so): no
    // link made, nothing more to arrive.
    stack
        .lk
        .wait_for_audit(
            "sign_in_refused",
            Some("rate_limited"),
            "bob@example.com",
            17,
            Duration::from_secs(10),
        )
        .await;
    assert_eq!(
        stack
            .lk
            .audit_count("sign_in_requested", None, "bob@example.com"),
        3,
        "{kind:?}: three links made"
    );
    let to_bob = stack
        .smtp
        .messages()
        .iter()
        .filter(|m| m.to.iter().any(|t| t.contains("bob@")))
        .count();
    assert_eq!(to_bob, 3, "{kind:?} links per address");

    // Redemptions per IP (links and codes share it): 4 of 20 are judged.
    let bogus = "A".repeat(43);
    let shots = (0..20)
        .map(|i| {
            let (target, field, value) = if i % 2 == 0 {
                ("/.latchkey/verify", "token", bogus.as_str())
            } else {
                ("/.latchkey/code", "code", "123456")
            };
            Shot::form(target, &host, &cookie, &[(field, value), ("csrf", &csrf)])
                .from("198.51.100.2")
        })
        .collect();
    let r = burst(stack.lk.addr, shots).await;
    assert_eq!(
        (count(&r, 410), count(&r, 429)),
        (4, 16),
        "{kind:?} redemptions per IP: {:?}",
        statuses(&r)
    );

    // Bearer tokens per user: 3 of 20 exchanges get a token.
    let alice = stack.browser();
    sign_in(&stack, &alice, "alice@example.com").await;
    let session = jar(&alice, &["latchkey_session"]);
    let shots = (0..20)
        .map(|_| Shot {
            method: "POST",
            target: "/.latchkey/token".into(),
            headers: vec![
                ("host".into(), host.as_bytes().to_vec()),
                ("x-requested-with".into(), b"fetch".to_vec()),
                ("accept".into(), b"application/json".to_vec()),
                ("cookie".into(), session.as_bytes().to_vec()),
            ],
            body: Vec::new(),
        })
        .collect();
    let r = burst(stack.lk.addr, shots).await;
    assert_eq!(
        (count(&r, 200), count(&r, 429)),
        (3, 17),
        "{kind:?} tokens per user: {:?}",
        statuses(&r)
    );
}

#[tokio::test]
async fn every_guess_limit_holds_under_concurrent_fire_memory() {
    every_cap_holds_at_once(StoreKind::Memory).await;
}

#[tokio::test]
async fn every_guess_limit_holds_under_concurrent_fire_redis() {
    every_cap_holds_at_once(StoreKind::Redis).await;
}

/// Finding 8. (limits.ipv6_prefix, client of two link requests, client of
/// a third, the third's status) with links_per_ip = 2. Clients arrive in
/// X-Forwarded-For from a trusted proxy.
const IP_PREFIXES: &[(&str, &str, &str, u16)] = &[
    ("", "2001:db8:1:1::1", "2001:db8:1:1::2", 429),
    (
        "",
        "2001:db8:1:2::1",
        "2001:db8:1:2:ffff:ffff:ffff:ffff",
        429,
    ),
    ("", "2001:DB8:1:3::1", "2001:db8:1:3:0:0:0:9", 429),
    ("", "2001:db8:1:4::1", "2001:db8:1:5::1", 200),
    ("", "2001:db8:1:6::1", "2001:db8:1:6::1", 429),
    ("", "::ffff:192.0.2.1", "192.0.2.1", 429),
    ("", "::ffff:192.0.2.2", "::ffff:192.0.2.3", 200),
    ("", "192.0.2.4", "192.0.2.5", 200),
    ("", "192.0.2.6", "192.0.2.6", 429),
    (
        "ipv6_prefix = 128",
        "2001:db8:2:1::1",
        "2001:db8:2:1::2",
        200,
    ),
    (
        "ipv6_prefix = 128",
        "2001:db8:2:2::1",
        "2001:db8:2:2::1",
        429,
    ),
    (
        "ipv6_prefix = 48",
        "2001:db8:3:1::1",
        "2001:db8:3:ffff::1",
        429,
    ),
    (
        "ipv6_prefix = 48",
        "2001:db8:4:1::1",
        "2001:db8:5:1::1",
        200,
    ),
    (
        "ipv6_prefix = 48",
        "::ffff:192.0.2.7",
        "::ffff:192.0.2.8",
        200,
    ),
];

#[tokio::test]
async fn ipv6_clients_are_counted_per_prefix() {
    let mut prefixes: Vec<&str> = IP_PREFIXES.iter().map(|c| c.0).collect();
    prefixes.dedup();
    for prefix in prefixes {
        let mut failures = Vec::new();
        let extra = format!("[limits]\nlinks_per_ip = 2\nlinks_per_email = 100\n{prefix}\n");
        let (stack, _) = limits_stack(StoreKind::Memory, &extra).await;
        let b = stack.browser();
        let page = b.get("/.latchkey/login", &[]).await;
        let csrf = csrf_of(&page.body);
        for (i, (_, first, then, want)) in IP_PREFIXES
            .iter()
            .enumerate()
            .filter(|(_, c)| c.0 == prefix)
        {
            let ask = |client: &str| {
                let email = format!("nobody{i}@example.com");
                let client = client.to_owned();
                let csrf = csrf.clone();
                let b = &b;
                async move {
                    b.post_form(
                        "/.latchkey/login",
                        &[("email", &email), ("csrf", &csrf)],
                        &[("x-forwarded-for", &client)],
                    )
                    .await
                    .status
                }
            };
            let got = [ask(first).await, ask(first).await, ask(then).await];
            if got != [200, 200, *want] {
                failures.push(format!(
                    "[{}] 2 x {first} then {then}: expected [200, 200, {want}], got {got:?}",
                    if prefix.is_empty() { "default" } else { prefix }
                ));
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }
}

/// Finding 9. (Host the sign-in starts on, where the mailed link points);
/// `{port}` is latchkey's, which public_url (`http://auth.test:{port}`)
/// names. A Host's port never reaches the link.
const LINK_HOSTS: &[(&str, &str)] = &[
    ("app.test:{port}", "http://app.test:{port}"),
    ("app.test:6666", "http://app.test:{port}"),
    ("app.test", "http://app.test:{port}"),
    ("APP.Test:6666", "http://app.test:{port}"),
    ("app.test.:6666", "http://app.test:{port}"),
    ("app.test:00080", "http://app.test:{port}"),
    ("auth.test:{port}", "http://auth.test:{port}"),
    ("auth.test:6666", "http://auth.test:{port}"),
    ("auth.test", "http://auth.test:{port}"),
    ("evil.example:{port}", "http://auth.test:{port}"),
    ("evil.example:6666", "http://auth.test:{port}"),
    ("127.0.0.1:{port}", "http://auth.test:{port}"),
    ("[::1]:6666", "http://auth.test:{port}"),
];

#[tokio::test]
async fn mailed_links_point_only_at_configured_origins() {
    let stack = Stack::start(
        "[login]\nsignup = \"open\"\n[limits]\nlinks_per_ip = 100\nlinks_per_email = 100\n",
    )
    .await;
    let port = stack.lk.port.to_string();
    let mut failures = Vec::new();
    for (i, (host, want)) in LINK_HOSTS.iter().enumerate() {
        let host = host.replace("{port}", &port);
        let want = format!("{}/.latchkey/verify?token=", want.replace("{port}", &port));
        let email = format!("case{i}@example.com");
        let b = Browser::new(stack.lk.addr).with_host(&host);
        let sent = request_link(&b, &email, "").await;
        assert_eq!(sent.status, 200, "Host {host}: {}", sent.body);
        let mail = stack.smtp.wait_for(&email, Duration::from_secs(10)).await;
        let links: Vec<&str> = mail
            .text
            .split_whitespace()
            .filter(|w| w.contains("/.latchkey/verify?token="))
            .collect();
        if links.is_empty() || !links.iter().all(|l| l.starts_with(&want)) {
            failures.push(format!("Host {host}: expected {want}..., mailed {links:?}"));
        }
        if mail.text.contains("6666") || mail.html.contains("6666") {
            failures.push(format!("Host {host}: the mail names port 6666"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Finding 10. Cookie header lines (`{s}`: bob's session token) and
/// whether bob is still signed in. Pairs latchkey cannot read (non-ASCII
/// bytes) are skipped; of two readable `latchkey_session` pairs the first
/// live session wins (browsers send the one with the longest Path first).
const COOKIE_LINES: &[(&[&[u8]], bool)] = &[
    (&[b"latchkey_session={s}"], true),
    (&[b"latchkey_session={s}; name=Jos\xc3\xa9"], true),
    (&[b"name=Jos\xc3\xa9; latchkey_session={s}"], true),
    (&[b"a=\xff\xfe; latchkey_session={s}; b=2"], true),
    (&[b"\xc3\xa9=1; latchkey_session={s}"], true),
    (&[b"latchkey_session={s}", b"name=Jos\xc3\xa9"], true),
    (&[b"name=Jos\xc3\xa9", b"latchkey_session={s}"], true),
    (
        &[b"latchkey_session=Jos\xc3\xa9; latchkey_session={s}"],
        true,
    ),
    (
        &[b"latchkey_session=\x80\x81", b"latchkey_session={s}"],
        true,
    ),
    (&[b"latchkey_session=\"{s}\"; x=\x80"], true),
    (&[b"latchkey_session={s}; latchkey_session=other"], true),
    (&[b"latchkey_session=other; latchkey_session={s}"], true),
    (
        &[b"latchkey_session=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA; latchkey_session={s}"],
        true,
    ),
    (&[b"latchkey_session=Jos\xc3\xa9"], false),
    (&[b"latchkey_session=other; x=\xff"], false),
    (&[b"name=Jos\xc3\xa9"], false),
];

/// `line` with `{s}` replaced by `token`.
fn fill(line: &[u8], token: &str) -> Vec<u8> {
    match line.windows(3).position(|w| w == b"{s}") {
        Some(at) => [&line[..at], token.as_bytes(), &line[at + 3..]].concat(),
        None => line.to_vec(),
    }
}

#[tokio::test]
async fn unreadable_cookie_pairs_are_skipped_and_never_reach_the_app() {
    let stack = Stack::start("").await;
    let bob = stack.browser();
    sign_in(&stack, &bob, "bob@example.com").await;
    let token = bob.cookie("latchkey_session").unwrap();
    let host = stack.host();
    let mut failures = Vec::new();
    for (lines, signed_in) in COOKIE_LINES {
        let lines: Vec<Vec<u8>> = lines.iter().map(|l| fill(l, &token)).collect();
        let shown = lines
            .iter()
            .map(|l| String::from_utf8_lossy(l).replace(&token, "{s}"))
            .collect::<Vec<_>>();
        let mut headers: Vec<(&str, &[u8])> = vec![("Host", host.as_bytes())];
        headers.extend(lines.iter().map(|l| ("Cookie", l.as_slice())));
        let me = raw_get(stack.lk.addr, b"/.latchkey/me", &headers).await;
        let want = if *signed_in { 200 } else { 401 };
        if me.status != want {
            failures.push(format!(
                "{shown:?}: /.latchkey/me {} (expected {want})",
                me.status
            ));
        }
        // Through the proxy: the app gets the other cookies, never latchkey's.
        let app = raw_get(stack.lk.addr, b"/public/x", &headers).await;
        if app.status != 200 {
            failures.push(format!("{shown:?}: /public/x {}", app.status));
            continue;
        }
        let seen = echoed_header(&echoed(&app), "cookie").join("\n");
        if seen.contains("latchkey_session") || seen.contains(&token) {
            failures.push(format!("{shown:?}: the app received {seen:?}"));
        }
        if shown.iter().any(|l| l.contains("name=Jos")) && !seen.contains("name=Jos") {
            failures.push(format!(
                "{shown:?}: the app's own cookie was lost: {seen:?}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Finding 10, the sign-in form. Cookie header lines (`{s}`: the CSRF
/// token in the form) and the answer to `POST /.latchkey/login`.
const CSRF_COOKIE_LINES: &[(&[&[u8]], u16)] = &[
    (&[b"latchkey_csrf={s}"], 200),
    (&[b"latchkey_csrf={s}; name=Jos\xc3\xa9"], 200),
    (&[b"name=\xff\xfe; latchkey_csrf={s}"], 200),
    (&[b"name=Jos\xc3\xa9", b"latchkey_csrf={s}"], 200),
    (&[b"latchkey_csrf=\x80; latchkey_csrf={s}"], 200),
    (
        &[b"latchkey_csrf=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA; latchkey_csrf={s}"],
        200,
    ),
    (&[b"latchkey_csrf=Jos\xc3\xa9"], 403),
    (
        &[b"latchkey_csrf=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA; name=Jos\xc3\xa9"],
        403,
    ),
    (&[b"name=Jos\xc3\xa9"], 403),
];

#[tokio::test]
async fn unreadable_cookie_pairs_do_not_fail_the_sign_in_form() {
    let stack = Stack::start("[limits]\nlinks_per_ip = 100\n").await;
    let b = stack.browser();
    let page = b.get("/.latchkey/login", &[]).await;
    let csrf = csrf_of(&page.body);
    let host = stack.host();
    let body = format!("email=bob%40example.com&csrf={csrf}");
    let mut failures = Vec::new();
    for (lines, want) in CSRF_COOKIE_LINES {
        let mut req = format!(
            "POST /.latchkey/login HTTP/1.1\r\nHost: {host}\r\nAccept: text/html\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n",
            body.len()
        )
        .into_bytes();
        for l in *lines {
            req.extend_from_slice(b"Cookie: ");
            req.extend_from_slice(&fill(l, &csrf));
            req.extend_from_slice(b"\r\n");
        }
        req.extend_from_slice(b"Connection: close\r\n\r\n");
        req.extend_from_slice(body.as_bytes());
        let got = parse_response(&raw(stack.lk.addr, &req).await);
        if got.status != *want {
            let shown: Vec<String> = lines
                .iter()
                .map(|l| String::from_utf8_lossy(l).into_owned())
                .collect();
            failures.push(format!("{shown:?}: {} (expected {want})", got.status));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

// --- issue 11: one request, judged once, forwarded as judged -----------------------
// Upgrades (finding 1), method case (finding 4), Host (finding 7).

/// Writes `request` byte for byte over a fresh connection and reads one
/// response: the head, then the body by `Content-Length` or chunks, or up
/// to the close. A 101 ends at its head (the connection is a tunnel then).
async fn exchange(addr: SocketAddr, request: &[u8]) -> Resp {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream.write_all(request).await.expect("write request");
    let mut got = Vec::new();
    let mut buf = [0u8; 8192];
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&got[..end]).to_ascii_lowercase();
            let body_len = got.len() - end - 4;
            if head.starts_with("http/1.1 101") {
                got.truncate(end + 4);
                break;
            }
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok());
            if length.is_some_and(|n| body_len >= n) || got.ends_with(b"\r\n0\r\n\r\n") {
                break;
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Err(_) => panic!(
                "no whole answer within 10 s: {:?}",
                String::from_utf8_lossy(&got)
            ),
        }
    }
    parse_response(&String::from_utf8_lossy(&got))
}

/// A request head: `method target`, then `headers` as given (repeats kept),
/// then `Connection: close` unless a `Connection` header is among them.
fn head(method: &str, target: &str, headers: &[(&str, &str)]) -> Vec<u8> {
    let mut req = format!("{method} {target} HTTP/1.1\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if !headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("connection"))
    {
        req.push_str("Connection: close\r\n");
    }
    req.push_str("\r\n");
    req.into_bytes()
}

/// (Connection, Upgrade headers, with `HTTP2-Settings`, the app switches):
/// only an exact WebSocket upgrade reaches the app as one (it answers 101);
/// anything else reaches it as a plain request with no trace of the upgrade,
/// so an app server that speaks h2c (Hypercorn) never opens a tunnel.
const UPGRADES: &[(&str, &[&str], bool, bool)] = &[
    ("Upgrade, HTTP2-Settings", &["h2c"], true, false),
    ("Upgrade", &["h2c"], true, false),
    ("Upgrade", &["h2c"], false, false),
    ("upgrade", &["H2C"], false, false),
    ("keep-alive, Upgrade", &["h2c"], true, false),
    ("Upgrade", &["websocket, h2c"], false, false),
    ("Upgrade", &["h2c, websocket"], false, false),
    ("Upgrade", &["websocket", "h2c"], false, false),
    ("Upgrade", &["h2c", "websocket"], false, false),
    ("Upgrade", &["websocket,"], false, false),
    ("Upgrade", &["HTTP/2.0"], false, false),
    ("Upgrade", &["TLS/1.2"], false, false),
    ("Upgrade", &["websocket/13"], false, false),
    ("Upgrade", &[""], false, false),
    ("", &["websocket"], false, false),
    ("keep-alive", &["h2c"], true, false),
    ("keep-alive", &[], true, false),
    ("Upgrade", &["websocket"], false, true),
    ("Upgrade", &["WebSocket"], false, true),
    ("keep-alive, Upgrade", &["websocket"], false, true),
    ("Upgrade, HTTP2-Settings", &["websocket"], true, true),
];

#[tokio::test]
async fn only_websocket_upgrades_reach_the_app() {
    let stack = Stack::start("").await;
    let host = stack.host();
    let mut failures = Vec::new();
    for (connection, upgrades, settings, switches) in UPGRADES {
        let mut h: Vec<(&str, &str)> = vec![("Host", &host), ("Accept", "application/json")];
        if !connection.is_empty() {
            h.push(("Connection", connection));
        }
        for u in *upgrades {
            h.push(("Upgrade", u));
        }
        if *settings {
            h.push(("HTTP2-Settings", "AAMAAABkAARAAAAAAAIAAAAA"));
        }
        h.push(("Sec-WebSocket-Version", "13"));
        h.push(("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="));
        let r = exchange(stack.lk.addr, &head("GET", "/public/x", &h)).await;
        let case = format!("Connection {connection:?}, Upgrade {upgrades:?}, settings {settings}");
        if *switches {
            let protocol = r.header("upgrade").unwrap_or("");
            if r.status != 101 || !protocol.eq_ignore_ascii_case("websocket") {
                failures.push(format!(
                    "{case}: expected 101 websocket, got {} {protocol:?}",
                    r.status
                ));
            }
            continue;
        }
        if r.status != 200 {
            failures.push(format!(
                "{case}: expected the app's plain answer, got {} {:?}",
                r.status,
                r.header("upgrade")
            ));
            continue;
        }
        let seen = r.json();
        for name in ["upgrade", "http2-settings", "connection"] {
            let got = echoed_header(&seen, name);
            if !got.is_empty() {
                failures.push(format!("{case}: the app received {name}: {got:?}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// An upstream that answers 101 to anything, with the `Upgrade` header of
/// `SWITCHES[i]` for a request to `/public/ws/{i}`.
async fn switching_upstream() -> SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut got = Vec::new();
                let mut buf = [0u8; 4096];
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
                let text = String::from_utf8_lossy(&got);
                let i: usize = text
                    .split_whitespace()
                    .nth(1)
                    .and_then(|t| t.rsplit('/').next())
                    .and_then(|i| i.parse().ok())
                    .unwrap_or(0);
                let mut resp =
                    "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n".to_owned();
                if let Some(Some(p)) = SWITCHES.get(i).map(|c| c.1) {
                    resp.push_str(&format!("Upgrade: {p}\r\n"));
                }
                resp.push_str("\r\n");
                let _ = s.write_all(resp.as_bytes()).await;
                // Hold the tunnel open a moment, echoing.
                let _ = tokio::time::timeout(Duration::from_secs(2), async {
                    while let Ok(n) = s.read(&mut buf).await {
                        if n == 0 || s.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                })
                .await;
            });
        }
    });
    addr
}

/// (the request asks for WebSocket, the upstream's 101 says `Upgrade:`,
/// the client gets): a 101 is passed on only when it switches to exactly
/// the protocol asked for; any other switch is the upstream's fault (502).
const SWITCHES: &[(bool, Option<&str>, u16)] = &[
    (true, Some("websocket"), 101),
    (true, Some("WebSocket"), 101),
    (true, Some("h2c"), 502),
    (true, None, 502),
    (true, Some("websocket, h2c"), 502),
    (true, Some("h2c, websocket"), 502),
    (true, Some("HTTP/2.0"), 502),
    (true, Some("websocket/13"), 502),
    (false, Some("websocket"), 502),
    (false, Some("h2c"), 502),
];

#[tokio::test]
async fn a_101_must_switch_to_the_protocol_asked_for() {
    let up = switching_upstream().await;
    let stack = Stack::start(&format!(
        "[[apps]]\nhost = \"switch.test\"\nupstream = \"http://{up}\"\n"
    ))
    .await;
    let host = format!("switch.test:{}", stack.lk.port);
    let mut failures = Vec::new();
    for (i, (asks, answer, want)) in SWITCHES.iter().enumerate() {
        let mut h: Vec<(&str, &str)> = vec![("Host", &host), ("Accept", "application/json")];
        if *asks {
            h.push(("Connection", "Upgrade"));
            h.push(("Upgrade", "websocket"));
            h.push(("Sec-WebSocket-Version", "13"));
            h.push(("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="));
        }
        let r = exchange(stack.lk.addr, &head("GET", &format!("/public/ws/{i}"), &h)).await;
        if r.status != *want {
            failures.push(format!(
                "asks {asks}, upstream switches to {answer:?}: expected {want}, got {} (Upgrade {:?})",
                r.status,
                r.header("upgrade")
            ));
        } else if r.status == 101
            && r.header("upgrade") != Some("websocket")
            && r.header("upgrade") != *answer
        {
            failures.push(format!(
                "{answer:?}: 101 with Upgrade {:?}",
                r.header("upgrade")
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// (method, in proxy mode, as Traefik's `X-Forwarded-Method`, as Nginx's
/// `X-Original-Method`): what bob (member) gets for `/items/x`, where
/// DELETE, PUT and POST are for admins. Methods are case-sensitive on the
/// wire and apps that upper-case them (Werkzeug, ASGI servers) would run
/// the admin handler, so a case variant of a standard method is refused
/// (Nginx's endpoint answers refusals with 403), never judged as another
/// method than the app will run.
const METHODS: &[(&str, u16, u16, u16)] = &[
    ("GET", 200, 200, 200),
    ("DELETE", 403, 403, 403),
    ("PUT", 403, 403, 403),
    ("POST", 403, 403, 403),
    ("delete", 400, 400, 403),
    ("Delete", 400, 400, 403),
    ("dELETE", 400, 400, 403),
    ("put", 400, 400, 403),
    ("pUt", 400, 400, 403),
    ("post", 400, 400, 403),
    ("Post", 400, 400, 403),
    ("get", 400, 400, 403),
    ("Get", 400, 400, 403),
    ("patch", 400, 400, 403),
    ("options", 400, 400, 403),
    ("mkcol", 400, 400, 403),
    ("PATCH", 200, 200, 200),
    ("MKCOL", 200, 200, 200),
    // Not a standard method: no rule can name it, so it is judged and
    // forwarded as sent.
    ("PURGE", 200, 200, 200),
    // No tunnels through the proxy; a front proxy asking about one is
    // answered as for any method.
    ("CONNECT", 405, 200, 200),
];

#[tokio::test]
async fn method_case_variants_are_refused_never_judged_as_another_method() {
    let stack = Stack::start(
        "[[rules]]\npath = \"/items/**\"\nmethods = [\"DELETE\", \"PUT\", \"POST\"]\n\
         policy = \"roles\"\nroles = [\"admin\"]\n",
    )
    .await;
    let bob = stack.browser();
    sign_in(&stack, &bob, "bob@example.com").await;
    let session = format!(
        "latchkey_session={}",
        bob.cookie("latchkey_session").expect("session")
    );
    let host = stack.host();
    let mut failures = Vec::new();
    for (method, proxy, traefik, nginx) in METHODS {
        let base: Vec<(&str, &str)> = vec![
            ("Accept", "application/json"),
            ("Cookie", &session),
            ("Content-Length", "0"),
        ];
        let mut h = base.clone();
        h.push(("Host", &host));
        let r = exchange(stack.lk.addr, &head(method, "/items/x", &h)).await;
        if r.status != *proxy {
            failures.push(format!(
                "proxy {method}: expected {proxy}, got {}",
                r.status
            ));
        } else if r.status == 200 && r.json()["method"] != *method {
            failures.push(format!(
                "proxy {method}: the app ran {}",
                r.json()["method"]
            ));
        }
        let mut h = base.clone();
        h.extend([
            ("Host", host.as_str()),
            ("X-Forwarded-Method", method),
            ("X-Forwarded-Proto", "http"),
            ("X-Forwarded-Host", "app.test"),
            ("X-Forwarded-Uri", "/items/x"),
        ]);
        let r = exchange(stack.lk.addr, &head("GET", "/.latchkey/auth", &h)).await;
        if r.status != *traefik {
            failures.push(format!(
                "traefik {method}: expected {traefik}, got {}",
                r.status
            ));
        }
        let mut h = base.clone();
        h.extend([
            ("Host", "auth.test"),
            ("X-Original-Method", method),
            ("X-Original-URL", "http://app.test/items/x"),
        ]);
        let r = exchange(stack.lk.addr, &head("GET", "/.latchkey/auth/request", &h)).await;
        if r.status != *nginx {
            failures.push(format!(
                "nginx {method}: expected {nginx}, got {}",
                r.status
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// (method, extra headers, proxy, Traefik, Nginx): a method override
/// (`X-HTTP-Method-Override` and its siblings) is judged as well as the
/// request's own method: an app that honours it runs the override, so a
/// member's POST that asks for DELETE is judged as a DELETE (403). Two
/// overrides that disagree, or one that is no canonical method, are
/// refused; a forward-auth request that does not say its method is refused
/// rather than judged as GET. (Nginx's endpoint answers refusals with 403.)
type OverrideCase = (
    &'static str,
    &'static [(&'static str, &'static str)],
    u16,
    u16,
    u16,
);

const OVERRIDES: &[OverrideCase] = &[
    ("POST", &[], 403, 403, 403),
    ("GET", &[], 200, 200, 200),
    (
        "GET",
        &[("X-HTTP-Method-Override", "DELETE")],
        403,
        403,
        403,
    ),
    ("GET", &[("X-HTTP-Method", "PUT")], 403, 403, 403),
    ("GET", &[("X-Method-Override", "POST")], 403, 403, 403),
    ("GET", &[("X-HTTP-Method-Override", "GET")], 200, 200, 200),
    (
        "HEAD",
        &[("X-HTTP-Method-Override", "DELETE")],
        403,
        403,
        403,
    ),
    (
        "GET",
        &[("X-HTTP-Method-Override", "delete")],
        400,
        400,
        403,
    ),
    (
        "GET",
        &[("X-HTTP-Method-Override", "DEL ETE")],
        400,
        400,
        403,
    ),
    (
        "GET",
        &[
            ("X-HTTP-Method-Override", "GET"),
            ("X-HTTP-Method", "DELETE"),
        ],
        400,
        400,
        403,
    ),
    (
        "GET",
        &[
            ("X-HTTP-Method-Override", "GET"),
            ("X-HTTP-Method-Override", "GET"),
        ],
        200,
        200,
        200,
    ),
];

#[tokio::test]
async fn method_overrides_are_judged_and_a_missing_original_method_is_refused() {
    let stack = Stack::start(
        "[[rules]]\npath = \"/items/**\"\nmethods = [\"DELETE\", \"PUT\", \"POST\"]\n\
         policy = \"roles\"\nroles = [\"admin\"]\n",
    )
    .await;
    let bob = stack.browser();
    sign_in(&stack, &bob, "bob@example.com").await;
    let session = format!(
        "latchkey_session={}",
        bob.cookie("latchkey_session").expect("session")
    );
    let host = stack.host();
    let mut failures = Vec::new();
    for (method, extra, proxy, traefik, nginx) in OVERRIDES {
        let mut base: Vec<(&str, &str)> = vec![
            ("Accept", "application/json"),
            ("Cookie", &session),
            ("Content-Length", "0"),
        ];
        base.extend(extra.iter().copied());
        let mut h = base.clone();
        h.push(("Host", &host));
        let r = exchange(stack.lk.addr, &head(method, "/items/x", &h)).await;
        if r.status != *proxy {
            failures.push(format!(
                "proxy {method} {extra:?}: expected {proxy}, got {}",
                r.status
            ));
        }
        let mut h = base.clone();
        h.extend([
            ("Host", host.as_str()),
            ("X-Forwarded-Method", method),
            ("X-Forwarded-Proto", "http"),
            ("X-Forwarded-Host", "app.test"),
            ("X-Forwarded-Uri", "/items/x"),
        ]);
        let r = exchange(stack.lk.addr, &head("GET", "/.latchkey/auth", &h)).await;
        if r.status != *traefik {
            failures.push(format!(
                "traefik {method} {extra:?}: expected {traefik}, got {}",
                r.status
            ));
        }
        let mut h = base.clone();
        h.extend([
            ("Host", "auth.test"),
            ("X-Original-Method", method),
            ("X-Original-URL", "http://app.test/items/x"),
        ]);
        let r = exchange(stack.lk.addr, &head("GET", "/.latchkey/auth/request", &h)).await;
        if r.status != *nginx {
            failures.push(format!(
                "nginx {method} {extra:?}: expected {nginx}, got {}",
                r.status
            ));
        }
    }
    // Neither endpoint judges a request whose method it was not told.
    let traefik = exchange(
        stack.lk.addr,
        &head(
            "GET",
            "/.latchkey/auth",
            &[
                ("Host", host.as_str()),
                ("Accept", "application/json"),
                ("Cookie", &session),
                ("X-Forwarded-Proto", "http"),
                ("X-Forwarded-Host", "app.test"),
                ("X-Forwarded-Uri", "/public/x"),
            ],
        ),
    )
    .await;
    if traefik.status != 400 {
        failures.push(format!(
            "traefik, no X-Forwarded-Method: expected 400, got {}",
            traefik.status
        ));
    }
    let nginx = exchange(
        stack.lk.addr,
        &head(
            "GET",
            "/.latchkey/auth/request",
            &[
                ("Host", "auth.test"),
                ("Cookie", &session),
                ("X-Original-URL", "http://app.test/public/x"),
            ],
        ),
    )
    .await;
    if nginx.status != 403 {
        failures.push(format!(
            "nginx, no X-Original-Method: expected 403, got {}",
            nginx.status
        ));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// (request target, `Host` headers, status, the `Host` the app receives);
/// `{p}` is latchkey's port. One `Host` (RFC 9112 §3.2); an absolute-form
/// target's authority is the host, and a `Host` header beside it must say
/// the same; the app receives the host that was judged, normalized.
const HOSTS: &[(&str, &[&str], u16, &str)] = &[
    ("/public/x", &["app.test:{p}"], 200, "app.test:{p}"),
    ("/public/x", &["app.test:{p}", "app.test:{p}"], 400, ""),
    ("/public/x", &["app.test:{p}", "auth.test:{p}"], 400, ""),
    ("/public/x", &["auth.test:{p}", "app.test:{p}"], 400, ""),
    ("/public/x", &["app.test:{p}", ""], 400, ""),
    ("/public/x", &["APP.Test:{p}"], 200, "app.test:{p}"),
    ("/public/x", &["app.test.:{p}"], 200, "app.test:{p}"),
    ("/public/x", &["app.test"], 200, "app.test"),
    ("/public/x", &["app.test:"], 200, "app.test"),
    (
        "http://app.test:{p}/public/x",
        &["app.test:{p}"],
        200,
        "app.test:{p}",
    ),
    ("http://app.test:{p}/public/x", &[], 200, "app.test:{p}"),
    (
        "http://APP.TEST:{p}/public/x",
        &["app.test:{p}"],
        200,
        "app.test:{p}",
    ),
    ("http://evil.test/public/x", &["app.test:{p}"], 400, ""),
    ("http://app.test:{p}/public/x", &["evil.test"], 400, ""),
    ("http://app.test:{p}/public/x", &["app.test:1"], 400, ""),
    (
        "http://app.test:{p}/public/x",
        &["app.test:{p}", "app.test:{p}"],
        400,
        "",
    ),
    ("http://auth.test:{p}/public/x", &["app.test:{p}"], 400, ""),
];

#[tokio::test]
async fn one_host_and_the_app_receives_the_one_judged() {
    let stack = Stack::start("").await;
    let p = stack.lk.port.to_string();
    let mut failures = Vec::new();
    for (target, hosts, want, forwarded) in HOSTS {
        let target = target.replace("{p}", &p);
        let hosts: Vec<String> = hosts.iter().map(|h| h.replace("{p}", &p)).collect();
        let mut h: Vec<(&str, &str)> = vec![("Accept", "application/json")];
        h.extend(hosts.iter().map(|v| ("Host", v.as_str())));
        let r = exchange(stack.lk.addr, &head("GET", &target, &h)).await;
        let case = format!("{target} Host {hosts:?}");
        if r.status != *want {
            failures.push(format!("{case}: expected {want}, got {}", r.status));
            continue;
        }
        if r.status == 200 {
            let seen = r.json();
            let forwarded = forwarded.replace("{p}", &p);
            for name in ["host", "x-forwarded-host"] {
                let got = echoed_header(&seen, name);
                if got != [forwarded.clone()] {
                    failures.push(format!(
                        "{case}: the app received {name} {got:?}, expected {forwarded:?}"
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// (`:authority`, `Host` header, status, the `Host` the app receives) over
/// HTTP/2 in the clear: `:authority` and a `Host` beside it must agree
/// (RFC 9113 §8.3.1).
const H2_HOSTS: &[(&str, Option<&str>, u16, &str)] = &[
    ("app.test:{p}", None, 200, "app.test:{p}"),
    ("app.test:{p}", Some("app.test:{p}"), 200, "app.test:{p}"),
    ("APP.test.:{p}", None, 200, "app.test:{p}"),
    ("app.test:{p}", Some("evil.test"), 400, ""),
    ("auth.test:{p}", Some("app.test:{p}"), 400, ""),
    ("evil.test", Some("app.test:{p}"), 400, ""),
];

#[tokio::test]
async fn over_http2_authority_and_host_must_agree() {
    use http_body_util::{BodyExt, Empty};
    let stack = Stack::start("").await;
    let p = stack.lk.port.to_string();
    let mut failures = Vec::new();
    for (authority, host, want, forwarded) in H2_HOSTS {
        let authority = authority.replace("{p}", &p);
        let stream = tokio::net::TcpStream::connect(stack.lk.addr)
            .await
            .expect("connect");
        let (mut sender, conn) = hyper::client::conn::http2::handshake(
            hyper_util::rt::TokioExecutor::new(),
            hyper_util::rt::TokioIo::new(stream),
        )
        .await
        .expect("h2 handshake");
        tokio::spawn(conn);
        let mut req = http::Request::get(format!("http://{authority}/public/x"))
            .header("accept", "application/json")
            .body(Empty::<bytes::Bytes>::new())
            .expect("request");
        if let Some(h) = host {
            req.headers_mut().insert(
                "host",
                HeaderValue::from_str(&h.replace("{p}", &p)).expect("host"),
            );
        }
        let resp = sender.send_request(req).await.expect("h2 request");
        let status = resp.status().as_u16();
        let body = resp.into_body().collect().await.expect("body").to_bytes();
        let case = format!(":authority {authority} Host {host:?}");
        if status != *want {
            failures.push(format!("{case}: expected {want}, got {status}"));
            continue;
        }
        if status == 200 {
            let seen: serde_json::Value = serde_json::from_slice(&body).expect("json");
            let forwarded = forwarded.replace("{p}", &p);
            let got = echoed_header(&seen, "host");
            if got != [forwarded.clone()] {
                failures.push(format!(
                    "{case}: the app received Host {got:?}, expected {forwarded:?}"
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
