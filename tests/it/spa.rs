//! What a front end relies on: `/.latchkey/me` (who, which roles, until
//! when; each call slides the session) and landing on the role's page after
//! signing in without a return address.

use std::time::{Duration, SystemTime};

use crate::flow::{link_token, open_link, request_link, sign_in, Stack};

fn me_expiry(me: &serde_json::Value) -> SystemTime {
    let at = me["expires_at"].as_str().expect("expires_at");
    humantime::parse_rfc3339(at).unwrap_or_else(|e| panic!("{at:?}: {e}"))
}

#[tokio::test]
async fn me_says_who_and_until_when_and_slides_the_session() {
    // Idle ends move in steps of 1% of idle_timeout (`store::slide_step`): 1 s.
    let stack = Stack::start("[session]\nidle_timeout = \"100s\"\n").await;
    let b = stack.browser();
    let json = [("Accept", "application/json")];
    let anonymous = b.get("/.latchkey/me", &json).await;
    assert_eq!(anonymous.status, 401);
    assert_eq!(
        anonymous.json(),
        serde_json::json!({ "authenticated": false })
    );

    sign_in(&stack, &b, "alice@example.com").await;
    let first = b.get("/.latchkey/me", &json).await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(first.header("cache-control"), Some("no-store"));
    let first = first.json();
    assert_eq!(first["authenticated"], true);
    assert_eq!(first["user"]["email"], "alice@example.com");
    assert_eq!(
        first["user"]["roles"],
        serde_json::json!(["admin", "member"])
    );
    let until = me_expiry(&first)
        .duration_since(SystemTime::now())
        .unwrap_or_default();
    assert!(
        until > Duration::from_secs(95) && until <= Duration::from_secs(100),
        "the idle end, 100 s out: {first}"
    );

    tokio::time::sleep(Duration::from_millis(1500)).await;
    let second = b.get("/.latchkey/me", &json).await.json();
    assert!(
        me_expiry(&second) > me_expiry(&first),
        "a call after the slide step slides the idle end: {first} then {second}"
    );
}

#[tokio::test]
async fn without_a_return_address_each_role_lands_on_its_page() {
    let stack =
        Stack::start("\n[login]\nlanding = { member = \"/members\", admin = \"/admin/home\" }\n")
            .await;
    // alice is admin then member: her first role with a page wins.
    for (email, page) in [
        ("alice@example.com", "/admin/home"),
        ("bob@example.com", "/members"),
    ] {
        let b = stack.browser();
        let sent = request_link(&b, email, "").await;
        assert_eq!(sent.status, 200, "{}", sent.body);
        let mail = stack.smtp.wait_for(email, Duration::from_secs(10)).await;
        let done = open_link(&b, &link_token(&mail.text)).await;
        assert_eq!(done.status, 303, "{}", done.body);
        assert_eq!(done.header("location"), Some(page), "{email}");
    }
    // A return address still wins over the landing page.
    let b = stack.browser();
    request_link(&b, "bob@example.com", "/reports").await;
    let mail = stack
        .smtp
        .wait_for("bob@example.com", Duration::from_secs(10))
        .await;
    let done = open_link(&b, &link_token(&mail.text)).await;
    assert_eq!(done.header("location"), Some("/reports"));
}
