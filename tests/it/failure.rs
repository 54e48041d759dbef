//! What people see when a dependency fails, end to end against the real
//! binary: the session store (503, cookie kept, service comes back by
//! itself), the SMTP server (the page says the email could not be sent, the
//! same for every address) and the upstream (502 and 504 pages).

use std::time::{Duration, Instant};

use crate::flow::{request_link, sign_in, start_echo, Stack};
use crate::support::free_port;
use crate::support::http::{send, Resp};
use crate::support::latchkey::Latchkey;
use crate::support::redis::RedisServer;
use crate::support::smtp::SmtpSink;

const HTML: (&str, &str) = ("accept", "text/html");
const JSON: (&str, &str) = ("accept", "application/json");

fn clears_session(resp: &Resp) -> bool {
    resp.set_cookies()
        .iter()
        .any(|c| c.starts_with("latchkey_session="))
}

/// Redis frozen: protected requests get 503 (a page for browsers, JSON for
/// programs), public ones pass, the cookie is never touched; once Redis
/// answers again the same cookie works. The session cache may answer a
/// session it holds until its invalidation channel's heartbeat goes
/// unanswered (at most 1.5 s: nothing can be revoked on a frozen Redis
/// meanwhile); after that, nothing comes from memory.
#[tokio::test]
async fn store_outage_is_503_keeps_the_cookie_and_heals() {
    let stack = Stack::start("").await;
    let b = stack.browser();
    sign_in(&stack, &b, "bob@example.com").await;
    let cookie = b.cookie("latchkey_session").expect("signed in");
    assert_eq!(b.get("/reports", &[JSON]).await.status, 200);

    let redis = stack.redis.as_ref().expect("redis");
    redis.pause();
    let frozen = Instant::now();
    let page = loop {
        let page = b.get("/reports", &[HTML]).await;
        if page.status != 200 {
            break page;
        }
        assert!(
            frozen.elapsed() < Duration::from_secs(3),
            "the cache went on answering a frozen Redis's sessions"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(page.status, 503, "{}", page.body);
    assert!(
        page.header("content-type")
            .is_some_and(|t| t.starts_with("text/html")),
        "a page for browsers"
    );
    assert!(
        page.body.contains("temporarily unavailable") && page.body.contains("not been signed out"),
        "the page says what happened: {}",
        page.body
    );
    assert!(!clears_session(&page), "{:?}", page.set_cookies());
    let api = b.get("/reports", &[JSON]).await;
    assert_eq!(api.status, 503);
    assert_eq!(api.json()["error"], "Temporarily unavailable");
    assert!(!clears_session(&api));
    let me = b.get("/.latchkey/me", &[JSON]).await;
    assert_eq!(me.status, 503, "/me does not claim signed out: {}", me.body);
    let public = b.get("/public/info", &[JSON]).await;
    assert_eq!(public.status, 200, "public paths pass: {}", public.body);
    assert_eq!(b.cookie("latchkey_session"), Some(cookie.clone()));

    redis.resume();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = b.get("/reports", &[JSON]).await;
        if r.status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "did not heal: {}", r.status);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(b.cookie("latchkey_session"), Some(cookie), "same cookie");
}

/// latchkey starts with Redis down, answers 503 to protected requests,
/// and serves sign-ins as soon as Redis comes up, with no restart.
#[tokio::test]
async fn starts_without_redis_and_recovers_by_itself() {
    let mut redis = RedisServer::start();
    redis.stop();
    let redis_toml = format!("[redis]\nurl = \"{}\"", redis.url());
    let stack = Stack::start_opts(crate::flow::Opts {
        redis_toml: Some(&redis_toml),
        ..Default::default()
    })
    .await;
    let b = stack.browser();
    // Without a cookie there is nothing to look up: sign in first.
    assert_eq!(b.get("/reports", &[HTML]).await.status, 302);
    // With one, the store must answer: it cannot, so 503.
    b.set_cookie("latchkey_session", &"A".repeat(43));
    assert_eq!(b.get("/reports", &[HTML]).await.status, 503);
    assert_eq!(b.get("/public/x", &[JSON]).await.status, 200);
    b.remove_cookie("latchkey_session");

    redis.restart();
    sign_in(&stack, &b, "bob@example.com").await;
    assert_eq!(b.get("/reports", &[JSON]).await.status, 200);
}

/// SMTP down: once latchkey knows its mail server cannot be reached, the
/// "check your email" page says the email could not be sent, for known and
/// unknown addresses alike; when the server is back the warning goes away
/// (the probe notices) and mail flows.
#[tokio::test]
async fn smtp_outage_is_shown_alike_for_every_address() {
    let stack = Stack::start("[limits]\nlinks_per_ip = 1000\nlinks_per_email = 1000\n").await;
    let b = stack.browser();
    let port = stack.smtp.port;
    let killed = std::process::Command::new("kill")
        .arg(stack.smtp.pid().to_string())
        .status()
        .expect("kill");
    assert!(killed.success());
    const WARNING: &str = "We could not send the email";

    // The first failed send of a known address turns the warning on.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let page = request_link(&b, "bob@example.com", "").await;
        assert_eq!(page.status, 200);
        if page.body.contains(WARNING) {
            break;
        }
        assert!(Instant::now() < deadline, "no warning: {}", page.body);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let known = request_link(&b, "bob@example.com", "").await;
    let unknown = request_link(&b, "nobody@example.com", "").await;
    assert!(known.body.contains(WARNING));
    assert_eq!(known.status, unknown.status);
    assert_eq!(
        known.body, unknown.body,
        "the page must not reveal whether an address is known"
    );
    assert!(
        stack.lk.log().contains("mail transport unreachable"),
        "logged"
    );

    let back = SmtpSink::start_on(port);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let page = request_link(&b, "nobody@example.com", "").await;
        if !page.body.contains(WARNING) {
            break;
        }
        assert!(Instant::now() < deadline, "warning stayed on");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let sent = request_link(&b, "alice@example.com", "").await;
    assert!(!sent.body.contains(WARNING));
    back.wait_for("alice@example.com", Duration::from_secs(30))
        .await;
}

/// The upstream refuses connections: 502 page; it accepts and never
/// answers: 504 page after `server.upstream_timeout`.
#[tokio::test]
async fn upstream_down_is_a_502_page_and_slow_is_a_504_page() {
    let echo = start_echo().await;
    let down = free_port();
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let slow = silent.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = silent.accept().await {
            held.push(s);
        }
    });
    let lk = Latchkey::start(|port| {
        format!(
            r#"
[server]
listen = "127.0.0.1:{port}"
public_url = "http://auth.test:{port}"
upstream_timeout = "500ms"

[[apps]]
host = "down.test"
upstream = "http://127.0.0.1:{down}"

[[apps]]
host = "slow.test"
upstream = "http://{slow}"

[[apps]]
host = "ok.test"
upstream = "http://{echo}"

[[rules]]
path = "/**"
policy = "public"
"#
        )
    });
    let get = |host: &'static str| {
        let addr = lk.addr;
        async move { send(addr, "GET", "/x", &[("host", host), HTML], b"").await }
    };
    assert_eq!(get("ok.test").await.status, 200);
    let bad = get("down.test").await;
    assert_eq!(bad.status, 502, "{}", bad.body);
    assert!(
        bad.body.contains("could not be reached"),
        "a page saying so: {}",
        bad.body
    );
    let started = Instant::now();
    let timeout = get("slow.test").await;
    let took = started.elapsed();
    assert_eq!(timeout.status, 504, "{}", timeout.body);
    assert!(
        timeout.body.contains("did not answer in time"),
        "{}",
        timeout.body
    );
    eprintln!("504 after {took:?} with upstream_timeout = 500ms");
}
