//! Sign-in with providers beyond oidc.rs's one OpenID provider, each
//! through latchkey's real binary with a cookie-keeping client across the
//! hosts: GitHub (OAuth 2, no ID token) against a stand-in for github.com
//! (support/github.rs); an OpenID provider and GitHub on one instance; a
//! key rotation at the provider; a slow provider; and no secret in the log
//! at the most verbose level.

use std::collections::HashMap;

use url::Url;

use crate::flow::{echoed, echoed_header, sign_in, Opts, Stack};
use crate::oidc::through_latchkey::{
    callback_at, complete, has_session, target_of, to_provider, wait_for_button,
};
use crate::support::free_port;
use crate::support::github::{self, GitHubStandIn};
use crate::support::http::{send, Browser, Resp};
use crate::support::oidc::{OidcProvider, CLIENT_SECRET};

fn callback_uri(port: u16, id: &str) -> String {
    format!("http://auth.test:{port}/.latchkey/oauth/{id}/callback")
}

fn corp_toml(p: &OidcProvider) -> String {
    format!(
        r#"
[[login.providers]]
id = "corp"
kind = "oidc"
name = "Corp SSO"
issuer = "{}"
client_id = "latchkey"
client_secret = "{CLIENT_SECRET}"
scopes = ["openid", "email"]
"#,
        p.issuer
    )
}

fn github_toml(gh: &GitHubStandIn) -> String {
    format!(
        r#"
[[login.providers]]
id = "gh"
kind = "github"
enterprise_url = "{}"
client_id = "{}"
client_secret = "{}"
allowed_orgs = ["Example-Org"]
roles_claim = "orgs"
role_map = {{ other-org = ["operator"] }}
"#,
        gh.url(),
        github::CLIENT_ID,
        github::CLIENT_SECRET
    )
}

async fn stack(port: u16, config: &str, env: &[(&str, &str)]) -> Stack {
    Stack::start_opts(Opts {
        extra: config,
        port: Some(port),
        env,
        ..Opts::default()
    })
    .await
}

/// The person at "github.com": the stand-in sends the browser straight
/// back (logged in, consenting); returns latchkey's callback URL.
async fn at_github(gh: &GitHubStandIn, authorize: &Url) -> Url {
    let resp = Browser::new(gh.addr).get(&target_of(authorize), &[]).await;
    assert_eq!(resp.status, 302, "authorize: {}", resp.body);
    let callback = Url::parse(resp.header("location").unwrap()).unwrap();
    assert_eq!(callback.path(), "/.latchkey/oauth/gh/callback");
    callback
}

async fn me(b: &Browser) -> serde_json::Value {
    let me = b
        .get("/.latchkey/me", &[("Accept", "application/json")])
        .await;
    assert_eq!(me.status, 200, "{}", me.body);
    me.json()
}

/// GitHub from the app host to the callback, as `account`.
async fn github_to_callback(s: &Stack, gh: &GitHubStandIn, b: &Browser, rd: &str) -> Url {
    let authorize = to_provider(s, b, "gh", rd).await;
    assert!(authorize.as_str().starts_with(&gh.url()), "{authorize}");
    at_github(gh, &authorize).await
}

#[tokio::test]
async fn github_signs_in_the_verified_primary_address_on_the_exact_return_url() {
    let gh = GitHubStandIn::start().await;
    let port = free_port();
    gh.register(&callback_uri(port, "gh"));
    let s = stack(port, &github_toml(&gh), &[]).await;
    let b = s.browser();
    let page = wait_for_button(&s, &b, "gh").await;
    assert!(page.body.contains("Sign in with GitHub"), "{}", page.body);

    let rd = format!("http://app.test:{port}/reports/q3?x=1");
    let callback = github_to_callback(&s, &gh, &b, &rd).await;
    // What latchkey asked GitHub for: the documented authorize parameters.
    let q: HashMap<String, String> = gh.last_authorization();
    assert_eq!(q["client_id"], github::CLIENT_ID);
    assert_eq!(q["redirect_uri"], callback_uri(port, "gh"));
    assert_eq!(q["scope"], "read:user user:email read:org");
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["state"].len(), 43, "{q:?}");
    assert!(!q.contains_key("nonce"), "GitHub has no ID token: {q:?}");

    let done = complete(&s, &b, &callback).await;
    assert_eq!(done.status, 303, "handoff: {}", done.body);
    assert_eq!(done.header("location"), Some(rd.as_str()));
    let seen = echoed(
        &b.get("/reports/q3?x=1", &[("Accept", "application/json")])
            .await,
    );
    // The primary, verified address (normalized); not the unverified one.
    assert_eq!(
        echoed_header(&seen, "x-auth-email"),
        vec!["alice@example.com"]
    );
    let roles = echoed_header(&seen, "x-auth-roles").join(",");
    for want in ["admin", "member", "operator"] {
        assert!(roles.split(',').any(|r| r == want), "{want} in {roles}");
    }
    let by_github = me(&b).await;
    assert_eq!(by_github["amr"], "oidc:gh", "{by_github}");
    // The same address by email link: the same user.
    let b2 = s.browser();
    sign_in(&s, &b2, "alice@example.com").await;
    assert_eq!(me(&b2).await["user"]["id"], by_github["user"]["id"]);
}

#[tokio::test]
async fn github_refuses_an_unverified_primary_an_outsider_and_a_forged_code() {
    let gh = GitHubStandIn::start().await;
    let port = free_port();
    gh.register(&callback_uri(port, "gh"));
    let admin = format!("127.0.0.1:{}", free_port());
    let env = [("LATCHKEY_SERVER__ADMIN_LISTEN", admin.as_str())];
    let s = stack(port, &github_toml(&gh), &env).await;
    crate::support::wait_for_port(admin.parse().unwrap(), "latchkey's admin listener");
    let cases: [(&str, u16, &str); 2] = [
        ("unverified", 403, "not verified"),
        ("outsider", 403, "organization"),
    ];
    for (account, status, says) in cases {
        gh.set_account(account);
        let b = s.browser();
        let callback = github_to_callback(&s, &gh, &b, "/").await;
        let back = callback_at(&s, &b, &callback).await;
        assert_eq!(back.status, status, "{account}: {}", back.body);
        assert!(back.body.contains(says), "{account}: {}", back.body);
        assert!(!has_session(&b), "{account} got a session");
    }
    // A code GitHub never issued, in the browser whose state it carries:
    // GitHub answers 200 with an error; latchkey shows a 502 page.
    gh.set_account("octo");
    let b = s.browser();
    let callback = github_to_callback(&s, &gh, &b, "/").await;
    let mut forged = callback.clone();
    let pairs: Vec<(String, String)> = callback
        .query_pairs()
        .map(|(k, v)| match &*k {
            "code" => (k.into_owned(), "forged-code".to_owned()),
            _ => (k.into_owned(), v.into_owned()),
        })
        .collect();
    forged.query_pairs_mut().clear().extend_pairs(pairs);
    let back = callback_at(&s, &b, &forged).await;
    assert_eq!(back.status, 502, "{}", back.body);
    assert!(!has_session(&b));
    let log = s.lk.log();
    for reason in ["unverified_email", "org_not_allowed", "token_refused"] {
        assert!(log.contains(reason), "{reason} not logged:\n{log}");
    }
    // And one count each for ops.
    let metrics = send(admin.parse().unwrap(), "GET", "/metrics", &[], b"").await;
    for reason in ["unverified_email", "refused", "provider"] {
        let line = format!("latchkey_sign_ins_failed_total{{reason=\"{reason}\"}} 1");
        assert!(metrics.body.contains(&line), "{line}:\n{}", metrics.body);
    }
}

/// A person in more organizations than one page holds: the allowed one
/// (and the role it maps to) is on the second page.
#[tokio::test]
async fn github_organizations_are_read_past_the_first_page() {
    let gh = GitHubStandIn::start().await;
    let port = free_port();
    gh.register(&callback_uri(port, "gh"));
    let config = github_toml(&gh)
        .replace(r#"["Example-Org"]"#, r#"["org-142"]"#)
        .replace("other-org", "org-149");
    let s = stack(port, &config, &[]).await;
    gh.set_account("joiner");
    let b = s.browser();
    wait_for_button(&s, &b, "gh").await;
    let rd = format!("http://app.test:{port}/");
    let callback = github_to_callback(&s, &gh, &b, &rd).await;
    let done = complete(&s, &b, &callback).await;
    assert_eq!(done.status, 303, "{}", done.body);
    let seen = echoed(&b.get("/", &[("Accept", "application/json")]).await);
    assert_eq!(
        echoed_header(&seen, "x-auth-email"),
        vec!["bob@example.com"]
    );
    let roles = echoed_header(&seen, "x-auth-roles").join(",");
    assert!(roles.split(',').any(|r| r == "operator"), "{roles}");
}

#[tokio::test]
async fn an_openid_provider_and_github_on_one_instance_are_one_user() {
    let gh = GitHubStandIn::start().await;
    let port = free_port();
    let corp = OidcProvider::start_for(&callback_uri(port, "corp"));
    gh.register(&callback_uri(port, "gh"));
    let config = format!("{}{}", corp_toml(&corp), github_toml(&gh));
    let s = stack(port, &config, &[]).await;

    let b1 = s.browser();
    wait_for_button(&s, &b1, "corp").await;
    let page = wait_for_button(&s, &b1, "gh").await;
    // Both buttons, in the config's order, above the email form.
    let corp_at = page.body.find("Sign in with Corp SSO").unwrap();
    let gh_at = page.body.find("Sign in with GitHub").unwrap();
    let email_at = page.body.find("name=\"email\"").unwrap();
    assert!(corp_at < gh_at && gh_at < email_at, "{}", page.body);

    // Corp's answer delivered to GitHub's callback (a mix-up between the
    // two): the pending sign-in is Corp's, so it is refused and used up.
    let b0 = s.browser();
    let authorize = to_provider(&s, &b0, "corp", "/").await;
    let callback = corp.login(&authorize, "alice").await;
    let mut crossed = callback.clone();
    crossed.set_path("/.latchkey/oauth/gh/callback");
    let r = callback_at(&s, &b0, &crossed).await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(!has_session(&b0));

    let authorize = to_provider(&s, &b1, "corp", "/").await;
    let callback = corp.login(&authorize, "alice").await;
    let done = complete(&s, &b1, &callback).await;
    assert_eq!(done.status, 303, "{}", done.body);
    let by_corp = me(&b1).await;
    assert_eq!(by_corp["amr"], "oidc:corp");

    let b2 = s.browser();
    let callback = github_to_callback(&s, &gh, &b2, "/").await;
    let done = complete(&s, &b2, &callback).await;
    assert_eq!(done.status, 303, "{}", done.body);
    let by_github = me(&b2).await;
    assert_eq!(by_github["amr"], "oidc:gh");

    let b3 = s.browser();
    sign_in(&s, &b3, "alice@example.com").await;
    let by_link = me(&b3).await;
    assert_eq!(by_link["amr"], "email");
    assert_eq!(by_corp["user"]["id"], by_link["user"]["id"]);
    assert_eq!(by_github["user"]["id"], by_link["user"]["id"]);
}

async fn corp_sign_in(s: &Stack, corp: &OidcProvider) -> Resp {
    let b = s.browser();
    let authorize = to_provider(s, &b, "corp", "/").await;
    let callback = corp.login(&authorize, "alice").await;
    let done = complete(s, &b, &callback).await;
    assert!(
        done.status != 303 || has_session(&b),
        "a 303 without a session"
    );
    done
}

#[tokio::test]
async fn a_key_rotation_at_the_provider_is_followed_by_latchkey() {
    let port = free_port();
    let mut corp = OidcProvider::start_for(&callback_uri(port, "corp"));
    let s = stack(port, &corp_toml(&corp), &[]).await;
    let done = corp_sign_in(&s, &corp).await;
    assert_eq!(done.status, 303, "{}", done.body);
    // The provider restarts with a new key: the old kid is gone.
    let old = corp.kid();
    corp.rotate_key();
    assert_ne!(corp.kid(), old);
    let done = corp_sign_in(&s, &corp).await;
    assert_eq!(done.status, 303, "after the rotation: {}", done.body);
    let log = s.lk.log();
    assert!(
        log.contains("unknown key id; fetching the provider's keys again"),
        "{log}"
    );
}

#[tokio::test]
async fn a_slow_provider_gets_a_504_page_and_no_session() {
    let port = free_port();
    let corp = OidcProvider::start_for(&callback_uri(port, "corp"));
    let config = format!("[login]\nprovider_timeout = \"1s\"\n{}", corp_toml(&corp));
    let s = stack(port, &config, &[]).await;
    let b = s.browser();
    let authorize = to_provider(&s, &b, "corp", "/").await;
    let callback = corp.login(&authorize, "alice").await;
    // Frozen between the login and the code exchange: it accepts, never answers.
    corp.pause();
    let back = callback_at(&s, &b, &callback).await;
    corp.resume();
    assert_eq!(back.status, 504, "{}", back.body);
    assert!(
        back.body.contains("did not answer in time"),
        "{}",
        back.body
    );
    assert!(!has_session(&b));
    let log = s.lk.log();
    assert!(
        log.contains("reason=\"timeout\"") || log.contains("reason=timeout"),
        "{log}"
    );
}

#[tokio::test]
async fn no_client_secret_code_or_token_reaches_the_log_even_at_trace_level() {
    let gh = GitHubStandIn::start().await;
    let port = free_port();
    let corp = OidcProvider::start_for(&callback_uri(port, "corp"));
    gh.register(&callback_uri(port, "gh"));
    let config = format!("{}{}", corp_toml(&corp), github_toml(&gh));
    let s = stack(port, &config, &[("LATCHKEY_LOG", "trace")]).await;
    let mut secrets: Vec<String> = vec![CLIENT_SECRET.into(), github::CLIENT_SECRET.into()];

    // A sign-in with each, and a failed one (the provider's error=).
    let b = s.browser();
    let authorize = to_provider(&s, &b, "corp", "/").await;
    let callback = corp.login(&authorize, "alice").await;
    let oauth_cookie = b.cookie("latchkey_oauth").unwrap();
    assert_eq!(complete(&s, &b, &callback).await.status, 303);
    secrets.extend(
        callback
            .query_pairs()
            .filter(|(k, _)| k == "code" || k == "state")
            .map(|(_, v)| v.into_owned()),
    );
    secrets.push(oauth_cookie);
    secrets.push(b.cookie("latchkey_session").unwrap());

    let b2 = s.browser();
    let callback = github_to_callback(&s, &gh, &b2, "/").await;
    assert_eq!(complete(&s, &b2, &callback).await.status, 303);
    secrets.extend(gh.issued());
    secrets.push(b2.cookie("latchkey_session").unwrap());

    let b3 = s.browser();
    let callback = github_to_callback(&s, &gh, &b3, "/").await;
    let mut refused = callback.clone();
    refused
        .query_pairs_mut()
        .append_pair("error", "access_denied");
    assert_eq!(callback_at(&s, &b3, &refused).await.status, 403);

    let log = s.lk.log();
    // (latchkey itself logs nothing at TRACE; its dependencies do.)
    assert!(log.contains("TRACE"), "not verbose:\n{log}");
    assert!(log.contains("signed in with a provider"), "{log}");
    for secret in &secrets {
        assert!(secret.len() >= 12, "{secret:?} is too short to search for");
        assert!(
            !log.contains(secret.as_str()),
            "{secret:?} is in latchkey's log"
        );
    }
}

/// The value of hidden input `name` in a page.
fn hidden(page: &str, name: &str) -> Option<String> {
    let at = page.find(&format!("name=\"{name}\""))?;
    let tail = &page[at..];
    let v = tail.find("value=\"")? + 7;
    Some(tail[v..v + tail[v..].find('"')?].to_owned())
}

#[tokio::test]
async fn logout_of_a_provider_session_also_ends_it_at_the_provider_and_comes_back() {
    let port = free_port();
    let corp = OidcProvider::start_for(&callback_uri(port, "corp"));
    let gh = GitHubStandIn::start().await;
    gh.register(&callback_uri(port, "gh"));
    let config = format!("{}logout = true\n{}", corp_toml(&corp), github_toml(&gh));
    let s = stack(port, &config, &[]).await;
    let b = s.browser();
    let authorize = to_provider(&s, &b, "corp", "/").await;
    let callback = corp.login(&authorize, "alice").await;
    assert_eq!(complete(&s, &b, &callback).await.status, 303);

    let confirm = b.get("/.latchkey/logout", &[]).await;
    let csrf = crate::flow::csrf_of(&confirm.body);
    let out = b
        .post_form("/.latchkey/logout", &[("csrf", &csrf)], &[])
        .await;
    assert_eq!(out.status, 303, "{}", out.body);
    assert!(!has_session(&b), "the session cookie is cleared");
    let end = Url::parse(out.header("location").unwrap()).unwrap();
    assert!(
        end.as_str()
            .starts_with(&format!("{}/session/end", corp.issuer)),
        "{end}"
    );
    let q: HashMap<String, String> = end.query_pairs().into_owned().collect();
    let back = format!("http://auth.test:{port}/.latchkey/signed-out");
    assert_eq!(q["client_id"], "latchkey");
    assert_eq!(q["post_logout_redirect_uri"], back);
    // The session is gone at latchkey already.
    let me = b
        .get("/.latchkey/me", &[("Accept", "application/json")])
        .await;
    assert_eq!(me.status, 401, "{}", me.body);

    // At the provider: its "sign out?" form, then back to latchkey.
    let at = Browser::new(corp.addr());
    let page = at.get(&target_of(&end), &[]).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let xsrf = hidden(&page.body, "xsrf").expect("the provider's logout form");
    let done = at
        .post_form(
            "/session/end/confirm",
            &[("xsrf", &xsrf), ("logout", "yes")],
            &[],
        )
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    let to = done.header("location").unwrap();
    assert!(to.starts_with(&back), "{to}");
    let signed_out = b
        .get(
            &target_of(&Url::parse(to).unwrap()),
            &[("Host", &format!("auth.test:{port}"))],
        )
        .await;
    assert_eq!(signed_out.status, 200, "{}", signed_out.body);
    assert!(
        signed_out.body.contains("You are signed out"),
        "{}",
        signed_out.body
    );

    // A GitHub session (no logout at GitHub) ends at latchkey only.
    let b2 = s.browser();
    let callback = github_to_callback(&s, &gh, &b2, "/").await;
    assert_eq!(complete(&s, &b2, &callback).await.status, 303);
    let confirm = b2.get("/.latchkey/logout", &[]).await;
    let csrf = crate::flow::csrf_of(&confirm.body);
    let out = b2
        .post_form("/.latchkey/logout", &[("csrf", &csrf)], &[])
        .await;
    assert_eq!(out.status, 200, "{}", out.body);
    assert!(out.body.contains("You are signed out"), "{}", out.body);
}
