//! The signed identity assertion (`X-Auth-Assertion`), checked the way an
//! app would: by an independent JWT library (PyJWT) against the JWKS fetched
//! from the running latchkey. Good, tampered, expired, wrong-audience and
//! forged ones; proxy and forward-auth; key rotation across restarts.

use std::path::Path;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use latchkey::identity::keys::{generate_pem, Alg};
use serde_json::Value;

use crate::flow::{echoed, echoed_header, sign_in, Stack};
use crate::support::http::{send, Browser, Resp};
use crate::support::pyjwt::{self, Case};

const JSON: &[(&str, &str)] = &[("Accept", "application/json")];

/// Writes a fresh private key to `dir/kid.pem`; returns its path.
pub fn write_key(dir: &Path, kid: &str, alg: Alg) -> String {
    let path = dir.join(format!("{kid}.pem"));
    std::fs::write(&path, generate_pem(alg).expect("generate key")).expect("write key");
    path.display().to_string()
}

/// An `[assertion]` table with these keys (first signs) and `extra` lines.
pub fn assertion_toml(keys: &[(&str, &str)], extra: &str) -> String {
    let list: Vec<String> = keys
        .iter()
        .map(|(kid, file)| format!("{{ kid = \"{kid}\", file = \"{file}\" }}"))
        .collect();
    format!("\n[assertion]\nkeys = [{}]\n{extra}\n", list.join(", "))
}

/// The issuer latchkey writes: public_url's origin.
pub fn issuer(stack: &Stack) -> String {
    format!("http://auth.test:{}", stack.lk.port)
}

pub async fn jwks(stack: &Stack) -> (Resp, Value) {
    let resp = send(
        stack.lk.addr,
        "GET",
        "/.latchkey/jwks.json",
        &[("Host", &format!("auth.test:{}", stack.lk.port))],
        b"",
    )
    .await;
    assert_eq!(resp.status, 200, "{}", resp.body);
    let v = resp.json();
    (resp, v)
}

/// The one assertion the app received for `GET target`.
async fn assertion_via_proxy(b: &Browser, target: &str) -> String {
    let v = echoed(&b.get(target, JSON).await);
    let got = echoed_header(&v, "x-auth-assertion");
    assert_eq!(got.len(), 1, "exactly one assertion reaches the app: {v}");
    assert!(!got[0].is_empty(), "an assertion for a signed-in user");
    got[0].clone()
}

fn payload(jwt: &str) -> Value {
    let part = jwt.split('.').nth(1).expect("a JWT has a payload");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).expect("base64url")).expect("JSON")
}

fn case<'a>(token: &'a str, aud: &'a str, iss: &'a str) -> Case<'a> {
    Case {
        token,
        aud,
        iss,
        leeway: 0,
    }
}

fn refused_with(result: &Value, error: &str) {
    assert_eq!(result["ok"], false, "should be refused: {result}");
    assert_eq!(result["error"], error, "{result}");
}

#[tokio::test]
async fn assertions_verify_against_the_jwks_and_forgeries_do_not() {
    let dir = crate::support::temp_dir();
    let a = write_key(dir.path(), "a", Alg::Es256);
    let stack = Stack::start(&assertion_toml(&[("a", &a)], "")).await;
    let iss = issuer(&stack);

    let alice = stack.browser();
    sign_in(&stack, &alice, "alice@example.com").await;
    let bob = stack.browser();
    sign_in(&stack, &bob, "bob@example.com").await;

    // The client's own X-Auth-Assertion, in any spelling, never reaches the app.
    let forged = [
        ("X-Auth-Assertion", "forged.by.client"),
        ("X_Auth_Assertion", "forged.too"),
        JSON[0],
    ];
    let v = echoed(&alice.get("/reports", &forged).await);
    let names: Vec<String> = v["headers"]
        .as_array()
        .expect("headers")
        .iter()
        .filter_map(|p| p[0].as_str())
        .map(str::to_ascii_lowercase)
        .filter(|n| n.replace('_', "-") == "x-auth-assertion")
        .collect();
    assert_eq!(names, ["x-auth-assertion"], "{v}");
    let alice_jwt = echoed_header(&v, "x-auth-assertion")[0].clone();
    let alice_id = echoed_header(&v, "x-auth-user-id")[0].clone();
    assert!(!alice_jwt.contains("forged"));
    let bob_jwt = assertion_via_proxy(&bob, "/reports").await;

    let (resp, keys) = jwks(&stack).await;
    assert_eq!(resp.header("cache-control"), Some("public, max-age=300"));
    assert_eq!(keys["keys"][0]["kid"], "a", "{keys}");
    assert!(
        keys["keys"][0].get("d").is_none(),
        "no private part: {keys}"
    );

    // Tampered: bob's payload claiming admin, with bob's signature; and
    // alice's payload under bob's header and signature.
    let mut claims = payload(&bob_jwt);
    claims["roles"] = serde_json::json!(["admin"]);
    let parts: Vec<&str> = bob_jwt.split('.').collect();
    let promoted = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        parts[2]
    );
    let spliced = format!(
        "{}.{}.{}",
        parts[0],
        alice_jwt.split('.').nth(1).expect("payload"),
        parts[2]
    );

    // Forward-auth: the assertion comes back on the 2xx, for the target host.
    let port = stack.lk.port;
    let auth_host = format!("auth.test:{port}");
    let fa = |uri: &'static str, cookie: Option<String>| {
        let auth_host = auth_host.clone();
        async move {
            let mut h = vec![
                ("Host".to_owned(), auth_host),
                ("X-Forwarded-Method".to_owned(), "GET".to_owned()),
                ("X-Forwarded-Proto".to_owned(), "http".to_owned()),
                ("X-Forwarded-Host".to_owned(), "app.test".to_owned()),
                ("X-Forwarded-Uri".to_owned(), uri.to_owned()),
                ("Accept".to_owned(), "application/json".to_owned()),
                ("X-Auth-Assertion".to_owned(), "forged".to_owned()),
            ];
            if let Some(c) = cookie {
                h.push(("Cookie".to_owned(), format!("latchkey_session={c}")));
            }
            let h: Vec<(&str, &str)> = h.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            send(stack.lk.addr, "GET", "/.latchkey/auth", &h, b"").await
        }
    };
    let answer = fa("/reports", alice.cookie("latchkey_session")).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let fa_jwt = answer
        .header("x-auth-assertion")
        .expect("assertion on the forward-auth answer")
        .to_owned();
    let anonymous = fa("/public/page", None).await;
    assert_eq!(anonymous.status, 200);
    assert_eq!(
        anonymous.header("x-auth-assertion"),
        Some(""),
        "anonymous: present and empty, so a forged one is overwritten"
    );

    let results = pyjwt::verify(
        &keys,
        &[
            case(&alice_jwt, "app.test", &iss),
            case(&fa_jwt, "app.test", &iss),
            case(&promoted, "app.test", &iss),
            case(&spliced, "app.test", &iss),
            case(&alice_jwt, "other.test", &iss),
            case(&alice_jwt, "app.test", "http://elsewhere.test"),
        ],
    );
    for good in &results[..2] {
        assert_eq!(good["ok"], true, "{good}");
        let c = &good["claims"];
        assert_eq!(c["sub"], alice_id.as_str());
        assert_eq!(c["email"], "alice@example.com");
        assert_eq!(c["roles"], serde_json::json!(["admin", "member"]));
        assert_eq!(c["iss"], iss.as_str());
        assert_eq!(c["aud"], "app.test");
        assert_eq!(c["exp"].as_u64().unwrap() - c["iat"].as_u64().unwrap(), 60);
        assert_eq!(good["header"]["kid"], "a");
        assert_eq!(good["header"]["alg"], "ES256");
    }
    refused_with(&results[2], "InvalidSignatureError");
    refused_with(&results[3], "InvalidSignatureError");
    refused_with(&results[4], "InvalidAudienceError");
    refused_with(&results[5], "InvalidIssuerError");

    // An assertion is not a bearer token: replaying it to latchkey fails.
    let replay = send(
        stack.lk.addr,
        "GET",
        "/reports",
        &[
            ("Host", &stack.host()),
            ("Authorization", &format!("Bearer {alice_jwt}")),
            ("Accept", "text/html"),
        ],
        b"",
    )
    .await;
    assert_eq!(replay.status, 401, "{}", replay.body);
    assert!(replay
        .header("www-authenticate")
        .is_some_and(|v| v.contains("invalid_token")));
}

#[tokio::test]
async fn keys_rotate_without_a_gap_and_short_assertions_expire() {
    let dir = crate::support::temp_dir();
    let a = write_key(dir.path(), "a", Alg::Es256);
    let b = write_key(dir.path(), "b", Alg::EdDsa);
    let stack = Stack::start(&assertion_toml(&[("a", &a)], "")).await;
    let browser = stack.browser();
    sign_in(&stack, &browser, "alice@example.com").await;
    let session = browser.cookie("latchkey_session").expect("session");
    let old_jwt = assertion_via_proxy(&browser, "/reports").await;
    let token = crate::bearer::exchange(&browser).await;

    // b joins and signs; a is still published. Assertions now live 1 s.
    let stack = stack.restart(&assertion_toml(&[("b", &b), ("a", &a)], "ttl = \"1s\""));
    let iss = issuer(&stack);
    let browser = stack.browser();
    browser.set_cookie("latchkey_session", &session);
    let new_jwt = assertion_via_proxy(&browser, "/reports").await;
    let (_, keys) = jwks(&stack).await;
    let kids: Vec<&str> = keys["keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|k| k["kid"].as_str())
        .collect();
    assert_eq!(kids, ["b", "a"]);
    let results = pyjwt::verify(
        &keys,
        &[
            case(&old_jwt, "app.test", &iss),
            Case {
                leeway: 30,
                ..case(&new_jwt, "app.test", &iss)
            },
        ],
    );
    assert_eq!(
        results[0]["ok"], true,
        "signed by the old key: {}",
        results[0]
    );
    assert_eq!(
        results[1]["ok"], true,
        "signed by the new key: {}",
        results[1]
    );
    assert_eq!(results[1]["header"]["kid"], "b");
    assert_eq!(results[1]["header"]["alg"], "EdDSA");
    let c = &results[1]["claims"];
    assert_eq!(c["exp"].as_u64().unwrap() - c["iat"].as_u64().unwrap(), 1);
    // A bearer token signed by the old key still works.
    let api = crate::bearer::get(&stack, "/reports", &token).await;
    assert_eq!(api.status, 200, "{}", api.body);

    // Past its exp, the short assertion fails.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let results = pyjwt::verify(&keys, &[case(&new_jwt, "app.test", &iss)]);
    refused_with(&results[0], "ExpiredSignatureError");

    // a is removed: what it signed no longer verifies anywhere.
    let stack = stack.restart(&assertion_toml(&[("b", &b)], ""));
    let iss = issuer(&stack);
    let (_, keys) = jwks(&stack).await;
    assert_eq!(keys["keys"].as_array().unwrap().len(), 1);
    let results = pyjwt::verify(&keys, &[case(&old_jwt, "app.test", &iss)]);
    assert_eq!(results[0]["ok"], false, "{}", results[0]);
    let api = crate::bearer::get(&stack, "/reports", &token).await;
    assert_eq!(api.status, 401, "{}", api.body);
}

#[tokio::test]
async fn without_keys_there_is_no_assertion_and_the_jwks_is_empty() {
    let stack = Stack::start("").await;
    let b = stack.browser();
    sign_in(&stack, &b, "alice@example.com").await;
    let v = echoed(
        &b.get("/reports", &[("X-Auth-Assertion", "forged"), JSON[0]])
            .await,
    );
    assert_eq!(
        echoed_header(&v, "x-auth-assertion"),
        [""],
        "sent empty, never forwarded from the client"
    );
    let (_, keys) = jwks(&stack).await;
    assert_eq!(keys, serde_json::json!({ "keys": [] }));
    let exchange = b
        .request(
            "POST",
            "/.latchkey/token",
            &[("X-Requested-With", "fetch")],
            b"",
        )
        .await;
    assert_eq!(exchange.status, 404, "no bearer tokens without keys");
}
