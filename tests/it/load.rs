//! Faults under load (issue 16, item 5), against the real binary: a bounded
//! load (`support::load`: a few kept-alive connections, a few thousand
//! requests, 127.0.0.1 only) while latchkey is sent SIGHUP every 100 ms
//! with valid and broken files alternating, while it is sent SIGTERM, and
//! while one of its upstreams is killed. Each test prints its counts.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Request;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::flow::start_echo;
use crate::support::latchkey::Latchkey;
use crate::support::load::{tally, Load, Outcome};

/// latchkey in front of `app` at `app.test` and `other` at `other.test`
/// (`/public/**` public on both), with latchkey's own pages at
/// `auth.test`; `extra` goes in `[server]`, `tail` at the end.
fn config(port: u16, app: SocketAddr, other: SocketAddr, extra: &str, tail: &str) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:{port}"
public_url = "http://auth.test:{port}"
{extra}

[[apps]]
host = "app.test"
upstream = "http://{app}"

[[apps]]
host = "other.test"
upstream = "http://{other}"

[[apps]]
host = "auth.test"

[[rules]]
path = "/public/**"
policy = "public"
{tail}
"#
    )
}

/// Writes `text` to `path` in one step, so a reload never reads half a file.
fn write_atomically(path: &std::path::Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_every_100ms_under_load_fails_no_request() {
    let echo = start_echo().await;
    let make = |port: u16, tail: &str| config(port, echo, echo, "", tail);
    let lk = Latchkey::start(|port| make(port, ""));
    // Two valid files (a rule and [mail] differ, so each reload builds a new
    // mail queue and retires the last) and a broken one between them.
    let variants = [
        "[[rules]]\npath = \"/a/**\"\npolicy = \"public\"\n[mail]\nfrom = \"A <a@example.com>\"\n",
        "[[rules]]\npath = \"/a/**\"\npolicy = \"sometimes\"\n",
        "[[rules]]\npath = \"/b/**\"\npolicy = \"public\"\n[mail]\nfrom = \"B <b@example.com>\"\n",
        "[session]\nidle_timeout = \"soon\"\n",
    ];
    let total = 3000;
    let load = Load::start(
        lk.addr,
        4,
        total,
        &[
            ("app.test", "/public/load"),
            ("auth.test", "/.latchkey/login"),
        ],
    );
    let mut signals = 0;
    while load.answered() < total {
        write_atomically(&lk.config_path(), &make(lk.port, variants[signals % 4]));
        lk.signal("HUP");
        signals += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let records = load.finish().await;
    let log = lk.log();
    let applied = log.matches("config reloaded").count();
    let refused = log.matches("config reload refused").count();
    let (by_status, no_response, cut) = tally(&records);
    println!(
        "SIGHUP every 100 ms: {} requests ({by_status:?}), {no_response} without a response, \
         {cut} cut; {signals} signals: {applied} reloads applied, {refused} refused",
        records.len()
    );
    assert_eq!(records.len(), total);
    assert_eq!(by_status.get(&200), Some(&total), "{by_status:?}");
    assert!(
        applied >= 2 && refused >= 2,
        "{applied} applied, {refused} refused"
    );
}

/// An upstream that answers every request after `delay`, counting the
/// requests that arrived and those it answered.
async fn counting_upstream(delay: Duration) -> (SocketAddr, Arc<AtomicUsize>, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let arrived = Arc::new(AtomicUsize::new(0));
    let answered = Arc::new(AtomicUsize::new(0));
    let (a, b) = (arrived.clone(), answered.clone());
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (a, b) = (a.clone(), b.clone());
            tokio::spawn(async move {
                let svc = service_fn(move |_req: Request<hyper::body::Incoming>| {
                    let (a, b) = (a.clone(), b.clone());
                    async move {
                        a.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(delay).await;
                        b.fetch_add(1, Ordering::SeqCst);
                        Ok::<_, std::convert::Infallible>(http::Response::new(
                            http_body_util::Full::new(Bytes::from_static(b"slow answer")),
                        ))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    (addr, arrived, answered)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_completes_in_flight_requests_and_exits_0() {
    let (slow, arrived, done) = counting_upstream(Duration::from_millis(50)).await;
    let grace = Duration::from_secs(10);
    let mut lk = Latchkey::start(|port| config(port, slow, slow, "shutdown_grace = \"10s\"", ""));
    let load = Load::start(lk.addr, 4, 5000, &[("app.test", "/public/slow")]);
    load.wait_answered(200).await;
    load.mark();
    lk.signal("TERM");
    let signalled = Instant::now();
    let in_flight = arrived.load(Ordering::SeqCst) - done.load(Ordering::SeqCst);
    let status = lk
        .wait_exit(grace + Duration::from_secs(5))
        .unwrap_or_else(|| panic!("latchkey did not exit within the grace:\n{}", lk.log()));
    let exited_after = signalled.elapsed();
    let refused = load.refused.clone();
    let records = load.finish().await;
    assert_eq!(status.code(), Some(0), "{}", lk.log());

    let (by_status, no_response, cut) = tally(&records);
    let forwarded = arrived.load(Ordering::SeqCst);
    println!(
        "SIGTERM under load: {in_flight} requests in flight at the signal; {} sent \
         ({by_status:?}), {no_response} sent after it without a response (the connection \
         was closing), {cut} cut, {} connections refused; {forwarded} reached the app; \
         exit 0 {exited_after:?} after the signal",
        records.len(),
        refused.load(Ordering::SeqCst)
    );
    assert!(in_flight > 0, "nothing was in flight at the signal");
    assert_eq!(cut, 0, "a response was cut off");
    assert_eq!(by_status.keys().copied().collect::<Vec<_>>(), [200]);
    // Every request latchkey took on was answered, to the end.
    assert_eq!(by_status[&200], forwarded, "{:?}", records.len());
    for r in &records {
        if let Outcome::NoResponse(e) = &r.outcome {
            assert!(r.after_mark, "a request failed before SIGTERM: {e}");
        }
    }
}

/// An app that can be killed: its listener and every connection go at
/// once, as when its process dies.
async fn killable_echo() -> (SocketAddr, tokio::task::AbortHandle) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let mut conns = tokio::task::JoinSet::new();
        while let Ok((stream, _)) = listener.accept().await {
            conns.spawn(async move {
                let svc = service_fn(|req: Request<hyper::body::Incoming>| async move {
                    Ok::<_, std::convert::Infallible>(http::Response::new(
                        http_body_util::Full::new(Bytes::from(format!("app {}", req.uri()))),
                    ))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
            while conns.try_join_next().is_some() {}
        }
    });
    (addr, task.abort_handle())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_an_upstream_under_load_gives_502s_for_it_and_disturbs_nothing_else() {
    let (doomed, kill) = killable_echo().await;
    let echo = start_echo().await;
    let lk = Latchkey::start(|port| config(port, doomed, echo, "", ""));
    let total = 3000;
    let load = Load::start(
        lk.addr,
        4,
        total,
        &[
            ("app.test", "/public/doomed"),
            ("other.test", "/public/fine"),
            ("auth.test", "/.latchkey/login"),
        ],
    );
    load.wait_answered(total / 3).await;
    load.mark();
    kill.abort();
    let records = load.finish().await;
    assert_eq!(records.len(), total);

    let (mut before, mut after_200, mut after_502, mut others) = (0, 0, 0, 0);
    for r in &records {
        match (&r.outcome, r.target) {
            (Outcome::Answered(200, body), 0) if body.starts_with("app /public/doomed") => {
                if r.after_mark {
                    after_200 += 1;
                } else {
                    before += 1;
                }
            }
            (Outcome::Answered(502, body), 0) => {
                assert!(
                    r.ended_after_mark,
                    "a 502 before the app was killed: {body}"
                );
                after_502 += 1;
            }
            (Outcome::Answered(200, _), 1 | 2) => others += 1,
            (outcome, target) => panic!("request to target {target}: {outcome:?}"),
        }
    }
    println!(
        "upstream killed under load: its requests {before} × 200 before, then {after_200} × 200 \
         (in flight at the kill) and {after_502} × 502; the other app and latchkey's pages \
         {others} × 200; {total} requests, none failed otherwise"
    );
    assert!(after_502 > 0, "no 502 after the kill");
    assert_eq!(others, records.iter().filter(|r| r.target != 0).count());
}
