//! The passkey ceremonies through the real binary and a real
//! redis-server, answered by a software passkey (`support::webauthn`, an
//! ES256 key as a browser's `toJSON()` writes it): registration, sign-in
//! and step-up succeed, and each bad answer is refused with a clear 4xx
//! and an audit event, creating nothing: a replayed challenge, an expired
//! one, another origin or RP id, another person's passkey, a removed one,
//! a sign count that went back, malformed JSON and CBOR, a missing CSRF
//! header.

use redis::AsyncCommands;

use latchkey::identity::secret::Secret;
use latchkey::store::records::user_id;
use latchkey::store::{RedisStore, Store};

use crate::flow::{csrf_of, echoed, echoed_header, sign_in, Stack};
use crate::support::http::{Browser, Resp};
use crate::support::webauthn::{Answer, SoftPasskey};

const VAULT: &str = "
[[rules]]
path = \"/vault/**\"
policy = \"authenticated\"
mfa = true
";

fn origin(stack: &Stack) -> String {
    format!("http://{}", stack.host())
}

/// The CSRF token of this browser (from a page that sets it).
async fn csrf(b: &Browser) -> String {
    let page = b.get("/.latchkey/login", &[]).await;
    csrf_of(&page.body)
}

/// A ceremony POST as passkey.js makes it.
async fn post(stack: &Stack, b: &Browser, path: &str, body: &str) -> Resp {
    let token = csrf(b).await;
    let origin = origin(stack);
    b.request(
        "POST",
        path,
        &[
            ("Content-Type", "application/json"),
            ("Accept", "application/json"),
            ("X-Latchkey-CSRF", &token),
            ("Origin", &origin),
        ],
        body.as_bytes(),
    )
    .await
}

fn ok_json(resp: &Resp) -> serde_json::Value {
    assert_eq!(resp.status, 200, "{}", resp.body);
    resp.json()
}

/// Signs `email` in by link and registers a software passkey for them.
async fn with_passkey(stack: &Stack, email: &str) -> (Browser, SoftPasskey) {
    let b = stack.browser();
    sign_in(stack, &b, email).await;
    let options = ok_json(
        &post(
            stack,
            &b,
            "/.latchkey/passkey/register/options",
            r#"{"name":"Soft key"}"#,
        )
        .await,
    );
    assert_eq!(options["rp"]["id"], "app.test");
    assert_eq!(options["attestation"], "none");
    assert_eq!(options["authenticatorSelection"]["residentKey"], "required");
    let key = SoftPasskey::new(&options);
    assert_eq!(key.user_id, user_id(email));
    let mut answer = Answer::honest(&options, &origin(stack));
    answer.sign_count = 5;
    let done = ok_json(
        &post(
            stack,
            &b,
            "/.latchkey/passkey/register",
            &key.register(&answer),
        )
        .await,
    );
    assert_eq!(done["location"], "/.latchkey/account?passkey=added");
    (b, key)
}

/// Request options for a passkey sign-in in `b`, returning to `rd`.
async fn login_options(stack: &Stack, b: &Browser, rd: &str) -> serde_json::Value {
    let body = serde_json::json!({ "rd": rd }).to_string();
    ok_json(&post(stack, b, "/.latchkey/passkey/login/options", &body).await)
}

fn refused(resp: &Resp, status: u16, words: &str) {
    assert_eq!(resp.status, status, "{}", resp.body);
    let message = resp.json()["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(message.contains(words), "{message:?} lacks {words:?}");
    assert!(resp
        .set_cookies()
        .iter()
        .all(|c| !c.starts_with("latchkey_session=")));
}

/// Passkey refusals audited for `reason`, whoever they were about.
fn refusals(stack: &Stack, reason: &str) -> usize {
    stack
        .lk
        .log()
        .lines()
        .filter(|l| l.contains("latchkey::obs::audit"))
        .filter(|l| l.contains("event=\"passkey_refused\""))
        .filter(|l| l.contains(&format!("reason=\"{reason}\"")))
        .count()
}

async fn store(stack: &Stack) -> RedisStore {
    RedisStore::new(&stack.redis.as_ref().unwrap().url(), "latchkey:").unwrap()
}

#[tokio::test]
async fn a_passkey_registers_signs_in_and_steps_up_through_the_binary() {
    let stack = Stack::start(VAULT).await;
    let (bob, key) = with_passkey(&stack, "bob@example.com").await;
    let page = bob.get("/.latchkey/account", &[]).await;
    assert!(page.body.contains("Soft key"), "{}", page.body);
    assert!(page.body.contains("last used never"), "{}", page.body);

    // Step-up on the email session: allowCredentials is bob's passkey.
    let host = stack.host();
    let rd = format!("http://{host}/vault/a%20b?x=1");
    let body = serde_json::json!({ "rd": rd }).to_string();
    let options = ok_json(&post(&stack, &bob, "/.latchkey/step-up/options", &body).await);
    assert_eq!(options["allowCredentials"][0]["id"], key.id_b64());
    let mut a = Answer::honest(&options, &origin(&stack));
    a.sign_count = 6;
    let old = bob.cookie("latchkey_session").unwrap();
    let done = ok_json(&post(&stack, &bob, "/.latchkey/step-up", &key.assert(&a)).await);
    assert_eq!(done["location"], rd.as_str());
    let new = bob.cookie("latchkey_session").unwrap();
    assert_ne!(old, new, "a new session replaces the old one");
    let seen = echoed(
        &bob.get("/vault/a%20b?x=1", &[("accept", "application/json")])
            .await,
    );
    assert_eq!(echoed_header(&seen, "x-auth-email"), ["bob@example.com"]);
    // The old session was revoked.
    let stale = stack.browser();
    stale.set_cookie("latchkey_session", &old);
    let me = stale
        .get("/.latchkey/me", &[("accept", "application/json")])
        .await;
    assert_eq!(me.status, 401);

    // Sign-in in a fresh browser, discoverable: lands on the return address.
    let fresh = stack.browser();
    let options = login_options(&stack, &fresh, "/reports?via=passkey").await;
    assert_eq!(options["allowCredentials"], serde_json::json!([]));
    let mut a = Answer::honest(&options, &origin(&stack));
    a.sign_count = 7;
    let done = ok_json(&post(&stack, &fresh, "/.latchkey/passkey/login", &key.assert(&a)).await);
    assert_eq!(done["location"], "/reports?via=passkey");
    let me = fresh
        .get("/.latchkey/me", &[("accept", "application/json")])
        .await;
    assert_eq!(me.json()["amr"], "passkey");
    assert_eq!(me.json()["user"]["email"], "bob@example.com");
    let stored = store(&stack)
        .await
        .get_passkey(&user_id("bob@example.com"), &key.id_b64())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.sign_count, 7);
    assert!(stored.last_used > 0);
    assert_eq!(stored.transports, ["internal"]);
}

#[tokio::test]
async fn a_replayed_or_expired_challenge_is_refused_and_audited() {
    let stack = Stack::start("").await;
    let (_bob, key) = with_passkey(&stack, "bob@example.com").await;
    let email = "bob@example.com";

    // Replayed: the same answer, with the same challenge cookie, twice.
    let b = stack.browser();
    let options = login_options(&stack, &b, "/").await;
    let cookie = b.cookie("latchkey_passkey").unwrap();
    let mut a = Answer::honest(&options, &origin(&stack));
    a.sign_count = 6;
    let answer = key.assert(&a);
    ok_json(&post(&stack, &b, "/.latchkey/passkey/login", &answer).await);
    let completed = stack.lk.audit_count("sign_in_completed", None, email);
    let replay = stack.browser();
    replay.set_cookie("latchkey_passkey", &cookie);
    refused(
        &post(&stack, &replay, "/.latchkey/passkey/login", &answer).await,
        400,
        "expired or was already used",
    );
    // No challenge cookie at all: the same.
    let none = stack.browser();
    refused(
        &post(&stack, &none, "/.latchkey/passkey/login", &answer).await,
        400,
        "expired or was already used",
    );
    assert_eq!(
        stack.lk.audit_count("sign_in_completed", None, email),
        completed
    );

    // Expired: the challenge lives five minutes in the store; once it is
    // gone (its TTL run out, here shortened), the answer is refused.
    let late = stack.browser();
    let options = login_options(&stack, &late, "/").await;
    let hash = Secret::parse(&late.cookie("latchkey_passkey").unwrap())
        .unwrap()
        .hash()
        .to_hex();
    let client = redis::Client::open(stack.redis.as_ref().unwrap().url()).unwrap();
    let mut con = client.get_multiplexed_async_connection().await.unwrap();
    let key_name = format!("latchkey:o:{hash}");
    let ttl: i64 = con.pttl(&key_name).await.unwrap();
    assert!(ttl > 0 && ttl <= 300_000, "challenge TTL {ttl} ms");
    let _: bool = con.pexpire(&key_name, 1).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let mut a = Answer::honest(&options, &origin(&stack));
    a.sign_count = 7;
    refused(
        &post(&stack, &late, "/.latchkey/passkey/login", &key.assert(&a)).await,
        400,
        "expired or was already used",
    );
    assert_eq!(refusals(&stack, "challenge"), 3, "{}", stack.lk.log());
    // A sign-in challenge does not answer a registration.
    let b = stack.browser();
    sign_in(&stack, &b, email).await;
    let options = login_options(&stack, &b, "/").await;
    let other = SoftPasskey::new(
        &serde_json::json!({"user": {"id": crate::support::webauthn::b64(user_id(email).as_bytes())}}),
    );
    refused(
        &post(
            &stack,
            &b,
            "/.latchkey/passkey/register",
            &other.register(&Answer::honest(&options, &origin(&stack))),
        )
        .await,
        400,
        "expired or was already used",
    );
    assert_eq!(
        store(&stack)
            .await
            .list_passkeys(&user_id(email))
            .await
            .unwrap()
            .len(),
        1,
        "nothing registered"
    );
}

#[tokio::test]
async fn another_origin_or_rp_id_is_refused() {
    let stack = Stack::start("").await;
    let (_bob, key) = with_passkey(&stack, "bob@example.com").await;
    for (origin, rp, words, reason) in [
        ("http://evil.test", None, "another site", "origin_mismatch"),
        ("http://app.test:1", None, "another site", "origin_mismatch"),
        (
            "",
            Some("evil.test"),
            "belongs to another site",
            "rp_id_mismatch",
        ),
    ] {
        let b = stack.browser();
        let options = login_options(&stack, &b, "/").await;
        let mut a = Answer::honest(&options, &crate::passkey_ceremonies::origin(&stack));
        a.sign_count = 9;
        if !origin.is_empty() {
            a.origin = origin.into();
        }
        if let Some(rp) = rp {
            a.rp_id = rp.into();
        }
        let resp = post(&stack, &b, "/.latchkey/passkey/login", &key.assert(&a)).await;
        refused(&resp, 400, words);
        assert!(
            stack
                .lk
                .audit_count("passkey_refused", Some(reason), "bob@example.com")
                >= 1,
            "{reason}"
        );
    }
    // A ceremony POST from another site is refused before anything is read.
    let b = stack.browser();
    let token = csrf(&b).await;
    let cross = b
        .request(
            "POST",
            "/.latchkey/passkey/login/options",
            &[
                ("Content-Type", "application/json"),
                ("X-Latchkey-CSRF", &token),
                ("Origin", "http://evil.test"),
            ],
            b"{}",
        )
        .await;
    assert_eq!(cross.status, 403, "{}", cross.body);
    // And without the CSRF header.
    let bare = b
        .request(
            "POST",
            "/.latchkey/passkey/login/options",
            &[("Content-Type", "application/json")],
            b"{}",
        )
        .await;
    assert_eq!(bare.status, 403, "{}", bare.body);
    assert!(
        b.cookie("latchkey_passkey").is_none(),
        "no challenge issued"
    );
}

#[tokio::test]
async fn another_persons_passkey_a_removed_one_and_a_count_gone_back_are_refused() {
    let stack = Stack::start(VAULT).await;
    let (alice, alices) = with_passkey(&stack, "alice@example.com").await;
    let (bob, bobs) = with_passkey(&stack, "bob@example.com").await;
    let bob_id = user_id("bob@example.com");

    // Step-up on bob's session with alice's passkey.
    let options = ok_json(&post(&stack, &bob, "/.latchkey/step-up/options", "{}").await);
    let mut a = Answer::honest(&options, &origin(&stack));
    a.sign_count = 6;
    refused(
        &post(&stack, &bob, "/.latchkey/step-up", &alices.assert(&a)).await,
        400,
        "another account",
    );
    assert_eq!(
        stack
            .lk
            .audit_count("passkey_refused", Some("other_user"), "bob@example.com"),
        1
    );
    // Alice's credential presented as bob's (his user handle): not his.
    let b = stack.browser();
    let options = login_options(&stack, &b, "/").await;
    let mut a = Answer::honest(&options, &origin(&stack));
    a.sign_count = 6;
    refused(
        &post(
            &stack,
            &b,
            "/.latchkey/passkey/login",
            &alices.assert_as(&a, &bob_id),
        )
        .await,
        400,
        "not registered",
    );
    assert_eq!(
        stack.lk.audit_count(
            "passkey_refused",
            Some("unknown_credential"),
            "bob@example.com"
        ),
        1
    );
    // A user handle naming nobody.
    let b = stack.browser();
    let options = login_options(&stack, &b, "/").await;
    refused(
        &post(
            &stack,
            &b,
            "/.latchkey/passkey/login",
            &bobs.assert_as(&Answer::honest(&options, &origin(&stack)), "nobody"),
        )
        .await,
        400,
        "not registered",
    );

    // A sign count that went back (5 stored, 3 answered): 403, a warning,
    // the record untouched, no session.
    let b = stack.browser();
    let options = login_options(&stack, &b, "/").await;
    let mut a = Answer::honest(&options, &origin(&stack));
    a.sign_count = 3;
    refused(
        &post(&stack, &b, "/.latchkey/passkey/login", &bobs.assert(&a)).await,
        403,
        "counter went backwards",
    );
    stack.lk.wait_for_log(
        "passkey sign count went backwards",
        std::time::Duration::from_secs(5),
    );
    assert_eq!(
        stack.lk.audit_count(
            "passkey_refused",
            Some("sign_count_went_back"),
            "bob@example.com"
        ),
        1
    );
    let st = store(&stack).await;
    let kept = st
        .get_passkey(&bob_id, &bobs.id_b64())
        .await
        .unwrap()
        .unwrap();
    assert_eq!((kept.sign_count, kept.last_used), (5, 0));

    // Removed on the account page (a CSRF form): it no longer signs in.
    let page = bob.get("/.latchkey/account", &[]).await;
    let token = csrf_of(&page.body);
    let id = bobs.id_b64();
    let gone = bob
        .post_form(
            "/.latchkey/account/passkeys",
            &[("csrf", &token), ("id", &id), ("remove", "1")],
            &[],
        )
        .await;
    assert_eq!(gone.status, 303, "{}", gone.body);
    assert_eq!(
        gone.header("location"),
        Some("/.latchkey/account?passkey=removed")
    );
    // Alice cannot remove or rename bob's (her form names his id).
    let page = alice.get("/.latchkey/account", &[]).await;
    let token = csrf_of(&page.body);
    let alices_id = alices.id_b64();
    let none = bob
        .post_form(
            "/.latchkey/account/passkeys",
            &[
                (
                    "csrf",
                    &csrf_of(&bob.get("/.latchkey/account", &[]).await.body),
                ),
                ("id", &alices_id),
                ("remove", "1"),
            ],
            &[],
        )
        .await;
    assert_eq!(
        none.header("location"),
        Some("/.latchkey/account?passkey=none")
    );
    assert!(st
        .get_passkey(&user_id("alice@example.com"), &alices_id)
        .await
        .unwrap()
        .is_some());
    let renamed = alice
        .post_form(
            "/.latchkey/account/passkeys",
            &[("csrf", &token), ("id", &alices_id), ("name", "Phone")],
            &[],
        )
        .await;
    assert_eq!(
        renamed.header("location"),
        Some("/.latchkey/account?passkey=renamed")
    );
    let b = stack.browser();
    let options = login_options(&stack, &b, "/").await;
    let mut a = Answer::honest(&options, &origin(&stack));
    a.sign_count = 10;
    refused(
        &post(&stack, &b, "/.latchkey/passkey/login", &bobs.assert(&a)).await,
        400,
        "not registered",
    );
    // Without a passkey, step-up options say how to add one.
    let options = post(&stack, &bob, "/.latchkey/step-up/options", "{}").await;
    refused(&options, 400, "no passkey yet");
}

#[tokio::test]
async fn malformed_answers_are_refused_without_a_panic() {
    let stack = Stack::start("").await;
    let (bob, key) = with_passkey(&stack, "bob@example.com").await;
    let b = stack.browser();
    let good = {
        let options = login_options(&stack, &b, "/").await;
        key.assert(&Answer::honest(&options, &origin(&stack)))
    };
    let mut tampered: serde_json::Value = serde_json::from_str(&good).unwrap();
    tampered["response"]["authenticatorData"] = "AAAA".into();
    let short = tampered.to_string();
    tampered["response"]["authenticatorData"] = "!!not base64!!".into();
    let not_b64 = tampered.to_string();
    for body in [
        "",
        "not json",
        "{}",
        "[]",
        r#"{"id":"x","type":"public-key","response":{}}"#,
        &short,
        &not_b64,
        "\u{0}\u{1}\u{2}",
    ] {
        let b = stack.browser();
        login_options(&stack, &b, "/").await;
        let resp = post(&stack, &b, "/.latchkey/passkey/login", body).await;
        assert_eq!(resp.status, 400, "{body:?}: {}", resp.body);
        assert!(!resp.json()["message"]
            .as_str()
            .unwrap_or_default()
            .is_empty());
    }
    // Registration: garbage CBOR, an attestation object that is not a map.
    for object in ["AAAA", "oA", "v_8"] {
        let options =
            ok_json(&post(&stack, &bob, "/.latchkey/passkey/register/options", "{}").await);
        let mut body: serde_json::Value =
            serde_json::from_str(&key.register(&Answer::honest(&options, &origin(&stack))))
                .unwrap();
        body["response"]["attestationObject"] = object.into();
        let resp = post(
            &stack,
            &bob,
            "/.latchkey/passkey/register",
            &body.to_string(),
        )
        .await;
        assert_eq!(resp.status, 400, "{object}: {}", resp.body);
    }
    // A name too long, and a body over 16 KiB.
    let long = serde_json::json!({ "name": "x".repeat(65) }).to_string();
    refused(
        &post(&stack, &bob, "/.latchkey/passkey/register/options", &long).await,
        400,
        "at most 64",
    );
    let huge = "x".repeat(17 * 1024);
    let resp = post(&stack, &bob, "/.latchkey/passkey/login", &huge).await;
    assert_eq!(resp.status, 413);
    assert_eq!(
        store(&stack)
            .await
            .list_passkeys(&user_id("bob@example.com"))
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(refusals(&stack, "malformed") >= 5, "{}", stack.lk.log());
    // Still answering.
    assert_eq!(bob.get("/.latchkey/account", &[]).await.status, 200);
}

#[tokio::test]
async fn the_rp_id_is_the_cookie_domain_when_set_else_the_host() {
    let stack = Stack::start(
        "[session]\ncookie_domain = \"app.test\"\n\n[[apps]]\nhost = \"eu.app.test\"\n",
    )
    .await;
    let b = stack.browser();
    let host = format!("eu.app.test:{}", stack.lk.port);
    let token = csrf(&b).await;
    let origin = format!("http://{host}");
    let resp = b
        .request(
            "POST",
            "/.latchkey/passkey/login/options",
            &[
                ("Host", &host),
                ("Content-Type", "application/json"),
                ("X-Latchkey-CSRF", &token),
                ("Origin", &origin),
            ],
            b"{}",
        )
        .await;
    assert_eq!(ok_json(&resp)["rpId"], "app.test");

    let plain = Stack::start("").await;
    let b = plain.browser();
    assert_eq!(login_options(&plain, &b, "/").await["rpId"], "app.test");
    let token = csrf(&b).await;
    let auth = format!("auth.test:{}", plain.lk.port);
    let resp = b
        .request(
            "POST",
            "/.latchkey/passkey/login/options",
            &[
                ("Host", &auth),
                ("Content-Type", "application/json"),
                ("X-Latchkey-CSRF", &token),
                ("Origin", &format!("http://{auth}")),
            ],
            b"{}",
        )
        .await;
    assert_eq!(ok_json(&resp)["rpId"], "auth.test");
}

/// Autofill asks for options on every load of the sign-in page: that must
/// not use up the client's redemptions, or an office behind one address
/// could no longer sign in by email link.
#[tokio::test]
async fn asking_for_passkey_options_uses_up_no_redemptions() {
    let stack = Stack::start("[limits]\nverify_per_ip = 3\n").await;
    let b = stack.browser();
    for _ in 0..8 {
        login_options(&stack, &b, "/").await;
    }
    sign_in(&stack, &b, "bob@example.com").await;
    let seen = echoed(&b.get("/", &[("Accept", "application/json")]).await);
    assert_eq!(
        echoed_header(&seen, "x-auth-email"),
        vec!["bob@example.com"]
    );
}

/// A session for bob straight in the store, made `age_ms` ago by `amr`.
async fn aged_session(stack: &Stack, amr: &str, age_ms: u64) -> Browser {
    use latchkey::store::records::SessionRecord;
    let now = latchkey::unix_ms(std::time::SystemTime::now());
    let record = SessionRecord {
        user_id: user_id("bob@example.com"),
        email: "bob@example.com".into(),
        created_at: now - age_ms,
        expires_at: now + 3_600_000,
        ip: "127.0.0.1".into(),
        user_agent: "test".into(),
        amr: amr.into(),
        extra_roles: Vec::new(),
    };
    let t = Secret::generate(&mut rand::rng());
    store(stack)
        .await
        .create_session(&t.hash(), &record, std::time::Duration::from_secs(900), now)
        .await
        .unwrap();
    let b = stack.browser();
    b.set_cookie("latchkey_session", t.expose());
    b
}

/// A stolen session cookie must not enrol the thief's passkey (and with it
/// pass `mfa = true` rules): only a sign-in of the last 10 minutes, or a
/// session that proved a passkey, may add one.
#[tokio::test]
async fn only_a_fresh_sign_in_or_a_passkey_session_may_add_a_passkey() {
    let stack = Stack::start("").await;
    let add = |b: Browser| {
        let stack = &stack;
        async move {
            post(
                stack,
                &b,
                "/.latchkey/passkey/register/options",
                r#"{"name":"Thief"}"#,
            )
            .await
        }
    };
    let stale = add(aged_session(&stack, "email", 11 * 60_000).await).await;
    refused(&stale, 403, "sign in again");
    assert_eq!(refusals(&stack, "sign_in_not_fresh"), 1);
    let recent = add(aged_session(&stack, "email", 9 * 60_000).await).await;
    assert_eq!(recent.status, 200, "{}", recent.body);
    let by_passkey = add(aged_session(&stack, "passkey", 3_000_000).await).await;
    assert_eq!(by_passkey.status, 200, "{}", by_passkey.body);
}

/// Adding a passkey mails the person (read from the real SMTP server), so
/// one enrolled by someone else does not go unnoticed.
#[tokio::test]
async fn adding_a_passkey_mails_the_person_a_notice() {
    let stack = Stack::start("").await;
    let (_bob, _key) = with_passkey(&stack, "bob@example.com").await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let notice = loop {
        let found = stack.smtp.notices("bob@example.com").into_iter().find(|m| {
            m.subject
                .starts_with("New passkey on your account at app.test")
        });
        if let Some(m) = found {
            break m;
        }
        assert!(std::time::Instant::now() < deadline, "no passkey notice");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert!(
        notice
            .text
            .contains(r#"A passkey named "Soft key" was just added"#),
        "{}",
        notice.text
    );
    assert!(
        notice.text.contains("IP:      127.0.0.1"),
        "{}",
        notice.text
    );
    let account = format!("http://auth.test:{}/.latchkey/account", stack.lk.port);
    assert!(notice.text.contains(&account), "{}", notice.text);
    assert!(
        notice.html.contains("<strong>Soft key</strong>"),
        "{}",
        notice.html
    );
}
