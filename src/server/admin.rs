//! The admin listener (`server.admin_listen`): what ops and orchestrators
//! ask latchkey about itself, on its own port, apart from user traffic.
//!
//! - `GET /healthz`: 200 while the process serves (liveness).
//! - `GET /readyz`: 200 when the session store answers a ping within
//!   `READY_TIMEOUT`, else 503 (readiness: take the instance out of the
//!   load balancer, do not restart it; it recovers by itself).
//! - `GET /metrics`: Prometheus text format (`obs::metrics`), then the
//!   server's own gauges: connections open (upgraded ones included) and
//!   allowed, when the running config was loaded, which keys changed in
//!   the file wait for a restart, and the records a memory or embedded
//!   store holds.
//! - `GET /config/restart-only`: the running values of the keys a reload
//!   cannot change (`config::restart_only`, passwords hidden), as one JSON
//!   object; what `latchkey check --running` compares a file with. 404
//!   when there is no config file (`latchkey demo`).
//!
//! Each request reads the `App` current at that moment, from the same swap
//! the main listener uses, so after a SIGHUP it reports on what serves. It
//! has no TLS and no authentication, so bind it to loopback or a private
//! network.

use std::convert::Infallible;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use super::Live;
use crate::app::App;
use crate::obs::metrics::Scraped;
use crate::store::{Backend, Store};
use crate::Body;

/// Below Kubernetes' default probe timeout (1 s), far above a healthy
/// store's round trip.
pub const READY_TIMEOUT: Duration = Duration::from_millis(750);

/// Scrapers and probes need few connections; more wait.
const MAX_CONNECTIONS: usize = 64;

/// Serves the admin endpoints on `listener` for as long as the process runs.
pub(super) async fn serve(live: Arc<Live>, listener: TcpListener) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        let (stream, peer) = match listener.accept().await {
            Ok(pair) => pair,
            Err(e) => {
                tracing::warn!(error = %e, "admin listener: accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let live = live.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let live = live.clone();
                async move { Ok::<_, Infallible>(respond(&live, &req).await) }
            });
            let conn = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10))
                .serve_connection(TokioIo::new(stream), service);
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, %peer, "admin connection ended with an error");
            }
            drop(permit);
        });
    }
}

async fn respond<B>(live: &Live, req: &Request<B>) -> Response<Body> {
    let app = live.app.load_full();
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, "only GET\n");
    }
    match req.uri().path() {
        "/healthz" => text(StatusCode::OK, "ok\n"),
        "/readyz" => match tokio::time::timeout(READY_TIMEOUT, app.store.ping()).await {
            Ok(Ok(())) => text(StatusCode::OK, "ready\n"),
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "not ready: the session store failed");
                text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "not ready: the session store is unreachable\n",
                )
            }
            Err(_) => {
                tracing::debug!(timeout = ?READY_TIMEOUT, "not ready: the session store did not answer");
                text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "not ready: the session store did not answer in time\n",
                )
            }
        },
        "/metrics" => {
            let active_sessions = match app.store.as_ref() {
                Backend::Memory(m) => Some(m.live_sessions(app.clock.now_ms())),
                // Counting Redis sessions needs a SCAN; not per scrape.
                _ => None,
            };
            let mut body = app.metrics.render(&Scraped {
                mail: &app.mail_stats,
                active_sessions,
            });
            server_gauges(&mut body, live, &app);
            store_records(&mut body, &app).await;
            let mut resp = text(StatusCode::OK, body);
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            resp
        }
        "/config/restart-only" => restart_only(live),
        _ => text(
            StatusCode::NOT_FOUND,
            "not found: try /healthz, /readyz, /metrics or /config/restart-only\n",
        ),
    }
}

/// The restart-only keys as they run (the last applied reload set them
/// back to their running values), as a JSON object.
fn restart_only(live: &Live) -> Response<Body> {
    let running = match live.source.lock() {
        Ok(source) => source
            .as_ref()
            .map(|s| crate::config::restart_only(&s.config)),
        Err(_) => None,
    };
    let Some(keys) = running else {
        return text(
            StatusCode::NOT_FOUND,
            "no config file: nothing to compare\n",
        );
    };
    let object: serde_json::Map<String, serde_json::Value> = keys
        .into_iter()
        .map(|(k, v)| (k.to_owned(), serde_json::Value::String(v)))
        .collect();
    let mut resp = text(
        StatusCode::OK,
        serde_json::Value::Object(object).to_string() + "\n",
    );
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// The server's gauges, after `obs::metrics`' series.
fn server_gauges(out: &mut String, live: &Live, app: &App) {
    let max = app.settings.conn.max_connections;
    let open = max.saturating_sub(live.slots.available_permits());
    gauge(
        out,
        "latchkey_connections_open",
        "Client connections open now, upgraded (WebSocket) ones included.",
        [(String::new(), open.to_string())],
    );
    gauge(
        out,
        "latchkey_connections_max",
        "server.max_connections in effect.",
        [(String::new(), max.to_string())],
    );
    gauge(
        out,
        "latchkey_config_loaded_timestamp_seconds",
        "When the config serving now was loaded (start-up or the last applied SIGHUP).",
        [(
            String::new(),
            format!("{:.3}", app.loaded_at_ms as f64 / 1000.0),
        )],
    );
    let pending: Vec<(String, String)> = match live.restart_pending.lock() {
        Ok(keys) => keys
            .iter()
            .map(|k| (format!("{{key=\"{k}\"}}"), "1".to_owned()))
            .collect(),
        Err(_) => Vec::new(),
    };
    gauge(
        out,
        "latchkey_config_restart_pending",
        "Keys changed in the config file that take effect only after a restart (the running value stays).",
        pending,
    );
}

/// How many records the memory or embedded store holds (Redis counts its
/// own keys).
async fn store_records(out: &mut String, app: &App) {
    let n = match app.store.as_ref() {
        Backend::Memory(m) => m.records(),
        Backend::Embedded(e) => match e.records().await {
            Ok(n) => n,
            Err(_) => return,
        },
        _ => return,
    };
    gauge(
        out,
        "latchkey_store_records",
        "Records the memory or embedded store holds now, ended ones not yet swept included.",
        [(String::new(), n.to_string())],
    );
}

/// One gauge: its HELP and TYPE lines, then `(labels, value)` samples.
fn gauge(
    out: &mut String,
    name: &str,
    help: &str,
    samples: impl IntoIterator<Item = (String, String)>,
) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} gauge");
    for (labels, value) in samples {
        let _ = writeln!(out, "{name}{labels} {value}");
    }
}

fn text(status: StatusCode, body: impl Into<bytes::Bytes>) -> Response<Body> {
    crate::http::response::text(status, body)
}
