//! Redis for real deployments, against real servers: Sentinel failovers
//! (measured from the client's side), a 3-master Cluster with keys spread
//! over its nodes, and TLS (`rediss://`) with a CA file.

use std::time::{Duration, Instant};

use crate::flow::{sign_in, Stack};
use crate::support::http::{send, Browser};
use crate::support::latchkey::binary;
use crate::support::redis_ha::{cli, current_master, Cluster, SentinelSetup, TlsRedis};

const JSON: (&str, &str) = ("accept", "application/json");

/// Authenticated requests every 50 ms from `disrupt` on, until the
/// topology has `settled` and 40 in a row succeeded after that; asserts no
/// failure signs anyone out and returns a one-line summary.
async fn through_failover(
    stack: &Stack,
    b: &Browser,
    what: &str,
    disrupt: impl FnOnce(),
    settled: impl Fn() -> bool,
) -> String {
    let cookie = format!("latchkey_session={}", b.cookie("latchkey_session").unwrap());
    let host = stack.host();
    let started = Instant::now();
    disrupt();
    let (mut total, mut failed, mut streak) = (0u32, 0u32, 0u32);
    let (mut first_fail, mut last_fail) = (None, None);
    let mut statuses = std::collections::BTreeMap::new();
    let deadline = started + Duration::from_secs(60);
    let mut settled_at = None;
    while streak < 40 || settled_at.is_none() {
        assert!(
            Instant::now() < deadline,
            "{what}: no recovery within 60s ({failed} of {total} failed: {statuses:?})\n{}",
            stack.lk.log()
        );
        let at = started.elapsed();
        if settled_at.is_none() && settled() {
            settled_at = Some(at);
            streak = 0;
        }
        let r = send(
            stack.lk.addr,
            "GET",
            "/reports",
            &[("host", &host), ("cookie", &cookie), JSON],
            b"",
        )
        .await;
        total += 1;
        if r.status == 200 {
            streak += 1;
        } else {
            streak = 0;
            failed += 1;
            *statuses.entry(r.status).or_insert(0u32) += 1;
            first_fail.get_or_insert(at);
            last_fail = Some(at);
            assert_ne!(r.status, 401, "{what}: a store failure must never sign out");
            assert!(
                r.set_cookies().is_empty(),
                "{what}: cookie left alone: {:?}",
                r.set_cookies()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let window = match (first_fail, last_fail) {
        (Some(a), Some(b)) => format!(
            "failures from +{} ms to +{} ms ({} ms)",
            a.as_millis(),
            b.as_millis(),
            (b - a).as_millis()
        ),
        _ => "no failures".into(),
    };
    let line = format!(
        "{what}: {total} requests every 50 ms, {failed} failed {statuses:?}, {window}; settled at +{} ms",
        settled_at.unwrap_or_default().as_millis()
    );
    eprintln!("MEASURED {line}");
    line
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinel_master_killed_failover() {
    let mut setup = SentinelSetup::start();
    let stack = Stack::start_opts(crate::flow::Opts {
        redis_toml: Some(&setup.toml()),
        ..Default::default()
    })
    .await;
    let b = stack.browser();
    sign_in(&stack, &b, "bob@example.com").await;
    assert_eq!(b.get("/reports", &[JSON]).await.status, 200);
    setup.sync();
    let replica = setup.replica_port;
    let sentinel = setup.sentinel_port;
    through_failover(
        &stack,
        &b,
        "sentinel, master killed",
        || setup.kill_master(),
        || current_master(sentinel) == replica,
    )
    .await;
    // Writes work on the new master: a new sign-in.
    let alice = stack.browser();
    sign_in(&stack, &alice, "alice@example.com").await;
    assert_eq!(alice.get("/admin/x", &[JSON]).await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinel_commanded_failover() {
    let setup = SentinelSetup::start();
    let stack = Stack::start_opts(crate::flow::Opts {
        redis_toml: Some(&setup.toml()),
        ..Default::default()
    })
    .await;
    let b = stack.browser();
    sign_in(&stack, &b, "bob@example.com").await;
    setup.sync();
    let port = setup.sentinel_port;
    let old = setup.master_port;
    through_failover(
        &stack,
        &b,
        "sentinel, SENTINEL FAILOVER",
        || {
            let ok = cli(port, &["sentinel", "failover", "mymaster"]);
            assert_eq!(ok.trim(), "OK", "{ok}");
        },
        // The replica promoted and the old master demoted to a replica.
        || current_master(port) != old && cli(old, &["role"]).starts_with("slave"),
    )
    .await;
    assert_eq!(current_master(port), setup.replica_port);
    // The old master is a replica now: latchkey writes to the new one.
    let alice = stack.browser();
    sign_in(&stack, &alice, "alice@example.com").await;
    assert_eq!(alice.get("/admin/x", &[JSON]).await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_signs_in_and_spreads_keys_over_the_masters() {
    let cluster = Cluster::start();
    let stack = Stack::start_opts(crate::flow::Opts {
        redis_toml: Some(&cluster.toml()),
        ..Default::default()
    })
    .await;
    let (alice, bob, bob2) = (stack.browser(), stack.browser(), stack.browser());
    sign_in(&stack, &alice, "alice@example.com").await;
    sign_in(&stack, &bob, "bob@example.com").await;
    sign_in(&stack, &bob2, "bob@example.com").await;
    assert_eq!(alice.get("/admin/x", &[JSON]).await.status, 200);
    assert_eq!(bob.get("/admin/x", &[JSON]).await.status, 403);
    assert_eq!(bob.get("/reports", &[JSON]).await.status, 200);

    let per_node = cluster.keys_per_node();
    eprintln!("MEASURED cluster keys per master: {per_node:?}");
    assert!(
        per_node.iter().filter(|&&n| n > 0).count() >= 2,
        "keys on several masters: {per_node:?}"
    );

    // The admin CLI works against the cluster too.
    let dir = crate::support::temp_dir();
    let config = dir.path().join("latchkey.toml");
    std::fs::write(&config, cluster.toml()).unwrap();
    let run = |args: &[&str]| {
        let out = std::process::Command::new(binary())
            .args(args)
            .arg("--config")
            .arg(&config)
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let listed = run(&["sessions", "list", "--user", "bob@example.com"]);
    assert_eq!(
        listed
            .lines()
            .filter(|l| l.contains("bob@example.com"))
            .count(),
        2,
        "{listed}"
    );
    let ended = run(&["sessions", "revoke", "--user", "bob@example.com"]);
    assert!(ended.contains("ended 2 session"), "{ended}");
    assert_eq!(bob.get("/reports", &[JSON]).await.status, 401);
    assert_eq!(bob2.get("/reports", &[JSON]).await.status, 401);
    assert_eq!(alice.get("/reports", &[JSON]).await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rediss_with_a_ca_file_and_refused_without() {
    let tls = TlsRedis::start();
    let url = format!("rediss://127.0.0.1:{}/0", tls.port);
    let trusted = format!(
        "[redis]\nurl = \"{url}\"\nca_file = \"{}\"",
        tls.ca_file.display()
    );
    let stack = Stack::start_opts(crate::flow::Opts {
        redis_toml: Some(&trusted),
        ..Default::default()
    })
    .await;
    let b = stack.browser();
    sign_in(&stack, &b, "bob@example.com").await;
    assert_eq!(b.get("/reports", &[JSON]).await.status, 200);

    // The system's roots do not know the test CA: the certificate is refused.
    let untrusted = Stack::start_opts(crate::flow::Opts {
        redis_toml: Some(&format!("[redis]\nurl = \"{url}\"")),
        ..Default::default()
    })
    .await;
    let b = untrusted.browser();
    b.set_cookie("latchkey_session", &"A".repeat(43));
    assert_eq!(b.get("/reports", &[JSON]).await.status, 503);
    let log = untrusted.lk.log();
    assert!(
        log.to_lowercase().contains("certificate"),
        "the log says why: {log}"
    );
}
