//! latchkey's pooled upstream connections closed under load (issue 15,
//! item 3), against the real binary in proxy mode: 8 tasks, each on its own
//! kept-alive connection to latchkey, send GETs and POSTs through it to an
//! upstream that closes pooled connections: at random as requests arrive
//! (`support::flaky`), in graceful restarts, after `Connection: close`, past
//! the keep-alive timeout it announces, and nginx with a keep-alive timeout
//! far shorter than latchkey's. No request
//! may fail that nginx in latchkey's place would not fail: every GET gets
//! its 200, and a POST is never sent twice (the upstream counts each POST's
//! `X-Test-Id`); a POST fails only when the upstream read it and closed
//! without an answer, which nginx does not retry either.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::support::flaky::{Behaviour, Flaky};
use crate::support::latchkey::Latchkey;
use crate::support::{free_port, require_program, temp_dir, wait_for_port, ChildGuard};

const TASKS: usize = 8;

/// latchkey in front of `app` at `app.test`, every path public.
fn config(port: u16, app: SocketAddr) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:{port}"
public_url = "http://auth.test:{port}"

[[apps]]
host = "app.test"
upstream = "http://{app}"

[[rules]]
path = "/**"
policy = "public"
"#
    )
}

/// One request as the client saw it.
#[derive(Debug, Clone)]
struct Sent {
    method: Method,
    id: String,
    /// The status, or how the exchange with latchkey failed.
    outcome: Result<u16, String>,
}

/// How the load goes: requests per task, every how many a POST, and an
/// optional pause before a request (`pause(task, i)`).
struct Plan {
    each: usize,
    post_every: usize,
    pause: fn(usize, usize) -> Option<Duration>,
}

async fn connect(addr: SocketAddr) -> SendRequest<Full<Bytes>> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (send, conn) = http1::handshake(TokioIo::new(tcp)).await.unwrap();
    tokio::spawn(conn);
    send
}

/// Runs the plan: `TASKS` tasks, each on its own connection to latchkey
/// (opened again if latchkey closes it), and returns every request.
async fn hammer(addr: SocketAddr, plan: Plan) -> Vec<Sent> {
    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let (each, post_every, pause) = (plan.each, plan.post_every, plan.pause);
        tasks.push(tokio::spawn(async move {
            let mut conn = connect(addr).await;
            let mut sent = Vec::new();
            for i in 0..each {
                if let Some(d) = pause(t, i) {
                    tokio::time::sleep(d).await;
                }
                let id = format!("t{t}-{i}");
                let post = i % post_every == post_every - 1;
                let method = if post { Method::POST } else { Method::GET };
                let body = if post {
                    format!("payload {id}")
                } else {
                    String::new()
                };
                let req = Request::builder()
                    .method(method.clone())
                    .uri(format!("/item/{i}"))
                    .header("host", "app.test")
                    .header("x-test-id", &id)
                    .body(Full::new(Bytes::from(body)))
                    .unwrap();
                if conn.ready().await.is_err() {
                    conn = connect(addr).await;
                }
                let outcome = match conn.send_request(req).await {
                    Ok(resp) => {
                        let status = resp.status().as_u16();
                        match resp.into_body().collect().await {
                            Ok(_) => Ok(status),
                            Err(e) => Err(format!("body cut: {e}")),
                        }
                    }
                    Err(e) => Err(format!("no response: {e}")),
                };
                sent.push(Sent {
                    method,
                    id,
                    outcome,
                });
            }
            sent
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all
}

/// GETs that did not get their 200, for the failure message.
fn failed_gets(sent: &[Sent]) -> Vec<&Sent> {
    sent.iter()
        .filter(|s| s.method == Method::GET && s.outcome != Ok(200))
        .collect()
}

/// Asserts that every request got its 200.
fn all_answered(sent: &[Sent], lk: &Latchkey) {
    let bad: Vec<_> = sent.iter().filter(|s| s.outcome != Ok(200)).collect();
    assert!(
        bad.is_empty(),
        "{} requests failed: {:?}\n{}",
        bad.len(),
        &bad[..bad.len().min(5)],
        lk.log()
    );
}

/// POST ids the upstream received more than once.
fn twice(posts: &HashMap<String, usize>) -> Vec<(&String, &usize)> {
    posts.iter().filter(|(_, n)| **n > 1).collect()
}

fn no_pause(_: usize, _: usize) -> Option<Duration> {
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_closing_reused_connections_at_random_fails_no_get_and_sends_no_post_twice() {
    let up = Flaky::start(Behaviour {
        drop_reused_percent: 15,
        ..Behaviour::default()
    })
    .await;
    let lk = Latchkey::start(|port| config(port, up.addr));
    let plan = Plan {
        each: 150,
        post_every: 4,
        pause: no_pause,
    };
    let sent = hammer(lk.addr, plan).await;

    let c = &up.counts;
    let dropped = c.dropped.load(Ordering::Relaxed);
    let dropped_posts = c.dropped_posts.load(Ordering::Relaxed);
    assert!(
        dropped - dropped_posts > 0 && dropped_posts > 0,
        "the upstream closed no connection under a GET and a POST ({dropped} dropped, {dropped_posts} POSTs)"
    );
    let bad = failed_gets(&sent);
    assert!(
        bad.is_empty(),
        "{} GETs failed: {:?}\n{}",
        bad.len(),
        &bad[..bad.len().min(5)],
        lk.log()
    );
    let posts = up.post_counts();
    assert!(
        twice(&posts).is_empty(),
        "POSTs sent twice: {:?}",
        twice(&posts)
    );
    // A POST fails only when the upstream read it and closed: a 502, one
    // per POST the upstream dropped; every other POST got its 200.
    let post_502 = sent
        .iter()
        .filter(|s| s.method == Method::POST && s.outcome == Ok(502))
        .count();
    let post_other: Vec<_> = sent
        .iter()
        .filter(|s| s.method == Method::POST && !matches!(s.outcome, Ok(200) | Ok(502)))
        .collect();
    assert!(
        post_other.is_empty(),
        "POSTs neither 200 nor 502: {post_other:?}"
    );
    assert_eq!(
        post_502, dropped_posts,
        "502s for POSTs against POSTs the upstream dropped"
    );
    eprintln!(
        "{} requests, upstream: {} connections, {dropped} requests dropped ({dropped_posts} POSTs)",
        sent.len(),
        c.connections.load(Ordering::Relaxed)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_restarts_under_load_fail_no_request() {
    let mut up = Flaky::start(Behaviour::default()).await;
    let lk = Latchkey::start(|port| config(port, up.addr));
    let addr = lk.addr;
    let load = tokio::spawn(hammer(
        addr,
        Plan {
            each: 400,
            post_every: 5,
            pause: no_pause,
        },
    ));
    let mut restarts = 0;
    while !load.is_finished() && restarts < 20 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        up = up.restart().await;
        restarts += 1;
    }
    let sent = load.await.unwrap();
    assert!(
        restarts >= 3,
        "the load ended before the upstream restarted"
    );

    let bad = failed_gets(&sent);
    assert!(
        bad.is_empty(),
        "{} GETs failed: {:?}\n{}",
        bad.len(),
        &bad[..bad.len().min(5)],
        lk.log()
    );
    // A restart closes only idle connections, before reading what arrives
    // on them: every POST must reach the upstream exactly once.
    let posts = up.post_counts();
    let post_failed: Vec<_> = sent
        .iter()
        .filter(|s| s.method == Method::POST && s.outcome != Ok(200))
        .collect();
    assert!(
        twice(&posts).is_empty(),
        "POSTs sent twice: {:?}",
        twice(&posts)
    );
    for s in sent
        .iter()
        .filter(|s| s.method == Method::POST && s.outcome == Ok(200))
    {
        assert_eq!(posts.get(&s.id), Some(&1), "POST {} answered 200", s.id);
    }
    for s in &post_failed {
        assert_eq!(
            posts.get(&s.id),
            None,
            "POST {} failed ({:?}) after reaching the upstream",
            s.id,
            s.outcome
        );
    }
    eprintln!(
        "{} requests over {restarts} restarts, {} upstream connections, {} POSTs failed unsent",
        sent.len(),
        up.counts.connections.load(Ordering::Relaxed),
        post_failed.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_close_answers_are_honoured_under_load() {
    let up = Flaky::start(Behaviour {
        close_every: Some(3),
        ..Behaviour::default()
    })
    .await;
    let lk = Latchkey::start(|port| config(port, up.addr));
    let sent = hammer(
        lk.addr,
        Plan {
            each: 150,
            post_every: 4,
            pause: no_pause,
        },
    )
    .await;
    all_answered(&sent, &lk);
    let c = &up.counts;
    assert_eq!(
        c.after_close.load(Ordering::Relaxed),
        0,
        "requests sent on a connection after its Connection: close"
    );
    let posts = up.post_counts();
    assert!(
        twice(&posts).is_empty(),
        "POSTs sent twice: {:?}",
        twice(&posts)
    );
    let (n, conns) = (sent.len(), c.connections.load(Ordering::Relaxed));
    assert!(
        conns * 3 >= n,
        "{conns} connections carried {n} requests, 3 at most each"
    );
}

/// A pause of about the upstream's keep-alive timeout (1 s) before every
/// 6th request of a task, staggered so that some land just before it ends
/// and some just after.
fn around_a_second(task: usize, i: usize) -> Option<Duration> {
    (i % 6 == 5).then(|| Duration::from_millis(950 + ((task * 7 + i * 13) % 11) as u64 * 10))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_upstream_with_a_one_second_keepalive_fails_no_request() {
    let nginx = require_program("nginx", &[], "apt-get install nginx");
    let dir = temp_dir();
    let d = dir.path().display().to_string();
    let port = free_port();
    // keepalive_timeout 1s: far shorter than latchkey's 90 s, and no
    // Keep-Alive header to say so; keepalive_requests 5: every 5th
    // response says Connection: close. Every request and its X-Test-Id is
    // logged.
    let conf = format!(
        "daemon off;\nmaster_process off;\nworker_processes 1;\npid {d}/nginx.pid;\n\
         error_log {d}/error.log info;\nevents {{ worker_connections 256; }}\n\
         http {{\n  log_format ids '$request_method $http_x_test_id $status';\n\
         access_log {d}/access.log ids;\n  client_body_temp_path {d}/body;\n\
         proxy_temp_path {d}/proxy;\n  fastcgi_temp_path {d}/fastcgi;\n\
         uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
         keepalive_timeout 1s;\n  keepalive_requests 5;\n\
         server {{\n    listen 127.0.0.1:{port};\n    location / {{ return 200 \"ok\\n\"; }}\n  }}\n}}\n"
    );
    std::fs::write(dir.path().join("nginx.conf"), conf).unwrap();
    let _nginx = ChildGuard::spawn(
        "nginx",
        Command::new(nginx)
            .arg("-p")
            .arg(dir.path())
            .arg("-e")
            .arg(dir.path().join("error.log"))
            .arg("-c")
            .arg(dir.path().join("nginx.conf"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    let up: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    wait_for_port(up, "nginx");
    let lk = Latchkey::start(|port| config(port, up));
    let sent = hammer(
        lk.addr,
        Plan {
            each: 36,
            post_every: 4,
            pause: around_a_second,
        },
    )
    .await;
    all_answered(&sent, &lk);
    // nginx writes its access log line when the request ends: each POST
    // id once.
    let log = std::fs::read_to_string(dir.path().join("access.log")).unwrap();
    let mut posts: HashMap<String, usize> = HashMap::new();
    for line in log.lines().filter(|l| l.starts_with("POST ")) {
        *posts
            .entry(line.split(' ').nth(1).unwrap().to_owned())
            .or_default() += 1;
    }
    assert!(
        twice(&posts).is_empty(),
        "POSTs sent twice: {:?}",
        twice(&posts)
    );
    let want = sent.iter().filter(|s| s.method == Method::POST).count();
    assert_eq!(posts.len(), want, "every POST reached nginx");
}

/// A pause longer than the upstream's announced keep-alive (1 s) before
/// every 5th request of a task.
fn past_a_second(task: usize, i: usize) -> Option<Duration> {
    (i % 5 == 4).then(|| Duration::from_millis(1100 + (task as u64 % 4) * 50))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_announced_keep_alive_timeout_is_honoured() {
    // The upstream says `Keep-Alive: timeout=1` and drops whatever comes
    // on a connection idle longer: latchkey must not send there at all
    // (a POST there would fail, and no retry could save it).
    let up = Flaky::start(Behaviour {
        keep_alive: Some(Duration::from_secs(1)),
        ..Behaviour::default()
    })
    .await;
    let lk = Latchkey::start(|port| config(port, up.addr));
    let sent = hammer(
        lk.addr,
        Plan {
            each: 25,
            post_every: 2,
            pause: past_a_second,
        },
    )
    .await;
    let late = up.counts.late.load(Ordering::Relaxed);
    assert_eq!(
        late, 0,
        "requests sent on connections idle past the upstream's keep-alive"
    );
    all_answered(&sent, &lk);
}
