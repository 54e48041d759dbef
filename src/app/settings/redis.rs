//! `[redis]`: which Redis latchkey keeps its sessions in (one server,
//! Sentinel or Cluster), its key prefix and CA. Opening the connection is
//! the store's (`store::redis`); this file checks every URL and compiles
//! the target. Printing goes through `config::redact_url`, so no password
//! is ever printed.

use super::problems::Problems;
use crate::config::{redact_url, RedisConfig};
pub use crate::store::redis::Target as RedisTarget;

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

const REDIS_URL_EXPECTED: &str = "expected like \"redis://127.0.0.1:6379/0\" or \"rediss://...\"";

/// `[redis]`: exactly one of url, sentinel, cluster; every URL checked.
pub(super) fn compile(p: &mut Problems, r: &RedisConfig) -> Option<RedisSettings> {
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
