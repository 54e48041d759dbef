//! The whole sign-in path, driven as a browser would, against the real
//! binary with a real redis-server, a real SMTP server and an echo upstream.

use std::net::SocketAddr;
use std::time::Duration;

use crate::support::http::{send, Browser, Resp};
use crate::support::latchkey::Latchkey;
use crate::support::redis::RedisServer;
use crate::support::smtp::SmtpSink;

pub struct Stack {
    /// The stack's own redis-server; `None` when `Opts::redis_toml` named one.
    pub redis: Option<RedisServer>,
    pub smtp: SmtpSink,
    pub _echo: SocketAddr,
    pub lk: Latchkey,
}

pub async fn start_echo() -> SocketAddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind echo");
    let addr = l.local_addr().expect("echo addr");
    tokio::spawn(latchkey::cli::echo::serve(l, std::future::pending()));
    addr
}

/// What a test stack changes from `Stack::start`'s defaults.
pub struct Opts<'a> {
    /// Appended to the config.
    pub extra: &'a str,
    /// Extra environment variables for latchkey.
    pub env: &'a [(&'a str, &'a str)],
    /// public_url's scheme: `http` or `https`.
    pub scheme: &'a str,
    /// `server.trusted_proxies`, as a TOML array.
    pub trusted_proxies: &'a str,
    /// A `[redis]` table (sentinel, cluster, a server started elsewhere);
    /// `None` starts a redis-server for the stack.
    pub redis_toml: Option<&'a str>,
    /// The port latchkey listens on; `None` picks a free one.
    pub port: Option<u16>,
}

impl Default for Opts<'_> {
    fn default() -> Self {
        Opts {
            extra: "",
            env: &[],
            scheme: "http",
            trusted_proxies: r#"["127.0.0.1"]"#,
            redis_toml: None,
            port: None,
        }
    }
}

impl Stack {
    /// latchkey in front of the echo app at host `app.test`, with alice
    /// (admin) and bob (member), closed signup, `/public/**` public and
    /// `/admin/**` for admins. `extra` is appended to the config.
    pub async fn start(extra: &str) -> Stack {
        Stack::start_opts(Opts {
            extra,
            ..Opts::default()
        })
        .await
    }

    pub async fn start_opts(opts: Opts<'_>) -> Stack {
        let redis = opts.redis_toml.is_none().then(RedisServer::start);
        let redis_toml = match (&redis, opts.redis_toml) {
            (Some(r), _) => format!("[redis]\nurl = \"{}\"", r.url()),
            (None, toml) => toml.unwrap_or_default().to_owned(),
        };
        let smtp = SmtpSink::start();
        let echo = start_echo().await;
        let smtp_url = smtp.url();
        let make = |port| Stack::config(port, &opts, &redis_toml, &smtp_url, echo);
        let lk = match opts.port {
            Some(port) => Latchkey::start_on_with_env(port, make, opts.env),
            None => Latchkey::start_with_env(make, opts.env),
        };
        Stack {
            redis,
            smtp,
            _echo: echo,
            lk,
        }
    }

    /// Stops latchkey and starts it again on the same port with `extra`
    /// (and the other defaults), keeping the stack's Redis (sessions,
    /// tokens, users), the SMTP server and the app.
    pub fn restart(self, extra: &str) -> Stack {
        let Stack {
            redis,
            smtp,
            _echo: echo,
            lk,
        } = self;
        let port = lk.port;
        drop(lk);
        let redis_toml = format!(
            "[redis]\nurl = \"{}\"",
            redis.as_ref().expect("a stack with its own redis").url()
        );
        let opts = Opts {
            extra,
            ..Opts::default()
        };
        let lk = Latchkey::start_on(port, |port| {
            Stack::config(port, &opts, &redis_toml, &smtp.url(), echo)
        });
        Stack {
            redis,
            smtp,
            _echo: echo,
            lk,
        }
    }

    /// The config a stack runs with.
    pub fn config(
        port: u16,
        opts: &Opts<'_>,
        redis_toml: &str,
        smtp_url: &str,
        echo: SocketAddr,
    ) -> String {
        let Opts {
            extra,
            scheme,
            trusted_proxies,
            ..
        } = opts;
        format!(
            r#"
[server]
listen = "127.0.0.1:{port}"
public_url = "{scheme}://auth.test:{port}"
trusted_proxies = {trusted_proxies}

{redis_toml}

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
host = "app.test"
upstream = "http://{echo}"

[[apps]]
host = "auth.test"

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
    }

    pub fn host(&self) -> String {
        format!("app.test:{}", self.lk.port)
    }

    pub fn browser(&self) -> Browser {
        Browser::new(self.lk.addr).with_host(&self.host())
    }
}

/// The value of the hidden `csrf` field in a page.
pub fn csrf_of(page: &str) -> String {
    let at = page
        .find("name=\"csrf\"")
        .unwrap_or_else(|| panic!("no csrf field in page:\n{page}"));
    let tail = &page[at..];
    let v = tail.find("value=\"").expect("csrf value") + 7;
    tail[v..v + tail[v..].find('"').expect("end of value")].to_owned()
}

/// The token of the sign-in link in an email's text part.
pub fn link_token(text: &str) -> String {
    let at = text
        .find("token=")
        .unwrap_or_else(|| panic!("no link in email:\n{text}"))
        + 6;
    text[at..at + 43].to_owned()
}

/// The six-digit code in an email's text part.
pub fn code_of(text: &str) -> String {
    let bytes = text.as_bytes();
    for i in 0..bytes.len().saturating_sub(5) {
        let run = &bytes[i..i + 6];
        let before = i.checked_sub(1).map(|j| bytes[j]);
        let after = bytes.get(i + 6);
        if run.iter().all(u8::is_ascii_digit)
            && !before.is_some_and(|b| b.is_ascii_digit() || b == b':' || b == b'.')
            && !after.is_some_and(|b| b.is_ascii_digit() || *b == b':' || *b == b'.')
        {
            return String::from_utf8_lossy(run).into_owned();
        }
    }
    panic!("no code in email:\n{text}");
}

/// Opens the sign-in page (with `rd`) and asks for a link for `email`.
pub async fn request_link(b: &Browser, email: &str, rd: &str) -> Resp {
    let rd_q: String = form_urlencoded::byte_serialize(rd.as_bytes()).collect();
    let page = b.get(&format!("/.latchkey/login?rd={rd_q}"), &[]).await;
    assert_eq!(page.status, 200, "login page: {}", page.body);
    let csrf = csrf_of(&page.body);
    b.post_form(
        "/.latchkey/login",
        &[("email", email), ("csrf", &csrf), ("rd", rd)],
        &[],
    )
    .await
}

/// Opens the link from the email and presses the confirm button.
pub async fn open_link(b: &Browser, token: &str) -> Resp {
    let confirm = b
        .get(&format!("/.latchkey/verify?token={token}"), &[])
        .await;
    assert_eq!(confirm.status, 200, "confirm page: {}", confirm.body);
    let csrf = csrf_of(&confirm.body);
    b.post_form(
        "/.latchkey/verify",
        &[("token", token), ("csrf", &csrf)],
        &[],
    )
    .await
}

/// Signs `b` in as `email` through the whole magic-link path.
pub async fn sign_in(stack: &Stack, b: &Browser, email: &str) {
    let sent = request_link(b, email, "/").await;
    assert_eq!(sent.status, 200, "{}", sent.body);
    let mail = stack.smtp.wait_for(email, Duration::from_secs(10)).await;
    let done = open_link(b, &link_token(&mail.text)).await;
    assert_eq!(done.status, 303, "verify: {}", done.body);
}

pub fn echoed(resp: &Resp) -> serde_json::Value {
    assert_eq!(
        resp.status, 200,
        "expected the app's answer, got: {}",
        resp.body
    );
    resp.json()
}

pub fn echoed_header(v: &serde_json::Value, name: &str) -> Vec<String> {
    v["headers"]
        .as_array()
        .expect("headers array")
        .iter()
        .filter(|p| p[0].as_str().is_some_and(|n| n.eq_ignore_ascii_case(name)))
        .map(|p| p[1].as_str().unwrap_or("").to_owned())
        .collect()
}

#[tokio::test]
async fn the_whole_sign_in_path() {
    let stack = Stack::start("").await;
    let b = stack.browser();

    // Anonymous: sent to sign in, with the page as return address.
    let first = b.get("/reports?q=1", &[]).await;
    assert_eq!(first.status, 302);
    let location = first.header("location").expect("location").to_owned();
    let expected = format!(
        "http://{}/.latchkey/login?rd=http%3A%2F%2F{}%2Freports%3Fq%3D1",
        stack.host(),
        stack.host().replace(':', "%3A")
    );
    assert_eq!(
        location, expected,
        "sign in on the same host, coming back here after"
    );

    // The page, the email, the link.
    let rd = format!("http://{}/reports?q=1", stack.host());
    let sent = request_link(&b, "Bob@Example.com", &rd).await;
    assert_eq!(sent.status, 200);
    let retry: String = form_urlencoded::byte_serialize(rd.as_bytes()).collect();
    assert!(
        sent.body
            .contains(&format!("href=\"/.latchkey/login?rd={retry}\"")),
        "\"try again\" keeps the return address: {}",
        sent.body
    );
    assert!(
        sent.body.to_lowercase().contains("check your email"),
        "{}",
        sent.body
    );
    let mail = stack
        .smtp
        .wait_for("bob@example.com", Duration::from_secs(10))
        .await;
    assert!(
        mail.html.contains("/.latchkey/verify?token="),
        "html part has the link"
    );
    assert!(
        mail.text
            .contains(&format!("http://{}/.latchkey/verify?token=", stack.host())),
        "the link points at the host where sign-in started: {}",
        mail.text
    );
    assert!(
        mail.text.contains("10 minutes"),
        "says when it expires: {}",
        mail.text
    );
    assert!(
        mail.text.contains("127.0.0.1"),
        "says where it was asked from: {}",
        mail.text
    );
    let token = link_token(&mail.text);

    // GET never uses the token up (mail scanners open links).
    for _ in 0..2 {
        let page = b
            .get(&format!("/.latchkey/verify?token={token}"), &[])
            .await;
        assert_eq!(page.status, 200);
    }
    let done = open_link(&b, &token).await;
    assert_eq!(done.status, 303);
    assert_eq!(
        done.header("location"),
        Some(rd.as_str()),
        "back to the page asked for"
    );
    let cookie = b.cookie("latchkey_session").expect("session cookie");
    let set = done.set_cookies().join("\n");
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Lax"),
        "{set}"
    );

    // The link is used up.
    let again = b
        .get(&format!("/.latchkey/verify?token={token}"), &[])
        .await;
    assert_eq!(again.status, 410);

    // The app sees who is calling, and nothing forged, and no session cookie.
    b.set_cookie("theme", "dark");
    let resp = b
        .get(
            "/reports?q=1",
            &[
                ("accept", "application/json"),
                ("x-auth-email", "mallory@example.com"),
                ("X_Auth_Roles", "admin"),
            ],
        )
        .await;
    let seen = echoed(&resp);
    assert_eq!(seen["uri"], "/reports?q=1");
    assert_eq!(
        echoed_header(&seen, "x-auth-email"),
        vec!["bob@example.com"]
    );
    assert_eq!(echoed_header(&seen, "x-auth-roles"), vec!["member"]);
    assert_eq!(echoed_header(&seen, "x_auth_roles"), Vec::<String>::new());
    assert_eq!(echoed_header(&seen, "x-auth-user-id").len(), 1);
    let cookies = echoed_header(&seen, "cookie").join(";");
    assert!(
        cookies.contains("theme=dark"),
        "other cookies pass: {cookies}"
    );
    assert!(
        !cookies.contains(&cookie),
        "the session token never reaches the app"
    );

    // /me
    let me = b
        .get("/.latchkey/me", &[("accept", "application/json")])
        .await;
    assert_eq!(me.status, 200);
    let me = me.json();
    assert_eq!(me["authenticated"], true);
    assert_eq!(me["user"]["email"], "bob@example.com");
    assert_eq!(me["user"]["roles"], serde_json::json!(["member"]));
    assert!(me["expires_at"].as_str().is_some_and(|t| t.ends_with('Z')));

    // A member may not enter the admin area.
    let admin = b.get("/admin/settings", &[]).await;
    assert_eq!(admin.status, 403);
    assert!(
        admin.body.contains("bob@example.com"),
        "the page says who is signed in"
    );

    // Logout: confirm page, then POST; the old cookie is dead everywhere.
    let confirm = b.get("/.latchkey/logout", &[]).await;
    assert_eq!(confirm.status, 200);
    let csrf = csrf_of(&confirm.body);
    let out = b
        .post_form("/.latchkey/logout", &[("csrf", &csrf)], &[])
        .await;
    assert_eq!(out.status, 200);
    assert!(b.cookie("latchkey_session").is_none(), "cookie cleared");
    let stale = send(
        stack.lk.addr,
        "GET",
        "/reports",
        &[
            ("host", &stack.host()),
            ("cookie", &format!("latchkey_session={cookie}")),
            ("accept", "text/html"),
        ],
        b"",
    )
    .await;
    assert_eq!(stale.status, 302, "the old cookie no longer works");
    let me = send(
        stack.lk.addr,
        "GET",
        "/.latchkey/me",
        &[
            ("host", &stack.host()),
            ("cookie", &format!("latchkey_session={cookie}")),
        ],
        b"",
    )
    .await;
    assert_eq!(me.status, 401);
    assert_eq!(me.json()["authenticated"], false);
}

#[tokio::test]
async fn admins_reach_the_admin_area_and_public_paths_need_no_sign_in() {
    let stack = Stack::start("").await;
    let anon = send(
        stack.lk.addr,
        "GET",
        "/public/info",
        &[
            ("host", &stack.host()),
            ("accept", "application/json"),
            ("x-auth-email", "forged@example.com"),
        ],
        b"",
    )
    .await;
    let seen = echoed(&anon);
    assert_eq!(
        echoed_header(&seen, "x-auth-email"),
        vec![""],
        "anonymous: empty, never forged"
    );

    let api = send(
        stack.lk.addr,
        "GET",
        "/reports",
        &[("host", &stack.host()), ("accept", "application/json")],
        b"",
    )
    .await;
    assert_eq!(api.status, 401, "programs get 401, not a redirect");

    let alice = stack.browser();
    sign_in(&stack, &alice, "alice@example.com").await;
    let admin = alice
        .get("/admin/settings", &[("accept", "application/json")])
        .await;
    let seen = echoed(&admin);
    assert_eq!(echoed_header(&seen, "x-auth-roles"), vec!["admin,member"]);
}

#[tokio::test]
async fn unknown_addresses_get_the_same_page_and_no_mail() {
    let stack = Stack::start("").await;
    let b = stack.browser();
    let known = request_link(&b, "bob@example.com", "").await;
    let unknown = request_link(&b, "nobody@example.com", "").await;
    assert_eq!(known.status, unknown.status);
    assert_eq!(
        known.body, unknown.body,
        "the page must not reveal whether an address is known"
    );
    let names = |r: &Resp| {
        r.set_cookies()
            .iter()
            .map(|c| c.split('=').next().unwrap_or("").to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(names(&known), names(&unknown));
    stack
        .smtp
        .wait_for("bob@example.com", Duration::from_secs(10))
        .await;
    // Why nothing is sent: the request was refused (and logged so) instead
    // of a link being made; nothing is queued after that.
    stack
        .lk
        .wait_for_audit(
            "sign_in_refused",
            Some("refused"),
            "nobody@example.com",
            1,
            Duration::from_secs(10),
        )
        .await;
    assert_eq!(
        stack
            .lk
            .audit_count("sign_in_requested", None, "nobody@example.com"),
        0,
        "no link made for an address that may not sign in"
    );
    assert!(
        stack
            .smtp
            .messages()
            .iter()
            .all(|m| !m.to.iter().any(|t| t.contains("nobody"))),
        "no mail to an address that may not sign in"
    );
}

#[tokio::test]
async fn expired_links_fail() {
    let stack = Stack::start("[login]\nlink_ttl = \"1s\"\n").await;
    let b = stack.browser();
    request_link(&b, "bob@example.com", "").await;
    let mail = stack
        .smtp
        .wait_for("bob@example.com", Duration::from_secs(10))
        .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let token = link_token(&mail.text);
    let page = b
        .get(&format!("/.latchkey/verify?token={token}"), &[])
        .await;
    assert_eq!(
        page.status, 410,
        "an expired link shows the invalid-link page"
    );
}

#[tokio::test]
async fn idle_timeout_slides_and_max_lifetime_ends_sessions() {
    let stack = Stack::start("[session]\nidle_timeout = \"2s\"\nmax_lifetime = \"5s\"\n").await;
    let json = [("accept", "application/json")];

    // Idle: unused for longer than idle_timeout → signed out.
    let idle = stack.browser();
    sign_in(&stack, &idle, "bob@example.com").await;
    assert_eq!(idle.get("/", &json).await.status, 200);
    tokio::time::sleep(Duration::from_millis(2600)).await;
    assert_eq!(idle.get("/", &json).await.status, 401, "idle session ended");

    // Sliding: used every 1.2s, it outlives idle_timeout, but not max_lifetime.
    let busy = stack.browser();
    sign_in(&stack, &busy, "bob@example.com").await;
    let started = std::time::Instant::now();
    while started.elapsed() < Duration::from_millis(3600) {
        tokio::time::sleep(Duration::from_millis(1200)).await;
        let r = busy.get("/", &json).await;
        assert_eq!(
            r.status,
            200,
            "sliding session alive at {:?}",
            started.elapsed()
        );
    }
    tokio::time::sleep(Duration::from_millis(5200).saturating_sub(started.elapsed())).await;
    let r = busy.get("/", &json).await;
    assert_eq!(r.status, 401, "max_lifetime ends even a busy session");
}

#[tokio::test]
async fn the_code_signs_in_the_browser_that_asked_and_wrong_codes_void_it() {
    let stack = Stack::start("").await;

    let b = stack.browser();
    let sent = request_link(&b, "bob@example.com", "").await;
    let csrf = csrf_of(&sent.body);
    let mail = stack
        .smtp
        .wait_for("bob@example.com", Duration::from_secs(10))
        .await;
    let code = code_of(&mail.text);
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let r = b
        .post_form("/.latchkey/code", &[("code", wrong), ("csrf", &csrf)], &[])
        .await;
    assert_eq!(r.status, 422, "a wrong code says so: {}", r.body);
    let r = b
        .post_form("/.latchkey/code", &[("code", &code), ("csrf", &csrf)], &[])
        .await;
    assert_eq!(r.status, 303, "the right code signs in: {}", r.body);
    assert!(b.cookie("latchkey_session").is_some());

    // Three wrong codes void the code and its link.
    let c = stack.browser();
    let sent = request_link(&c, "alice@example.com", "").await;
    let csrf = csrf_of(&sent.body);
    let mail = stack
        .smtp
        .wait_for("alice@example.com", Duration::from_secs(10))
        .await;
    let code = code_of(&mail.text);
    let wrong = if code == "000000" { "111111" } else { "000000" };
    for _ in 0..3 {
        c.post_form("/.latchkey/code", &[("code", wrong), ("csrf", &csrf)], &[])
            .await;
    }
    let r = c
        .post_form("/.latchkey/code", &[("code", &code), ("csrf", &csrf)], &[])
        .await;
    assert_eq!(r.status, 410, "voided after three wrong codes");
    let page = c
        .get(
            &format!("/.latchkey/verify?token={}", link_token(&mail.text)),
            &[],
        )
        .await;
    assert_eq!(page.status, 410, "the link went with the code");
}

#[tokio::test]
async fn a_link_opened_in_another_browser_uses_nothing_up() {
    let stack = Stack::start("").await;
    let asker = stack.browser();
    request_link(&asker, "bob@example.com", "").await;
    let mail = stack
        .smtp
        .wait_for("bob@example.com", Duration::from_secs(10))
        .await;
    let token = link_token(&mail.text);

    // A mail scanner: GET, HEAD, then submits the confirm form from its own jar.
    let scanner = stack.browser();
    let head = send(
        stack.lk.addr,
        "HEAD",
        &format!("/.latchkey/verify?token={token}"),
        &[("host", &stack.host())],
        b"",
    )
    .await;
    assert_eq!(head.status, 200);
    let r = open_link(&scanner, &token).await;
    assert_eq!(
        r.status, 403,
        "another browser is told where to open the link"
    );
    assert!(scanner.cookie("latchkey_session").is_none());

    // The person still signs in.
    let r = open_link(&asker, &token).await;
    assert_eq!(r.status, 303);
}

#[tokio::test]
async fn forms_without_a_matching_csrf_token_or_from_another_site_are_refused() {
    let stack = Stack::start("").await;
    let b = stack.browser();
    let page = b.get("/.latchkey/login", &[]).await;
    let csrf = csrf_of(&page.body);
    let r = b
        .post_form(
            "/.latchkey/login",
            &[("email", "bob@example.com"), ("csrf", "x")],
            &[],
        )
        .await;
    assert_eq!(r.status, 403);
    let r = b
        .post_form(
            "/.latchkey/login",
            &[("email", "bob@example.com"), ("csrf", &csrf)],
            &[("origin", "https://evil.example")],
        )
        .await;
    assert_eq!(r.status, 403);
    let r = b
        .post_form(
            "/.latchkey/login",
            &[("email", "bob@example.com"), ("csrf", &csrf)],
            &[("origin", &format!("http://{}", stack.host()))],
        )
        .await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn forward_auth_answers_traefik_and_nginx() {
    let stack = Stack::start("").await;
    let bob = stack.browser();
    sign_in(&stack, &bob, "bob@example.com").await;
    let session = format!(
        "latchkey_session={}",
        bob.cookie("latchkey_session").expect("cookie")
    );
    let auth = |uri: &'static str, cookie: Option<String>, accept: &'static str| {
        let addr = stack.lk.addr;
        let host = stack.host();
        async move {
            let mut h: Vec<(&str, String)> = vec![
                ("host", host),
                ("x-forwarded-method", "GET".into()),
                ("x-forwarded-proto", "https".into()),
                ("x-forwarded-host", "app.test".into()),
                ("x-forwarded-uri", uri.into()),
                ("accept", accept.into()),
            ];
            if let Some(c) = cookie {
                h.push(("cookie", c));
            }
            let h: Vec<(&str, &str)> = h.iter().map(|(k, v)| (*k, v.as_str())).collect();
            send(addr, "GET", "/.latchkey/auth", &h, b"").await
        }
    };
    let r = auth("/docs?page=2", None, "text/html").await;
    assert_eq!(r.status, 302);
    let loc = r.header("location").expect("location");
    assert!(
        loc.contains("/.latchkey/login?rd=https%3A%2F%2Fapp.test%2Fdocs%3Fpage%3D2"),
        "{loc}"
    );
    assert_eq!(auth("/docs", None, "application/json").await.status, 401);
    let ok = auth("/docs", Some(session.clone()), "text/html").await;
    assert_eq!(ok.status, 200);
    assert_eq!(ok.header("x-auth-email"), Some("bob@example.com"));
    assert_eq!(ok.header("x-auth-roles"), Some("member"));
    assert_eq!(
        auth("/admin/x", Some(session.clone()), "text/html")
            .await
            .status,
        403
    );
    let public = auth("/public/x", None, "text/html").await;
    assert_eq!(public.status, 200);
    assert_eq!(
        public.header("x-auth-email"),
        Some(""),
        "all three headers, empty"
    );

    // Nginx: X-Original-URL; sign-in is 401 with Location.
    let nginx = |url: &'static str, cookie: Option<String>| {
        let addr = stack.lk.addr;
        async move {
            let mut h = vec![
                ("host", "auth.test".to_owned()),
                ("x-original-url", url.to_owned()),
                ("x-original-method", "GET".to_owned()),
            ];
            if let Some(c) = cookie {
                h.push(("cookie", c));
            }
            let h: Vec<(&str, &str)> = h.iter().map(|(k, v)| (*k, v.as_str())).collect();
            send(addr, "GET", "/.latchkey/auth/request", &h, b"").await
        }
    };
    let r = nginx("https://app.test/docs", None).await;
    assert_eq!(r.status, 401);
    assert!(r
        .header("location")
        .is_some_and(|l| l.contains("/.latchkey/login?rd=")));
    let r = nginx("https://app.test/docs", Some(session.clone())).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-auth-user-id").map(str::len), Some(24));
    assert_eq!(
        nginx("https://app.test/admin/", Some(session)).await.status,
        403
    );
    assert_eq!(
        nginx("https://app.test/a/%2e%2e/%2e%2e/x", None)
            .await
            .status,
        403,
        "ambiguous path refused"
    );
}

#[tokio::test]
async fn ambiguous_paths_are_refused_and_dot_segments_resolved_before_judging() {
    let stack = Stack::start("").await;
    let r = send(
        stack.lk.addr,
        "GET",
        "/public/..%2fadmin",
        &[("host", &stack.host())],
        b"",
    )
    .await;
    assert_eq!(r.status, 400);
    // /public/../admin/x is /admin/x: judged (and forwarded) as that.
    let r = send(
        stack.lk.addr,
        "GET",
        "/public/%2e%2e/admin/x",
        &[("host", &stack.host()), ("accept", "application/json")],
        b"",
    )
    .await;
    assert_eq!(r.status, 401, "not public once normalized");
}
