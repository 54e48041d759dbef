//! What ops see: the admin listener (`/healthz`, `/readyz`, `/metrics`
//! scraped and parsed), request ids end to end, JSON logs, the audit trail,
//! and no secret in any log line even at `trace`. All against the real
//! binary, a real redis-server and a real SMTP server.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::flow::{code_of, csrf_of, link_token, open_link, request_link, sign_in, Stack};
use crate::support::http::{raw, send, Browser, Resp};
use crate::support::latchkey::Latchkey;
use crate::support::smtp::SmtpSink;
use crate::support::{free_port, wait_for_port};

/// One scrape: `series` (`name` or `name{labels}`, as written) → value.
#[derive(Debug)]
struct Scrape(BTreeMap<String, f64>);

impl Scrape {
    /// Parses the text exposition format strictly enough to catch a broken
    /// encoder: every sample has a `# TYPE` before it, a `latchkey_` name,
    /// balanced labels and a number.
    fn parse(text: &str) -> Scrape {
        let mut typed: Vec<String> = Vec::new();
        let mut samples = BTreeMap::new();
        for line in text.lines().filter(|l| !l.is_empty()) {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').expect("TYPE name kind");
                assert!(
                    ["counter", "gauge", "histogram"].contains(&kind),
                    "unknown type in {line:?}"
                );
                typed.push(name.to_owned());
                continue;
            }
            if line.starts_with("# HELP ") {
                continue;
            }
            let (series, value) = line.rsplit_once(' ').expect("series value");
            let value: f64 = value
                .parse()
                .unwrap_or_else(|_| panic!("not a number in {line:?}"));
            let name = series.split('{').next().unwrap_or(series);
            assert!(name.starts_with("latchkey_"), "{line:?}");
            if let Some(labels) = series.strip_prefix(name) {
                if !labels.is_empty() {
                    assert!(
                        labels.starts_with('{') && labels.ends_with('}'),
                        "labels in {line:?}"
                    );
                    for pair in labels[1..labels.len() - 1].split(',') {
                        let (_, v) = pair.split_once('=').expect("label=value");
                        assert!(v.starts_with('"') && v.ends_with('"'), "{line:?}");
                    }
                }
            }
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| name.strip_suffix(s))
                .filter(|f| typed.iter().any(|t| t == f))
                .unwrap_or(name);
            assert!(
                typed.iter().any(|t| t == family),
                "sample before its # TYPE: {line:?}"
            );
            assert!(
                samples.insert(series.to_owned(), value).is_none(),
                "duplicate series {series}"
            );
        }
        Scrape(samples)
    }

    fn get(&self, series: &str) -> f64 {
        *self
            .0
            .get(series)
            .unwrap_or_else(|| panic!("no series {series} in {:#?}", self.0))
    }
}

async fn scrape(admin: SocketAddr) -> Scrape {
    let r = send(admin, "GET", "/metrics", &[], b"").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.header("content-type")
            .is_some_and(|t| t.starts_with("text/plain; version=0.0.4")),
        "{:?}",
        r.headers
    );
    Scrape::parse(&r.body)
}

/// Scrapes until `done` holds (counters bumped off the request path, like
/// mail, land a moment after the request that caused them).
async fn scrape_until(admin: SocketAddr, done: impl Fn(&Scrape) -> bool) -> Scrape {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let s = scrape(admin).await;
        if done(&s) || Instant::now() > deadline {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A stack with the admin listener on a free port (set through the
/// environment, as ops may), and `env` on top.
async fn stack_with_admin(extra: &str, env: &[(&str, &str)]) -> (Stack, SocketAddr) {
    let admin: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
    let admin_s = admin.to_string();
    let mut all = vec![("LATCHKEY_SERVER__ADMIN_LISTEN", admin_s.as_str())];
    all.extend_from_slice(env);
    let stack = Stack::start_opts(crate::flow::Opts {
        extra,
        env: &all,
        ..Default::default()
    })
    .await;
    wait_for_port(admin, "latchkey's admin listener");
    (stack, admin)
}

async fn status(admin: SocketAddr, path: &str) -> u16 {
    send(admin, "GET", path, &[], b"").await.status
}

fn req_total(flavor: &str, outcome: &str) -> String {
    format!("latchkey_requests_total{{flavor=\"{flavor}\",outcome=\"{outcome}\"}}")
}

#[tokio::test]
async fn metrics_count_requests_sign_ins_and_mail() {
    // Without new-device notices: the mail counted here is sign-in mail.
    let (stack, admin) = stack_with_admin(
        r#"
[login]
new_device_email = false

[[rules]]
path = "/deny/**"
policy = "deny"
"#,
        &[],
    )
    .await;
    let lk = stack.lk.addr;
    let host = stack.host();
    let before = scrape(admin).await;

    // alice signs in: 4 pages (login page, POST login, confirm, POST verify).
    let alice = stack.browser();
    sign_in(&stack, &alice, "alice@example.com").await;
    // Proxy: 2 allowed, 1 forbidden (deny rule).
    assert_eq!(alice.get("/reports", &[]).await.status, 200);
    assert_eq!(alice.get("/admin/x", &[]).await.status, 200);
    assert_eq!(alice.get("/deny/x", &[]).await.status, 403);
    // Anonymous: 1 sign-in first, 1 allowed (public), 1 bad request.
    let anon = stack.browser();
    assert_eq!(anon.get("/reports", &[]).await.status, 302);
    assert_eq!(anon.get("/public/x", &[]).await.status, 200);
    assert_eq!(anon.get("/a%2fb", &[]).await.status, 400);
    // Forward-auth: nginx asks for an anonymous request (sign in first),
    // traefik for alice's (allowed).
    let nginx = send(
        lk,
        "GET",
        "/.latchkey/auth/request",
        &[
            ("host", &host),
            ("x-original-url", &format!("http://{host}/reports")),
            ("x-original-method", "GET"),
        ],
        b"",
    )
    .await;
    assert_eq!(nginx.status, 401);
    let traefik = alice
        .get(
            "/.latchkey/auth",
            &[
                ("x-forwarded-method", "GET"),
                ("x-forwarded-proto", "http"),
                ("x-forwarded-host", &host),
                ("x-forwarded-uri", "/reports"),
            ],
        )
        .await;
    assert_eq!(traefik.status, 200);
    // bob asks in one browser and opens the link in another (2 + 2 pages),
    // then that browser posts an unknown token (1 page).
    let asker = stack.browser();
    request_link(&asker, "bob@example.com", "").await;
    let mail = stack
        .smtp
        .wait_for("bob@example.com", Duration::from_secs(10))
        .await;
    let other = stack.browser();
    assert_eq!(open_link(&other, &link_token(&mail.text)).await.status, 403);
    let page = other.get("/.latchkey/login", &[]).await;
    let bogus = "A".repeat(43);
    let r = other
        .post_form(
            "/.latchkey/verify",
            &[("token", &bogus), ("csrf", &csrf_of(&page.body))],
            &[],
        )
        .await;
    assert_eq!(r.status, 410);
    // (and the login page just fetched: 1 more page)

    let after = scrape_until(admin, |s| {
        s.get("latchkey_mails_sent_total") >= before.get("latchkey_mails_sent_total") + 2.0
    })
    .await;
    let delta = |series: &str| after.get(series) - before.get(series);
    let expected: &[(String, f64)] = &[
        (req_total("proxy", "allowed"), 3.0),
        (req_total("proxy", "forbidden"), 1.0),
        (req_total("proxy", "sign_in"), 1.0),
        (req_total("proxy", "bad_request"), 1.0),
        (req_total("proxy", "store_error"), 0.0),
        (req_total("proxy", "upstream_error"), 0.0),
        (req_total("nginx", "sign_in"), 1.0),
        (req_total("nginx", "allowed"), 0.0),
        (req_total("traefik", "allowed"), 1.0),
        (req_total("traefik", "sign_in"), 0.0),
        (req_total("pages", "allowed"), 4.0 + 2.0 + 2.0 + 1.0 + 1.0),
        (req_total("pages", "bad_request"), 0.0),
        ("latchkey_sign_ins_requested_total".into(), 2.0),
        ("latchkey_sign_ins_completed_total".into(), 1.0),
        (
            "latchkey_sign_ins_failed_total{reason=\"wrong_browser\"}".into(),
            1.0,
        ),
        (
            "latchkey_sign_ins_failed_total{reason=\"invalid\"}".into(),
            1.0,
        ),
        (
            "latchkey_sign_ins_failed_total{reason=\"refused\"}".into(),
            0.0,
        ),
        ("latchkey_mails_sent_total".into(), 2.0),
        ("latchkey_mails_failed_total".into(), 0.0),
        ("latchkey_store_errors_total".into(), 0.0),
        // Judged: 5 proxied requests that got past parsing, 2 forward-auth.
        ("latchkey_decision_duration_seconds_count".into(), 7.0),
        ("latchkey_upstream_duration_seconds_count".into(), 3.0),
    ];
    for (series, want) in expected {
        assert_eq!(delta(series), *want, "{series}");
    }
    let count = after.get("latchkey_decision_duration_seconds_count");
    let inf = after.get("latchkey_decision_duration_seconds_bucket{le=\"+Inf\"}");
    assert_eq!(count, inf, "+Inf bucket holds every observation");
    assert!(
        !after.0.contains_key("latchkey_active_sessions"),
        "no session gauge on Redis (it would need a SCAN)"
    );
    let decided = delta("latchkey_decision_duration_seconds_count");
    let secs = delta("latchkey_decision_duration_seconds_sum");
    eprintln!(
        "measured: mean decision time {:.3} ms over {decided} requests (debug build, local redis)",
        secs / decided * 1000.0
    );
}

#[tokio::test]
async fn readyz_follows_the_store_and_healthz_stays_up() {
    let (mut stack, admin) = stack_with_admin("", &[]).await;
    let alice = stack.browser();
    sign_in(&stack, &alice, "alice@example.com").await;
    assert_eq!(status(admin, "/healthz").await, 200);
    assert_eq!(status(admin, "/readyz").await, 200);
    assert_eq!(status(admin, "/nothing").await, 404);

    stack.redis.as_mut().expect("redis").stop();
    let stopped = Instant::now();
    let mut ready = 200;
    while ready != 503 && stopped.elapsed() < Duration::from_secs(10) {
        ready = status(admin, "/readyz").await;
    }
    assert_eq!(ready, 503, "readyz reports the store down");
    eprintln!(
        "measured: readyz said 503 {:?} after redis stopped",
        stopped.elapsed()
    );
    assert_eq!(status(admin, "/healthz").await, 200, "still alive");
    let before = scrape(admin).await;
    let r = alice.get("/reports", &[]).await;
    assert_eq!(r.status, 503, "a store error is not a sign-out");
    let after = scrape(admin).await;
    assert_eq!(
        after.get("latchkey_store_errors_total") - before.get("latchkey_store_errors_total"),
        1.0
    );
    assert_eq!(
        after.get(&req_total("proxy", "store_error"))
            - before.get(&req_total("proxy", "store_error")),
        1.0
    );

    stack.redis.as_mut().expect("redis").restart();
    let restarted = Instant::now();
    while ready != 200 && restarted.elapsed() < Duration::from_secs(15) {
        tokio::time::sleep(Duration::from_millis(50)).await;
        ready = status(admin, "/readyz").await;
    }
    assert_eq!(ready, 200, "ready again once redis is back");
    eprintln!(
        "measured: readyz said 200 {:?} after redis restarted",
        restarted.elapsed()
    );
    assert_eq!(status(admin, "/healthz").await, 200);
}

#[tokio::test]
async fn the_memory_store_reports_active_sessions() {
    let smtp = SmtpSink::start();
    let smtp_url = smtp.url();
    let admin: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
    let lk = Latchkey::start(|port| {
        format!(
            r#"
[server]
listen = "127.0.0.1:{port}"
public_url = "http://127.0.0.1:{port}"
admin_listen = "{admin}"

[mail]
transport = "smtp"
smtp_url = "{smtp_url}"
from = "login@example.com"

[[users]]
email = "alice@example.com"
roles = ["admin"]
"#
        )
    });
    wait_for_port(admin, "latchkey's admin listener");
    assert_eq!(status(admin, "/readyz").await, 200, "memory store is ready");
    let gauge = "latchkey_active_sessions";
    assert_eq!(scrape(admin).await.get(gauge), 0.0);

    let b = Browser::new(lk.addr);
    request_link(&b, "alice@example.com", "").await;
    let mail = smtp
        .wait_for("alice@example.com", Duration::from_secs(10))
        .await;
    assert_eq!(open_link(&b, &link_token(&mail.text)).await.status, 303);
    assert_eq!(scrape(admin).await.get(gauge), 1.0);

    let page = b.get("/.latchkey/logout", &[]).await;
    let r = b
        .post_form("/.latchkey/logout", &[("csrf", &csrf_of(&page.body))], &[])
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(scrape(admin).await.get(gauge), 0.0);
}

fn echoed_request_id(resp: &Resp) -> Vec<String> {
    assert_eq!(resp.status, 200, "{}", resp.body);
    resp.json()["headers"]
        .as_array()
        .expect("headers")
        .iter()
        .filter(|p| p[0].as_str() == Some("x-request-id"))
        .map(|p| p[1].as_str().unwrap_or("").to_owned())
        .collect()
}

fn is_generated(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

#[tokio::test]
async fn request_ids_reach_the_upstream_and_hostile_ones_are_replaced() {
    let stack = Stack::start("").await;
    let lk = stack.lk.addr;
    let host = stack.host();
    let get = |id: Vec<u8>| {
        let host = host.clone();
        async move {
            let mut req = format!(
                "GET /public/echo HTTP/1.1\r\nHost: {host}\r\nAccept: application/json\r\n\
                 Connection: close\r\n"
            )
            .into_bytes();
            req.extend_from_slice(b"X-Request-Id: ");
            req.extend_from_slice(&id);
            req.extend_from_slice(b"\r\n\r\n");
            raw(lk, &req).await
        }
    };
    let body_of = |resp: &str| -> Vec<String> {
        let status = resp.split_whitespace().nth(1).unwrap_or("").to_owned();
        let body = resp.split_once("\r\n\r\n").map_or("", |(_, b)| b);
        let r = Resp {
            status: status.parse().unwrap_or(0),
            headers: Default::default(),
            body: body.to_owned(),
        };
        echoed_request_id(&r)
    };

    // A sane id arrives unchanged.
    let sane = "0f8c2a6e-3d7b-4c1e-9a55-2b6f0e7d1c3a";
    assert_eq!(body_of(&get(sane.into()).await), vec![sane.to_owned()]);

    // Hostile ones are replaced by a generated id, never forwarded.
    let hostile: &[(&str, Vec<u8>)] = &[
        ("10 KB", vec![b'a'; 10 * 1024]),
        ("spaces", b"x y".to_vec()),
        ("tab", b"x\ty".to_vec()),
        ("non-ASCII", "caf\u{e9}".as_bytes().to_vec()),
    ];
    for (what, id) in hostile {
        let ids = body_of(&get(id.clone()).await);
        assert!(ids.len() == 1 && is_generated(&ids[0]), "{what}: {ids:?}");
    }

    // A CR, LF or DEL inside the value never gets as far as latchkey: the
    // HTTP parser refuses the request, and nothing reaches the app.
    for crlf in [
        &b"evil\rX-Injected: 1"[..],
        b"evil\r\nX-Injected 1",
        b"x\x7fy",
    ] {
        let resp = get(crlf.to_vec()).await;
        assert!(resp.starts_with("HTTP/1.1 400"), "{resp}");
    }

    // No id: one is made up; forward-auth answers carry it.
    let none = send(
        lk,
        "GET",
        "/public/echo",
        &[("host", &host), ("accept", "application/json")],
        b"",
    )
    .await;
    let made = echoed_request_id(&none);
    assert!(made.len() == 1 && is_generated(&made[0]), "{made:?}");
    let auth = send(
        lk,
        "GET",
        "/.latchkey/auth",
        &[
            ("host", &host),
            ("x-request-id", "from-traefik-1"),
            ("x-forwarded-method", "GET"),
            ("x-forwarded-proto", "http"),
            ("x-forwarded-host", &host),
            ("x-forwarded-uri", "/public/x"),
        ],
        b"",
    )
    .await;
    assert_eq!(auth.status, 200);
    assert_eq!(auth.header("x-request-id"), Some("from-traefik-1"));
}

#[tokio::test]
async fn json_logs_carry_the_request_id_and_audit_events() {
    let stack = Stack::start_opts(crate::flow::Opts {
        env: &[("LATCHKEY_LOG_FORMAT", "json")],
        ..Default::default()
    })
    .await;
    let b = stack.browser();
    let r = b
        .get("/public/x", &[("x-request-id", "json-log-test-1")])
        .await;
    assert_eq!(r.status, 200);
    sign_in(&stack, &b, "alice@example.com").await;
    let page = b.get("/.latchkey/logout", &[]).await;
    let r = b
        .post_form("/.latchkey/logout", &[("csrf", &csrf_of(&page.body))], &[])
        .await;
    assert_eq!(r.status, 200);
    tokio::time::sleep(Duration::from_millis(200)).await;

    let log = stack.lk.log();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l:?}\n{log}")))
        .collect();
    let tagged = lines
        .iter()
        .filter(|l| l["span"]["request_id"] == "json-log-test-1")
        .count();
    assert!(
        tagged >= 1,
        "a line carries the client's request id:\n{log}"
    );

    let audit: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|l| l["target"] == "latchkey::obs::audit")
        .collect();
    let events: Vec<&str> = audit.iter().filter_map(|l| l["event"].as_str()).collect();
    assert_eq!(
        events,
        ["sign_in_requested", "sign_in_completed", "signed_out"],
        "{log}"
    );
    let alice_id = latchkey::store::records::user_id("alice@example.com");
    for line in &audit {
        assert_eq!(line["user_id"], alice_id.as_str(), "{line}");
        assert_eq!(line["ip"], "127.0.0.1", "{line}");
        assert_eq!(line["user_agent"], "latchkey-test-browser", "{line}");
        assert!(
            line["span"]["request_id"]
                .as_str()
                .is_some_and(is_generated),
            "audit lines carry their request's id: {line}"
        );
    }
}

#[tokio::test]
async fn no_secret_reaches_the_log_even_at_trace() {
    let stack = Stack::start_opts(crate::flow::Opts {
        env: &[("LATCHKEY_LOG", "trace")],
        ..Default::default()
    })
    .await;
    let mut secrets: Vec<(&str, String)> = Vec::new();

    // By link.
    let b = stack.browser();
    let sent = request_link(&b, "alice@example.com", "/").await;
    assert_eq!(sent.status, 200);
    let mail = stack
        .smtp
        .wait_for("alice@example.com", Duration::from_secs(10))
        .await;
    let token = link_token(&mail.text);
    secrets.push(("link token", token.clone()));
    secrets.push(("code", code_of(&mail.text)));
    secrets.push((
        "attempt cookie",
        b.cookie("latchkey_attempt").expect("attempt"),
    ));
    assert_eq!(open_link(&b, &token).await.status, 303);
    secrets.push((
        "session cookie",
        b.cookie("latchkey_session").expect("session"),
    ));
    secrets.push(("CSRF token", b.cookie("latchkey_csrf").expect("csrf")));
    assert_eq!(b.get("/admin/x", &[]).await.status, 200);

    // By code, in another browser.
    let c = stack.browser();
    request_link(&c, "bob@example.com", "").await;
    let mail = stack
        .smtp
        .wait_for("bob@example.com", Duration::from_secs(10))
        .await;
    let code = code_of(&mail.text);
    secrets.push(("link token (bob)", link_token(&mail.text)));
    secrets.push(("code (bob)", code.clone()));
    let csrf = c.cookie("latchkey_csrf").expect("csrf");
    secrets.push(("CSRF token (bob)", csrf.clone()));
    let r = c
        .post_form("/.latchkey/code", &[("code", &code), ("csrf", &csrf)], &[])
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    secrets.push((
        "session cookie (bob)",
        c.cookie("latchkey_session").expect("session"),
    ));
    assert_eq!(c.get("/reports", &[]).await.status, 200);

    // Out again.
    let page = b.get("/.latchkey/logout", &[]).await;
    let r = b
        .post_form("/.latchkey/logout", &[("csrf", &csrf_of(&page.body))], &[])
        .await;
    assert_eq!(r.status, 200);
    tokio::time::sleep(Duration::from_millis(200)).await;

    let log = stack.lk.log();
    assert!(log.contains("TRACE"), "trace logging was on:\n{log}");
    assert!(log.contains("latchkey::obs::audit"), "audit events logged");
    // Each line without its leading timestamp, whose fractional seconds
    // could be any six digits.
    let text: Vec<&str> = log
        .lines()
        .map(|l| l.split_once(' ').map_or(l, |(_, rest)| rest))
        .collect();
    for (what, secret) in &secrets {
        assert!(secret.len() >= 6, "{what} {secret:?}");
        // Short codes only as a whole word: a longer number may hold them.
        let found = text.iter().find(|line| {
            if secret.len() >= 20 {
                line.contains(secret.as_str())
            } else {
                contains_word(line, secret)
            }
        });
        assert!(found.is_none(), "the {what} appears in the log: {found:?}");
    }
    eprintln!(
        "checked {} secrets against {} log lines",
        secrets.len(),
        log.lines().count()
    );
}

/// `needle` in `hay`, not as part of a longer run of letters or digits.
fn contains_word(hay: &str, needle: &str) -> bool {
    let word =
        |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    hay.match_indices(needle).any(|(i, _)| {
        !word(hay[..i].chars().next_back()) && !word(hay[i + needle.len()..].chars().next())
    })
}
