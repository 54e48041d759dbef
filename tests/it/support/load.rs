//! A bounded load generator for the fault tests: a few kept-alive HTTP/1.1
//! connections to 127.0.0.1 that together send at most a given number of
//! requests, then stop. Every request's outcome is recorded (status, or how
//! it failed, and whether it was sent before or after a moment the test
//! marks), so a test can say exactly which requests failed and why. A
//! connection that closes is opened again; one that cannot be opened ends
//! its worker (the server has stopped listening). Targets may carry
//! headers (a session cookie), workers may pause between requests (so a
//! few thousand requests last through a failover), and each record keeps
//! when its request was sent and ended.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// How one request ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A whole response: its status and body.
    Answered(u16, String),
    /// Sent, and the connection closed (or failed) before a response head.
    NoResponse(String),
    /// The head arrived, the body did not finish.
    BodyCut(u16, String),
}

/// One request: which target it went to (index into the targets), how it
/// ended, and whether the test's mark was set when it was sent and when it
/// ended.
#[derive(Debug, Clone)]
pub struct Record {
    pub target: usize,
    pub outcome: Outcome,
    pub after_mark: bool,
    pub ended_after_mark: bool,
    pub sent_at: Instant,
    pub ended_at: Instant,
}

/// One kind of request: `GET path` with `Host: host` and `headers`.
#[derive(Debug, Clone)]
pub struct Target {
    pub host: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
}

impl Target {
    pub fn new(host: &str, path: &str, headers: &[(&str, &str)]) -> Target {
        Target {
            host: host.to_owned(),
            path: path.to_owned(),
            headers: headers
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }
}

/// What a running load shares with the test.
pub struct Load {
    records: Arc<Mutex<Vec<Record>>>,
    answered: Arc<AtomicUsize>,
    mark: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    workers: Vec<tokio::task::JoinHandle<()>>,
    /// Connections that could not be opened (each ends a worker).
    pub refused: Arc<AtomicUsize>,
}

impl Load {
    /// Starts `connections` workers sending up to `total` GETs to `addr`,
    /// request `i` going to `targets[i % targets.len()]` (`(host, path)`).
    pub fn start(
        addr: SocketAddr,
        connections: usize,
        total: usize,
        targets: &[(&str, &str)],
    ) -> Load {
        let targets = targets
            .iter()
            .map(|(h, p)| Target::new(h, p, &[]))
            .collect();
        Load::start_paced(addr, connections, total, targets, Duration::ZERO)
    }

    /// Like `start`, with headers per target, each worker waiting `pace`
    /// after each request.
    pub fn start_paced(
        addr: SocketAddr,
        connections: usize,
        total: usize,
        targets: Vec<Target>,
        pace: Duration,
    ) -> Load {
        let targets = Arc::new(targets);
        let next = Arc::new(AtomicUsize::new(0));
        let records = Arc::new(Mutex::new(Vec::new()));
        let answered = Arc::new(AtomicUsize::new(0));
        let mark = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let refused = Arc::new(AtomicUsize::new(0));
        let workers = (0..connections)
            .map(|_| {
                tokio::spawn(worker(
                    addr,
                    total,
                    pace,
                    targets.clone(),
                    next.clone(),
                    records.clone(),
                    answered.clone(),
                    mark.clone(),
                    stop.clone(),
                    refused.clone(),
                ))
            })
            .collect();
        Load {
            records,
            answered,
            mark,
            stop,
            workers,
            refused,
        }
    }

    /// Requests answered so far (any status).
    pub fn answered(&self) -> usize {
        self.answered.load(Ordering::SeqCst)
    }

    /// Waits until `n` requests have been answered (or 60 s pass).
    pub async fn wait_answered(&self, n: usize) {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while self.answered() < n {
            assert!(
                std::time::Instant::now() < deadline,
                "only {} of {n} requests answered in 60 s",
                self.answered()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// From now on, requests sent are recorded as `after_mark`.
    pub fn mark(&self) {
        self.mark.store(true, Ordering::SeqCst);
    }

    /// Sends no more requests (those in flight finish), then `finish`es.
    pub async fn stop(self) -> Vec<Record> {
        self.stop.store(true, Ordering::SeqCst);
        self.finish().await
    }

    /// Waits for every worker to finish and returns every record.
    pub async fn finish(self) -> Vec<Record> {
        for w in self.workers {
            tokio::time::timeout(Duration::from_secs(120), w)
                .await
                .expect("the load finished within 120 s")
                .unwrap();
        }
        let records = self.records.lock().unwrap();
        records.clone()
    }
}

#[allow(clippy::too_many_arguments)]
async fn worker(
    addr: SocketAddr,
    total: usize,
    pace: Duration,
    targets: Arc<Vec<Target>>,
    next: Arc<AtomicUsize>,
    records: Arc<Mutex<Vec<Record>>>,
    answered: Arc<AtomicUsize>,
    mark: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    refused: Arc<AtomicUsize>,
) {
    let mut sender: Option<hyper::client::conn::http1::SendRequest<Empty<Bytes>>> = None;
    loop {
        let i = next.fetch_add(1, Ordering::SeqCst);
        if i >= total || stop.load(Ordering::SeqCst) {
            return;
        }
        if sender.as_ref().is_none_or(|s| s.is_closed()) {
            sender = connect(addr).await;
            if sender.is_none() {
                refused.fetch_add(1, Ordering::SeqCst);
                return;
            }
        }
        let Some(s) = sender.as_mut() else { return };
        let target = i % targets.len();
        let t = &targets[target];
        let mut req = Request::get(t.path.as_str()).header("host", t.host.as_str());
        for (k, v) in &t.headers {
            req = req.header(k.as_str(), v.as_str());
        }
        let req = req.body(Empty::new()).unwrap();
        let after_mark = mark.load(Ordering::SeqCst);
        let sent_at = Instant::now();
        let outcome = match s.ready().await {
            Err(e) => Outcome::NoResponse(e.to_string()),
            Ok(()) => match s.send_request(req).await {
                Err(e) => Outcome::NoResponse(e.to_string()),
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    match tokio::time::timeout(Duration::from_secs(30), resp.into_body().collect())
                        .await
                    {
                        Ok(Ok(body)) => Outcome::Answered(
                            status,
                            String::from_utf8_lossy(&body.to_bytes()).into_owned(),
                        ),
                        Ok(Err(e)) => Outcome::BodyCut(status, e.to_string()),
                        Err(_) => Outcome::BodyCut(status, "no body within 30 s".into()),
                    }
                }
            },
        };
        match &outcome {
            Outcome::Answered(..) => {
                answered.fetch_add(1, Ordering::SeqCst);
            }
            _ => sender = None,
        }
        records.lock().unwrap().push(Record {
            target,
            outcome,
            after_mark,
            ended_after_mark: mark.load(Ordering::SeqCst),
            sent_at,
            ended_at: Instant::now(),
        });
        if !pace.is_zero() {
            tokio::time::sleep(pace).await;
        }
    }
}

async fn connect(
    addr: SocketAddr,
) -> Option<hyper::client::conn::http1::SendRequest<Empty<Bytes>>> {
    let stream = TcpStream::connect(addr).await.ok()?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .ok()?;
    tokio::spawn(conn);
    Some(sender)
}

/// Counts of outcomes: `(answered by status, no response, body cut)`.
pub fn tally(records: &[Record]) -> (std::collections::BTreeMap<u16, usize>, usize, usize) {
    let mut by_status = std::collections::BTreeMap::new();
    let (mut none, mut cut) = (0, 0);
    for r in records {
        match &r.outcome {
            Outcome::Answered(s, _) => *by_status.entry(*s).or_insert(0) += 1,
            Outcome::NoResponse(_) => none += 1,
            Outcome::BodyCut(..) => cut += 1,
        }
    }
    (by_status, none, cut)
}
