//! hyper-util's pooled HTTP/1.1 client, for what latchkey's own
//! connections (`send`, `idle`) do not carry: HTTPS upstreams and WebSocket
//! upgrades. How it is built: `TCP_NODELAY`, the connect timeout, idle
//! connections kept [`IDLE_TIMEOUT`], plain or TLS as the URL says. One is
//! shared by every upstream without a CA of its own (`client::Proxy`), the
//! others belong to the upstreams that trust one
//! (`target::Upstream::trusting`). TLS configs are `tls`'.

use std::time::Duration;

use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};

/// Pooled connections to upstreams, plain or TLS as their URL says.
pub type UpstreamClient = Client<HttpsConnector<HttpConnector>, Incoming>;

/// How long an idle connection to an upstream is kept, in either pool.
pub(super) const IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// Longest wait for an upstream's TCP connection.
pub(super) const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

pub(super) fn build_client(tls: rustls::ClientConfig, connect_timeout: Duration) -> UpstreamClient {
    let mut http = HttpConnector::new();
    http.set_nodelay(true);
    http.set_connect_timeout(Some(connect_timeout));
    http.enforce_http(false);
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    Client::builder(TokioExecutor::new())
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(IDLE_TIMEOUT)
        .build(connector)
}
