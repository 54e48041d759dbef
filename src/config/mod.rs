//! The config file's format, exactly as users write it, and loading it.
//!
//! This module owns the TOML/env shape (`FileConfig`) and nothing else: every
//! field is kept as written (durations as strings, URLs as strings) so that
//! `settings.rs` can validate all of them in one pass and name the key, the
//! value and what was expected. Sources, lowest first: built-in defaults, the
//! TOML file, then `LATCHKEY_*` environment variables (`__` nests:
//! `LATCHKEY_SERVER__LISTEN`; other `LATCHKEY_` variables are not config).
//! Unknown keys are errors.
//! It also holds `redact_url` (in `redact.rs`), for every layer above that
//! prints a URL from the file, and `restart_only` (in `restart.rs`), the
//! keys a running process keeps until it is restarted.

mod redact;
mod restart;

pub use redact::redact_url;
pub use restart::restart_only;

use std::collections::BTreeMap;
use std::path::Path;

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

mod providers;
pub use providers::ProviderConfig;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FileConfig {
    pub server: ServerConfig,
    pub redis: Option<RedisConfig>,
    /// `[store]`: the embedded durable store (one instance, no `[redis]`).
    pub store: Option<StoreConfig>,
    pub session: SessionConfig,
    pub login: LoginConfig,
    pub mail: MailConfig,
    pub headers: HeadersConfig,
    pub assertion: AssertionConfig,
    pub tokens: TokensConfig,
    pub access: AccessConfig,
    pub limits: LimitsConfig,
    pub branding: BrandingConfig,
    pub users: Vec<UserConfig>,
    pub apps: Vec<AppConfig>,
    pub rules: Vec<RuleConfig>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    pub listen: String,
    pub public_url: String,
    pub trusted_proxies: Vec<String>,
    /// How nginx's `auth_request` names the original request to
    /// `/.latchkey/auth/request`: "X-Original-URL" or "X-Original-URI".
    pub nginx_target_header: String,
    pub admin_listen: Option<String>,
    /// How long a proxied request may wait for the upstream's response head.
    pub upstream_timeout: String,
    /// `[server.tls]`: serve HTTPS on `listen` with this certificate.
    pub tls: Option<TlsConfig>,
    /// A plain-HTTP listener that only redirects to HTTPS.
    pub http_redirect_listen: Option<String>,
    /// PEM CA certificates that https upstreams are verified against
    /// (instead of the public web roots), unless an app names its own.
    pub upstream_ca: Option<String>,
    /// How long in-flight requests may finish after SIGTERM.
    pub shutdown_grace: String,
    /// Open client connections at most; more are closed at once.
    pub max_connections: u32,
    /// A client must send a whole request head within this (slowloris).
    pub header_read_timeout: String,
    /// A connection with no traffic for this long is closed.
    pub keepalive_timeout: String,
    /// Bytes in one request head (request line and headers).
    pub max_header_bytes: u32,
    /// Header lines in one request.
    pub max_headers: u32,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain, leaf first.
    pub cert: String,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: String,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: "0.0.0.0:8080".into(),
            public_url: "http://localhost:8080".into(),
            trusted_proxies: Vec::new(),
            nginx_target_header: "X-Original-URL".into(),
            admin_listen: None,
            upstream_timeout: "60s".into(),
            tls: None,
            http_redirect_listen: None,
            upstream_ca: None,
            shutdown_grace: "30s".into(),
            max_connections: 10_000,
            header_read_timeout: "10s".into(),
            keepalive_timeout: "75s".into(),
            max_header_bytes: 32 * 1024,
            max_headers: 100,
        }
    }
}

/// Exactly one of `url`, `sentinel`, `cluster`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedisConfig {
    /// One server: `redis://host:port/db`, or `rediss://` for TLS.
    pub url: Option<String>,
    pub sentinel: Option<SentinelConfig>,
    /// URLs of some nodes of a Redis Cluster.
    pub cluster: Option<Vec<String>>,
    /// PEM file of the CA(s) to trust for `rediss://` instead of the system's roots.
    pub ca_file: Option<String>,
    /// Prefix for every key latchkey writes, so several deployments can share a Redis.
    pub key_prefix: Option<String>,
}

/// `[store]`: where the embedded store keeps its file.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// The store file, like `/var/lib/latchkey/store` (its directory is
    /// created if missing).
    pub path: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SentinelConfig {
    /// The name the sentinels know the master by.
    pub master: String,
    /// The sentinels' URLs, `redis://host:26379` (`rediss://` for TLS).
    pub nodes: Vec<String>,
    /// The master's password, if it has one.
    #[serde(default)]
    pub password: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SessionConfig {
    pub cookie_name: String,
    pub cookie_domain: Option<String>,
    pub idle_timeout: String,
    pub max_lifetime: String,
    /// With Redis: keep recently used sessions in memory, kept coherent by
    /// Redis's invalidation messages (`identity::cache`). On by default.
    pub cache: bool,
    /// At most this many sessions (and as many users) in that cache.
    pub cache_entries: usize,
    /// Replaced by `cache`: accepted, with a warning, and turns it on.
    pub local_cache: Option<String>,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            cookie_name: "latchkey_session".into(),
            cookie_domain: None,
            idle_timeout: "15m".into(),
            max_lifetime: "12h".into(),
            cache: true,
            cache_entries: 100_000,
            local_cache: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoginConfig {
    pub link_ttl: String,
    pub same_browser: bool,
    pub signup: String,
    pub allowed_domains: Vec<String>,
    pub default_roles: Vec<String>,
    pub landing: BTreeMap<String, String>,
    /// `[[login.providers]]`: sign-in with OpenID Connect and OAuth providers.
    pub providers: Vec<ProviderConfig>,
    /// The email link on the sign-in page; `false` for provider-only setups.
    pub email: bool,
    /// How long one exchange with a provider may take (then a 504 page).
    pub provider_timeout: String,
    /// Email the person after a sign-in from a browser they had not used.
    pub new_device_email: bool,
}

impl Default for LoginConfig {
    fn default() -> Self {
        LoginConfig {
            link_ttl: "10m".into(),
            same_browser: true,
            signup: "closed".into(),
            allowed_domains: Vec::new(),
            default_roles: vec!["member".into()],
            landing: BTreeMap::new(),
            providers: Vec::new(),
            email: true,
            provider_timeout: "10s".into(),
            new_device_email: true,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MailConfig {
    pub transport: String,
    pub from: String,
    pub smtp_url: Option<String>,
    /// PEM CA certificates to trust for the SMTP server's TLS (a private
    /// relay); the public web roots otherwise.
    pub ca_file: Option<String>,
    pub file_dir: Option<String>,
}

impl Default for MailConfig {
    fn default() -> Self {
        MailConfig {
            transport: "console".into(),
            from: "latchkey <login@localhost>".into(),
            smtp_url: None,
            ca_file: None,
            file_dir: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HeadersConfig {
    pub user_id: String,
    pub email: String,
    pub roles: String,
    /// The signed identity assertion (a JWT), sent when signing keys are configured.
    pub assertion: String,
}

impl Default for HeadersConfig {
    fn default() -> Self {
        HeadersConfig {
            user_id: "X-Auth-User-Id".into(),
            email: "X-Auth-Email".into(),
            roles: "X-Auth-Roles".into(),
            assertion: "X-Auth-Assertion".into(),
        }
    }
}

/// The keys that sign identity assertions and bearer tokens. The first
/// key signs; every key is published at `/.latchkey/jwks.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AssertionConfig {
    pub keys: Vec<KeyConfig>,
    /// How long an assertion is valid after it is made.
    pub ttl: String,
}

impl Default for AssertionConfig {
    fn default() -> Self {
        AssertionConfig {
            keys: Vec::new(),
            ttl: "60s".into(),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyConfig {
    /// The key id published in the JWKS and named in each token's header.
    pub kid: String,
    /// A PEM file holding a P-256 (ES256) or Ed25519 (EdDSA) private key.
    pub file: String,
}

/// Bearer tokens for API clients.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TokensConfig {
    /// Lifetime of a token from `POST /.latchkey/token` (never past the session's end).
    pub ttl: String,
}

impl Default for TokensConfig {
    fn default() -> Self {
        TokensConfig { ttl: "15m".into() }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AccessConfig {
    pub default: String,
    /// Match rule paths without regard to ASCII case (for upstreams such as IIS).
    pub case_insensitive_paths: bool,
}

impl Default for AccessConfig {
    fn default() -> Self {
        AccessConfig {
            default: "authenticated".into(),
            case_insensitive_paths: false,
        }
    }
}

/// Abuse and resource limits. Counts are per window.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    pub links_per_email: u32,
    pub links_per_ip: u32,
    pub link_window: String,
    pub verify_per_ip: u32,
    pub verify_window: String,
    pub code_attempts: u32,
    pub form_body_bytes: u32,
    pub tokens_per_user: u32,
    pub token_window: String,
    /// Leading bits of an IPv6 address that per-IP limits count as one client.
    pub ipv6_prefix: u32,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            links_per_email: 5,
            links_per_ip: 20,
            link_window: "15m".into(),
            verify_per_ip: 30,
            verify_window: "15m".into(),
            code_attempts: 3,
            form_body_bytes: 8192,
            tokens_per_user: 60,
            token_window: "15m".into(),
            ipv6_prefix: 64,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BrandingConfig {
    pub title: String,
    pub logo_url: Option<String>,
    pub accent_color: String,
    pub template_dir: Option<String>,
}

impl Default for BrandingConfig {
    fn default() -> Self {
        BrandingConfig {
            title: "Sign in".into(),
            logo_url: None,
            accent_color: "#2563eb".into(),
            template_dir: None,
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    pub email: String,
    #[serde(default)]
    pub roles: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppConfig {
    pub host: String,
    /// Absent: the host is known (return addresses, sign-in links) but not
    /// proxied, as in forward-auth deployments.
    pub upstream: Option<String>,
    /// PEM CA certificates this (https) upstream is verified against.
    #[serde(default)]
    pub ca_file: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    pub host: Option<String>,
    pub path: Option<String>,
    pub methods: Option<Vec<String>>,
    pub policy: String,
    pub roles: Option<Vec<String>>,
    /// Admit only a session that proved a passkey (step-up otherwise).
    #[serde(default)]
    pub mfa: bool,
}

/// The config could not be read or does not have the right shape.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct LoadError(#[source] Box<figment::Error>);

impl LoadError {
    /// One line per problem figment found, each naming the key.
    pub fn problems(&self) -> Vec<String> {
        self.0
            .clone()
            .into_iter()
            .map(|e| {
                let key = e.path.join(".");
                let at = e
                    .metadata
                    .as_ref()
                    .and_then(|m| m.source.as_ref())
                    .map(|s| format!(" (in {s})"))
                    .unwrap_or_default();
                if key.is_empty() {
                    format!("{}{at}", e.kind)
                } else {
                    format!("{key}: {}{at}", e.kind)
                }
            })
            .collect()
    }
}

impl FileConfig {
    /// Defaults, then the TOML file (if given), then `LATCHKEY_*` env.
    pub fn load(file: Option<&Path>) -> Result<FileConfig, LoadError> {
        let mut figment = Figment::from(Serialized::defaults(FileConfig::default()));
        if let Some(file) = file {
            figment = figment.merge(Toml::file_exact(file));
        }
        // Every key lives in a table, so only nested names are config
        // (`LATCHKEY_SERVER__LISTEN`); `LATCHKEY_CONFIG`, `LATCHKEY_LOG` and
        // the like are left alone.
        figment = figment.merge(
            Env::prefixed("LATCHKEY_")
                .filter(|k| k.as_str().contains("__"))
                .split("__"),
        );
        figment.extract().map_err(|e| LoadError(Box::new(e)))
    }

    /// Parses TOML text alone (no env): for tests and `check` of a string.
    pub fn from_toml(text: &str) -> Result<FileConfig, LoadError> {
        Figment::from(Serialized::defaults(FileConfig::default()))
            .merge(Toml::string(text))
            .extract()
            .map_err(|e| LoadError(Box::new(e)))
    }
}
