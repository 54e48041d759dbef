//! The account page (`/.latchkey/account`) against the real binary, two
//! instances on one redis-server: one person signed in from several
//! browsers sees every session, ends one from another browser (and that
//! browser is signed out on both instances), and "end all others" keeps
//! only the current one. Strangers are sent to sign in; a form without its
//! CSRF token, or naming someone else's session, ends nothing.

use std::time::{Duration, Instant};

use latchkey::identity::secret::Secret;

use crate::flow::{csrf_of, sign_in, Opts, Stack};
use crate::support::http::Browser;

const LIMITS: &str = "[limits]\nlinks_per_email = 100\nlinks_per_ip = 100\nverify_per_ip = 100\n";

/// Two instances on one redis-server.
async fn pair() -> (Stack, Stack) {
    let a = Stack::start(LIMITS).await;
    let url = a.redis.as_ref().expect("redis").url();
    let redis_toml = format!("[redis]\nurl = \"{url}\"");
    let b = Stack::start_opts(Opts {
        redis_toml: Some(&redis_toml),
        extra: LIMITS,
        ..Default::default()
    })
    .await;
    (a, b)
}

/// The public id of a browser's session (`latchkey sessions list`'s).
fn session_id(b: &Browser) -> String {
    let token = b.cookie("latchkey_session").expect("a session cookie");
    Secret::parse(&token).expect("token").hash().to_hex()
}

/// The same browser's session cookie, sent to `stack`.
fn on(stack: &Stack, b: &Browser) -> Browser {
    let other = stack.browser();
    other.set_cookie("latchkey_session", &b.cookie("latchkey_session").unwrap());
    other
}

/// The status an app request gets (JSON, so "sign in first" is a 401).
async fn app_status(b: &Browser) -> u16 {
    b.get("/reports", &[("accept", "application/json")])
        .await
        .status
}

/// Waits (a bounded while: the other instance hears of a revocation from
/// Redis) until `b` is signed out; panics if it never is.
async fn until_signed_out(b: &Browser, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match app_status(b).await {
            401 => return,
            200 if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(5)).await,
            other => panic!("{what}: still {other}"),
        }
    }
}

/// Every session id the account page offers an "end" form for.
fn ended_by_forms(page: &str) -> Vec<String> {
    page.match_indices("name=\"session\" value=\"")
        .map(|(at, m)| page[at + m.len()..at + m.len() + 64].to_owned())
        .collect()
}

#[tokio::test]
async fn strangers_are_sent_to_sign_in_from_the_account_page() {
    let stack = Stack::start(LIMITS).await;
    let b = stack.browser();
    let resp = b.get("/.latchkey/account", &[]).await;
    assert_eq!(resp.status, 302, "{}", resp.body);
    assert_eq!(
        resp.header("location"),
        Some("/.latchkey/login?rd=%2F.latchkey%2Faccount")
    );
    // Posting to it without a session ends nothing and asks for sign-in
    // (after the CSRF check, which a stranger's form fails first).
    let resp = b
        .post_form("/.latchkey/account/sessions", &[("all", "others")], &[])
        .await;
    assert!(resp.status == 403 || resp.status == 400, "{}", resp.status);
}

#[tokio::test]
async fn one_person_ends_their_other_browsers_session_on_every_instance() {
    let (a, b) = pair().await;
    let first = a.browser();
    let second = a.browser();
    sign_in(&a, &first, "bob@example.com").await;
    sign_in(&a, &second, "bob@example.com").await;
    let second_on_b = on(&b, &second);
    assert_eq!(app_status(&second).await, 200);
    assert_eq!(app_status(&second_on_b).await, 200);

    let page = first.get("/.latchkey/account", &[]).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let body = &page.body;
    assert!(body.contains("bob@example.com"), "{body}");
    assert!(body.contains("member"), "roles: {body}");
    assert!(body.contains("email link"), "how: {body}");
    assert!(body.contains("this one"), "{body}");
    assert!(body.contains("127.0.0.1"), "ip: {body}");
    // A form for the other browser's session, none for this one.
    assert_eq!(ended_by_forms(body), vec![session_id(&second)], "{body}");

    let csrf = csrf_of(body);
    let done = first
        .post_form(
            "/.latchkey/account/sessions",
            &[("csrf", &csrf), ("session", &session_id(&second))],
            &[],
        )
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(done.header("location"), Some("/.latchkey/account?ended=1"));

    assert_eq!(app_status(&second).await, 401, "same instance");
    until_signed_out(&second_on_b, "second instance").await;
    assert_eq!(app_status(&first).await, 200, "the first stays signed in");
    let page = first.get("/.latchkey/account?ended=1", &[]).await;
    assert!(
        page.body.contains("That session has ended."),
        "{}",
        page.body
    );
    assert!(ended_by_forms(&page.body).is_empty(), "{}", page.body);
}

#[tokio::test]
async fn end_all_others_keeps_only_the_current_session() {
    let (a, b) = pair().await;
    let browsers: Vec<Browser> = (0..3).map(|_| a.browser()).collect();
    for br in &browsers {
        sign_in(&a, br, "bob@example.com").await;
    }
    // Someone else's session, which bob's forms must not reach.
    let alice = a.browser();
    sign_in(&a, &alice, "alice@example.com").await;

    let keep = &browsers[0];
    let page = keep.get("/.latchkey/account", &[]).await;
    let mut offered = ended_by_forms(&page.body);
    offered.sort();
    let mut others = vec![session_id(&browsers[1]), session_id(&browsers[2])];
    others.sort();
    assert_eq!(offered, others);
    assert!(
        page.body.contains("End all other sessions"),
        "{}",
        page.body
    );
    let csrf = csrf_of(&page.body);

    // Attacks first: no CSRF field, a foreign session, junk: nothing ends.
    let no_csrf = keep
        .post_form("/.latchkey/account/sessions", &[("all", "others")], &[])
        .await;
    assert_eq!(no_csrf.status, 403, "{}", no_csrf.body);
    let cross_site = keep
        .post_form(
            "/.latchkey/account/sessions",
            &[("csrf", &csrf), ("all", "others")],
            &[("origin", "http://evil.example")],
        )
        .await;
    assert_eq!(cross_site.status, 403, "{}", cross_site.body);
    let foreign = keep
        .post_form(
            "/.latchkey/account/sessions",
            &[("csrf", &csrf), ("session", &session_id(&alice))],
            &[],
        )
        .await;
    assert_eq!(
        foreign.header("location"),
        Some("/.latchkey/account?ended=none")
    );
    for junk in [
        vec![("csrf", csrf.as_str()), ("session", "nothex")],
        vec![("csrf", csrf.as_str()), ("all", "everyone")],
        vec![("csrf", csrf.as_str())],
    ] {
        let resp = keep
            .post_form("/.latchkey/account/sessions", &junk, &[])
            .await;
        assert_eq!(resp.status, 400, "{junk:?}: {}", resp.body);
    }
    assert_eq!(app_status(&alice).await, 200);
    for br in &browsers {
        assert_eq!(app_status(br).await, 200);
    }

    let on_b: Vec<Browser> = browsers.iter().map(|br| on(&b, br)).collect();
    for br in &on_b {
        assert_eq!(app_status(br).await, 200);
    }
    let done = keep
        .post_form(
            "/.latchkey/account/sessions",
            &[("csrf", &csrf), ("all", "others")],
            &[],
        )
        .await;
    assert_eq!(
        done.header("location"),
        Some("/.latchkey/account?ended=others")
    );
    for (i, br) in on_b.iter().enumerate().skip(1) {
        until_signed_out(br, &format!("browser {i} on the second instance")).await;
        assert_eq!(app_status(&browsers[i]).await, 401);
    }
    assert_eq!(app_status(keep).await, 200);
    assert_eq!(app_status(&on_b[0]).await, 200);
    assert_eq!(
        app_status(&alice).await,
        200,
        "another person's session stays"
    );
    let page = keep.get("/.latchkey/account", &[]).await;
    assert!(ended_by_forms(&page.body).is_empty(), "{}", page.body);
    assert_eq!(
        page.body.matches("<li class=\"session").count(),
        1,
        "{}",
        page.body
    );
}

/// Waits (bounded) until `n` notices reached `to`; panics past that.
async fn until_notices(stack: &Stack, to: &str, n: usize) -> Vec<crate::support::smtp::Message> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let got = stack.smtp.notices(to);
        assert!(got.len() <= n, "more than {n} notices: {got:?}");
        if got.len() == n {
            return got;
        }
        assert!(Instant::now() < deadline, "{} notices of {n}", got.len());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_sign_in_from_a_new_browser_mails_one_notice_and_a_known_browser_none() {
    let stack = Stack::start(LIMITS).await;
    let first = stack.browser();
    sign_in(&stack, &first, "bob@example.com").await;
    let notice = until_notices(&stack, "bob@example.com", 1).await.remove(0);
    assert!(
        notice.subject.starts_with("New sign-in to app.test"),
        "{}",
        notice.subject
    );
    let text = &notice.text;
    assert!(text.contains("IP:      127.0.0.1"), "{text}");
    assert!(text.contains("Browser: an unrecognised browser"), "{text}");
    assert!(text.contains(" UTC"), "{text}");
    let account = format!("http://auth.test:{}/.latchkey/account", stack.lk.port);
    assert!(text.contains(&account), "{text}");
    assert!(notice.html.contains(&account), "{}", notice.html);
    assert!(first.cookie("latchkey_device").is_some());

    // The same browser again (signed out in between): no notice. A fresh
    // browser afterwards: one more. Mail leaves in order, so had the second
    // sign-in sent one, it would be counted before the third's.
    let page = first.get("/.latchkey/logout", &[]).await;
    let csrf = csrf_of(&page.body);
    first
        .post_form("/.latchkey/logout", &[("csrf", &csrf)], &[])
        .await;
    sign_in(&stack, &first, "bob@example.com").await;
    let fresh = stack.browser();
    sign_in(&stack, &fresh, "bob@example.com").await;
    let notices = until_notices(&stack, "bob@example.com", 2).await;
    assert_ne!(
        fresh.cookie("latchkey_device"),
        first.cookie("latchkey_device")
    );
    // The same browser for another person is new to them.
    sign_in(&stack, &first, "alice@example.com").await;
    until_notices(&stack, "alice@example.com", 1).await;
    assert_eq!(stack.smtp.notices("bob@example.com").len(), notices.len());
}

#[tokio::test]
async fn the_device_cookie_is_long_lived_and_http_only_and_off_when_notices_are() {
    let stack = Stack::start(LIMITS).await;
    let b = stack.browser();
    let sent = crate::flow::request_link(&b, "bob@example.com", "/").await;
    assert_eq!(sent.status, 200);
    let mail = stack
        .smtp
        .wait_for("bob@example.com", Duration::from_secs(10))
        .await;
    let done = crate::flow::open_link(&b, &crate::flow::link_token(&mail.text)).await;
    let device = done
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with("latchkey_device="))
        .expect("a device cookie");
    assert!(device.contains("HttpOnly"), "{device}");
    assert!(device.contains("Max-Age=34560000"), "{device}");
    assert!(device.contains("SameSite=Lax"), "{device}");

    let quiet = Stack::start(&format!("{LIMITS}[login]\nnew_device_email = false\n")).await;
    let b = quiet.browser();
    sign_in(&quiet, &b, "bob@example.com").await;
    assert_eq!(b.cookie("latchkey_device"), None);
    assert!(quiet.smtp.notices("bob@example.com").is_empty());
}
