//! Reload on SIGHUP: the config file read and compiled again (off the
//! runtime's threads) and, when it compiles, a new `App` made current for
//! new requests while requests in flight finish on the old one; otherwise
//! every problem logged and the running config kept. Either way the
//! certificate files are read again. Keys a running process cannot change
//! are named in a warning. Compiling is `app::settings`'; building the new
//! `App` is `App::reconfigured`'s.

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
    let path = match live.source.lock() {
        Ok(source) => source.as_ref().map(|s| s.path.clone()),
        Err(_) => None,
    };
    let Some(path) = path else {
        tracing::info!("SIGHUP: no config file to re-read; reading the certificate again");
        reload_cert(live);
        return;
    };
    tracing::info!(config = %path.display(), "SIGHUP: reloading the config");
    let read = path.clone();
    let compiled = tokio::task::spawn_blocking(move || {
        FileConfig::load(Some(&read))
            .map_err(|e| e.problems())
            .and_then(|cfg| Settings::compile(&cfg).map(|s| (cfg, s)))
    })
    .await;
    match compiled {
        Ok(Ok((config, settings))) => apply(live, config, settings),
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

fn apply(live: &Live, config: FileConfig, settings: Settings) {
    let Ok(mut source) = live.source.lock() else {
        tracing::error!("config reload skipped: reload state poisoned");
        return;
    };
    let Some(source) = source.as_mut() else {
        return;
    };
    for key in needs_restart(&source.config, &config) {
        tracing::warn!(
            key,
            "changed in the config file; takes effect only after a restart (the running value stays)"
        );
    }
    let new_mailer = json(&source.config.mail) != json(&config.mail);
    match (&live.cert, &settings.tls) {
        (Some(resolver), Some(cert)) => resolver.replace(cert.clone()),
        (Some(_), None) | (None, Some(_)) => {} // reported by needs_restart
        (None, None) => {}
    }
    let app = live.app.load().reconfigured(settings, new_mailer);
    live.app.store(Arc::new(app));
    source.config = config;
    tracing::info!(
        "config reloaded: new requests use it; requests in flight finish on the previous one"
    );
}

/// Keys whose change a running process cannot pick up.
fn needs_restart(old: &FileConfig, new: &FileConfig) -> Vec<&'static str> {
    let (o, n) = (&old.server, &new.server);
    let mut keys = Vec::new();
    if o.listen != n.listen {
        keys.push("server.listen");
    }
    if o.admin_listen != n.admin_listen {
        keys.push("server.admin_listen");
    }
    if o.http_redirect_listen != n.http_redirect_listen {
        keys.push("server.http_redirect_listen");
    }
    if o.tls.is_some() != n.tls.is_some() {
        keys.push("server.tls");
    }
    if o.max_connections != n.max_connections {
        keys.push("server.max_connections");
    }
    if json(&old.redis) != json(&new.redis) {
        keys.push("redis");
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
        new.server.header_read_timeout = "3s".into();
        assert_eq!(
            needs_restart(&old, &new),
            ["server.listen", "server.max_connections", "redis"]
        );
        assert!(needs_restart(&old, &old.clone()).is_empty());
    }
}
