//! The running configuration: `FileConfig` validated and compiled once.
//!
//! `Settings::compile` is the one step that `check`, `serve` and `demo` share,
//! so `check` can never pass a config that `serve` refuses. It collects every
//! problem before reporting (`Problems`), each naming the key, the value found
//! and what was expected. Each section has one compile function: the ones
//! here (`server`, `redis`, `session`, `login`, `apps`, `users`) and the
//! owners' own (rules by `policy::rules`, templates by `http::pages`, mail by
//! `signin::mail`, header names by `upstream`, keys by `identity::keys`).
//! The compiled types live in the layer that reads them (`SessionSettings`
//! in identity, `Cookies` in http, `LoginSettings` and `Limits` in signin);
//! `Settings`, the composite, and the assembly live here. After start-up
//! nothing reads `FileConfig` again.

mod apps;
mod describe;
mod login;
mod problems;
mod redis;
mod server;
mod session;
mod users;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use ipnet::IpNet;
use url::Url;

pub use self::apps::AppSettings;
use self::problems::Problems;
pub use self::redis::{RedisSettings, RedisTarget};
pub use self::server::{ConnLimits, NginxTarget};
pub use crate::config::redact_url;
use crate::config::FileConfig;
use crate::http::cookies::Cookies;
use crate::http::pages::Pages;
use crate::identity::assertion::Signer;
use crate::identity::keys::Keys;
use crate::identity::oidc::{compile_providers, ProviderSettings};
use crate::identity::session::SessionSettings;
use crate::policy::path::normalize_host;
use crate::policy::redirect::ReturnPolicy;
use crate::policy::rules::Rules;
use crate::signin::mail::Mailer;
use crate::signin::settings::{Limits, LoginSettings};
use crate::store::records::User;
use crate::tls::LoadedCert;
use crate::upstream::IdentityHeaders;

pub struct Settings {
    pub listen: SocketAddr,
    pub public_url: Url,
    /// public_url's host, normalized (no port).
    pub public_host: String,
    /// public_url's origin, no trailing slash: the issuer of every token.
    pub issuer: String,
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
    /// `[store] path`: the embedded store's file (never with `redis`).
    pub store_path: Option<std::path::PathBuf>,
    pub session: SessionSettings,
    /// The cookies latchkey sets, their attributes compiled once.
    pub cookies: Cookies,
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
    /// `[[login.providers]]`, in the file's order (the buttons' order).
    pub providers: Vec<ProviderSettings>,
}

impl Settings {
    /// Validates everything, reporting every problem at once. The sections
    /// are compiled in the order of the file's tables, so problems are
    /// listed in that order too.
    pub fn compile(cfg: &FileConfig) -> Result<Settings, Vec<String>> {
        let mut p = Problems::default();
        let server = server::compile(&mut p, &cfg.server);
        let redis = cfg.redis.as_ref().and_then(|r| redis::compile(&mut p, r));
        let store_path = cfg.store.as_ref().and_then(|s| {
            p.take(crate::store::embedded::compile(
                &s.path,
                cfg.redis.is_some(),
            ))
        });
        let secure = server
            .public_url
            .as_ref()
            .is_some_and(|u| u.scheme() == "https");
        let session = session::compile(&mut p, &cfg.session, secure);
        let mut login = login::compile(&mut p, &cfg.login);
        let limits = login::compile_limits(&mut p, &cfg.limits);
        let headers = p.take(IdentityHeaders::from_config(&cfg.headers));
        let keys = p.take(Keys::from_config(&cfg.assertion.keys));
        let assertion_ttl = p.duration("assertion.ttl", &cfg.assertion.ttl);
        let token_ttl = p.duration("tokens.ttl", &cfg.tokens.ttl);
        let rules = p.take(Rules::compile(&cfg.rules, &cfg.access));
        let pages = p.take(Pages::new(&cfg.branding));
        let mailer = p
            .take(Mailer::from_config(&cfg.mail))
            .map(std::sync::Arc::new);
        let apps = apps::compile(&mut p, &cfg.apps, cfg.server.upstream_ca.as_deref());
        let users = users::compile(&mut p, &cfg.users);
        let providers = p
            .take(compile_providers(&cfg.login.providers))
            .unwrap_or_default();
        if !cfg.login.email && cfg.login.providers.is_empty() {
            p.add("login.email: false with no [[login.providers]]; nobody could sign in. Expected true, or at least one provider".into());
        }

        let (
            Some(listen),
            Some(public_url),
            Some(headers),
            Some(keys),
            Some(rules),
            Some(pages),
            Some(mailer),
        ) = (
            server.listen,
            server.public_url,
            headers,
            keys,
            rules,
            pages,
            mailer,
        )
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
        login.link_hosts = app_hosts
            .into_iter()
            .filter(|h| *h != public_host)
            .collect();
        let cookies = session.cookies(secure, login.link_ttl);
        Ok(Settings {
            listen,
            issuer: public_url.origin().ascii_serialization(),
            public_url,
            public_host,
            trusted_proxies: server.trusted_proxies,
            nginx_target: server.nginx_target,
            admin_listen: server.admin_listen,
            upstream_timeout: server.upstream_timeout,
            tls: server.tls,
            http_redirect_listen: server.http_redirect_listen,
            conn: server.conn,
            redis,
            store_path,
            session: session.session,
            cookies,
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
            providers,
        })
    }

    /// public_url's host or an `[[apps]]` host: the only hosts forward-auth
    /// judges.
    pub fn knows_host(&self, host: &str) -> bool {
        host == self.public_host || self.apps.contains_key(host)
    }

    /// What signs and checks latchkey's tokens: the keys and the issuer.
    pub fn signer(&self) -> Signer<'_> {
        Signer {
            keys: &self.keys,
            issuer: &self.issuer,
        }
    }
}
