//! One connection, from accept to close: the TLS handshake (bounded by
//! `server.header_read_timeout`, abandoned when shutdown begins), HTTP/1.1
//! and HTTP/2 with the head-size and header-count limits and upgrades
//! enabled, the idle timeout (`server.keepalive_timeout`) and a graceful
//! close at shutdown. A connection whose first request head has not arrived
//! within `server.header_read_timeout` is closed: hyper's HTTP/1.1 timer
//! covers that protocol, but nothing in hyper's HTTP/2 server bounds a
//! HEADERS frame that never ends (its keep-alive pings only find dead
//! peers, and a slow client answers them), nor the wait for the bytes that
//! tell HTTP/1.1 from HTTP/2. Each request takes the `App` current when it arrives;
//! what it means is `gate`'s (or `redirect`'s on the plain-HTTP listener).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use super::redirect::redirect_to_https;
use super::stream::{Activity, Lease, Stream, Tracked};
use super::{stopped, Live, Role};
use crate::gate;

/// Serves one connection to its end; `lease` (its slot) lives as long as
/// its stream, through an upgrade.
pub(super) async fn serve(
    stream: TcpStream,
    lease: Lease,
    peer: SocketAddr,
    live: Arc<Live>,
    role: Role,
    mut stop: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let limits = live.app.load().settings.conn.clone();
    let (stream, tls) = match &role {
        Role::Gate(Some(acceptor)) => {
            let timeout = limits.header_read_timeout;
            match tls_accept(acceptor, stream, peer, timeout, &mut stop).await {
                Some(s) => (s, true),
                None => return,
            }
        }
        _ => (Stream::Plain(stream), false),
    };
    let activity = Arc::new(Activity::new());
    let io = TokioIo::new(Tracked {
        inner: stream,
        activity: activity.clone(),
        _lease: lease,
    });
    let redirect = matches!(role, Role::Redirect);
    let requested = activity.clone();
    let service = service_fn(move |req| {
        requested.requested();
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
    let head_deadline = tokio::time::Instant::now() + limits.header_read_timeout;
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
            () = tokio::time::sleep_until(head_deadline), if !activity.has_requested() => {
                if !activity.has_requested() {
                    tracing::debug!(%peer, "no request head within server.header_read_timeout; connection closed");
                    break;
                }
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

/// The TLS handshake of a new connection, within `timeout`; `None` when it
/// fails, takes too long or shutdown begins first.
async fn tls_accept(
    acceptor: &TlsAcceptor,
    stream: TcpStream,
    peer: SocketAddr,
    timeout: Duration,
    stop: &mut watch::Receiver<bool>,
) -> Option<Stream> {
    let handshake = acceptor.accept(stream);
    tokio::select! {
        done = tokio::time::timeout(timeout, handshake) => match done {
            Ok(Ok(s)) => Some(Stream::Tls(Box::new(s))),
            Ok(Err(e)) => {
                tracing::debug!(error = %e, %peer, "TLS handshake failed");
                None
            }
            Err(_) => {
                tracing::debug!(%peer, "TLS handshake timed out");
                None
            }
        },
        () = stopped(stop) => None,
    }
}
