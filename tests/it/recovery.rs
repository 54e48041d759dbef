//! Recovery without a failed request: after Redis stops and comes back
//! (empty, no persistence), the very first requests that need it succeed,
//! whether the outage was quiet (nobody noticed) or busy (requests got
//! their 503 while it lasted). The real binary on a real redis-server.

use std::time::Duration;

use crate::flow::{echoed, request_link, sign_in, Stack};
use crate::support::http::Browser;

const JSON: (&str, &str) = ("accept", "application/json");

/// Redis is back and accepts connections (`restart` waits for that);
/// 100 ms later the first sign-in POST and the first signed-in GET work.
async fn first_requests_succeed(stack: &Stack, b: &Browser, email: &str) {
    tokio::time::sleep(Duration::from_millis(100)).await;
    let sent = request_link(b, email, "/").await;
    assert_eq!(sent.status, 200, "the first sign-in POST: {}", sent.body);
    let mail = stack.smtp.wait_for(email, Duration::from_secs(10)).await;
    let done = crate::flow::open_link(b, &crate::flow::link_token(&mail.text)).await;
    assert_eq!(done.status, 303, "verify: {}", done.body);
    echoed(&b.get("/reports", &[JSON]).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quiet_redis_restart_fails_no_request() {
    let mut stack = Stack::start("").await;
    let b = stack.browser();
    sign_in(&stack, &b, "alice@example.com").await;
    echoed(&b.get("/reports", &[JSON]).await);

    for round in 0..3 {
        let redis = stack.redis.as_mut().expect("the stack's redis");
        redis.restart();
        let b = stack.browser();
        let email = if round % 2 == 0 {
            "bob@example.com"
        } else {
            "alice@example.com"
        };
        first_requests_succeed(&stack, &b, email).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_busy_outage_the_first_request_back_succeeds() {
    let mut stack = Stack::start("").await;
    let b = stack.browser();
    sign_in(&stack, &b, "alice@example.com").await;

    let redis = stack.redis.as_mut().expect("the stack's redis");
    redis.stop();
    for _ in 0..5 {
        assert_eq!(b.get("/reports", &[JSON]).await.status, 503, "fails closed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stack.redis.as_mut().expect("the stack's redis").restart();
    let fresh = stack.browser();
    first_requests_succeed(&stack, &fresh, "bob@example.com").await;
}
