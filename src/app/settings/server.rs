//! `[server]`: where latchkey listens and is reached, whom it trusts to
//! forward, its certificate, and its connection limits (`ConnLimits`, read
//! by `server`). The listeners themselves are `server`'s; this file only
//! checks and compiles what they are given.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use ipnet::IpNet;
use url::Url;

use super::problems::Problems;
use crate::config::ServerConfig;
use crate::tls::{self, CertFiles, LoadedCert, TlsError};

/// Which header nginx names the original request with
/// (`server.nginx_target_header`); the other form is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NginxTarget {
    /// `X-Original-URL: scheme://host/path?query` (examples/nginx,
    /// ingress-nginx). An `X-Original-URI` beside it must be its path and query.
    Url,
    /// `X-Original-URI: /path?query`, the host from `Host`, the scheme from
    /// `X-Forwarded-Proto`. An `X-Original-URL` beside it is refused.
    Uri,
}

/// Connection-level limits (`[server]`).
#[derive(Debug, Clone)]
pub struct ConnLimits {
    /// A client must send its whole request head within this (slowloris).
    /// On HTTP/1.1, hyper also counts the wait for the next request on a
    /// kept-alive connection as reading a head.
    pub header_read_timeout: Duration,
    /// A connection with no bytes in either direction for this long is
    /// closed (gracefully: a request in flight still gets its answer).
    pub keepalive_timeout: Duration,
    /// Header lines in one request (more: 431).
    pub max_headers: usize,
    /// Bytes of one request head (more: 431), at least 8192.
    pub max_header_bytes: usize,
    /// Open client connections; more are closed as soon as accepted.
    pub max_connections: usize,
    /// How long in-flight requests may run on after shutdown begins.
    pub grace: Duration,
}

impl Default for ConnLimits {
    fn default() -> Self {
        ConnLimits {
            header_read_timeout: Duration::from_secs(10),
            keepalive_timeout: Duration::from_secs(75),
            max_headers: 100,
            max_header_bytes: 32 * 1024,
            max_connections: 10_000,
            grace: Duration::from_secs(30),
        }
    }
}

/// `[server]` compiled; `Settings::compile` spreads it into `Settings`.
pub(super) struct ServerSection {
    pub listen: Option<SocketAddr>,
    pub admin_listen: Option<SocketAddr>,
    pub public_url: Option<Url>,
    pub trusted_proxies: Vec<IpNet>,
    pub nginx_target: NginxTarget,
    pub upstream_timeout: Duration,
    pub tls: Option<LoadedCert>,
    pub http_redirect_listen: Option<SocketAddr>,
    pub conn: ConnLimits,
}

pub(super) fn compile(p: &mut Problems, s: &ServerConfig) -> ServerSection {
    let listen = p.socket_addr("server.listen", &s.listen);
    let admin_listen = s
        .admin_listen
        .as_deref()
        .map(|a| p.socket_addr("server.admin_listen", a));
    let public_url = match Url::parse(&s.public_url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => Some(u),
        _ => {
            p.add(format!(
                "server.public_url: {:?} is not a URL; expected where latchkey's pages are reached, like \"https://auth.example.com\"",
                s.public_url
            ));
            None
        }
    };
    let mut trusted_proxies = Vec::new();
    for (i, net) in s.trusted_proxies.iter().enumerate() {
        match parse_net(net) {
            Some(n) => trusted_proxies.push(n),
            None => p.add(format!(
                "server.trusted_proxies[{i}]: {net:?} is not an address or network; expected like \"10.0.0.0/8\" or \"127.0.0.1\""
            )),
        }
    }
    let nginx_target = match s.nginx_target_header.to_ascii_lowercase().as_str() {
        "x-original-url" => NginxTarget::Url,
        "x-original-uri" => NginxTarget::Uri,
        _ => {
            p.add(format!(
                "server.nginx_target_header: {:?} is not a header nginx names the request with; \
                 expected \"X-Original-URL\" or \"X-Original-URI\"",
                s.nginx_target_header
            ));
            NginxTarget::Url
        }
    };
    let upstream_timeout = p.duration("server.upstream_timeout", &s.upstream_timeout);
    let tls = s.tls.as_ref().and_then(|t| {
        let files = CertFiles {
            cert: t.cert.clone().into(),
            key: t.key.clone().into(),
        };
        match tls::load_cert(&files) {
            Ok(cert) => Some(cert),
            Err(e) => {
                let key = match e {
                    TlsError::Certs { .. } | TlsError::NoCert { .. } => "server.tls.cert",
                    TlsError::Key { .. } => "server.tls.key",
                    _ => "server.tls",
                };
                p.add(format!(
                    "{key}: {}; expected a PEM certificate chain (leaf first) in cert and its PEM private key in key",
                    tls::explain(&e)
                ));
                None
            }
        }
    });
    let http_redirect_listen = s
        .http_redirect_listen
        .as_deref()
        .and_then(|a| p.socket_addr("server.http_redirect_listen", a));
    let public_https = s.public_url.starts_with("https://");
    if s.tls.is_some() && !public_https {
        p.add(format!(
            "server.public_url: {:?} is http while [server.tls] is set; expected the https:// address people reach latchkey at",
            s.public_url
        ));
    }
    if let (Some(a), false) = (&s.http_redirect_listen, public_https) {
        p.add(format!(
            "server.http_redirect_listen: {a:?} redirects to HTTPS but server.public_url {:?} is http; expected an https:// public_url",
            s.public_url
        ));
    }
    if let Some(ca) = &s.upstream_ca {
        if let Err(e) = tls::client_config(Some(Path::new(ca))) {
            p.add(format!(
                "server.upstream_ca: {ca:?}: {}; expected a file of PEM CA certificates",
                tls::explain(&e)
            ));
        }
    }
    let conn = compile_conn(p, s);
    ServerSection {
        listen,
        admin_listen: admin_listen.flatten(),
        public_url,
        trusted_proxies,
        nginx_target,
        upstream_timeout,
        tls,
        http_redirect_listen,
        conn,
    }
}

fn compile_conn(p: &mut Problems, s: &ServerConfig) -> ConnLimits {
    if s.max_connections == 0 {
        p.add("server.max_connections: 0 would refuse every connection; expected 1 or more".into());
    }
    if !(1..=10_000).contains(&s.max_headers) {
        p.add(format!(
            "server.max_headers: {} is out of range; expected 1 to 10000",
            s.max_headers
        ));
    }
    if !(8192..=16 * 1024 * 1024).contains(&s.max_header_bytes) {
        p.add(format!(
            "server.max_header_bytes: {} is out of range; expected 8192 to 16777216 bytes",
            s.max_header_bytes
        ));
    }
    ConnLimits {
        header_read_timeout: p.duration("server.header_read_timeout", &s.header_read_timeout),
        keepalive_timeout: p.duration("server.keepalive_timeout", &s.keepalive_timeout),
        max_headers: s.max_headers as usize,
        max_header_bytes: s.max_header_bytes as usize,
        max_connections: s.max_connections as usize,
        grace: p.duration("server.shutdown_grace", &s.shutdown_grace),
    }
}

fn parse_net(s: &str) -> Option<IpNet> {
    s.parse::<IpNet>()
        .ok()
        .or_else(|| s.parse::<std::net::IpAddr>().ok().map(IpNet::from))
}
