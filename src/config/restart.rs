//! The keys a running process cannot change (listeners, `[server.tls]` on
//! or off, `max_connections`, `[redis]`, `[store]`), each with a value fit
//! to print and to publish: Redis URLs go through `redact_url` and the
//! Sentinel password is shown only as set or not. SIGHUP's reload compares
//! them to name what waits for a restart; the admin listener publishes the
//! running ones (`GET /config/restart-only`) and `latchkey check --running`
//! compares a file's with them. A change to a password alone is therefore
//! not seen by `check --running` (the reload still sees it and keeps the
//! running value).

use super::{redact_url, FileConfig, RedisConfig};

/// `(key, printable value)` for every restart-only key of `cfg`, in a fixed
/// order; `"none"` for a table or key that is not set.
pub fn restart_only(cfg: &FileConfig) -> Vec<(&'static str, String)> {
    let s = &cfg.server;
    let opt = |v: &Option<String>| v.clone().unwrap_or_else(|| "none".into());
    vec![
        ("server.listen", s.listen.clone()),
        ("server.admin_listen", opt(&s.admin_listen)),
        ("server.http_redirect_listen", opt(&s.http_redirect_listen)),
        (
            "server.tls",
            if s.tls.is_some() { "on" } else { "off" }.into(),
        ),
        ("server.max_connections", s.max_connections.to_string()),
        ("redis", cfg.redis.as_ref().map_or("none".into(), redis)),
        (
            "store",
            cfg.store
                .as_ref()
                .map_or("none".into(), |st| format!("path = {:?}", st.path)),
        ),
    ]
}

/// `[redis]` in one line, passwords hidden.
fn redis(r: &RedisConfig) -> String {
    let mut parts = Vec::new();
    if let Some(url) = &r.url {
        parts.push(format!("url = {:?}", redact_url(url)));
    }
    if let Some(s) = &r.sentinel {
        let nodes: Vec<String> = s.nodes.iter().map(|n| redact_url(n)).collect();
        parts.push(format!(
            "sentinel = {{ master = {:?}, nodes = {nodes:?}, password = {} }}",
            s.master,
            if s.password.is_some() { "set" } else { "none" }
        ));
    }
    if let Some(c) = &r.cluster {
        let nodes: Vec<String> = c.iter().map(|n| redact_url(n)).collect();
        parts.push(format!("cluster = {nodes:?}"));
    }
    if let Some(ca) = &r.ca_file {
        parts.push(format!("ca_file = {ca:?}"));
    }
    if let Some(p) = &r.key_prefix {
        parts.push(format!("key_prefix = {p:?}"));
    }
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn passwords_are_not_published() {
        let cfg = FileConfig {
            redis: Some(RedisConfig {
                url: Some("redis://u:hunter2@127.0.0.1:6379/0".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let keys = restart_only(&cfg);
        let redis = &keys.iter().find(|(k, _)| *k == "redis").unwrap().1;
        assert!(!redis.contains("hunter2"), "{redis}");
        assert!(redis.contains("127.0.0.1:6379"), "{redis}");
        let store = &keys.iter().find(|(k, _)| *k == "store").unwrap().1;
        assert_eq!(store, "none");

        // Sentinel's own password, and odd spellings in node URLs.
        let cfg = FileConfig {
            redis: Some(RedisConfig {
                sentinel: Some(super::super::SentinelConfig {
                    master: "m".into(),
                    nodes: vec!["redis://:pa/ss@10.0.0.1:26379".into()],
                    password: Some("s3cret".into()),
                }),
                cluster: Some(vec!["rediss://u:p@ss@10.0.0.2:6379".into()]),
                ..Default::default()
            }),
            ..Default::default()
        };
        let redis = restart_only(&cfg)
            .into_iter()
            .find(|(k, _)| *k == "redis")
            .unwrap()
            .1;
        for secret in ["pa/ss", "s3cret", "p@ss"] {
            assert!(!redis.contains(secret), "{secret} in {redis}");
        }
        assert!(redis.contains("password = set"), "{redis}");
    }
}
