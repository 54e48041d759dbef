//! Store faults under load (issue 16, item 5), against the real binary and
//! real Redis topologies: a bounded, paced load of signed-in requests
//! (`support::load`, several sessions, 127.0.0.1 only) while Redis is
//! killed and restarted with persistence on, while a Sentinel master is
//! killed, and while a master of a Cluster with replicas (3 + 3) is
//! killed. Every request is accounted for: a 200, or a 503 inside the
//! fault's window; never a sign-out (401), never a request left without an
//! answer. Each test prints its counts and the measured window
//! (`MEASURED ...`; run with `--nocapture` to see them).

use std::time::{Duration, Instant};

use crate::flow::{sign_in, Opts, Stack};
use crate::support::http::Browser;
use crate::support::load::{Load, Outcome, Record, Target};
use crate::support::redis::RedisServer;
use crate::support::redis_ha::{cli, current_master, serving_masters, Cluster, SentinelSetup};

/// Each worker waits this long after each request: a few hundred requests
/// a second at most, so a few thousand last through a failover.
const PACE: Duration = Duration::from_millis(10);
/// The load's bound.
const TOTAL: usize = 6000;
/// Once the fault is over, the load runs this much longer.
const AFTER: Duration = Duration::from_secs(2);

/// Signs in `n` people, each their own session (so the sessions spread
/// over a cluster's masters).
async fn signed_in(stack: &Stack, n: usize) -> Vec<Browser> {
    let mut out = Vec::new();
    for i in 0..n {
        let b = stack.browser();
        let who = if i % 2 == 0 { "bob" } else { "alice" };
        sign_in(stack, &b, &format!("{who}@example.com")).await;
        out.push(b);
    }
    out
}

/// A paced load of `GET /reports` over every browser's session.
fn load(stack: &Stack, browsers: &[Browser]) -> Load {
    let host = stack.host();
    let targets = browsers
        .iter()
        .map(|b| {
            let cookie = format!("latchkey_session={}", b.cookie("latchkey_session").unwrap());
            Target::new(
                &host,
                "/reports",
                &[("cookie", &cookie), ("accept", "application/json")],
            )
        })
        .collect();
    Load::start_paced(stack.lk.addr, 4, TOTAL, targets, PACE)
}

/// Waits (off the runtime's threads, `check` runs redis-cli) until
/// `settled`, or panics after 60 s; returns when.
async fn wait_settled(what: &str, settled: impl Fn() -> bool + Send + 'static) -> Instant {
    let what = what.to_owned();
    tokio::task::spawn_blocking(move || {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !settled() {
            assert!(Instant::now() < deadline, "{what}: not settled within 60 s");
            std::thread::sleep(Duration::from_millis(20));
        }
        Instant::now()
    })
    .await
    .unwrap()
}

/// What the records say of a fault at `fault`, over by `back`.
struct Window {
    total: usize,
    failed: usize,
    /// First failed request sent, last one ended, after the fault.
    span: Option<(Duration, Duration)>,
    /// The last failed request's end after `back`, if it ended later.
    after_back: Option<Duration>,
}

/// Checks every record is a 200 or a 503 (no sign-out, nothing
/// unanswered), no 503 before the fault and the last 100 requests all
/// 200; measures the window of failures.
fn window(what: &str, records: &[Record], fault: Instant, back: Instant) -> Window {
    let (mut failed, mut first, mut last) = (0, None, None);
    for r in records {
        match &r.outcome {
            Outcome::Answered(200, _) => {}
            Outcome::Answered(503, _) => {
                assert!(
                    r.ended_at >= fault,
                    "{what}: a 503 before the fault: {:?}",
                    r.outcome
                );
                failed += 1;
                first = Some(first.map_or(r.sent_at, |f: Instant| f.min(r.sent_at)));
                last = Some(last.map_or(r.ended_at, |l: Instant| l.max(r.ended_at)));
            }
            Outcome::Answered(401, body) => panic!("{what}: signed out: {body}"),
            other => panic!("{what}: neither 200 nor 503: {other:?}"),
        }
    }
    let mut by_end: Vec<&Record> = records.iter().collect();
    by_end.sort_by_key(|r| r.ended_at);
    let tail: Vec<_> = by_end.iter().rev().take(100).collect();
    assert!(
        tail.len() == 100
            && tail
                .iter()
                .all(|r| matches!(r.outcome, Outcome::Answered(200, _))),
        "{what}: the load ends in 100 successes"
    );
    Window {
        total: records.len(),
        failed,
        span: first
            .zip(last)
            .map(|(f, l)| (f.saturating_duration_since(fault), l - fault)),
        after_back: last.map(|l| l.saturating_duration_since(back)),
    }
}

impl Window {
    fn line(&self, what: &str, back_label: &str, back: Duration) -> String {
        let span = match self.span {
            Some((a, b)) => format!(
                "503s from +{} ms to +{} ms after the fault ({} ms), the last one {} ms after {back_label}",
                a.as_millis(),
                b.as_millis(),
                (b - a).as_millis(),
                self.after_back.unwrap_or_default().as_millis()
            ),
            None => "no failures".into(),
        };
        let line = format!(
            "{what}: {} requests, {} × 503, the rest 200, none signed out; {span}; {back_label} at +{} ms",
            self.total,
            self.failed,
            back.as_millis()
        );
        eprintln!("MEASURED {line}");
        line
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_and_restarted_under_load_with_persistence_signs_nobody_out() {
    let mut redis = RedisServer::start_persistent();
    let toml = format!("[redis]\nurl = \"{}\"", redis.url());
    let stack = Stack::start_opts(Opts {
        redis_toml: Some(&toml),
        ..Opts::default()
    })
    .await;
    let browsers = signed_in(&stack, 4).await;
    let load = load(&stack, &browsers);
    load.wait_answered(200).await;

    let fault = Instant::now();
    redis.stop();
    // Down long enough for every session to be asked for.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let redis = tokio::task::spawn_blocking(move || {
        redis.start_again();
        redis
    })
    .await
    .unwrap();
    let back = Instant::now(); // it accepts connections again
    tokio::time::sleep(AFTER).await;
    let records = load.stop().await;
    drop(redis);

    let what = "redis killed and restarted (appendfsync always)";
    let w = window(what, &records, fault, back);
    w.line(what, "accepting connections again", back - fault);
    assert!(w.failed > 0, "{what}: no 503 while Redis was down?");
    // None 100 ms after Redis accepts connections again.
    let late = records
        .iter()
        .filter(|r| r.sent_at >= back + Duration::from_millis(100))
        .filter(|r| !matches!(r.outcome, Outcome::Answered(200, _)))
        .count();
    assert_eq!(late, 0, "{what}: requests failed after Redis was back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinel_master_killed_under_load_fails_only_inside_the_failover() {
    let mut setup = SentinelSetup::start();
    let stack = Stack::start_opts(Opts {
        redis_toml: Some(&setup.toml()),
        ..Opts::default()
    })
    .await;
    let browsers = signed_in(&stack, 4).await;
    setup.sync();
    let load = load(&stack, &browsers);
    load.wait_answered(200).await;

    let fault = Instant::now();
    setup.kill_master();
    let (sentinel, replica) = (setup.sentinel_port, setup.replica_port);
    let promoted = wait_settled("sentinel failover", move || {
        current_master(sentinel) == replica
    })
    .await;
    tokio::time::sleep(AFTER).await;
    let records = load.stop().await;

    let what = "sentinel, master killed under load";
    let w = window(what, &records, fault, promoted);
    w.line(what, "the sentinel names the new master", promoted - fault);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_master_killed_under_load_fails_only_inside_the_failover() {
    let mut cluster = Cluster::start_with_replicas(1);
    let stack = Stack::start_opts(Opts {
        redis_toml: Some(&cluster.toml()),
        ..Opts::default()
    })
    .await;
    let browsers = signed_in(&stack, 8).await;
    // Let the replicas take the sign-ins.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let survivor = cluster.ports[0];
    let masters = serving_masters(survivor);
    assert_eq!(masters.len(), 3, "three masters: {masters:?}");
    let keys = cluster.keys_per_node();
    let victim = *masters
        .iter()
        .filter(|&&m| m != survivor)
        .max_by_key(|&&m| keys[cluster.ports.iter().position(|&p| p == m).unwrap()])
        .unwrap();
    let load = load(&stack, &browsers);
    load.wait_answered(200).await;

    let fault = Instant::now();
    cluster.kill(victim);
    let settled = wait_settled("cluster failover", move || {
        let serving = serving_masters(survivor);
        serving.len() == 3 && !serving.contains(&victim)
    })
    .await;
    let ok = wait_settled("cluster state ok", move || {
        cli(survivor, &["cluster", "info"]).contains("cluster_state:ok")
    })
    .await;
    let settled = settled.max(ok);
    tokio::time::sleep(AFTER).await;
    let records = load.stop().await;

    let what = "cluster (3 masters + 3 replicas), a master killed under load";
    let w = window(what, &records, fault, settled);
    w.line(what, "a replica serves its slots", settled - fault);
}
