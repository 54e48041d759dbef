//! The running configuration: `FileConfig` validated and compiled once.
//!
//! `Settings::compile` is the one step that `check`, `serve` and `demo` share,
//! so `check` can never pass a config that `serve` refuses. It collects every
//! problem before reporting, each naming the key, the value found and what was
//! expected. Each part is compiled by the module that owns it (rules by
//! `rules`, templates by `pages`, mail by `mail`, header names by `proxy`);
//! this file owns the rest and the assembly. After start-up nothing reads
//! `FileConfig` again.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use ipnet::IpNet;
use url::Url;

use crate::config::{redact_url, FileConfig};
use crate::http::pages::Pages;
use crate::identity::keys::Keys;
use crate::policy::path::normalize_host;
use crate::policy::redirect::ReturnPolicy;
use crate::policy::rules::Rules;
use crate::signin::mail::Mailer;
use crate::store::records::{normalize_email, user_id, User};
pub use crate::store::redis::Target as RedisTarget;
use crate::tls::{self, CertFiles, LoadedCert, TlsError};
use crate::upstream::{IdentityHeaders, Upstream};

/// Who may sign in without being listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signup {
    /// Only users in `[[users]]` or added with `latchkey users`.
    Closed,
    /// Also any address in `login.allowed_domains`.
    Domains,
    /// Anyone with a mailbox.
    Open,
}

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

pub struct Settings {
    pub listen: SocketAddr,
    pub public_url: Url,
    /// public_url's host, normalized (no port).
    pub public_host: String,
    /// public_url is https: cookies get `Secure` (and `__Host-` when host-only).
    pub secure: bool,
    pub trusted_proxies: Vec<IpNet>,
    pub nginx_target: NginxTarget,
    pub admin_listen: Option<SocketAddr>,
    pub upstream_timeout: Duration,
    /// `[server.tls]`: the certificate `listen` serves HTTPS with, read and
    /// checked at compile time.
    pub tls: Option<LoadedCert>,
    /// A plain-HTTP listener that redirects everything to HTTPS.
    pub http_redirect_listen: Option<SocketAddr>,
    /// Connection limits and the shutdown grace period.
    pub conn: ConnLimits,
    pub redis: Option<RedisSettings>,
    pub session: SessionSettings,
    pub login: LoginSettings,
    pub limits: Limits,
    pub headers: IdentityHeaders,
    /// Signing keys for assertions and bearer tokens (maybe none).
    pub keys: Keys,
    /// How long an identity assertion is valid.
    pub assertion_ttl: Duration,
    /// Lifetime of a bearer token from `POST /.latchkey/token`.
    pub token_ttl: Duration,
    pub rules: Rules,
    /// Normalized host → app. An app without upstream is known for return
    /// addresses and link hosts (forward-auth deployments) but not proxied.
    pub apps: HashMap<String, AppSettings>,
    /// Users from `[[users]]`, by normalized email. They win over the store.
    pub users: HashMap<String, User>,
    pub return_policy: ReturnPolicy,
    pub pages: Pages,
    pub mailer: std::sync::Arc<Mailer>,
}

pub struct RedisSettings {
    pub target: RedisTarget,
    pub key_prefix: String,
    /// Contents of `redis.ca_file`: the CAs trusted for TLS to Redis.
    pub ca_pem: Option<Vec<u8>>,
}

impl RedisSettings {
    /// The store these settings name (connects lazily, on first use).
    pub fn open(&self) -> Result<crate::store::RedisStore, crate::store::StoreError> {
        crate::store::RedisStore::open(&self.target, &self.key_prefix, self.ca_pem.as_deref())
    }
}

pub struct SessionSettings {
    /// The name actually used: `__Host-` + configured name when public_url is
    /// https and no cookie_domain is set.
    pub cookie_name: String,
    pub cookie_domain: Option<String>,
    pub idle_timeout: Duration,
    pub max_lifetime: Duration,
    /// `session.local_cache`: at most one second, `None` when off.
    pub local_cache: Option<Duration>,
}

pub struct LoginSettings {
    pub link_ttl: Duration,
    pub same_browser: bool,
    pub signup: Signup,
    pub allowed_domains: Vec<String>,
    pub default_roles: Vec<String>,
    /// Role → path to land on after sign-in when no return address was given.
    pub landing: BTreeMap<String, String>,
}

pub struct Limits {
    pub links_per_email: u64,
    pub links_per_ip: u64,
    pub link_window: Duration,
    pub verify_per_ip: u64,
    pub verify_window: Duration,
    pub code_attempts: u32,
    pub form_body_bytes: usize,
    /// Bearer tokens one user may get from `POST /.latchkey/token` per window.
    pub tokens_per_user: u64,
    pub token_window: Duration,
    /// Per-IP limits count an IPv6 client by its first this many bits (1 to
    /// 128): one /64 is one site, as one IPv4 address is.
    pub ipv6_prefix: u8,
}

pub struct AppSettings {
    pub host: String,
    pub upstream: Option<Upstream>,
}

/// Digits in the one-time code sent beside the link.
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

pub const CODE_DIGITS: u32 = 6;

/// Collects problems while compiling; each is one line naming its key.
#[derive(Default)]
struct Problems(Vec<String>);

impl Problems {
    fn add(&mut self, line: String) {
        self.0.push(line);
    }

    fn take<T>(&mut self, result: Result<T, Vec<String>>) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(lines) => {
                self.0.extend(lines);
                None
            }
        }
    }

    fn duration(&mut self, key: &str, value: &str) -> Duration {
        match humantime::parse_duration(value) {
            Ok(d) if !d.is_zero() => d,
            _ => {
                self.add(format!(
                    "{key}: {value:?} is not a duration; expected a positive duration like \"90s\", \"15m\" or \"12h\""
                ));
                Duration::from_secs(1)
            }
        }
    }

    fn socket_addr(&mut self, key: &str, value: &str) -> Option<SocketAddr> {
        match value.parse() {
            Ok(a) => Some(a),
            Err(_) => {
                self.add(format!(
                    "{key}: {value:?} is not an address to listen on; expected IP:PORT like \"0.0.0.0:8080\""
                ));
                None
            }
        }
    }
}

impl Settings {
    /// Validates everything, reporting every problem at once.
    pub fn compile(cfg: &FileConfig) -> Result<Settings, Vec<String>> {
        let mut p = Problems::default();
        let s = &cfg.server;

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
        let conn = compile_conn(&mut p, s);

        let redis = cfg.redis.as_ref().and_then(|r| compile_redis(&mut p, r));

        let secure = public_url.as_ref().is_some_and(|u| u.scheme() == "https");
        let session = compile_session(&mut p, cfg, secure);
        let login = compile_login(&mut p, cfg);
        let l = &cfg.limits;
        let limits = Limits {
            links_per_email: u64::from(l.links_per_email),
            links_per_ip: u64::from(l.links_per_ip),
            link_window: p.duration("limits.link_window", &l.link_window),
            verify_per_ip: u64::from(l.verify_per_ip),
            verify_window: p.duration("limits.verify_window", &l.verify_window),
            code_attempts: l.code_attempts.max(1),
            form_body_bytes: l.form_body_bytes as usize,
            tokens_per_user: u64::from(l.tokens_per_user),
            token_window: p.duration("limits.token_window", &l.token_window),
            ipv6_prefix: u8::try_from(l.ipv6_prefix)
                .ok()
                .filter(|b| (1..=128).contains(b))
                .unwrap_or(64),
        };
        if l.code_attempts == 0 {
            p.add("limits.code_attempts: 0 would void every code; expected 1 or more".into());
        }
        if !(1..=128).contains(&l.ipv6_prefix) {
            p.add(format!(
                "limits.ipv6_prefix: {} is out of range; expected 1 to 128 (the leading bits of an IPv6 address counted as one client, like 64)",
                l.ipv6_prefix
            ));
        }

        let headers = p.take(IdentityHeaders::from_config(&cfg.headers));
        let keys = p.take(Keys::from_config(&cfg.assertion.keys));
        let assertion_ttl = p.duration("assertion.ttl", &cfg.assertion.ttl);
        let token_ttl = p.duration("tokens.ttl", &cfg.tokens.ttl);
        let rules = p.take(Rules::compile(&cfg.rules, &cfg.access));
        let pages = p.take(Pages::new(&cfg.branding));
        let mailer = p
            .take(Mailer::from_config(&cfg.mail))
            .map(std::sync::Arc::new);

        let mut apps = HashMap::new();
        for (i, a) in cfg.apps.iter().enumerate() {
            let Some(host) =
                normalize_host(&a.host).filter(|h| !h.contains(':') || h.starts_with('['))
            else {
                p.add(format!(
                    "apps[{i}].host: {:?} is not a host name; expected like \"app.example.com\" (no scheme, no port)",
                    a.host
                ));
                continue;
            };
            let upstream = match a.upstream.as_deref() {
                None | Some("") => None,
                Some(u) => match Upstream::parse(u) {
                    Ok(up) => trust(
                        &mut p,
                        i,
                        up,
                        a.ca_file.as_deref(),
                        s.upstream_ca.as_deref(),
                    ),
                    Err(why) => {
                        p.add(format!("apps[{i}].upstream: {u:?}: {why}"));
                        None
                    }
                },
            };
            if apps
                .insert(
                    host.clone(),
                    AppSettings {
                        host: host.clone(),
                        upstream,
                    },
                )
                .is_some()
            {
                p.add(format!(
                    "apps[{i}].host: {host:?} is listed twice; expected each host once"
                ));
            }
        }

        let mut users = HashMap::new();
        for (i, u) in cfg.users.iter().enumerate() {
            let Some(email) = normalize_email(&u.email) else {
                p.add(format!(
                    "users[{i}].email: {:?} is not an email address; expected like \"alice@example.com\"",
                    u.email
                ));
                continue;
            };
            check_roles(&mut p, &format!("users[{i}].roles"), &u.roles);
            let user = User {
                id: user_id(&email),
                email: email.clone(),
                roles: u.roles.clone(),
                created_at: 0,
            };
            if users.insert(email.clone(), user).is_some() {
                p.add(format!(
                    "users[{i}].email: {email:?} is listed twice; expected each user once"
                ));
            }
        }

        let (
            Some(listen),
            Some(public_url),
            Some(headers),
            Some(keys),
            Some(rules),
            Some(pages),
            Some(mailer),
        ) = (listen, public_url, headers, keys, rules, pages, mailer)
        else {
            return Err(p.0);
        };
        if !p.0.is_empty() {
            return Err(p.0);
        }
        let public_host =
            normalize_host(public_url.host_str().unwrap_or_default()).unwrap_or_default();
        let app_hosts: Vec<String> = apps.keys().cloned().collect();
        let return_policy =
            ReturnPolicy::new(&public_url, &app_hosts, session.cookie_domain.as_deref());
        Ok(Settings {
            listen,
            public_url,
            public_host,
            secure,
            trusted_proxies,
            nginx_target,
            admin_listen: admin_listen.flatten(),
            upstream_timeout,
            tls,
            http_redirect_listen,
            conn,
            redis,
            session,
            login,
            limits,
            headers,
            keys,
            assertion_ttl,
            token_ttl,
            rules,
            apps,
            users,
            return_policy,
            pages,
            mailer,
        })
    }

    /// public_url's host or an `[[apps]]` host: the only hosts forward-auth
    /// judges.
    pub fn knows_host(&self, host: &str) -> bool {
        host == self.public_host || self.apps.contains_key(host)
    }

    /// What `latchkey check` prints for a config that compiles.
    pub fn describe(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "listen        {}{}",
            self.listen,
            self.tls
                .as_ref()
                .map(|t| format!(" (HTTPS, certificate {})", t.files.cert.display()))
                .unwrap_or_default()
        );
        if let Some(r) = self.http_redirect_listen {
            let _ = writeln!(out, "redirect      {r} (plain HTTP, redirects to HTTPS)");
        }
        let _ = writeln!(out, "public_url    {}", self.public_url);
        let _ = writeln!(
            out,
            "store         {}",
            match &self.redis {
                Some(r) => match &r.target {
                    RedisTarget::Url(url) => format!("redis ({})", redact_url(url)),
                    RedisTarget::Sentinel { master, nodes, .. } => format!(
                        "redis sentinel (master {master:?} via {})",
                        nodes
                            .iter()
                            .map(|n| redact_url(n))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                    RedisTarget::Cluster(nodes) => format!(
                        "redis cluster ({})",
                        nodes
                            .iter()
                            .map(|n| redact_url(n))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                },
                None => "memory (single instance, lost on restart)".into(),
            }
        );
        let _ = writeln!(
            out,
            "session       cookie {} · idle {} · max {}{}",
            self.session.cookie_name,
            humantime::format_duration(self.session.idle_timeout),
            humantime::format_duration(self.session.max_lifetime),
            self.session
                .cookie_domain
                .as_deref()
                .map(|d| format!(" · domain {d}"))
                .unwrap_or_default()
        );
        let _ = writeln!(
            out,
            "sign-in       signup {:?} · link valid {} · {} configured user(s)",
            self.login.signup,
            humantime::format_duration(self.login.link_ttl),
            self.users.len()
        );
        let keys = self.keys.describe();
        let _ = match keys.split_first() {
            None => writeln!(
                out,
                "signing keys  none: no X-Auth-Assertion, no bearer tokens, empty JWKS"
            ),
            Some(((kid, alg), rest)) => writeln!(
                out,
                "signing keys  {kid} ({}) signs · {} more published · assertions valid {} · bearer tokens {}",
                alg.name(),
                rest.len(),
                humantime::format_duration(self.assertion_ttl),
                humantime::format_duration(self.token_ttl)
            ),
        };
        let mut hosts: Vec<_> = self.apps.values().collect();
        hosts.sort_by(|a, b| a.host.cmp(&b.host));
        for a in hosts {
            let _ = writeln!(
                out,
                "app           {} → {}",
                a.host,
                a.upstream
                    .as_ref()
                    .map(|u| u.to_string())
                    .unwrap_or_else(|| "(forward-auth only)".into())
            );
        }
        let _ = writeln!(out, "rules:");
        out.push_str(&self.rules.describe());
        out
    }
}

/// Gives an https upstream its CA: the app's `ca_file`, else
/// `server.upstream_ca`, else the public web roots.
fn trust(
    p: &mut Problems,
    i: usize,
    up: Upstream,
    ca_file: Option<&str>,
    upstream_ca: Option<&str>,
) -> Option<Upstream> {
    if !up.is_https() {
        if let Some(ca) = ca_file {
            p.add(format!(
                "apps[{i}].ca_file: {ca:?} is set for the http upstream {up}; expected an https:// upstream (or no ca_file)"
            ));
            return None;
        }
        return Some(up);
    }
    let (key, ca) = match (ca_file, upstream_ca) {
        (Some(ca), _) => (format!("apps[{i}].ca_file"), ca),
        (None, Some(ca)) => ("server.upstream_ca".to_owned(), ca),
        (None, None) => return Some(up),
    };
    match up.trusting(Path::new(ca)) {
        Ok(up) => Some(up),
        Err(e) => {
            p.add(format!(
                "{key}: {ca:?}: {}; expected a file of PEM CA certificates",
                tls::explain(&e)
            ));
            None
        }
    }
}

fn compile_conn(p: &mut Problems, s: &crate::config::ServerConfig) -> ConnLimits {
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

const REDIS_URL_EXPECTED: &str = "expected like \"redis://127.0.0.1:6379/0\" or \"rediss://...\"";

/// `[redis]`: exactly one of url, sentinel, cluster; every URL checked.
fn compile_redis(p: &mut Problems, r: &crate::config::RedisConfig) -> Option<RedisSettings> {
    fn url_ok(p: &mut Problems, key: String, url: &str, unix: bool) -> bool {
        let schemes: &[&str] = if unix {
            &["redis://", "rediss://", "redis+unix://", "unix://"]
        } else {
            &["redis://", "rediss://"]
        };
        let ok = schemes.iter().any(|s| url.starts_with(s))
            && ::redis::IntoConnectionInfo::into_connection_info(url).is_ok();
        if !ok {
            p.add(format!(
                "{key}: {:?} is not a Redis URL; {REDIS_URL_EXPECTED}",
                redact_url(url)
            ));
        }
        ok
    }
    let given: Vec<&str> = [
        r.url.as_ref().map(|_| "redis.url"),
        r.sentinel.as_ref().map(|_| "redis.sentinel"),
        r.cluster.as_ref().map(|_| "redis.cluster"),
    ]
    .into_iter()
    .flatten()
    .collect();
    let target = match (&r.url, &r.sentinel, &r.cluster) {
        _ if given.len() > 1 => {
            p.add(format!(
                "redis: {} given together; expected exactly one of redis.url, redis.sentinel, redis.cluster",
                given.join(" and ")
            ));
            None
        }
        (Some(url), None, None) => {
            url_ok(p, "redis.url".into(), url, true).then(|| RedisTarget::Url(url.clone()))
        }
        (None, Some(s), None) => {
            let mut ok = true;
            if s.master.trim().is_empty() {
                p.add("redis.sentinel.master: empty; expected the name the sentinels know the master by, like \"mymaster\"".into());
                ok = false;
            }
            if s.nodes.is_empty() {
                p.add("redis.sentinel.nodes: empty; expected the sentinels' URLs, like [\"redis://10.0.0.1:26379\"]".into());
                ok = false;
            }
            for (i, n) in s.nodes.iter().enumerate() {
                ok &= url_ok(p, format!("redis.sentinel.nodes[{i}]"), n, false);
            }
            ok.then(|| RedisTarget::Sentinel {
                master: s.master.clone(),
                nodes: s.nodes.clone(),
                password: s.password.clone(),
            })
        }
        (None, None, Some(nodes)) => {
            let mut ok = true;
            if nodes.is_empty() {
                p.add("redis.cluster: empty; expected some of the cluster's node URLs, like [\"redis://10.0.0.1:7000\"]".into());
                ok = false;
            }
            for (i, n) in nodes.iter().enumerate() {
                ok &= url_ok(p, format!("redis.cluster[{i}]"), n, false);
            }
            ok.then(|| RedisTarget::Cluster(nodes.clone()))
        }
        _ => {
            p.add("redis: none of redis.url, redis.sentinel, redis.cluster is given; expected exactly one (or no [redis] table for the in-memory store)".into());
            None
        }
    };
    let ca_pem = r.ca_file.as_ref().and_then(|f| {
        crate::tls::read_ca_pem(f.as_ref())
            .map_err(|why| p.add(format!("redis.ca_file: {f:?} {why}")))
            .ok()
    });
    Some(RedisSettings {
        target: target?,
        key_prefix: r.key_prefix.clone().unwrap_or_else(|| "latchkey:".into()),
        ca_pem,
    })
}

fn compile_session(p: &mut Problems, cfg: &FileConfig, secure: bool) -> SessionSettings {
    let s = &cfg.session;
    if s.cookie_name.is_empty()
        || !s
            .cookie_name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        p.add(format!(
            "session.cookie_name: {:?} is not a cookie name; expected letters, digits, '_' or '-'",
            s.cookie_name
        ));
    }
    let cookie_domain = s.cookie_domain.as_deref().and_then(|d| {
        let d = d.trim_start_matches('.');
        match normalize_host(d) {
            Some(h) if h.contains('.') && !h.starts_with('[') => Some(h),
            _ => {
                p.add(format!(
                    "session.cookie_domain: {d:?} is not a domain; expected like \"example.com\""
                ));
                None
            }
        }
    });
    let idle_timeout = p.duration("session.idle_timeout", &s.idle_timeout);
    let max_lifetime = p.duration("session.max_lifetime", &s.max_lifetime);
    if idle_timeout > max_lifetime {
        p.add(format!(
            "session.idle_timeout: {:?} is longer than session.max_lifetime {:?}; expected idle_timeout <= max_lifetime",
            s.idle_timeout, s.max_lifetime
        ));
    }
    let cookie_name = if secure && cookie_domain.is_none() {
        format!("__Host-{}", s.cookie_name)
    } else {
        s.cookie_name.clone()
    };
    let local_cache = s.local_cache.as_deref().map(|v| {
        let d = p.duration("session.local_cache", v);
        if d > Duration::from_secs(1) {
            p.add(format!(
                "session.local_cache: {v:?} is longer than 1s; expected at most \"1s\", so that a revocation reaches every instance within a second"
            ));
        }
        d
    });
    SessionSettings {
        cookie_name,
        cookie_domain,
        idle_timeout,
        max_lifetime,
        local_cache,
    }
}

fn compile_login(p: &mut Problems, cfg: &FileConfig) -> LoginSettings {
    let l = &cfg.login;
    let signup = match l.signup.as_str() {
        "closed" => Signup::Closed,
        "domains" => Signup::Domains,
        "open" => Signup::Open,
        other => {
            p.add(format!(
                "login.signup: {other:?} is not a signup mode; expected one of closed, domains, open"
            ));
            Signup::Closed
        }
    };
    let mut allowed_domains = Vec::new();
    for (i, d) in l.allowed_domains.iter().enumerate() {
        match normalize_host(d.trim_start_matches('@')) {
            Some(h) if h.contains('.') => allowed_domains.push(h),
            _ => p.add(format!(
                "login.allowed_domains[{i}]: {d:?} is not a domain; expected like \"example.com\""
            )),
        }
    }
    if signup == Signup::Domains && allowed_domains.is_empty() {
        p.add("login.allowed_domains: empty while login.signup = \"domains\"; expected at least one domain".into());
    }
    check_roles(p, "login.default_roles", &l.default_roles);
    let mut landing = BTreeMap::new();
    for (role, path) in &l.landing {
        if path.starts_with('/') && !path.starts_with("//") && !path.contains('\\') {
            landing.insert(role.clone(), path.clone());
        } else {
            p.add(format!(
                "login.landing.{role}: {path:?} is not a path on this site; expected like \"/admin\""
            ));
        }
    }
    LoginSettings {
        link_ttl: p.duration("login.link_ttl", &l.link_ttl),
        same_browser: l.same_browser,
        signup,
        allowed_domains,
        default_roles: l.default_roles.clone(),
        landing,
    }
}

fn check_roles(p: &mut Problems, key: &str, roles: &[String]) {
    for (i, r) in roles.iter().enumerate() {
        if let Err(why) = crate::policy::check_role_name(r) {
            p.add(format!("{key}[{i}]: {r:?} {why}"));
        }
    }
}

fn parse_net(s: &str) -> Option<IpNet> {
    s.parse::<IpNet>()
        .ok()
        .or_else(|| s.parse::<std::net::IpAddr>().ok().map(IpNet::from))
}
