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
//!
//! The pieces: this file starts the listeners and drains them at shutdown;
//! `accept` is the accept loop and the connection limit; `connection`
//! serves one connection (TLS handshake, HTTP limits, idle timeout) with
//! `stream` telling it when bytes last moved; `redirect` is the
//! plain-HTTP listener's one answer; `reload` is SIGHUP. `admin` is the
//! separate admin listener; it reads the same swap as the main listener, so
//! after a reload it reports on the `App` that serves.

mod accept;
mod admin;
mod connection;
mod redirect;
mod reload;
mod stream;

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch, Semaphore};
use tokio_rustls::TlsAcceptor;

use crate::app::App;
use crate::config::FileConfig;
use crate::tls::{self, CertResolver, TlsError};
use accept::Accepting;
use reload::{hangup_signal, reload};

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
    /// `server.max_connections` slots; a connection holds one until its
    /// stream (upgraded or not) is dropped.
    slots: Arc<Semaphore>,
    /// Keys changed in the file that wait for a restart (the last reload's).
    restart_pending: Mutex<Vec<&'static str>>,
}

/// What a listener serves.
#[derive(Clone)]
enum Role {
    /// latchkey itself, over TLS when an acceptor is given.
    Gate(Option<TlsAcceptor>),
    /// Plain HTTP that only redirects to HTTPS.
    Redirect,
}

/// Serves `listener` (and `server.http_redirect_listen`, and the admin
/// endpoints on `admin`) until `shutdown` resolves; then stops accepting,
/// lets open requests and upgraded connections finish for up to
/// `server.shutdown_grace`, and returns (what is still open closes with the
/// process). SIGHUP reloads the config from `source` and the certificate
/// files.
pub async fn serve(
    app: Arc<App>,
    listener: TcpListener,
    admin: Option<TcpListener>,
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
        slots: slots.clone(),
        restart_pending: Mutex::new(Vec::new()),
    });
    if let Some(admin) = admin {
        tokio::spawn(admin::serve(live.clone(), admin));
    }

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

/// Resolves once shutdown has begun (or the server is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}
