//! Reload on SIGHUP: the config file read and compiled again (off the
//! runtime's threads) and, when it compiles, a new `App` made current for
//! new requests while requests in flight finish on the old one; otherwise
//! every problem logged and the running config kept. Either way the
//! certificate files are read again. Keys a running process cannot change
//! (listeners, `[server.tls]` on or off, `max_connections`, `[redis]`,
//! `[store]`; `config::restart_only` lists them) are
//! named in the reload's log line and on `/metrics`, and the settings
//! swapped in keep their running values (the file is compiled once as
//! written, so a file `check` refuses is refused here, then again with
//! those keys as they run), so what the process says it runs is what it
//! runs. Compiling is `app::settings`'; building the new `App` is
//! `App::reconfigured`'s.

use std::sync::Arc;

use super::Live;
use crate::app::settings::Settings;
use crate::config::FileConfig;
use crate::tls;

#[cfg(unix)]
pub(super) fn hangup_signal() -> Option<tokio::signal::unix::Signal> {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::hangup()) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::error!(error = %e, "cannot listen for SIGHUP; config reload is off");
            None
        }
    }
}

#[cfg(not(unix))]
pub(super) fn hangup_signal() -> Option<NoSignal> {
    None
}

#[cfg(not(unix))]
pub(super) struct NoSignal;

#[cfg(not(unix))]
impl NoSignal {
    pub(super) async fn recv(&mut self) -> Option<()> {
        None
    }
}

/// Re-reads the config file and, if it compiles, makes it current for new
/// requests; else logs every problem and keeps the running one. Either way
/// the certificate files are read again.
pub(super) async fn reload(live: &Arc<Live>) {
    let running = match live.source.lock() {
        Ok(source) => source.as_ref().map(|s| (s.path.clone(), s.config.clone())),
        Err(_) => None,
    };
    let Some((path, running)) = running else {
        tracing::info!("SIGHUP: no config file to re-read; reading the certificate again");
        reload_cert(live);
        return;
    };
    tracing::info!(config = %path.display(), "SIGHUP: reloading the config");
    let read = path.clone();
    let compiled = tokio::task::spawn_blocking(move || {
        let mut cfg = FileConfig::load(Some(&read)).map_err(|e| e.problems())?;
        // As written first: what `check` would say of this file.
        let as_written = Settings::compile(&cfg)?;
        let pending = keep_running(&running, &mut cfg);
        let settings = match pending.is_empty() {
            true => as_written,
            false => Settings::compile(&cfg)?,
        };
        Ok::<_, Vec<String>>((cfg, settings, pending))
    })
    .await;
    match compiled {
        Ok(Ok((config, settings, pending))) => apply(live, config, settings, pending),
        Ok(Err(problems)) => {
            tracing::error!(
                config = %path.display(),
                problems = problems.len(),
                "config reload refused; still running the previous config"
            );
            for problem in &problems {
                tracing::error!(config = %path.display(), "config problem: {problem}");
            }
            reload_cert(live);
        }
        Err(e) => tracing::error!(error = %e, "config reload failed"),
    }
}

fn reload_cert(live: &Live) {
    if let Some(resolver) = &live.cert {
        match resolver.reload() {
            Ok(()) => {
                tracing::info!(cert = %resolver.files().cert.display(), "TLS certificate read again")
            }
            Err(e) => tracing::error!(
                error = %tls::explain(&e),
                "TLS certificate cannot be used; still serving the previous one"
            ),
        }
    }
}

/// Makes `settings` (compiled from `config`, restart-only keys already set
/// back to their running values) current, and says what waits for a
/// restart.
fn apply(live: &Live, config: FileConfig, settings: Settings, pending: Vec<&'static str>) {
    let Ok(mut source) = live.source.lock() else {
        tracing::error!("config reload skipped: reload state poisoned");
        return;
    };
    let Some(source) = source.as_mut() else {
        return;
    };
    let new_mailer = json(&source.config.mail) != json(&config.mail);
    if let (Some(resolver), Some(cert)) = (&live.cert, &settings.tls) {
        resolver.replace(cert.clone());
    }
    let app = match live.app.load().reconfigured(settings, new_mailer) {
        Ok(app) => app,
        Err(e) => {
            tracing::error!(error = %e, "config reload failed; the running config stays");
            return;
        }
    };
    live.app.store(Arc::new(app));
    source.config = config;
    if let Ok(mut keys) = live.restart_pending.lock() {
        keys.clone_from(&pending);
    }
    if new_mailer {
        tracing::info!("[mail] changed: new mail goes to a new queue; the previous one sends what it holds, then stops");
    }
    if pending.is_empty() {
        tracing::info!(
            "config reloaded: new requests use it; requests in flight finish on the previous one"
        );
    } else {
        tracing::warn!(
            "config reloaded; restart needed for: {} (their running values stay in effect)",
            pending.join(", ")
        );
    }
}

/// Sets every key of `new` whose change a running process cannot pick up
/// back to its value in `running`, and names those keys.
fn keep_running(running: &FileConfig, new: &mut FileConfig) -> Vec<&'static str> {
    let (o, n) = (&running.server, &mut new.server);
    let mut keys = Vec::new();
    if o.listen != n.listen {
        n.listen.clone_from(&o.listen);
        keys.push("server.listen");
    }
    if o.admin_listen != n.admin_listen {
        n.admin_listen.clone_from(&o.admin_listen);
        keys.push("server.admin_listen");
    }
    if o.http_redirect_listen != n.http_redirect_listen {
        n.http_redirect_listen.clone_from(&o.http_redirect_listen);
        keys.push("server.http_redirect_listen");
    }
    if o.tls.is_some() != n.tls.is_some() {
        n.tls.clone_from(&o.tls);
        keys.push("server.tls");
    }
    if o.max_connections != n.max_connections {
        n.max_connections = o.max_connections;
        keys.push("server.max_connections");
    }
    if json(&running.redis) != json(&new.redis) {
        new.redis.clone_from(&running.redis);
        keys.push("redis");
    }
    if json(&running.store) != json(&new.store) {
        new.store.clone_from(&running.store);
        keys.push("store");
    }
    keys
}

fn json<T: serde::Serialize>(v: &T) -> Option<serde_json::Value> {
    serde_json::to_value(v).ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn restart_keys_are_named() {
        let old = FileConfig::default();
        let mut new = FileConfig::default();
        new.server.listen = "127.0.0.1:1".into();
        new.server.max_connections = 5;
        new.redis = Some(crate::config::RedisConfig {
            url: Some("redis://127.0.0.1:1".into()),
            ..Default::default()
        });
        new.store = Some(crate::config::StoreConfig {
            path: "/tmp/elsewhere".into(),
        });
        new.server.header_read_timeout = "3s".into();
        assert_eq!(
            keep_running(&old, &mut new),
            ["server.listen", "server.max_connections", "redis", "store"]
        );
        // Set back: only the reloadable change is left.
        assert_eq!(new.server.listen, old.server.listen);
        assert_eq!(new.server.max_connections, old.server.max_connections);
        assert!(new.redis.is_none());
        assert!(new.store.is_none());
        assert_eq!(new.server.header_read_timeout, "3s");
        assert!(keep_running(&old, &mut new).is_empty());
    }
}
