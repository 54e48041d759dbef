//! Step-up (`[[rules]] mfa = true`) against the real binary and a real
//! redis-server: a session made by email link that reaches such a rule is
//! sent to the step-up page (302 for GET, 303 for POST, 401 for programs;
//! forward-auth the same), which keeps the exact URL asked for; a session
//! that proved a passkey passes and the step-up page sends it straight on
//! to that URL; a bearer token there gets a 401 challenge. And `latchkey
//! check --explain`, which prints the rule that decides, the decision and
//! why.

use std::process::Command;
use std::time::{Duration, SystemTime};

use latchkey::identity::secret::Secret;
use latchkey::store::records::{user_id, SessionRecord};
use latchkey::store::{RedisStore, Store};

use crate::flow::{echoed, echoed_header, sign_in, Stack};
use crate::support::http::{send, Browser};
use crate::support::latchkey::binary;

const VAULT: &str = "
[[rules]]
path = \"/vault/**\"
policy = \"authenticated\"
mfa = true
";

/// A session for bob made as if by a passkey, straight in the store.
async fn passkey_session(stack: &Stack) -> Browser {
    let url = stack.redis.as_ref().unwrap().url();
    let store = RedisStore::new(&url, "latchkey:").unwrap();
    let now = latchkey::unix_ms(SystemTime::now());
    let record = SessionRecord {
        user_id: user_id("bob@example.com"),
        email: "bob@example.com".into(),
        created_at: now,
        expires_at: now + 3_600_000,
        ip: "127.0.0.1".into(),
        user_agent: "test".into(),
        amr: "passkey".into(),
        extra_roles: Vec::new(),
    };
    let t = Secret::generate(&mut rand::rng());
    store
        .create_session(&t.hash(), &record, Duration::from_secs(900), now)
        .await
        .unwrap();
    let b = stack.browser();
    b.set_cookie("latchkey_session", t.expose());
    b
}

#[tokio::test]
async fn an_mfa_rule_sends_an_email_session_to_step_up_keeping_the_exact_url() {
    let stack = Stack::start(VAULT).await;
    let bob = stack.browser();
    sign_in(&stack, &bob, "bob@example.com").await;
    let host = stack.host();
    let rd: String =
        form_urlencoded::byte_serialize(format!("http://{host}/vault/a%20b?x=1&y=2").as_bytes())
            .collect();
    let want = format!("http://{host}/.latchkey/step-up?rd={rd}");

    // Other paths: the email session is enough.
    echoed(&bob.get("/reports", &[("accept", "application/json")]).await);
    let get = bob.get("/vault/a%20b?x=1&y=2", &[]).await;
    assert_eq!(get.status, 302, "{}", get.body);
    assert_eq!(get.header("location"), Some(want.as_str()));
    let post = bob
        .post_form("/vault/a%20b?x=1&y=2", &[("k", "v")], &[])
        .await;
    assert_eq!(post.status, 303);
    assert_eq!(post.header("location"), Some(want.as_str()));
    let api = bob
        .get("/vault/a%20b?x=1&y=2", &[("accept", "application/json")])
        .await;
    assert_eq!(api.status, 401);
    assert_eq!(api.json()["login_url"], want.as_str());

    // The step-up page: no passkey yet, so it says how to add one.
    let page = bob.get(&format!("/.latchkey/step-up?rd={rd}"), &[]).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("bob@example.com"), "{}", page.body);
    assert!(page.body.contains("no passkey yet"), "{}", page.body);
    assert!(
        page.body.contains("href=\"/.latchkey/account\""),
        "{}",
        page.body
    );

    // A session that proved a passkey passes, and the step-up page sends it
    // on to the exact URL.
    let strong = passkey_session(&stack).await;
    let seen = echoed(
        &strong
            .get("/vault/a%20b?x=1&y=2", &[("accept", "application/json")])
            .await,
    );
    assert_eq!(echoed_header(&seen, "x-auth-email"), ["bob@example.com"]);
    let on = strong
        .get(&format!("/.latchkey/step-up?rd={rd}"), &[])
        .await;
    assert_eq!(on.status, 303);
    assert_eq!(
        on.header("location"),
        Some(format!("http://{host}/vault/a%20b?x=1&y=2").as_str())
    );

    // Not signed in: the step-up page sends to sign in, and back to itself.
    let stranger = stack.browser();
    let away = stranger
        .get(&format!("/.latchkey/step-up?rd={rd}"), &[])
        .await;
    assert_eq!(away.status, 302);
    assert!(
        away.header("location")
            .unwrap()
            .starts_with("/.latchkey/login?rd=%2F.latchkey%2Fstep-up%3Frd%3D"),
        "{:?}",
        away.header("location")
    );
    // A foreign return address is dropped, not followed.
    let evil = strong
        .get("/.latchkey/step-up?rd=https%3A%2F%2Fevil.example%2F", &[])
        .await;
    assert_eq!(evil.header("location"), Some("/"));
}

#[tokio::test]
async fn forward_auth_answers_step_up_as_it_answers_sign_in_first() {
    let stack = Stack::start(VAULT).await;
    let bob = stack.browser();
    sign_in(&stack, &bob, "bob@example.com").await;
    let cookie = format!(
        "latchkey_session={}",
        bob.cookie("latchkey_session").unwrap()
    );
    let host = stack.host();
    let ask = |path: &'static str, uri: &'static str, accept: &'static str| {
        let (addr, host, cookie) = (stack.lk.addr, host.clone(), cookie.clone());
        async move {
            let mut h = vec![
                ("host", host.as_str()),
                ("accept", accept),
                ("cookie", cookie.as_str()),
            ];
            if uri.is_empty() {
                h.push(("x-original-url", "https://app.test/vault/doc?id=7"));
                h.push(("x-original-method", "GET"));
            } else {
                h.extend([
                    ("x-forwarded-method", "GET"),
                    ("x-forwarded-proto", "https"),
                    ("x-forwarded-host", "app.test"),
                    ("x-forwarded-uri", uri),
                ]);
            }
            send(addr, "GET", path, &h, b"").await
        }
    };
    let traefik = ask("/.latchkey/auth", "/vault/doc?id=7", "text/html").await;
    assert_eq!(traefik.status, 302);
    let loc = traefik.header("location").unwrap();
    assert!(
        loc.ends_with("/.latchkey/step-up?rd=https%3A%2F%2Fapp.test%2Fvault%2Fdoc%3Fid%3D7"),
        "{loc}"
    );
    let api = ask("/.latchkey/auth", "/vault/doc?id=7", "application/json").await;
    assert_eq!(api.status, 401);
    let nginx = ask("/.latchkey/auth/request", "", "text/html").await;
    assert_eq!(nginx.status, 401);
    assert!(
        nginx
            .header("location")
            .unwrap()
            .ends_with("/.latchkey/step-up?rd=https%3A%2F%2Fapp.test%2Fvault%2Fdoc%3Fid%3D7"),
        "{:?}",
        nginx.header("location")
    );
    let ok = ask("/.latchkey/auth", "/reports", "text/html").await;
    assert_eq!(ok.status, 200);
}

fn explain(config: &std::path::Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(binary())
        .args(["check", "--config"])
        .arg(config)
        .arg("--explain")
        .args(args)
        .env_remove("LATCHKEY_CONFIG")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn check_explain_prints_the_deciding_rule_the_decision_and_why() {
    let dir = crate::support::temp_dir();
    let config = dir.path().join("latchkey.toml");
    std::fs::write(
        &config,
        r#"
[server]
public_url = "https://auth.example.com"
[[users]]
email = "alice@example.com"
roles = ["admin"]
[[apps]]
host = "app.example.com"
upstream = "http://127.0.0.1:3000"
[[rules]]
path = "/public/**"
policy = "public"
[[rules]]
host = "app.example.com"
path = "/admin/**"
methods = ["POST"]
policy = "roles"
roles = ["admin"]
mfa = true
[[rules]]
path = "/closed/**"
policy = "deny"
"#,
    )
    .unwrap();
    let url = "https://app.example.com/admin/users?x=1";
    let cases: &[(&[&str], &str, &str, &str)] = &[
        (&[url], "default", "sign in", "anonymous"),
        (
            &[url, "--method", "POST"],
            "rules[1]",
            "sign in",
            "anonymous",
        ),
        (
            &[url, "--method", "post", "--user", "Alice@Example.com"],
            "rules[1]",
            "step up",
            "passkey (mfa = true)",
        ),
        (
            &[
                url,
                "--method",
                "POST",
                "--user",
                "alice@example.com",
                "--amr",
                "passkey",
            ],
            "rules[1]",
            "allow",
            "roles admin",
        ),
        (
            &[url, "--method", "POST", "--roles", "member,ops"],
            "rules[1]",
            "forbid",
            "only roles admin",
        ),
        (
            &[url, "--roles", "member"],
            "default",
            "allow",
            "anyone signed in",
        ),
        (
            &["https://app.example.com/public/x"],
            "rules[0]",
            "allow",
            "public",
        ),
        (
            &[
                "https://app.example.com/public/../closed/x",
                "--roles",
                "admin",
            ],
            "rules[2]",
            "forbid",
            "denies everyone",
        ),
    ];
    for (args, rule, decision, why) in cases {
        let (code, out, err) = explain(&config, args);
        assert_eq!(code, 0, "{args:?}: {err}");
        assert!(
            out.contains(&format!("rule:     {rule}")),
            "{args:?}:\n{out}"
        );
        assert!(
            out.contains(&format!("decision: {decision}\n")),
            "{args:?}:\n{out}"
        );
        assert!(out.contains(why), "{args:?}:\n{out}");
    }
    assert!(explain(&config, &[url, "--method", "POST"])
        .1
        .contains("+ passkey (mfa)"));
    // Bad arguments: a clear message naming the flag, exit 2; no panic.
    for (args, says) in [
        (&["/admin"][..], "--explain"),
        (&["https://app.example.com/a%2fb"], "refused (400)"),
        (&[url, "--user", "nobody@example.com"], "--user"),
        (&[url, "--user", "not-an-email"], "--user"),
        (&[url, "--method", "G T"], "--method"),
    ] {
        let (code, out, err) = explain(&config, args);
        assert!(
            out.contains(says) || err.contains(says),
            "{args:?}: {out}{err}"
        );
        assert_ne!(code, 101, "{args:?} panicked: {err}");
    }
}

/// A bearer token is no browser session and cannot prove a passkey: on an
/// `mfa` rule it gets a 401 `insufficient_user_authentication` challenge
/// (RFC 9470), never a redirect to the step-up page, whatever it accepts;
/// the same token still reaches a rule without `mfa`.
#[tokio::test]
async fn a_bearer_token_on_an_mfa_rule_is_told_it_needs_a_stronger_sign_in() {
    let dir = crate::support::temp_dir();
    let key = crate::assertion::write_key(dir.path(), "a", latchkey::identity::keys::Alg::Es256);
    let stack = Stack::start(&crate::assertion::assertion_toml(&[("a", &key)], VAULT)).await;
    let bob = stack.browser();
    sign_in(&stack, &bob, "bob@example.com").await;
    let token = crate::bearer::exchange(&bob).await;
    assert_eq!(
        crate::bearer::get(&stack, "/reports", &token).await.status,
        200
    );
    let api = crate::bearer::get(&stack, "/vault/x", &token).await;
    crate::bearer::challenged(&api, 401, "insufficient_user_authentication");
    let page = crate::bearer::browse(&stack, "/vault/x", &token).await;
    crate::bearer::challenged(&page, 401, "insufficient_user_authentication");
}
