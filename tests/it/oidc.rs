//! latchkey's OpenID Connect client against a real provider (panva's
//! oidc-provider, see support/oidc.rs): discovery, the authorization URL,
//! the whole code flow through the provider's login and consent forms, and
//! each way a sign-in must be refused: forged state, unverified email,
//! issuer mix-up, a tampered token, a token for another client, a provider
//! that is down; and a key rotation at the provider.

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use latchkey::config::FileConfig;
use latchkey::identity::oidc::{
    compile_providers, CallbackParams, IdToken, OidcClient, OidcError, ProviderHttp,
    ProviderSettings,
};
use latchkey::obs::clock::Clock;
use sha2::{Digest, Sha256};
use url::Url;

use crate::support::oidc::{
    OidcProvider, CLIENT_ID, CLIENT_SECRET, OTHER_CLIENT_ID, OTHER_CLIENT_SECRET, REDIRECT_URI,
};

fn settings(issuer: &str, client_id: &str, secret: &str) -> ProviderSettings {
    let toml = format!(
        r#"[[login.providers]]
id = "corp"
kind = "oidc"
name = "Corp SSO"
issuer = "{issuer}"
client_id = "{client_id}"
client_secret = "{secret}"
scopes = ["openid", "email", "groups"]
roles_claim = "groups"
role_map = {{ ops = ["admin"] }}
logout = true
"#
    );
    let cfg = FileConfig::from_toml(&toml).unwrap();
    compile_providers(&cfg.login.providers).unwrap().remove(0)
}

async fn client_as(
    p: &OidcProvider,
    client_id: &str,
    secret: &str,
    clock: Clock,
) -> Result<OidcClient, OidcError> {
    let http = ProviderHttp::new(None, Duration::from_secs(5)).unwrap();
    OidcClient::discover(
        &settings(&p.issuer, client_id, secret),
        Url::parse(REDIRECT_URI).unwrap(),
        http,
        clock,
    )
    .await
}

async fn client(p: &OidcProvider) -> OidcClient {
    client_as(p, CLIENT_ID, CLIENT_SECRET, Clock::system())
        .await
        .unwrap()
}

/// The claims of a JWT, unverified (to look at what the provider put in).
fn payload(token: &IdToken) -> serde_json::Value {
    let part = token.expose().split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

fn query(url: &Url) -> std::collections::HashMap<String, String> {
    url.query_pairs().into_owned().collect()
}

#[tokio::test]
async fn discovery_and_the_authorization_url() {
    let p = OidcProvider::start();
    let c = client(&p).await;
    let m = c.metadata();
    assert_eq!(m.issuer, p.issuer);
    assert_eq!(
        m.authorization_endpoint.as_str(),
        format!("{}/auth", p.issuer)
    );
    assert!(m.end_session_endpoint.is_some());
    assert_eq!(c.keys().kids().await, [Some(p.kid())]);

    let mut rng = rand::rng();
    let a = c.start(&mut rng);
    let q = query(&a.url);
    assert_eq!(a.url.path(), "/auth");
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["client_id"], CLIENT_ID);
    assert_eq!(q["redirect_uri"], REDIRECT_URI);
    assert_eq!(q["scope"], "openid email groups");
    assert_eq!(q["state"], a.pending.state.expose());
    assert_eq!(q["nonce"], a.pending.nonce.expose());
    assert_eq!(q["code_challenge_method"], "S256");
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(a.pending.code_verifier.expose()));
    assert_eq!(q["code_challenge"], challenge);
    assert!(!q.contains_key("code_verifier"));
    let b = c.start(&mut rng);
    assert_ne!(query(&b.url)["state"], q["state"]);
    assert_ne!(query(&b.url)["nonce"], q["nonce"]);

    let logout = c.end_session_url(
        None,
        &Url::parse("https://auth.example.com/.latchkey/signed-out").unwrap(),
    );
    assert_eq!(logout.unwrap().path(), "/session/end");
}

#[tokio::test]
async fn the_code_flow_ends_in_a_verified_identity_with_the_email_from_userinfo() {
    let p = OidcProvider::start();
    let c = client(&p).await;
    let a = c.start(&mut rand::rng());
    let callback = p.login(&a.url, "alice").await;
    assert_eq!(callback.as_str().split('?').next(), Some(REDIRECT_URI));
    let params = CallbackParams::from_query(callback.query().unwrap());
    assert_eq!(params.iss.as_deref(), Some(p.issuer.as_str()));

    // A forged state is refused before anything is sent to the provider.
    let mut forged = params.clone();
    forged.state = Some("x".repeat(43));
    assert!(matches!(
        c.finish(&a.pending, &forged).await,
        Err(OidcError::BadState)
    ));
    let mut missing = params.clone();
    missing.state = None;
    assert!(matches!(
        c.finish(&a.pending, &missing).await,
        Err(OidcError::BadState)
    ));

    let id = c.finish(&a.pending, &params).await.unwrap();
    assert_eq!(id.email, "alice@example.com");
    assert!(id.email_verified);
    assert_eq!(id.subject, "alice");
    assert_eq!(id.claim_values, ["ops", "dev"]);
    assert_eq!(id.mapped_roles.iter().collect::<Vec<_>>(), ["admin"]);
    assert_eq!(id.amr(), "oidc:corp");
    // The email came from userinfo: oidc-provider leaves it out of the ID token.
    assert!(
        payload(id.id_token.as_ref().unwrap())
            .get("email")
            .is_none(),
        "{}",
        payload(id.id_token.as_ref().unwrap())
    );

    // The same callback again: the provider refuses the used code.
    let again = c.finish(&a.pending, &params).await.unwrap_err();
    assert!(
        matches!(&again, OidcError::Status { error: Some(e), .. } if e == "invalid_grant"),
        "{again:?}"
    );
}

#[tokio::test]
async fn client_secret_post_is_used_when_it_is_all_the_provider_offers() {
    let p = OidcProvider::start_with_auth_methods(&["client_secret_post"]);
    let c = client(&p).await;
    assert_eq!(
        c.metadata()
            .token_endpoint_auth_methods_supported
            .as_deref(),
        Some(&["client_secret_post".to_owned()][..])
    );
    let a = c.start(&mut rand::rng());
    let callback = p.login(&a.url, "alice").await;
    let id = c
        .finish(
            &a.pending,
            &CallbackParams::from_query(callback.query().unwrap()),
        )
        .await
        .unwrap();
    assert_eq!(id.email, "alice@example.com");
}

#[tokio::test]
async fn an_unverified_or_unvouched_email_is_refused() {
    let p = OidcProvider::start();
    let c = client(&p).await;
    for (account, email) in [("bob", "bob@example.com"), ("carol", "carol@example.com")] {
        let a = c.start(&mut rand::rng());
        let callback = p.login(&a.url, account).await;
        let err = c
            .finish(
                &a.pending,
                &CallbackParams::from_query(callback.query().unwrap()),
            )
            .await
            .unwrap_err();
        assert!(
            matches!(&err, OidcError::UnverifiedEmail { email: e } if e == email),
            "{account}: {err:?}"
        );
        assert_eq!(err.status(), 403);
    }
}

#[tokio::test]
async fn an_issuer_mix_up_is_refused() {
    let a_side = OidcProvider::start();
    // Another issuer, signing with the same key: only the issuer checks
    // stand between its answers and a sign-in at the first.
    let b_side = OidcProvider::start_sharing_key_with(&a_side);
    let ca = client(&a_side).await;
    let cb = client(&b_side).await;

    // The browser is sent to A but the answer comes from B (`iss` = B).
    let a = ca.start(&mut rand::rng());
    let mut at_b = a.url.clone();
    at_b.set_port(Some(b_side.port)).unwrap();
    let callback = b_side.login(&at_b, "alice").await;
    let params = CallbackParams::from_query(callback.query().unwrap());
    let err = ca.finish(&a.pending, &params).await.unwrap_err();
    assert!(
        matches!(&err, OidcError::IssuerMismatch { found: Some(f), .. } if *f == b_side.issuer),
        "{err:?}"
    );
    // A callback without `iss` from a provider that promises it.
    let mut no_iss = params.clone();
    no_iss.iss = None;
    assert!(matches!(
        ca.finish(&a.pending, &no_iss).await,
        Err(OidcError::IssuerMismatch { found: None, .. })
    ));

    // B's ID token, validly signed (same key), presented to A's client.
    let code = cb.check_callback(&a.pending, &params).unwrap();
    let tokens = cb.exchange_code(&a.pending, code).await.unwrap();
    let err = ca
        .verify(&tokens.id_token, a.pending.nonce.expose())
        .await
        .unwrap_err();
    assert!(matches!(&err, OidcError::IssuerMismatch { .. }), "{err:?}");
    // ...which B's own client accepts.
    cb.verify(&tokens.id_token, a.pending.nonce.expose())
        .await
        .unwrap();
}

async fn tokens_for(
    p: &OidcProvider,
    c: &OidcClient,
    account: &str,
) -> (latchkey::identity::oidc::TokenSet, String) {
    let a = c.start(&mut rand::rng());
    let callback = p.login(&a.url, account).await;
    let params = CallbackParams::from_query(callback.query().unwrap());
    let code = c.check_callback(&a.pending, &params).unwrap();
    let tokens = c.exchange_code(&a.pending, code).await.unwrap();
    (tokens, a.pending.nonce.expose().to_owned())
}

#[tokio::test]
async fn a_tampered_id_token_is_refused() {
    let p = OidcProvider::start();
    let c = client(&p).await;
    let (tokens, nonce) = tokens_for(&p, &c, "alice").await;
    c.verify(&tokens.id_token, &nonce).await.unwrap();
    let parts: Vec<&str> = tokens.id_token.expose().split('.').collect();

    let mut claims = payload(&tokens.id_token);
    claims["sub"] = "mallory".into();
    let body = URL_SAFE_NO_PAD.encode(claims.to_string());
    let tampered = IdToken::new(format!("{}.{body}.{}", parts[0], parts[2]));
    let err = c.verify(&tampered, &nonce).await.unwrap_err();
    assert!(matches!(err, OidcError::BadSignature(_)), "{err:?}");

    // The same claims "signed" with HS256 or not at all.
    for alg in ["HS256", "none"] {
        let header = URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"{alg}","typ":"JWT"}}"#));
        let forged = IdToken::new(format!("{header}.{}.{}", parts[1], parts[2]));
        let err = c.verify(&forged, &nonce).await.unwrap_err();
        assert!(
            matches!(
                err,
                OidcError::DisallowedAlgorithm(_) | OidcError::MalformedToken(_)
            ),
            "{alg}: {err:?}"
        );
    }
    // The right token with another sign-in's nonce.
    assert!(matches!(
        c.verify(&tokens.id_token, "other-nonce").await,
        Err(OidcError::BadNonce)
    ));
}

#[tokio::test]
async fn a_token_for_another_client_is_refused() {
    let p = OidcProvider::start();
    let ours = client(&p).await;
    let theirs = client_as(&p, OTHER_CLIENT_ID, OTHER_CLIENT_SECRET, Clock::system())
        .await
        .unwrap();
    let (tokens, nonce) = tokens_for(&p, &theirs, "alice").await;
    theirs.verify(&tokens.id_token, &nonce).await.unwrap();
    let err = ours.verify(&tokens.id_token, &nonce).await.unwrap_err();
    assert!(
        matches!(&err, OidcError::WrongAudience { found } if found == &[OTHER_CLIENT_ID.to_owned()]),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_key_rotation_at_the_provider_is_followed_at_most_once_a_minute() {
    let mut p = OidcProvider::start();
    let clock = Clock::manual(latchkey::unix_ms(std::time::SystemTime::now()));
    let c = client_as(&p, CLIENT_ID, CLIENT_SECRET, clock.clone())
        .await
        .unwrap();
    let (tokens, nonce) = tokens_for(&p, &c, "alice").await;
    c.verify(&tokens.id_token, &nonce).await.unwrap();

    // A rotation: the first token naming the new key makes the client fetch
    // the keys again (the load at discovery is not a re-fetch).
    let old_kid = p.kid();
    p.rotate_key();
    assert_ne!(p.kid(), old_kid);
    let (tokens, nonce) = tokens_for(&p, &c, "alice").await;
    let claims = c.verify(&tokens.id_token, &nonce).await.unwrap();
    assert_eq!(claims.sub, "alice");
    assert_eq!(c.keys().kids().await, [Some(p.kid())]);

    // Another rotation within the minute: no second fetch yet.
    p.rotate_key();
    let (tokens, nonce) = tokens_for(&p, &c, "alice").await;
    let err = c.verify(&tokens.id_token, &nonce).await.unwrap_err();
    assert!(
        matches!(&err, OidcError::UnknownKey { kid: Some(k) } if *k == p.kid()),
        "{err:?}"
    );
    // A minute later the unknown kid makes the client fetch the keys again.
    clock.advance(Duration::from_secs(61));
    let claims = c.verify(&tokens.id_token, &nonce).await.unwrap();
    assert_eq!(claims.sub, "alice");
    assert_eq!(c.keys().kids().await, [Some(p.kid())]);
}

#[tokio::test]
async fn a_provider_that_is_down_is_the_unreachable_error() {
    let mut p = OidcProvider::start();
    let c = client(&p).await;
    let a = c.start(&mut rand::rng());
    let callback = p.login(&a.url, "alice").await;
    // Killed mid-flow: between the login and the code exchange.
    p.stop();
    let err = c
        .finish(
            &a.pending,
            &CallbackParams::from_query(callback.query().unwrap()),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, OidcError::Unreachable { .. }), "{err:?}");
    assert_eq!(err.status(), 502);
    // And at start-up.
    let err = client_as(&p, CLIENT_ID, CLIENT_SECRET, Clock::system())
        .await
        .unwrap_err();
    assert!(matches!(err, OidcError::Unreachable { .. }), "{err:?}");
    assert!(!format!("{err:?}{err}").contains(CLIENT_SECRET));
}

// --- the whole flow through latchkey's binary ------------------------------

pub(crate) mod through_latchkey {
    //! "Sign in with Corp SSO" end to end: latchkey's real binary in front
    //! of the echo app (`flow::Stack`), the real provider, and a
    //! cookie-keeping client across the three hosts (app.test, auth.test =
    //! public_url, the provider).

    use std::time::{Duration, Instant};

    use url::Url;

    use crate::flow::{echoed, echoed_header, sign_in, Opts, Stack};
    use crate::support::free_port;
    use crate::support::http::{Browser, Resp};
    use crate::support::oidc::OidcProvider;

    pub(crate) struct Sso {
        pub(crate) provider: OidcProvider,
        pub(crate) stack: Stack,
    }

    impl Sso {
        /// `extra` goes before the provider's table (a `[login]` table, say).
        async fn start(extra: &str) -> Sso {
            let port = free_port();
            let provider = OidcProvider::start_for(&format!(
                "http://auth.test:{port}/.latchkey/oauth/corp/callback"
            ));
            Sso::start_with(provider, port, extra).await
        }

        async fn start_with(provider: OidcProvider, port: u16, extra: &str) -> Sso {
            let config = format!(
                r#"
{extra}

[[login.providers]]
id = "corp"
kind = "oidc"
name = "Corp SSO"
issuer = "{}"
client_id = "latchkey"
client_secret = "latchkey-secret"
scopes = ["openid", "email", "groups"]
roles_claim = "groups"
role_map = {{ ops = ["operator"] }}
"#,
                provider.issuer
            );
            let stack = Stack::start_opts(Opts {
                extra: &config,
                port: Some(port),
                ..Opts::default()
            })
            .await;
            Sso { provider, stack }
        }

        fn port(&self) -> u16 {
            self.stack.lk.port
        }

        /// Waits until the sign-in page's button is a live link (discovery
        /// ran), and returns that page.
        async fn wait_for_button(&self, b: &Browser) -> Resp {
            wait_for_button(&self.stack, b, "corp").await
        }

        /// From the app host's `/start` to the provider's redirect back to
        /// latchkey's callback (not yet fetched): `account` logged in.
        async fn to_callback(&self, b: &Browser, rd: &str, account: &str) -> Url {
            let authorize = to_provider(&self.stack, b, "corp", rd).await;
            assert!(
                authorize.as_str().starts_with(&self.provider.issuer),
                "{authorize}"
            );
            let callback = self.provider.login(&authorize, account).await;
            assert_eq!(callback.host_str(), Some("auth.test"), "{callback}");
            assert_eq!(callback.path(), "/.latchkey/oauth/corp/callback");
            callback
        }

        async fn callback(&self, b: &Browser, callback: &Url) -> Resp {
            callback_at(&self.stack, b, callback).await
        }

        async fn complete(&self, b: &Browser, callback: &Url) -> Resp {
            complete(&self.stack, b, callback).await
        }
    }

    /// Waits until the sign-in page's button for provider `id` is a live
    /// link (discovery ran), and returns that page.
    pub(crate) async fn wait_for_button(stack: &Stack, b: &Browser, id: &str) -> Resp {
        let deadline = Instant::now() + Duration::from_secs(20);
        let href = format!("href=\"/.latchkey/oauth/{id}/start");
        loop {
            let page = b.get("/.latchkey/login?rd=%2F", &[]).await;
            assert_eq!(page.status, 200, "{}", page.body);
            if page.body.contains(&href) {
                return page;
            }
            assert!(
                Instant::now() < deadline,
                "the button of {id} never became available:\n{}\n{}",
                page.body,
                stack.lk.log()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// public_url's `host:port` in a stack.
    pub(crate) fn public_host(stack: &Stack) -> String {
        format!("auth.test:{}", stack.lk.port)
    }

    /// From the app host's `/start` of provider `id` to the authorization
    /// URL at the provider (not yet fetched).
    pub(crate) async fn to_provider(stack: &Stack, b: &Browser, id: &str, rd: &str) -> Url {
        wait_for_button(stack, b, id).await;
        let rd_q: String = form_urlencoded::byte_serialize(rd.as_bytes()).collect();
        let start = b
            .get(&format!("/.latchkey/oauth/{id}/start?rd={rd_q}"), &[])
            .await;
        assert_eq!(start.status, 302, "start on the app host: {}", start.body);
        let there = Url::parse(start.header("location").unwrap()).unwrap();
        assert_eq!(there.host_str(), Some("auth.test"), "{there}");
        let public = b
            .get(&target_of(&there), &[("Host", &public_host(stack))])
            .await;
        assert_eq!(public.status, 302, "start at public_url: {}", public.body);
        Url::parse(public.header("location").unwrap()).unwrap()
    }

    /// Fetches the callback in `b` on public_url's host.
    pub(crate) async fn callback_at(stack: &Stack, b: &Browser, callback: &Url) -> Resp {
        b.get(&target_of(callback), &[("Host", &public_host(stack))])
            .await
    }

    /// The callback, then the handoff to the app host: the answer that
    /// sends the browser to the return address.
    pub(crate) async fn complete(stack: &Stack, b: &Browser, callback: &Url) -> Resp {
        let back = callback_at(stack, b, callback).await;
        assert_eq!(back.status, 303, "callback: {}", back.body);
        let handoff = Url::parse(back.header("location").unwrap()).unwrap();
        assert_eq!(handoff.host_str(), Some("app.test"), "{handoff}");
        b.get(&target_of(&handoff), &[]).await
    }

    pub(crate) fn target_of(url: &Url) -> String {
        match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        }
    }

    pub(crate) fn has_session(b: &Browser) -> bool {
        b.cookie("latchkey_session").is_some()
    }

    #[tokio::test]
    async fn sign_in_with_the_provider_on_an_app_host_ends_on_the_return_url_signed_in() {
        let keys = crate::support::temp_dir();
        let key =
            crate::assertion::write_key(keys.path(), "k1", latchkey::identity::keys::Alg::Es256);
        let sso = Sso::start(&crate::assertion::assertion_toml(&[("k1", &key)], "")).await;
        let b = sso.stack.browser();
        let page = sso.wait_for_button(&b).await;
        // The button sits above the email form and works without JavaScript.
        let button = page.body.find("Sign in with Corp SSO").unwrap();
        assert!(button < page.body.find("name=\"email\"").unwrap());
        let rd = format!("http://app.test:{}/reports/q3?x=1", sso.port());
        let callback = sso.to_callback(&b, &rd, "alice").await;
        let done = sso.complete(&b, &callback).await;
        assert_eq!(done.status, 303, "handoff: {}", done.body);
        assert_eq!(done.header("location"), Some(rd.as_str()));
        assert!(has_session(&b));
        let seen = echoed(
            &b.get("/reports/q3?x=1", &[("Accept", "application/json")])
                .await,
        );
        assert_eq!(
            echoed_header(&seen, "x-auth-email"),
            vec!["alice@example.com"]
        );
        // [[users]] roles, plus role_map of the `groups` claim (ops -> operator).
        let roles = echoed_header(&seen, "x-auth-roles").join(",");
        for want in ["admin", "member", "operator"] {
            assert!(roles.split(',').any(|r| r == want), "{want} in {roles}");
        }
        let me = b
            .get("/.latchkey/me", &[("Accept", "application/json")])
            .await;
        assert_eq!(me.json()["amr"], "oidc:corp", "{}", me.body);
        assert!(me.json()["user"]["roles"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r == "operator"));
    }

    #[tokio::test]
    async fn an_unverified_email_is_refused_with_a_403_page_and_no_session() {
        let sso = Sso::start("").await;
        for account in ["bob", "carol"] {
            let b = sso.stack.browser();
            let callback = sso.to_callback(&b, "/", account).await;
            let back = sso.callback(&b, &callback).await;
            assert_eq!(back.status, 403, "{account}: {}", back.body);
            assert!(back.body.contains("not verified"), "{}", back.body);
            assert!(!has_session(&b), "{account} got a session");
        }
        let log = sso.stack.lk.log();
        assert!(log.contains("unverified_email"), "{log}");
        assert!(
            !log.contains("latchkey-secret"),
            "the client secret was logged"
        );
    }

    #[tokio::test]
    async fn the_signup_policy_applies_and_link_and_provider_are_one_user() {
        // Closed (the stack's default): dave is verified but no user.
        let sso = Sso::start("").await;
        let b = sso.stack.browser();
        let callback = sso.to_callback(&b, "/", "dave").await;
        let back = sso.callback(&b, &callback).await;
        assert_eq!(back.status, 403, "{}", back.body);
        assert!(!has_session(&b));
        drop(sso);

        let sso =
            Sso::start("[login]\nsignup = \"domains\"\nallowed_domains = [\"elsewhere.test\"]")
                .await;
        let b = sso.stack.browser();
        let callback = sso.to_callback(&b, "/", "dave").await;
        let done = sso.complete(&b, &callback).await;
        assert_eq!(done.status, 303, "{}", done.body);
        let me = b
            .get("/.latchkey/me", &[("Accept", "application/json")])
            .await;
        let by_provider = me.json();
        assert_eq!(by_provider["user"]["email"], "dave@elsewhere.test");
        assert_eq!(by_provider["user"]["roles"], serde_json::json!(["member"]));
        // The same address by email link: the same user id.
        let b2 = sso.stack.browser();
        sign_in(&sso.stack, &b2, "dave@elsewhere.test").await;
        let me2 = b2
            .get("/.latchkey/me", &[("Accept", "application/json")])
            .await;
        assert_eq!(me2.json()["user"]["id"], by_provider["user"]["id"]);
        assert_eq!(me2.json()["amr"], "email");
    }

    #[tokio::test]
    async fn a_callback_works_once_and_only_in_the_browser_that_started() {
        let sso = Sso::start("").await;
        let b = sso.stack.browser();
        let callback = sso.to_callback(&b, "/", "alice").await;
        // Another browser with the same URL: refused, nothing used up.
        let other = sso.stack.browser();
        let stolen = sso.callback(&other, &callback).await;
        assert_eq!(stolen.status, 400, "{}", stolen.body);
        assert!(stolen.body.contains("another browser"), "{}", stolen.body);
        assert!(!has_session(&other));
        // A forged state in the right browser: refused (and used up).
        let mut forged = callback.clone();
        let pairs: Vec<(String, String)> = callback
            .query_pairs()
            .map(|(k, v)| {
                let v = if k == "state" {
                    "x".repeat(43)
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        forged.query_pairs_mut().clear().extend_pairs(pairs);
        let oauth = b.cookie("latchkey_oauth").unwrap();
        let r = sso.callback(&b, &forged).await;
        assert_eq!(r.status, 400, "{}", r.body);
        assert!(!has_session(&b));
        // The real one, again with the same cookie: the state is used up.
        b.set_cookie("latchkey_oauth", &oauth);
        let replay = sso.callback(&b, &callback).await;
        assert_eq!(replay.status, 400, "{}", replay.body);
        assert!(!has_session(&b));
        // A fresh start in this browser works.
        let callback = sso.to_callback(&b, "/", "alice").await;
        let done = sso.complete(&b, &callback).await;
        assert_eq!(done.status, 303, "{}", done.body);
        // ... once.
        b.set_cookie("latchkey_oauth", &oauth);
        let again = sso.callback(&b, &callback).await;
        assert_eq!(again.status, 400, "{}", again.body);
    }

    #[tokio::test]
    async fn a_provider_error_parameter_gets_a_clear_page_and_no_session() {
        let sso = Sso::start("").await;
        let b = sso.stack.browser();
        let callback = sso.to_callback(&b, "/", "alice").await;
        let mut refused = callback.clone();
        let pairs: Vec<(String, String)> = callback
            .query_pairs()
            .filter(|(k, _)| k != "code")
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .chain([("error".to_owned(), "access_denied".to_owned())])
            .collect();
        refused.query_pairs_mut().clear().extend_pairs(pairs);
        let back = sso.callback(&b, &refused).await;
        assert_eq!(back.status, 403, "{}", back.body);
        assert!(back.body.contains("did not sign you in"), "{}", back.body);
        assert!(!has_session(&b));
        assert!(sso.stack.lk.log().contains("provider_refused"));
    }

    #[tokio::test]
    async fn login_email_false_hides_the_email_form_and_keeps_the_buttons() {
        let sso = Sso::start("[login]\nemail = false").await;
        let b = sso.stack.browser();
        let page = sso.wait_for_button(&b).await;
        assert!(!page.body.contains("name=\"email\""), "{}", page.body);
        let csrf = b.cookie("latchkey_csrf").unwrap_or_default();
        let post = b
            .post_form(
                "/.latchkey/login",
                &[("email", "alice@example.com"), ("csrf", &csrf), ("rd", "/")],
                &[],
            )
            .await;
        assert_eq!(post.status, 404, "{}", post.body);
    }

    #[tokio::test]
    async fn a_provider_killed_mid_flow_gets_a_502_page_and_no_session() {
        let mut sso = Sso::start("").await;
        let b = sso.stack.browser();
        let callback = sso.to_callback(&b, "/", "alice").await;
        sso.provider.stop();
        let back = sso.callback(&b, &callback).await;
        assert_eq!(back.status, 502, "{}", back.body);
        assert!(back.body.contains("provider"), "{}", back.body);
        assert!(!has_session(&b));
        let metrics = sso.stack.lk.log();
        assert!(metrics.contains("unreachable"), "{metrics}");
    }

    #[tokio::test]
    async fn a_provider_down_at_start_up_is_unavailable_until_discovery_succeeds() {
        let port = free_port();
        let mut provider = OidcProvider::start_for(&format!(
            "http://auth.test:{port}/.latchkey/oauth/corp/callback"
        ));
        provider.stop();
        let sso = Sso::start_with(provider, port, "").await;
        let b = sso.stack.browser();
        let page = b.get("/.latchkey/login", &[]).await;
        assert_eq!(page.status, 200, "latchkey serves: {}", page.body);
        assert!(page.body.contains("unavailable right now"), "{}", page.body);
        assert!(!page.body.contains("href=\"/.latchkey/oauth/corp/start"));
        let start = b.get("/.latchkey/oauth/corp/start?rd=%2F", &[]).await;
        assert_eq!(start.status, 502, "{}", start.body);
        assert!(start.body.contains("unavailable"), "{}", start.body);
        let mut sso = sso;
        sso.provider.restart();
        let callback = sso.to_callback(&b, "/", "alice").await;
        let done = sso.complete(&b, &callback).await;
        assert_eq!(done.status, 303, "{}", done.body);
    }
}
