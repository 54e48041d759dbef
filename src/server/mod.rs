//! Listeners: accepts TCP connections, terminates TLS when `[server.tls]` is
//! set, serves HTTP/1.1 and HTTP/2 (by ALPN over TLS, by preface in the
//! clear, with upgrades for WebSockets through the proxy) into
//! `gate::handle`, and runs the optional plain-HTTP listener that only
//! redirects to HTTPS.
//!
//! It also owns the process's life around requests: connection limits (head
//! size, header count, head-read time, idle time, concurrent connections),
//! config reload on SIGHUP (the running `App` is swapped atomically; each
//! request takes the one current when it arrives and keeps it), certificate
//! renewal without a restart, and graceful shutdown. What a request means is
//! `gate`'s business.

pub mod admin;

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use http::header::LOCATION;
use http::{HeaderValue, Request, Response, StatusCode};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch, Semaphore};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

use crate::app::settings::Settings;
use crate::app::App;
use crate::config::FileConfig;
use crate::gate;
use crate::http::request::raw_host;
use crate::policy::path::normalize_host;
use crate::tls::{self, CertResolver, TlsError};
use crate::Body;

/// How often the certificate files are checked for a renewal.
const CERT_POLL: Duration = Duration::from_secs(2);

/// Where SIGHUP re-reads the config from, and the config running now.
pub struct ConfigSource {
    pub path: PathBuf,
    pub config: FileConfig,
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("listening on {addr} (server.http_redirect_listen)")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: io::Error,
    },
    #[error("setting up HTTPS")]
    Tls(#[source] TlsError),
}

/// What every connection shares: the current `App` and how to replace it.
struct Live {
    app: ArcSwap<App>,
    /// `None` for `latchkey demo` (nothing to re-read).
    source: Mutex<Option<ConfigSource>>,
    cert: Option<Arc<CertResolver>>,
}

/// What a listener serves.
#[derive(Clone)]
enum Role {
    /// latchkey itself, over TLS when an acceptor is given.
    Gate(Option<TlsAcceptor>),
    /// Plain HTTP that only redirects to HTTPS.
    Redirect,
}

/// Serves `listener` (and `server.http_redirect_listen`) until `shutdown`
/// resolves; then stops accepting, lets open requests finish for up to
/// `server.shutdown_grace`, and returns. SIGHUP reloads the config from
/// `source` and the certificate files.
pub async fn serve(
    app: Arc<App>,
    listener: TcpListener,
    source: Option<ConfigSource>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServeError> {
    // Before anything is served, so that a SIGHUP never kills the process.
    let hangup = hangup_signal();

    let cert = app.settings.tls.clone().map(CertResolver::new);
    let acceptor = match &cert {
        Some(resolver) => Some(TlsAcceptor::from(
            tls::server_config(resolver.clone()).map_err(ServeError::Tls)?,
        )),
        None => None,
    };
    let redirect = match app.settings.http_redirect_listen {
        Some(addr) => Some(
            TcpListener::bind(addr)
                .await
                .map_err(|source| ServeError::Bind { addr, source })?,
        ),
        None => None,
    };
    let slots = Arc::new(Semaphore::new(app.settings.conn.max_connections));
    let live = Arc::new(Live {
        app: ArcSwap::new(app),
        source: Mutex::new(source),
        cert,
    });

    let mut background = Vec::new();
    if let Some(resolver) = &live.cert {
        background.push(resolver.clone().watch(CERT_POLL));
    }
    if let Some(mut hangup) = hangup {
        let live = live.clone();
        background.push(tokio::spawn(async move {
            while hangup.recv().await.is_some() {
                reload(&live).await;
            }
        }));
    }

    let (stop_tx, stop_rx) = watch::channel(false);
    // Every connection task holds a sender; when all are gone, all are done.
    let (done_tx, mut done_rx) = mpsc::channel::<()>(1);
    let accepting = Accepting {
        live: live.clone(),
        slots,
        stop: stop_rx,
        done: done_tx,
    };
    if let Some(redirect) = redirect {
        if let Ok(addr) = redirect.local_addr() {
            tracing::info!(%addr, "redirecting plain HTTP to HTTPS");
        }
        tokio::spawn(accepting.clone().run(redirect, Role::Redirect));
    }
    tokio::spawn(accepting.run(listener, Role::Gate(acceptor)));

    shutdown.await;
    let _ = stop_tx.send(true);
    let grace = live.app.load().settings.conn.grace;
    match tokio::time::timeout(grace, done_rx.recv()).await {
        Ok(_) => tracing::info!("all connections closed"),
        Err(_) => tracing::warn!(
            grace = %humantime::format_duration(grace),
            "grace period over; closing the remaining connections"
        ),
    }
    for task in background {
        task.abort();
    }
    Ok(())
}

#[cfg(unix)]
fn hangup_signal() -> Option<tokio::signal::unix::Signal> {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::hangup()) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::error!(error = %e, "cannot listen for SIGHUP; config reload is off");
            None
        }
    }
}

#[cfg(not(unix))]
fn hangup_signal() -> Option<NoSignal> {
    None
}

#[cfg(not(unix))]
struct NoSignal;

#[cfg(not(unix))]
impl NoSignal {
    async fn recv(&mut self) -> Option<()> {
        None
    }
}

/// What an accept loop needs; cloned for each listener.
#[derive(Clone)]
struct Accepting {
    live: Arc<Live>,
    slots: Arc<Semaphore>,
    stop: watch::Receiver<bool>,
    done: mpsc::Sender<()>,
}

impl Accepting {
    async fn run(mut self, listener: TcpListener, role: Role) {
        let mut warned_full: Option<Instant> = None;
        loop {
            let (stream, peer) = tokio::select! {
                biased;
                () = stopped(&mut self.stop) => break,
                accepted = listener.accept() => match accepted {
                    Ok(pair) => pair,
                    Err(e) => {
                        // Out of file descriptors and the like: back off, keep serving.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let Ok(permit) = self.slots.clone().try_acquire_owned() else {
                // Full: close at once rather than queue without bound.
                if warned_full.is_none_or(|t| t.elapsed() > Duration::from_secs(10)) {
                    tracing::warn!(
                        max = self.live.app.load().settings.conn.max_connections,
                        "server.max_connections reached; closing new connections"
                    );
                    warned_full = Some(Instant::now());
                }
                drop(stream);
                continue;
            };
            let (live, stop, done, role) = (
                self.live.clone(),
                self.stop.clone(),
                self.done.clone(),
                role.clone(),
            );
            tokio::spawn(async move {
                connection(stream, peer, live, role, stop).await;
                drop(permit);
                drop(done);
            });
        }
        // Dropping the listener here refuses new connections at once.
        drop(listener);
    }
}

/// Resolves once shutdown has begun (or the server is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}

/// Serves one connection to its end.
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    live: Arc<Live>,
    role: Role,
    mut stop: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let limits = live.app.load().settings.conn.clone();
    let (stream, tls) = match &role {
        Role::Gate(Some(acceptor)) => {
            let handshake = acceptor.accept(stream);
            tokio::select! {
                done = tokio::time::timeout(limits.header_read_timeout, handshake) => match done {
                    Ok(Ok(s)) => (Stream::Tls(Box::new(s)), true),
                    Ok(Err(e)) => {
                        tracing::debug!(error = %e, %peer, "TLS handshake failed");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!(%peer, "TLS handshake timed out");
                        return;
                    }
                },
                () = stopped(&mut stop) => return,
            }
        }
        _ => (Stream::Plain(stream), false),
    };
    let activity = Arc::new(Activity::new());
    let io = TokioIo::new(Tracked {
        inner: stream,
        activity: activity.clone(),
    });
    let redirect = matches!(role, Role::Redirect);
    let service = service_fn(move |req| {
        let app = live.app.load_full();
        async move {
            Ok::<_, Infallible>(if redirect {
                redirect_to_https(&app.settings, &req)
            } else {
                gate::handle(app, req, peer, tls).await
            })
        }
    });

    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_headers(limits.max_headers)
        .max_buf_size(limits.max_header_bytes.max(8192));
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX));
    let conn = builder.serve_connection_with_upgrades(io, service);
    tokio::pin!(conn);
    let mut closing = false;
    loop {
        let wake = limits.keepalive_timeout.saturating_sub(activity.idle());
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, %peer, "connection ended with an error");
                }
                break;
            }
            () = stopped(&mut stop), if !closing => {
                conn.as_mut().graceful_shutdown();
                closing = true;
            }
            () = tokio::time::sleep(wake), if !closing => {
                if activity.idle() >= limits.keepalive_timeout {
                    tracing::debug!(%peer, "idle connection closed (server.keepalive_timeout)");
                    conn.as_mut().graceful_shutdown();
                    closing = true;
                }
            }
        }
    }
}

/// The answer of the plain-HTTP listener: the same URL on HTTPS. The host
/// kept is the request's only when it is latchkey's own or an app's (no
/// redirect elsewhere); the port is public_url's.
fn redirect_to_https<B>(s: &Settings, req: &Request<B>) -> Response<Body> {
    let host = raw_host(req)
        .and_then(normalize_host)
        .filter(|h| *h == s.public_host || s.apps.contains_key(h))
        .unwrap_or_else(|| s.public_host.clone());
    let port = s
        .public_url
        .port()
        .map(|p| format!(":{p}"))
        .unwrap_or_default();
    let target = req
        .uri()
        .path_and_query()
        .map(|pq| pq.as_str())
        .filter(|pq| pq.starts_with('/'))
        .unwrap_or("/");
    let location = HeaderValue::from_str(&format!("https://{host}{port}{target}"))
        .or_else(|_| HeaderValue::from_str(&format!("https://{}{port}/", s.public_host)));
    let mut resp = crate::http::response::text(
        StatusCode::PERMANENT_REDIRECT,
        "This site is served over HTTPS.\n",
    );
    if let Ok(location) = location {
        resp.headers_mut().insert(LOCATION, location);
    }
    resp
}

/// Re-reads the config file and, if it compiles, makes it current for new
/// requests; else logs every problem and keeps the running one. Either way
/// the certificate files are read again.
async fn reload(live: &Arc<Live>) {
    let path = match live.source.lock() {
        Ok(source) => source.as_ref().map(|s| s.path.clone()),
        Err(_) => None,
    };
    let Some(path) = path else {
        tracing::info!("SIGHUP: no config file to re-read; reading the certificate again");
        reload_cert(live);
        return;
    };
    tracing::info!(config = %path.display(), "SIGHUP: reloading the config");
    let read = path.clone();
    let compiled = tokio::task::spawn_blocking(move || {
        FileConfig::load(Some(&read))
            .map_err(|e| e.problems())
            .and_then(|cfg| Settings::compile(&cfg).map(|s| (cfg, s)))
    })
    .await;
    match compiled {
        Ok(Ok((config, settings))) => apply(live, config, settings),
        Ok(Err(problems)) => {
            tracing::error!(
                config = %path.display(),
                problems = problems.len(),
                "config reload refused; still running the previous config"
            );
            for problem in &problems {
                tracing::error!(config = %path.display(), "config problem: {problem}");
            }
            reload_cert(live);
        }
        Err(e) => tracing::error!(error = %e, "config reload failed"),
    }
}

fn reload_cert(live: &Live) {
    if let Some(resolver) = &live.cert {
        match resolver.reload() {
            Ok(()) => {
                tracing::info!(cert = %resolver.files().cert.display(), "TLS certificate read again")
            }
            Err(e) => tracing::error!(
                error = %tls::explain(&e),
                "TLS certificate cannot be used; still serving the previous one"
            ),
        }
    }
}

fn apply(live: &Live, config: FileConfig, settings: Settings) {
    let Ok(mut source) = live.source.lock() else {
        tracing::error!("config reload skipped: reload state poisoned");
        return;
    };
    let Some(source) = source.as_mut() else {
        return;
    };
    for key in needs_restart(&source.config, &config) {
        tracing::warn!(
            key,
            "changed in the config file; takes effect only after a restart (the running value stays)"
        );
    }
    let new_mailer = json(&source.config.mail) != json(&config.mail);
    match (&live.cert, &settings.tls) {
        (Some(resolver), Some(cert)) => resolver.replace(cert.clone()),
        (Some(_), None) | (None, Some(_)) => {} // reported by needs_restart
        (None, None) => {}
    }
    let app = live.app.load().reconfigured(settings, new_mailer);
    live.app.store(Arc::new(app));
    source.config = config;
    tracing::info!(
        "config reloaded: new requests use it; requests in flight finish on the previous one"
    );
}

/// Keys whose change a running process cannot pick up.
fn needs_restart(old: &FileConfig, new: &FileConfig) -> Vec<&'static str> {
    let (o, n) = (&old.server, &new.server);
    let mut keys = Vec::new();
    if o.listen != n.listen {
        keys.push("server.listen");
    }
    if o.admin_listen != n.admin_listen {
        keys.push("server.admin_listen");
    }
    if o.http_redirect_listen != n.http_redirect_listen {
        keys.push("server.http_redirect_listen");
    }
    if o.tls.is_some() != n.tls.is_some() {
        keys.push("server.tls");
    }
    if o.max_connections != n.max_connections {
        keys.push("server.max_connections");
    }
    if json(&old.redis) != json(&new.redis) {
        keys.push("redis");
    }
    keys
}

fn json<T: serde::Serialize>(v: &T) -> Option<serde_json::Value> {
    serde_json::to_value(v).ok()
}

/// When a connection last moved a byte, for the idle timeout.
struct Activity {
    epoch: Instant,
    last_ms: AtomicU64,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            epoch: Instant::now(),
            last_ms: AtomicU64::new(0),
        }
    }

    fn touch(&self) {
        let ms = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    fn idle(&self) -> Duration {
        self.epoch
            .elapsed()
            .saturating_sub(Duration::from_millis(self.last_ms.load(Ordering::Relaxed)))
    }
}

/// A client connection, plain or TLS.
enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

/// A stream that records when it last moved a byte.
struct Tracked {
    inner: Stream,
    activity: Arc<Activity>,
}

impl AsyncRead for Tracked {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = match &mut this.inner {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        };
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.activity.touch();
        }
        polled
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = match &mut this.inner {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        };
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            this.activity.touch();
        }
        polled
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = match &mut this.inner {
            Stream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        };
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            this.activity.touch();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        match &self.inner {
            Stream::Plain(s) => s.is_write_vectored(),
            Stream::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().inner {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().inner {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn settings(public_url: &str) -> Settings {
        let cfg = FileConfig::from_toml(&format!(
            r#"
[server]
public_url = "{public_url}"

[[apps]]
host = "app.example.com"
"#
        ))
        .unwrap();
        Settings::compile(&cfg).unwrap()
    }

    fn location(s: &Settings, host: &str, target: &str) -> String {
        let req = Request::builder()
            .uri(target)
            .header("host", host)
            .body(())
            .unwrap();
        let resp = redirect_to_https(s, &req);
        assert_eq!(resp.status(), StatusCode::PERMANENT_REDIRECT);
        resp.headers()[LOCATION].to_str().unwrap().to_owned()
    }

    #[test]
    fn redirects_keep_known_hosts_only() {
        let s = settings("https://auth.example.com");
        let cases = [
            (
                "auth.example.com",
                "/x?y=1",
                "https://auth.example.com/x?y=1",
            ),
            ("app.example.com:80", "/a/b", "https://app.example.com/a/b"),
            ("APP.example.com.", "/", "https://app.example.com/"),
            ("evil.example", "/steal", "https://auth.example.com/steal"),
            ("", "/", "https://auth.example.com/"),
            (
                "bad host",
                "//evil.example/",
                "https://auth.example.com//evil.example/",
            ),
        ];
        for (host, target, want) in cases {
            assert_eq!(location(&s, host, target), want, "{host} {target}");
        }
    }

    #[test]
    fn redirects_use_public_url_port() {
        let s = settings("https://auth.example.com:8443");
        assert_eq!(
            location(&s, "app.example.com:8080", "/p"),
            "https://app.example.com:8443/p"
        );
    }

    #[test]
    fn restart_keys_are_named() {
        let old = FileConfig::default();
        let mut new = FileConfig::default();
        new.server.listen = "127.0.0.1:1".into();
        new.server.max_connections = 5;
        new.redis = Some(crate::config::RedisConfig {
            url: Some("redis://127.0.0.1:1".into()),
            ..Default::default()
        });
        new.server.header_read_timeout = "3s".into();
        assert_eq!(
            needs_restart(&old, &new),
            ["server.listen", "server.max_connections", "redis"]
        );
        assert!(needs_restart(&old, &old.clone()).is_empty());
    }
}
