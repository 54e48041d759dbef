//! latchkey as the forward-auth target of real front proxies, each run from
//! its example under `examples/` (only ports and paths changed): nginx
//! (auth_request), Caddy 2.11 (forward_auth), and Traefik's ForwardAuth
//! protocol (Traefik itself cannot be installed here; see
//! `support/traefik.rs`). Each guards the echo app; the tests check what a
//! person and a program would notice.

use std::net::SocketAddr;
use std::time::Duration;

use crate::flow::{link_token, open_link, request_link, start_echo};
use crate::support::free_port;
use crate::support::http::{Browser, Resp};
use crate::support::latchkey::Latchkey;
use crate::support::proxies::{example, FrontProxy};
use crate::support::redis::RedisServer;
use crate::support::smtp::SmtpSink;
use crate::support::traefik;

const APP: &str = "app.example.com";
const AUTH: &str = "auth.example.com";

enum Front {
    Real(FrontProxy),
    TraefikLike { addr: SocketAddr },
}

impl Front {
    fn addr(&self) -> SocketAddr {
        match self {
            Front::Real(p) => p.addr,
            Front::TraefikLike { addr } => *addr,
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Front::Real(p) => p.name,
            Front::TraefikLike { .. } => "traefik-like",
        }
    }

    fn log(&self) -> String {
        match self {
            Front::Real(p) => p.log(),
            Front::TraefikLike { .. } => String::new(),
        }
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Nginx,
    Caddy,
    Traefik,
}

/// latchkey in forward-auth mode (no upstream) behind a front proxy that
/// guards the echo app at `app.example.com`; latchkey's public_url is
/// `auth.example.com` on the same proxy.
struct Setup {
    _redis: RedisServer,
    smtp: SmtpSink,
    lk: Latchkey,
    front: Front,
    port: u16,
}

impl Setup {
    async fn start(kind: Kind, extra: &str) -> Setup {
        let redis = RedisServer::start();
        let smtp = SmtpSink::start();
        let echo = start_echo().await;
        // The proxy's port goes into latchkey's public_url before the proxy
        // exists; the Traefik-like proxy binds it at once.
        let (port, listener) = match kind {
            Kind::Traefik => {
                let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                (l.local_addr().unwrap().port(), Some(l))
            }
            _ => (free_port(), None),
        };
        let (redis_url, smtp_url) = (redis.url(), smtp.url());
        let lk = Latchkey::start(|lk_port| {
            format!(
                r#"
[server]
listen = "127.0.0.1:{lk_port}"
public_url = "http://{AUTH}:{port}"
trusted_proxies = ["127.0.0.1"]

[redis]
url = "{redis_url}"

[mail]
transport = "smtp"
smtp_url = "{smtp_url}"
from = "Example Sign-in <login@example.com>"

[[users]]
email = "alice@example.com"
roles = ["admin", "member"]

[[users]]
email = "bob@example.com"
roles = ["member"]

[[apps]]
host = "{APP}"

[[rules]]
path = "/public/**"
policy = "public"

[[rules]]
path = "/admin/**"
policy = "roles"
roles = ["admin"]
{extra}
"#
            )
        });
        let front = match kind {
            Kind::Nginx => Front::Real(FrontProxy::nginx(port, lk.addr, echo)),
            Kind::Caddy => Front::Real(FrontProxy::caddy(port, lk.addr, echo)),
            Kind::Traefik => {
                let config = traefik_config(lk.addr, echo);
                let addr = traefik::start(listener.unwrap(), config).await;
                Front::TraefikLike { addr }
            }
        };
        Setup {
            _redis: redis,
            smtp,
            lk,
            front,
            port,
        }
    }

    fn app_host(&self) -> String {
        format!("{APP}:{}", self.port)
    }

    fn auth_host(&self) -> String {
        format!("{AUTH}:{}", self.port)
    }

    fn browser(&self, host: &str) -> Browser {
        Browser::new(self.front.addr()).with_host(host)
    }

    /// Panics with both logs.
    fn fail(&self, what: &str) -> ! {
        panic!(
            "{} in front of latchkey: {what}\n--- {} log ---\n{}\n--- latchkey log ---\n{}",
            self.front.name(),
            self.front.name(),
            self.front.log(),
            self.lk.log()
        );
    }
}

/// The middleware, routers and services of examples/traefik/dynamic.yml,
/// read from the file so the test follows the example.
fn traefik_config(latchkey: SocketAddr, app: SocketAddr) -> traefik::Config {
    let yml = example("traefik/dynamic.yml");
    let list_after = |key: &str| -> Vec<String> {
        let at = yml
            .find(key)
            .unwrap_or_else(|| panic!("dynamic.yml has no {key}"));
        yml[at + key.len()..]
            .lines()
            .skip(1)
            .map(str::trim)
            .take_while(|l| l.starts_with("- ") || l.ends_with(": \"\""))
            .map(|l| {
                l.trim_start_matches("- ")
                    .trim_end_matches(": \"\"")
                    .to_owned()
            })
            .collect()
    };
    let auth_response_headers = list_after("authResponseHeaders:");
    assert_eq!(
        auth_response_headers,
        ["X-Auth-User-Id", "X-Auth-Email", "X-Auth-Roles"],
        "dynamic.yml's authResponseHeaders"
    );
    let strip_request_headers = list_after("customRequestHeaders:");
    assert!(
        yml.contains("trustForwardHeader: true"),
        "dynamic.yml sets trustForwardHeader"
    );
    assert!(yml.contains("address: \"http://latchkey:8080/.latchkey/auth\""));
    traefik::Config {
        app_host: APP.into(),
        auth_host: AUTH.into(),
        address: format!("http://{latchkey}/.latchkey/auth"),
        latchkey,
        app,
        trust_forward_header: true,
        auth_response_headers,
        strip_request_headers,
    }
}

/// The app's JSON echo of a request, or a panic with the logs.
fn echoed(setup: &Setup, resp: &Resp) -> serde_json::Value {
    if resp.status != 200 || !resp.body.starts_with('{') {
        setup.fail(&format!(
            "expected the app's answer, got {}: {}",
            resp.status, resp.body
        ));
    }
    resp.json()
}

fn echoed_header(v: &serde_json::Value, name: &str) -> Vec<String> {
    v["headers"]
        .as_array()
        .expect("headers array")
        .iter()
        .filter(|p| p[0].as_str().is_some_and(|n| n.eq_ignore_ascii_case(name)))
        .map(|p| p[1].as_str().unwrap_or("").to_owned())
        .collect()
}

/// No forged identity: the header is absent or latchkey's (empty) value.
fn only(v: &serde_json::Value, name: &str, expected: &str) -> Result<(), String> {
    let got = echoed_header(v, name);
    let fine = if expected.is_empty() {
        got.iter().all(String::is_empty)
    } else {
        got == [expected]
    };
    if fine {
        Ok(())
    } else {
        Err(format!(
            "{name}: expected {expected:?}, the app got {got:?}"
        ))
    }
}

const FORGED: &[(&str, &str)] = &[
    ("X-Auth-Email", "mallory@example.com"),
    ("x-auth-roles", "admin"),
    ("X-Auth-User-Id", "mallory"),
    ("X_Auth_Email", "mallory@example.com"),
];

/// Everything a person and a program notice, through the front proxy.
async fn guards_the_app(kind: Kind) {
    let setup = Setup::start(kind, "").await;
    let app = setup.app_host();
    let b = setup.browser(&app);
    let json = [("accept", "application/json")];

    // An anonymous browser is sent to sign in on the app's host, with the
    // exact URL as return address.
    let first = b.get("/reports?q=1", &[]).await;
    let expected = format!(
        "http://{app}/.latchkey/login?rd=http%3A%2F%2F{}%2Freports%3Fq%3D1",
        app.replace(':', "%3A")
    );
    if first.status != 302 || first.header("location") != Some(expected.as_str()) {
        setup.fail(&format!(
            "anonymous browser: expected 302 to {expected}, got {} {:?}: {}",
            first.status,
            first.header("location"),
            first.body
        ));
    }

    // A program gets 401, not a redirect.
    let api = b.get("/reports", &json).await;
    if api.status != 401 {
        setup.fail(&format!("API request: expected 401, got {}", api.status));
    }

    // Anonymous on a public path: the app is reached, forged identity is not.
    let public = b.get("/public/info", &[FORGED, &json[..]].concat()).await;
    let seen = echoed(&setup, &public);
    for (name, _) in FORGED {
        if let Err(e) = only(&seen, name, "") {
            setup.fail(&format!("anonymous on a public path: {e}"));
        }
    }

    // Sign in through the proxy.
    let rd = format!("http://{app}/reports?q=1");
    let sent = request_link(&b, "bob@example.com", &rd).await;
    if sent.status != 200 {
        setup.fail(&format!("sign-in form: {} {}", sent.status, sent.body));
    }
    let mail = setup
        .smtp
        .wait_for("bob@example.com", Duration::from_secs(10))
        .await;
    assert!(
        mail.text
            .contains(&format!("http://{app}/.latchkey/verify?token=")),
        "the link points at the app's host: {}",
        mail.text
    );
    let done = open_link(&b, &link_token(&mail.text)).await;
    if done.status != 303 || done.header("location") != Some(rd.as_str()) {
        setup.fail(&format!(
            "confirm: expected 303 to {rd}, got {} {:?}",
            done.status,
            done.header("location")
        ));
    }
    let token = b.cookie("latchkey_session").expect("session cookie");

    // Signed in: the app sees who is calling, and nothing forged.
    b.set_cookie("theme", "dark");
    let resp = b.get("/reports?q=1", &[FORGED, &json[..]].concat()).await;
    let seen = echoed(&setup, &resp);
    assert_eq!(seen["uri"], "/reports?q=1");
    for (name, expected) in [
        ("x-auth-email", "bob@example.com"),
        ("x-auth-roles", "member"),
    ] {
        if let Err(e) = only(&seen, name, expected) {
            setup.fail(&format!("signed in: {e}"));
        }
    }
    let id = echoed_header(&seen, "x-auth-user-id");
    assert!(
        id.len() == 1 && id[0].len() == 24 && id[0] != "mallory",
        "{id:?}"
    );
    if let Err(e) = only(&seen, "x_auth_email", "") {
        setup.fail(&format!("signed in: {e}"));
    }
    let cookies = echoed_header(&seen, "cookie").join("; ");
    assert!(
        cookies.contains("theme=dark"),
        "other cookies pass: {cookies}"
    );
    if kind != Kind::Traefik {
        assert!(
            !cookies.contains(&token),
            "{}: the session token reaches the app: {cookies}",
            setup.front.name()
        );
    }

    // Signed in on a public path: still bob, never mallory.
    let public = b.get("/public/x", &[FORGED, &json[..]].concat()).await;
    let seen = echoed(&setup, &public);
    if let Err(e) = only(&seen, "x-auth-email", "bob@example.com") {
        setup.fail(&format!("signed in on a public path: {e}"));
    }

    // A member may not enter the admin area.
    let admin = b.get("/admin/settings", &[]).await;
    if admin.status != 403 {
        setup.fail(&format!(
            "member on /admin: expected 403, got {}",
            admin.status
        ));
    }

    // Sign out through the proxy; the app is closed again.
    let confirm = b.get("/.latchkey/logout", &[]).await;
    let csrf = crate::flow::csrf_of(&confirm.body);
    let out = b
        .post_form("/.latchkey/logout", &[("csrf", &csrf)], &[])
        .await;
    assert_eq!(out.status, 200, "{}", out.body);
    let after = b.get("/reports", &json).await;
    assert_eq!(after.status, 401, "signed out");
}

#[tokio::test]
async fn nginx_guards_the_app() {
    guards_the_app(Kind::Nginx).await;
}

#[tokio::test]
async fn caddy_guards_the_app() {
    guards_the_app(Kind::Caddy).await;
}

#[tokio::test]
async fn traefik_forward_auth_protocol_guards_the_app() {
    guards_the_app(Kind::Traefik).await;
}

/// With cookie_domain, sign-in happens on auth.example.com and brings the
/// person back to the exact URL on app.example.com.
async fn signs_in_across_subdomains(kind: Kind) {
    let setup = Setup::start(kind, "[session]\ncookie_domain = \"example.com\"\n").await;
    let (app, auth) = (setup.app_host(), setup.auth_host());
    // One cookie jar for both hosts, as a browser has; the Domain attribute
    // is checked below.
    let b = setup.browser(&auth);
    let on_app = [("host", app.as_str())];
    let path = "/reports/2026/q3?sort=desc&filter=a%20b";
    let original = format!("http://{app}{path}");

    let first = b.get(path, &on_app).await;
    let rd: String = form_urlencoded::byte_serialize(original.as_bytes()).collect();
    let expected = format!("http://{auth}/.latchkey/login?rd={rd}");
    if first.status != 302 || first.header("location") != Some(expected.as_str()) {
        setup.fail(&format!(
            "expected 302 to {expected}, got {} {:?}",
            first.status,
            first.header("location")
        ));
    }

    let sent = request_link(&b, "alice@example.com", &original).await;
    assert_eq!(sent.status, 200, "{}", sent.body);
    let mail = setup
        .smtp
        .wait_for("alice@example.com", Duration::from_secs(10))
        .await;
    assert!(
        mail.text
            .contains(&format!("http://{auth}/.latchkey/verify?token=")),
        "the link points at public_url: {}",
        mail.text
    );
    let done = open_link(&b, &link_token(&mail.text)).await;
    if done.status != 303 || done.header("location") != Some(original.as_str()) {
        setup.fail(&format!(
            "expected 303 back to {original}, got {} {:?}",
            done.status,
            done.header("location")
        ));
    }
    let set = done.set_cookies().join("\n");
    assert!(
        set.lines()
            .any(|c| c.starts_with("latchkey_session=") && c.contains("Domain=example.com")),
        "the session cookie covers every subdomain: {set}"
    );

    let back = b
        .get(
            path,
            &[("host", app.as_str()), ("accept", "application/json")],
        )
        .await;
    let seen = echoed(&setup, &back);
    assert_eq!(seen["uri"], path, "the exact path and query");
    if let Err(e) = only(&seen, "x-auth-email", "alice@example.com") {
        setup.fail(&e);
    }
    let admin = b
        .get(
            "/admin/",
            &[("host", app.as_str()), ("accept", "application/json")],
        )
        .await;
    let seen = echoed(&setup, &admin);
    if let Err(e) = only(&seen, "x-auth-roles", "admin,member") {
        setup.fail(&e);
    }
}

#[tokio::test]
async fn nginx_signs_in_across_subdomains() {
    signs_in_across_subdomains(Kind::Nginx).await;
}

#[tokio::test]
async fn caddy_signs_in_across_subdomains() {
    signs_in_across_subdomains(Kind::Caddy).await;
}

#[tokio::test]
async fn traefik_forward_auth_protocol_signs_in_across_subdomains() {
    signs_in_across_subdomains(Kind::Traefik).await;
}
