//! Every answer latchkey itself produces carries the security headers of
//! `http::response` (nosniff, Referrer-Policy, X-Frame-Options: DENY, a CSP
//! with `frame-ancestors 'none'`, `Cache-Control: no-store`), whichever
//! route, method, input or identity produced it: each `/.latchkey/*` route
//! with good and bad input, wrong methods, unknown hosts, bad paths and
//! hosts, sign-in redirects and refusals, a dead upstream, and both
//! forward-auth flavours. A builder that skips them fails here. Answers
//! proxied from an app are the app's and carry none of them.

use std::time::Duration;

use latchkey::identity::keys::Alg;

use crate::assertion::{assertion_toml, write_key};
use crate::flow::{csrf_of, link_token, open_link, request_link, Stack};
use crate::support::http::{send, Resp};

const HTML: &str = "text/html,application/xhtml+xml,*/*;q=0.8";
const JSON: &str = "application/json";

/// Deny rule, an app whose upstream refuses connections, signing keys.
fn extra(key: &str) -> String {
    format!(
        r#"
[[apps]]
host = "down.test"
upstream = "http://127.0.0.1:1"

[[rules]]
path = "/closed/**"
policy = "deny"
{}"#,
        assertion_toml(&[("a", key)], "")
    )
}

/// Asserts the headers every latchkey answer carries; `what` names it.
fn assert_secure(r: &Resp, what: &str) {
    let show = || format!("{what}: {} {:?}", r.status, r.headers);
    assert_eq!(
        r.header("x-content-type-options"),
        Some("nosniff"),
        "{}",
        show()
    );
    assert_eq!(r.header("x-frame-options"), Some("DENY"), "{}", show());
    assert!(
        matches!(
            r.header("referrer-policy"),
            Some("same-origin" | "no-referrer")
        ),
        "{}",
        show()
    );
    let csp = r.header("content-security-policy").unwrap_or_default();
    assert!(csp.contains("frame-ancestors 'none'"), "{}", show());
    let html = r
        .header("content-type")
        .is_some_and(|t| t.starts_with("text/html"));
    if html {
        assert!(
            csp.contains("style-src 'sha256-"),
            "page policy: {}",
            show()
        );
        assert_eq!(
            r.header("cross-origin-opener-policy"),
            Some("same-origin"),
            "{}",
            show()
        );
    } else {
        assert!(csp.contains("default-src 'none'"), "{}", show());
    }
    if !what.contains("jwks") {
        assert_eq!(r.header("cache-control"), Some("no-store"), "{}", show());
    }
}

/// One request: what it is, then method, target, headers, body; the
/// status latchkey must answer.
struct Case {
    what: &'static str,
    method: &'static str,
    target: String,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
    status: u16,
}

fn case(what: &'static str, method: &'static str, target: &str, status: u16) -> Case {
    Case {
        what,
        method,
        target: target.to_owned(),
        headers: Vec::new(),
        body: Vec::new(),
        status,
    }
}

impl Case {
    fn with(mut self, name: &'static str, value: impl Into<String>) -> Case {
        self.headers.push((name, value.into()));
        self
    }

    fn html(self) -> Case {
        self.with("accept", HTML)
    }

    fn json(self) -> Case {
        self.with("accept", JSON)
    }

    fn form(mut self, body: &str) -> Case {
        self.body = body.as_bytes().to_vec();
        self.with("content-type", "application/x-www-form-urlencoded")
    }
}

#[tokio::test]
async fn every_answer_latchkey_makes_carries_the_security_headers() {
    let dir = crate::support::temp_dir();
    let key = write_key(dir.path(), "a", Alg::Es256);
    let stack = Stack::start(&extra(&key)).await;
    let port = stack.lk.port;
    let app = stack.host();
    let auth = format!("auth.test:{port}");
    let down = format!("down.test:{port}");

    // Traefik asks with X-Forwarded-*, nginx with X-Original-URL (both
    // from 127.0.0.1, a trusted proxy).
    let traefik = |what, host: &str, uri: &str, status| {
        case(what, "GET", "/.latchkey/auth", status)
            .with("host", auth.clone())
            .with("x-forwarded-method", "GET")
            .with("x-forwarded-proto", "http")
            .with("x-forwarded-host", host)
            .with("x-forwarded-uri", uri)
    };
    let nginx = |what, url: &str, status| {
        case(what, "GET", "/.latchkey/auth/request", status)
            .with("host", auth.clone())
            .with("x-original-url", url)
            .with("x-original-method", "GET")
    };
    let big_form = format!("email={}", "a".repeat(20_000));

    let cases = vec![
        // The sign-in routes, signed out, with wrong methods and bad input.
        case("login page", "GET", "/.latchkey/login?rd=%2F", 200).html(),
        case("login without CSRF", "POST", "/.latchkey/login", 403)
            .html()
            .form("email=bob%40example.com"),
        case("login without CSRF, JSON", "POST", "/.latchkey/login", 403)
            .json()
            .form("email=bob%40example.com"),
        case("login too large", "POST", "/.latchkey/login", 413)
            .html()
            .form(&big_form),
        case("login PUT", "PUT", "/.latchkey/login", 405).html(),
        case(
            "verify page, unknown token",
            "GET",
            "/.latchkey/verify?token=x",
            410,
        )
        .html(),
        case("verify without CSRF", "POST", "/.latchkey/verify", 403)
            .html()
            .form("token=x"),
        case("verify DELETE", "DELETE", "/.latchkey/verify", 405).json(),
        case("code without CSRF", "POST", "/.latchkey/code", 403)
            .json()
            .form("code=123456"),
        case("code GET", "GET", "/.latchkey/code", 405).html(),
        case("logout page", "GET", "/.latchkey/logout", 200).html(),
        case("logout without CSRF", "POST", "/.latchkey/logout", 403)
            .html()
            .form(""),
        case("me signed out", "GET", "/.latchkey/me", 401).json(),
        case("me signed out, browser", "GET", "/.latchkey/me", 401).html(),
        case("me POST", "POST", "/.latchkey/me", 405).json(),
        case("token without CSRF", "POST", "/.latchkey/token", 403).json(),
        case("token cross-site", "POST", "/.latchkey/token", 403)
            .json()
            .with("x-requested-with", "fetch")
            .with("origin", "http://evil.test"),
        case("token GET", "GET", "/.latchkey/token", 405).json(),
        case("jwks", "GET", "/.latchkey/jwks.json", 200).json(),
        case("jwks POST", "POST", "/.latchkey/jwks.json", 405).json(),
        case("unknown latchkey route", "GET", "/.latchkey/nope", 404).html(),
        case(
            "unknown latchkey route, JSON",
            "GET",
            "/.latchkey/nope",
            404,
        )
        .json(),
        // Requests latchkey refuses before any route.
        case("unknown host", "GET", "/", 404)
            .html()
            .with("host", "nowhere.test"),
        case("unknown host, JSON", "GET", "/x", 404)
            .json()
            .with("host", "nowhere.test"),
        case("ambiguous path", "GET", "/public/..%2fadmin", 400).html(),
        case("ambiguous path, JSON", "GET", "/a/%2e%2e/%2e%2e/x", 400).json(),
        case("two Hosts", "GET", "/", 400)
            .json()
            .with("host", app.clone())
            .with("host", "evil.test"),
        case("lower-case method", "get", "/reports", 400).html(),
        // The gate: sign in first, forbidden, a dead upstream.
        case("signed out, browser", "GET", "/reports", 302).html(),
        case("signed out, POST", "POST", "/reports", 303)
            .html()
            .form(""),
        case("signed out, program", "GET", "/reports", 401).json(),
        case("signed out, bad bearer", "GET", "/reports", 401)
            .json()
            .with("authorization", "Bearer nope"),
        case("deny rule, browser", "GET", "/closed/x", 403).html(),
        case("deny rule, program", "GET", "/closed/x", 403).json(),
        case("deny rule, bad bearer", "GET", "/closed/x", 403)
            .json()
            .with("authorization", "Bearer nope"),
        case("upstream down", "GET", "/public/x", 502)
            .html()
            .with("host", down.clone()),
        case("upstream down, JSON", "GET", "/public/x", 502)
            .json()
            .with("host", down.clone()),
        case("CONNECT", "CONNECT", "/public/x", 405).json(),
        // Forward-auth.
        traefik("traefik sign in", "app.test", "/reports", 302).html(),
        traefik("traefik sign in, JSON", "app.test", "/reports", 401).json(),
        traefik("traefik deny", "app.test", "/closed/x", 403).html(),
        traefik("traefik unknown host", "nowhere.test", "/", 404).json(),
        traefik("traefik bad path", "app.test", "/a/%2e%2e/%2e%2e/x", 400).html(),
        case("traefik no target", "GET", "/.latchkey/auth", 400)
            .json()
            .with("host", auth.clone()),
        nginx("nginx sign in", "http://app.test/reports", 401),
        nginx("nginx deny", "http://app.test/closed/x", 403),
        nginx("nginx bad path", "http://app.test/a/%2e%2e/%2e%2e/x", 403),
        nginx("nginx unknown host", "http://nowhere.test/", 403),
        nginx("nginx bearer", "http://app.test/reports", 401).with("authorization", "Bearer nope"),
    ];

    let mut wrong_status = Vec::new();
    for c in &cases {
        let mut headers: Vec<(&str, &str)> =
            c.headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        if !headers.iter().any(|(k, _)| *k == "host") {
            headers.push(("host", &app));
        }
        let r = send(stack.lk.addr, c.method, &c.target, &headers, &c.body).await;
        if r.status != c.status {
            wrong_status.push(format!("{}: {} (want {})", c.what, r.status, c.status));
        }
        assert_secure(&r, c.what);
    }
    assert!(wrong_status.is_empty(), "{wrong_status:#?}");

    // Through the whole sign-in: the pages and redirects a browser sees.
    let b = stack.browser();
    let page = b.get("/.latchkey/login", &[]).await;
    assert_secure(&page, "login page, browser");
    let sent = request_link(&b, "bob@example.com", "/").await;
    assert_eq!(sent.status, 200, "{}", sent.body);
    assert_secure(&sent, "check your email");
    let mail = stack
        .smtp
        .wait_for("bob@example.com", Duration::from_secs(10))
        .await;
    let token = link_token(&mail.text);
    let confirm = b
        .get(&format!("/.latchkey/verify?token={token}"), &[])
        .await;
    assert_secure(&confirm, "confirm page");
    let done = open_link(&b, &token).await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_secure(&done, "signed in, redirect");
    let used = b
        .post_form(
            "/.latchkey/verify",
            &[("token", &token), ("csrf", &csrf_of(&confirm.body))],
            &[],
        )
        .await;
    assert_eq!(used.status, 410, "{}", used.body);
    assert_secure(&used, "link used up");
    let me = b.get("/.latchkey/me", &[("accept", JSON)]).await;
    assert_eq!(me.status, 200, "{}", me.body);
    assert_secure(&me, "me");
    let forbidden = b.get("/admin/x", &[]).await;
    assert_eq!(forbidden.status, 403, "{}", forbidden.body);
    assert_secure(&forbidden, "signed in, forbidden");
    let forbidden = b.get("/admin/x", &[("accept", JSON)]).await;
    assert_eq!(forbidden.status, 403, "{}", forbidden.body);
    assert_secure(&forbidden, "signed in, forbidden, JSON");
    let minted = b
        .request(
            "POST",
            "/.latchkey/token",
            &[("accept", JSON), ("x-requested-with", "fetch")],
            b"",
        )
        .await;
    assert_eq!(minted.status, 200, "{}", minted.body);
    assert_secure(&minted, "token");
    let logout = b.get("/.latchkey/logout", &[]).await;
    let out = b
        .post_form(
            "/.latchkey/logout",
            &[("csrf", &csrf_of(&logout.body))],
            &[],
        )
        .await;
    assert_eq!(out.status, 200, "{}", out.body);
    assert_secure(&out, "signed out page");

    // What the app answers is the app's: latchkey adds none of its own.
    let proxied = send(
        stack.lk.addr,
        "GET",
        "/public/x",
        &[("host", &app), ("accept", HTML)],
        b"",
    )
    .await;
    assert_eq!(proxied.status, 200, "{}", proxied.body);
    for name in [
        "x-frame-options",
        "content-security-policy",
        "referrer-policy",
        "x-content-type-options",
    ] {
        assert!(proxied.header(name).is_none(), "proxied answer has {name}");
    }
}
