//! Bearer tokens for API clients, as a script would use them: exchanged
//! from a browser session, issued with `latchkey tokens issue`, revoked,
//! outlived by their user or their user's roles; on the proxy, `/me` and
//! both forward-auth endpoints; never answered with a redirect.

use std::process::{Command, Output};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use latchkey::identity::keys::Alg;
use latchkey::store::records::{user_id, User};
use latchkey::store::{RedisStore, Store};

use crate::assertion::{assertion_toml, write_key};
use crate::flow::{csrf_of, echoed, echoed_header, sign_in, Stack};
use crate::support::http::{send, Browser, Resp};
use crate::support::latchkey::binary;

/// `POST /.latchkey/token` from a page of this site (`X-Requested-With`);
/// returns the access token.
pub async fn exchange(b: &Browser) -> String {
    let resp = b
        .request(
            "POST",
            "/.latchkey/token",
            &[
                ("X-Requested-With", "fetch"),
                ("Accept", "application/json"),
            ],
            b"",
        )
        .await;
    assert_eq!(resp.status, 200, "token exchange: {}", resp.body);
    let v = resp.json();
    assert_eq!(v["token_type"], "Bearer", "{v}");
    v["access_token"].as_str().expect("access_token").to_owned()
}

/// `GET target` on the app host with only the bearer token (no cookies),
/// asking for JSON.
pub async fn get(stack: &Stack, target: &str, token: &str) -> Resp {
    get_as(stack, target, token, "application/json").await
}

/// The same, asking for HTML as a browser would: a refusal must still be a
/// 401/403 challenge, never a redirect.
pub async fn browse(stack: &Stack, target: &str, token: &str) -> Resp {
    get_as(stack, target, token, "text/html,*/*").await
}

async fn get_as(stack: &Stack, target: &str, token: &str, accept: &str) -> Resp {
    send(
        stack.lk.addr,
        "GET",
        target,
        &[
            ("Host", &stack.host()),
            ("Authorization", &format!("Bearer {token}")),
            ("Accept", accept),
        ],
        b"",
    )
    .await
}

pub(crate) fn challenged(resp: &Resp, status: u16, error: &str) {
    assert_eq!(resp.status, status, "{}", resp.body);
    assert!(resp.header("location").is_none(), "never a redirect");
    let challenge = resp.header("www-authenticate").unwrap_or_default();
    assert!(
        challenge.starts_with("Bearer ") && challenge.contains(&format!("error=\"{error}\"")),
        "WWW-Authenticate: {challenge}"
    );
}

/// `latchkey tokens ARGS --config <the stack's config>`.
fn tokens_cli(stack: &Stack, args: &[&str]) -> Output {
    Command::new(binary())
        .arg("tokens")
        .args(args)
        .arg("--config")
        .arg(stack.lk.dir.path().join("latchkey.toml"))
        .env_remove("LATCHKEY_CONFIG")
        .output()
        .expect("run latchkey tokens")
}

pub(crate) fn issue(stack: &Stack, email: &str, ttl: &str) -> String {
    let out = tokens_cli(
        stack,
        &["issue", "--email", email, "--ttl", ttl, "--name", "ci"],
    );
    assert!(
        out.status.success(),
        "tokens issue: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .trim()
        .to_owned()
}

fn claims(jwt: &str) -> serde_json::Value {
    let part = jwt.split('.').nth(1).expect("payload");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).expect("base64url")).expect("JSON")
}

pub(crate) async fn stack_with_key() -> (Stack, tempfile::TempDir) {
    let dir = crate::support::temp_dir();
    let a = write_key(dir.path(), "a", Alg::Es256);
    (Stack::start(&assertion_toml(&[("a", &a)], "")).await, dir)
}

/// A signed-in script cannot mint tokens (store records) without bound:
/// past `limits.tokens_per_user` it gets 429 with `Retry-After`, and the
/// count is the user's, not the browser's.
#[tokio::test]
async fn token_exchanges_are_limited_per_user() {
    let dir = crate::support::temp_dir();
    let a = write_key(dir.path(), "a", Alg::Es256);
    let stack = Stack::start(&assertion_toml(
        &[("a", &a)],
        "[limits]\ntokens_per_user = 2\ntoken_window = \"10m\"\n",
    ))
    .await;
    let (first, second) = (stack.browser(), stack.browser());
    sign_in(&stack, &first, "alice@example.com").await;
    sign_in(&stack, &second, "alice@example.com").await;
    exchange(&first).await;
    exchange(&second).await;
    let over = first
        .request(
            "POST",
            "/.latchkey/token",
            &[
                ("X-Requested-With", "fetch"),
                ("Accept", "application/json"),
            ],
            b"",
        )
        .await;
    assert_eq!(over.status, 429, "{}", over.body);
    assert!(!over.body.contains("access_token"), "{}", over.body);
    let retry: u64 = over
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .unwrap();
    assert!((1..=600).contains(&retry), "{retry}");

    // Another user is not held back by alice's count.
    let bob = stack.browser();
    sign_in(&stack, &bob, "bob@example.com").await;
    exchange(&bob).await;
}

#[tokio::test]
async fn a_session_exchanges_for_a_bearer_token_that_works_without_cookies() {
    let (stack, _keys) = stack_with_key().await;
    let alice = stack.browser();
    sign_in(&stack, &alice, "alice@example.com").await;

    // CSRF: neither X-Requested-With nor the CSRF token → refused; another
    // site's Origin → refused even with the header.
    let bare = alice.request("POST", "/.latchkey/token", &[], b"").await;
    assert_eq!(bare.status, 403, "{}", bare.body);
    let cross = alice
        .request(
            "POST",
            "/.latchkey/token",
            &[
                ("X-Requested-With", "fetch"),
                ("Origin", "http://evil.test"),
            ],
            b"",
        )
        .await;
    assert_eq!(cross.status, 403, "{}", cross.body);
    let wrong_csrf = alice
        .post_form("/.latchkey/token", &[("csrf", &"x".repeat(43))], &[])
        .await;
    assert_eq!(wrong_csrf.status, 403);
    // A form with the CSRF token works, as does a fetch with the header.
    let page = alice.get("/.latchkey/logout", &[]).await;
    let by_form = alice
        .post_form("/.latchkey/token", &[("csrf", &csrf_of(&page.body))], &[])
        .await;
    assert_eq!(by_form.status, 200, "{}", by_form.body);
    let resp = alice
        .request(
            "POST",
            "/.latchkey/token",
            &[("X-Requested-With", "fetch")],
            b"",
        )
        .await;
    assert_eq!(resp.status, 200, "{}", resp.body);
    assert_eq!(resp.header("cache-control"), Some("no-store"));
    let v = resp.json();
    assert_eq!(v["token_type"], "Bearer");
    let expires_in = v["expires_in"].as_u64().expect("expires_in");
    assert!(expires_in > 0 && expires_in <= 900, "15m by default: {v}");
    let token = v["access_token"].as_str().unwrap().to_owned();

    // No session, no token.
    let stranger = stack.browser();
    let none = stranger
        .request(
            "POST",
            "/.latchkey/token",
            &[("X-Requested-With", "fetch")],
            b"",
        )
        .await;
    assert_eq!(none.status, 401, "{}", none.body);

    // The token alone: through the proxy, with identity and an assertion,
    // and without the token itself reaching the app.
    let v = echoed(&get(&stack, "/reports", &token).await);
    assert_eq!(echoed_header(&v, "x-auth-email"), ["alice@example.com"]);
    assert_eq!(echoed_header(&v, "x-auth-roles"), ["admin,member"]);
    assert_eq!(echoed_header(&v, "x-auth-assertion").len(), 1);
    assert!(
        echoed_header(&v, "authorization").is_empty(),
        "latchkey's token is not forwarded: {v}"
    );
    assert_eq!(get(&stack, "/admin/panel", &token).await.status, 200);
    let me = get(&stack, "/.latchkey/me", &token).await;
    assert_eq!(me.status, 200, "{}", me.body);
    let me = me.json();
    assert_eq!(me["user"]["email"], "alice@example.com");
    assert!(me["expires_at"].is_string(), "{me}");

    // Tampered or garbage: 401 with a challenge, never a redirect.
    let mut tampered = token.clone().into_bytes();
    let mid = token.rfind('.').unwrap() + 10;
    tampered[mid] = if tampered[mid] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    challenged(
        &browse(&stack, "/reports", &tampered).await,
        401,
        "invalid_token",
    );
    challenged(
        &browse(&stack, "/.latchkey/me", &tampered).await,
        401,
        "invalid_token",
    );
    challenged(
        &browse(&stack, "/reports", "not-a-jwt").await,
        401,
        "invalid_token",
    );
    // Someone else's bearer token is the app's business: on a public path
    // it passes through untouched.
    let v = echoed(&get(&stack, "/public/api", "the-apps-own-token").await);
    assert_eq!(
        echoed_header(&v, "authorization"),
        ["Bearer the-apps-own-token"]
    );

    // bob may not enter the admin area: 403 with a challenge.
    let bob = stack.browser();
    sign_in(&stack, &bob, "bob@example.com").await;
    let bob_token = exchange(&bob).await;
    challenged(
        &browse(&stack, "/admin/panel", &bob_token).await,
        403,
        "insufficient_scope",
    );
}

/// A token exchanged from a session lives only as long as that session:
/// signing out in that browser ends it at once, while a token from the same
/// user's other session keeps working.
#[tokio::test]
async fn a_token_from_a_session_ends_with_that_session() {
    let (stack, _keys) = stack_with_key().await;
    let (laptop, phone) = (stack.browser(), stack.browser());
    sign_in(&stack, &laptop, "alice@example.com").await;
    sign_in(&stack, &phone, "alice@example.com").await;
    let (from_laptop, from_phone) = (exchange(&laptop).await, exchange(&phone).await);
    assert_eq!(get(&stack, "/reports", &from_laptop).await.status, 200);

    let confirm = laptop.get("/.latchkey/logout", &[]).await;
    let out = laptop
        .post_form(
            "/.latchkey/logout",
            &[("csrf", &csrf_of(&confirm.body))],
            &[],
        )
        .await;
    assert_eq!(out.status, 200, "{}", out.body);

    challenged(
        &browse(&stack, "/reports", &from_laptop).await,
        401,
        "invalid_token",
    );
    assert_eq!(get(&stack, "/reports", &from_phone).await.status, 200);
}

#[tokio::test]
async fn long_lived_tokens_are_issued_listed_and_revoked_from_the_command_line() {
    let (stack, _keys) = stack_with_key().await;
    let token = issue(&stack, "bob@example.com", "30d");
    let c = claims(&token);
    assert_eq!(
        c["exp"].as_u64().unwrap() - c["iat"].as_u64().unwrap(),
        30 * 86_400
    );
    let jti = c["jti"].as_str().expect("jti").to_owned();
    let v = echoed(&get(&stack, "/reports", &token).await);
    assert_eq!(echoed_header(&v, "x-auth-email"), ["bob@example.com"]);

    let list = tokens_cli(&stack, &["list"]);
    assert!(list.status.success());
    let listed = String::from_utf8_lossy(&list.stdout);
    assert!(
        listed.contains(&jti) && listed.contains("ci") && listed.contains("bob@example.com"),
        "{listed}"
    );
    assert!(!listed.contains(&token), "the token itself is never listed");

    let revoked = tokens_cli(&stack, &["revoke", &jti]);
    assert!(
        revoked.status.success(),
        "{}",
        String::from_utf8_lossy(&revoked.stderr)
    );
    challenged(
        &browse(&stack, "/reports", &token).await,
        401,
        "invalid_token",
    );
    let again = tokens_cli(&stack, &["revoke", &jti]);
    assert_eq!(again.status.code(), Some(1));
    let listed = tokens_cli(&stack, &["list"]);
    assert!(!String::from_utf8_lossy(&listed.stdout).contains(&jti));

    let nobody = tokens_cli(
        &stack,
        &["issue", "--email", "nobody@example.com", "--name", "ci"],
    );
    assert_eq!(nobody.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&nobody.stderr).contains("no user nobody@example.com"));
}

/// A token checked once is not checked again by its signature alone
/// (latchkey keeps what a valid signature proved, for speed), yet nothing
/// it remembers outlives the store or the keys: a token used over and over,
/// then revoked, is refused on the very next request; and a reload that
/// drops the key another one was signed with refuses that one at once,
/// though it was verified a moment before.
#[tokio::test]
async fn a_remembered_token_is_refused_at_once_when_revoked_or_its_key_rotates_away() {
    let dir = crate::support::temp_dir();
    let a = write_key(dir.path(), "a", Alg::Es256);
    let b = write_key(dir.path(), "b", Alg::EdDsa);
    let both = assertion_toml(&[("a", &a), ("b", &b)], "");
    let stack = Stack::start(&both).await;
    let revoked = issue(&stack, "bob@example.com", "1d");
    let rotated = issue(&stack, "bob@example.com", "1d");
    for _ in 0..3 {
        for token in [&revoked, &rotated] {
            assert_eq!(get(&stack, "/reports", token).await.status, 200);
        }
    }

    let jti = claims(&revoked)["jti"].as_str().expect("jti").to_owned();
    assert!(tokens_cli(&stack, &["revoke", &jti]).status.success());
    challenged(
        &browse(&stack, "/reports", &revoked).await,
        401,
        "invalid_token",
    );
    assert_eq!(get(&stack, "/reports", &rotated).await.status, 200);

    // b alone now: what a signed (`rotated`, just used) no longer holds.
    let path = stack.lk.config_path();
    let text = std::fs::read_to_string(&path).expect("config");
    assert!(text.contains(&both), "{text}");
    let text = text.replace(&both, &assertion_toml(&[("b", &b)], ""));
    std::fs::write(&path, text).expect("write config");
    stack.lk.signal("HUP");
    stack.lk.wait_for_log(
        "config reloaded: new requests use it",
        std::time::Duration::from_secs(10),
    );
    challenged(
        &browse(&stack, "/reports", &rotated).await,
        401,
        "invalid_token",
    );
}

#[tokio::test]
async fn roles_come_from_the_user_and_a_removed_user_is_out_at_once() {
    let (stack, _keys) = stack_with_key().await;
    let store =
        RedisStore::new(&stack.redis.as_ref().expect("redis").url(), "latchkey:").expect("store");
    let mut carol = User {
        id: user_id("carol@example.com"),
        email: "carol@example.com".into(),
        roles: vec!["member".into()],
        created_at: 0,
    };
    store.put_user(&carol).await.unwrap();
    let token = issue(&stack, "carol@example.com", "1d");
    assert_eq!(get(&stack, "/reports", &token).await.status, 200);
    challenged(
        &browse(&stack, "/admin/panel", &token).await,
        403,
        "insufficient_scope",
    );

    carol.roles = vec!["admin".into()];
    store.put_user(&carol).await.unwrap();
    let v = echoed(&get(&stack, "/admin/panel", &token).await);
    assert_eq!(echoed_header(&v, "x-auth-roles"), ["admin"]);

    store.delete_user(&carol.id).await.unwrap();
    challenged(
        &browse(&stack, "/reports", &token).await,
        401,
        "invalid_token",
    );

    // Removed with `latchkey users remove` and added back: the address
    // gives the same user id, but the old tokens stay dead.
    store.put_user(&carol).await.unwrap();
    assert_eq!(
        get(&stack, "/reports", &token).await.status,
        200,
        "re-added directly in the store, the old token would live again"
    );
    let second = issue(&stack, "carol@example.com", "1d");
    let users = |args: &[&str]| {
        Command::new(binary())
            .arg("users")
            .args(args)
            .arg("--config")
            .arg(stack.lk.dir.path().join("latchkey.toml"))
            .env_remove("LATCHKEY_CONFIG")
            .output()
            .expect("run latchkey users")
    };
    let removed = users(&["remove", "carol@example.com"]);
    assert!(
        String::from_utf8_lossy(&removed.stdout).contains("2 API token(s)"),
        "{removed:?}"
    );
    assert!(users(&["add", "carol@example.com", "--roles", "member"])
        .status
        .success());
    for old in [&token, &second] {
        challenged(&browse(&stack, "/reports", old).await, 401, "invalid_token");
    }
}

#[tokio::test]
async fn both_forward_auth_endpoints_take_bearer_tokens() {
    let (stack, _keys) = stack_with_key().await;
    let alice = issue(&stack, "alice@example.com", "1h");
    let bob = issue(&stack, "bob@example.com", "1h");
    let auth_host = format!("auth.test:{}", stack.lk.port);
    let ask = |path: &'static str, uri: &'static str, token: String| {
        let auth_host = auth_host.clone();
        let stack = &stack;
        async move {
            let bearer = format!("Bearer {token}");
            let original = format!("http://app.test{uri}");
            let h = [
                ("Host", auth_host.as_str()),
                ("X-Forwarded-Method", "GET"),
                ("X-Forwarded-Proto", "http"),
                ("X-Forwarded-Host", "app.test"),
                ("X-Forwarded-Uri", uri),
                ("X-Original-URL", original.as_str()),
                ("X-Original-Method", "GET"),
                ("Authorization", bearer.as_str()),
                ("Accept", "text/html,*/*"),
            ];
            send(stack.lk.addr, "GET", path, &h, b"").await
        }
    };
    for endpoint in ["/.latchkey/auth", "/.latchkey/auth/request"] {
        let ok = ask(endpoint, "/admin/panel", alice.clone()).await;
        assert_eq!(ok.status, 200, "{endpoint}: {}", ok.body);
        assert_eq!(ok.header("x-auth-email"), Some("alice@example.com"));
        assert!(ok.header("x-auth-assertion").is_some_and(|a| !a.is_empty()));
        challenged(
            &ask(endpoint, "/admin/panel", bob.clone()).await,
            403,
            "insufficient_scope",
        );
        challenged(
            &ask(endpoint, "/reports", format!("{bob}x")).await,
            401,
            "invalid_token",
        );
    }
}
