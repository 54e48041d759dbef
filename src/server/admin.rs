//! The admin listener (`server.admin_listen`): what ops and orchestrators
//! ask latchkey about itself, on its own port, apart from user traffic.
//!
//! - `GET /healthz`: 200 while the process serves (liveness).
//! - `GET /readyz`: 200 when the session store answers a ping within
//!   `READY_TIMEOUT`, else 503 (readiness: take the instance out of the
//!   load balancer, do not restart it; it recovers by itself).
//! - `GET /metrics`: Prometheus text format (`metrics.rs`).
//!
//! It shares nothing with the main listener but `App`; it has no TLS and
//! no authentication, so bind it to loopback or a private network.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

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
pub async fn serve(app: Arc<App>, listener: TcpListener) {
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
        let app = app.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let app = app.clone();
                async move { Ok::<_, Infallible>(respond(&app, &req).await) }
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

async fn respond<B>(app: &App, req: &Request<B>) -> Response<Body> {
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
            let body = app.metrics.render(&Scraped {
                mail: &app.mail_stats,
                active_sessions,
            });
            let mut resp = text(StatusCode::OK, body);
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            resp
        }
        _ => text(
            StatusCode::NOT_FOUND,
            "not found: try /healthz, /readyz or /metrics\n",
        ),
    }
}

fn text(status: StatusCode, body: impl Into<bytes::Bytes>) -> Response<Body> {
    crate::http::response::text(status, body)
}
