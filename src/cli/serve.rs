//! `latchkey serve` (and the demo's server): binds the listeners, builds the
//! `App`, says where it serves (log line, `--ready-file`), and runs the
//! server until SIGTERM or Ctrl-C. Accepting, reloading and draining are
//! `server`'s; what a request means is `gate`'s.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use tokio::net::TcpListener;

use super::{config_path, load};
use crate::app::settings::Settings;
use crate::app::App;
use crate::server::{self, ConfigSource};

pub(crate) async fn serve(
    config: Option<PathBuf>,
    ready_file: Option<PathBuf>,
) -> anyhow::Result<()> {
    let path = config_path(config);
    let (config, settings) =
        load(&path).ok_or_else(|| anyhow::anyhow!("the config has problems; nothing started"))?;
    start(settings, Some(ConfigSource { path, config }), ready_file).await
}

/// Serves until SIGTERM or Ctrl-C; SIGHUP re-reads `source` (none: demo).
pub(crate) async fn start(
    settings: Settings,
    source: Option<ConfigSource>,
    ready_file: Option<PathBuf>,
) -> anyhow::Result<()> {
    let listen = settings.listen;
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("listening on {listen}"))?;
    let admin = match settings.admin_listen {
        Some(addr) => Some(
            TcpListener::bind(addr)
                .await
                .with_context(|| format!("listening on {addr} (server.admin_listen)"))?,
        ),
        None => None,
    };
    let listen = listener.local_addr()?;
    let admin_addr = admin.as_ref().map(TcpListener::local_addr).transpose()?;
    let app = Arc::new(App::new(settings)?);
    if let Some(addr) = admin_addr {
        tracing::info!(%addr, "admin listener: /healthz, /readyz, /metrics");
    }
    let https = app.settings.tls.is_some();
    tracing::info!(%listen, https, public_url = %app.settings.public_url, "latchkey is serving");
    if let Some(path) = ready_file {
        write_ready_file(&path, listen, admin_addr)?;
    }
    server::serve(app, listener, admin, source, shutdown_signal()).await?;
    Ok(())
}

/// Writes the bound addresses to `path` in one step (a temporary file
/// renamed into place), so a reader never sees half of it.
fn write_ready_file(
    path: &std::path::Path,
    listen: SocketAddr,
    admin: Option<SocketAddr>,
) -> anyhow::Result<()> {
    let mut text = format!("listen={listen}\n");
    if let Some(admin) = admin {
        text.push_str(&format!("admin={admin}\n"));
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text)
        .and_then(|()| std::fs::rename(&tmp, path))
        .with_context(|| format!("writing the ready file {}", path.display()))
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { () = ctrl_c => {}, () = term => {} }
    tracing::info!("shutting down: no new connections, finishing in-flight requests");
}
