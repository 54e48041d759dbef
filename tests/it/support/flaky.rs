//! An HTTP/1.1 upstream that closes kept-alive connections on purpose, for
//! the pooling tests: written by hand over tokio (no HTTP library between
//! the test and the bytes), so a test decides exactly when a connection
//! closes and counts what arrived. Every request is answered `200 ok`
//! unless the behaviour says to close instead; each `POST` carries an
//! `X-Test-Id`, and the upstream counts how often each id arrived (whether
//! it answered or not), so a test can tell a POST sent twice. It can be
//! restarted: the new one takes over the listening socket (as nginx's
//! reload or systemd's socket activation hand it on, so no connection is
//! refused), the old one closing its idle kept-alive connections at once
//! and the busy ones after their response, as a graceful restart does.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

/// What the upstream does to its connections.
#[derive(Debug, Clone, Copy, Default)]
pub struct Behaviour {
    /// Out of 100: how often a request that arrives on a connection that
    /// already carried one is read to its end and then not answered, the
    /// connection closed (the upstream's keep-alive timer firing as the
    /// request arrives).
    pub drop_reused_percent: u32,
    /// Answer every Nth request of a connection with `Connection: close`
    /// and then keep the socket open, reading, for a while: a request that
    /// arrives on it all the same is a violation (counted, not answered).
    pub close_every: Option<usize>,
    /// Say `Keep-Alive: timeout=N` (whole seconds) on every response, and
    /// hold to it: a request that arrives on a connection idle longer than
    /// that is read and not answered, the connection closed (counted in
    /// `dropped` and `late`).
    pub keep_alive: Option<std::time::Duration>,
}

/// What arrived, over every incarnation of the upstream.
#[derive(Debug, Default)]
pub struct Counts {
    pub requests: AtomicUsize,
    pub answered: AtomicUsize,
    /// Requests read and not answered (the connection closed instead).
    pub dropped: AtomicUsize,
    pub dropped_posts: AtomicUsize,
    pub connections: AtomicUsize,
    /// Requests that arrived on a connection after its `Connection: close`.
    pub after_close: AtomicUsize,
    /// Requests that arrived on a connection idle past `keep_alive`.
    pub late: AtomicUsize,
    /// How often each POST's `X-Test-Id` arrived.
    pub posts: Mutex<HashMap<String, usize>>,
}

/// A running upstream; dropping it stops it (every connection closed).
pub struct Flaky {
    pub addr: SocketAddr,
    pub counts: Arc<Counts>,
    behaviour: Behaviour,
    stop: watch::Sender<bool>,
    /// The accept loop; it gives the listener back when stopped.
    accept: tokio::task::JoinHandle<TcpListener>,
    /// The connections' tasks.
    tasks: Arc<Mutex<JoinSet<()>>>,
}

impl Flaky {
    pub async fn start(behaviour: Behaviour) -> Flaky {
        let counts = Arc::new(Counts::default());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        Flaky::serve_on(listener, behaviour, counts)
    }

    fn serve_on(listener: TcpListener, behaviour: Behaviour, counts: Arc<Counts>) -> Flaky {
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = watch::channel(false);
        let tasks = Arc::new(Mutex::new(JoinSet::new()));
        let accept = accept_loop(listener, behaviour, counts.clone(), stopped, tasks.clone());
        let accept = tokio::spawn(accept);
        Flaky {
            addr,
            counts,
            behaviour,
            stop,
            accept,
            tasks,
        }
    }

    /// A new upstream takes over the listening socket; this one closes
    /// its idle connections at once and each busy one after its response.
    pub async fn restart(mut self) -> Flaky {
        let _ = self.stop.send(true);
        let listener = (&mut self.accept).await.unwrap();
        let next = Flaky::serve_on(listener, self.behaviour, self.counts.clone());
        let mut tasks = std::mem::take(&mut *self.tasks.lock().unwrap());
        while tasks.join_next().await.is_some() {}
        next
    }

    /// How often each POST id arrived.
    pub fn post_counts(&self) -> HashMap<String, usize> {
        self.counts.posts.lock().unwrap().clone()
    }
}

impl Drop for Flaky {
    fn drop(&mut self) {
        self.accept.abort();
        if let Ok(mut tasks) = self.tasks.lock() {
            tasks.abort_all();
        }
    }
}

async fn accept_loop(
    listener: TcpListener,
    behaviour: Behaviour,
    counts: Arc<Counts>,
    mut stopped: watch::Receiver<bool>,
    tasks: Arc<Mutex<JoinSet<()>>>,
) -> TcpListener {
    let for_conns = stopped.clone();
    loop {
        tokio::select! {
            _ = stopped.wait_for(|s| *s) => return listener,
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                counts.connections.fetch_add(1, Ordering::Relaxed);
                let conn = serve(stream, behaviour, counts.clone(), for_conns.clone());
                tasks.lock().unwrap().spawn(conn);
            }
        }
    }
}

/// One request head and body as read: method, `X-Test-Id`.
struct Head {
    method: String,
    id: Option<String>,
}

/// Reads one request (head, and a `Content-Length` body) from `buf` +
/// `stream`; `None` at EOF or on a broken stream.
async fn read_request(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<Head> {
    let end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let mut chunk = [0u8; 4096];
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let method = lines.next()?.split(' ').next()?.to_owned();
    let mut length = 0usize;
    let mut id = None;
    for line in lines {
        if let Some((name, value)) = line.split_once(':') {
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                length = value.parse().ok()?;
            } else if name.eq_ignore_ascii_case("x-test-id") {
                id = Some(value.to_owned());
            }
        }
    }
    while buf.len() < end + length {
        let mut chunk = [0u8; 4096];
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    buf.drain(..end + length);
    Some(Head { method, id })
}

async fn serve(
    mut stream: TcpStream,
    behaviour: Behaviour,
    counts: Arc<Counts>,
    mut stopped: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let mut buf = Vec::new();
    let mut served = 0usize;
    let mut answered_at = tokio::time::Instant::now();
    loop {
        // Idle between requests: a restart closes the connection now (a
        // new one serves its first request).
        if buf.is_empty() && served > 0 {
            tokio::select! {
                _ = stopped.wait_for(|s| *s) => return,
                r = stream.readable() => if r.is_err() { return },
            }
        }
        let Some(head) = read_request(&mut stream, &mut buf).await else {
            return;
        };
        counts.requests.fetch_add(1, Ordering::Relaxed);
        if head.method == "POST" {
            let id = head.id.clone().unwrap_or_default();
            *counts.posts.lock().unwrap().entry(id).or_default() += 1;
        }
        served += 1;
        let late = behaviour
            .keep_alive
            .is_some_and(|k| served > 1 && answered_at.elapsed() > k);
        if late {
            counts.late.fetch_add(1, Ordering::Relaxed);
        }
        if late || served > 1 && rand::random_range(0..100) < behaviour.drop_reused_percent {
            counts.dropped.fetch_add(1, Ordering::Relaxed);
            if head.method == "POST" {
                counts.dropped_posts.fetch_add(1, Ordering::Relaxed);
            }
            return;
        }
        let close = behaviour
            .close_every
            .is_some_and(|n| served.is_multiple_of(n));
        let response = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n{}{}\r\nok\n",
            if close { "Connection: close\r\n" } else { "" },
            match behaviour.keep_alive {
                Some(k) => format!("Keep-Alive: timeout={}\r\n", k.as_secs()),
                None => String::new(),
            }
        );
        if stream.write_all(response.as_bytes()).await.is_err() {
            return;
        }
        answered_at = tokio::time::Instant::now();
        counts.answered.fetch_add(1, Ordering::Relaxed);
        if close {
            // Keep the socket open a while: whatever arrives now is a
            // request sent on a connection the upstream said it closes.
            let linger = tokio::time::sleep(std::time::Duration::from_millis(200));
            tokio::select! {
                () = linger => {}
                got = read_request(&mut stream, &mut buf) => {
                    if got.is_some() {
                        counts.after_close.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            return;
        }
        if *stopped.borrow() {
            return;
        }
    }
}
