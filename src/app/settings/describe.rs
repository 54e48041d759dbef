//! What `latchkey check` prints for a config that compiles: one line per
//! part (listeners, store, session, sign-in, keys, apps) and the rules.
//! Never a password: Redis and SMTP URLs go through `redact_url`.

use std::fmt::Write as _;

use super::redis::RedisTarget;
use super::Settings;
use crate::config::redact_url;

impl Settings {
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
                None => match &self.store_path {
                    Some(path) => format!("embedded ({})", path.display()),
                    None => "memory (single instance, lost on restart)".into(),
                },
            }
        );
        let _ = writeln!(
            out,
            "session       cookie {} · idle {} · max {}{}",
            self.cookies.session_name,
            humantime::format_duration(self.session.idle_timeout),
            humantime::format_duration(self.session.max_lifetime),
            self.cookies
                .domain
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
        let _ = writeln!(out, "mail          {}", self.mailer.describe());
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
