//! `latchkey check`: compiles a config file and prints what it compiled to,
//! or every problem. With `--running ADMIN_URL` it also asks a running
//! instance's admin listener (`GET /config/restart-only`) for the values
//! it runs of the keys a reload cannot change, and names each one the file
//! changes: those take effect only after a restart (a SIGHUP keeps their
//! running values). Passwords are not published, so a change to a password
//! alone is not seen here.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;

use crate::config::restart_only;

/// How long the admin listener may take to answer.
const TIMEOUT: Duration = Duration::from_secs(5);
/// The answer is a few hundred bytes; more is not an admin listener.
const MAX_ANSWER: usize = 64 * 1024;

pub(crate) fn check(config: Option<PathBuf>, running: Option<String>) -> ExitCode {
    let path = super::config_path(config);
    let Some((cfg, settings)) = super::load(&path) else {
        return ExitCode::FAILURE;
    };
    print!("{}", settings.describe());
    println!("{}: ok", path.display());
    let Some(url) = running else {
        return ExitCode::SUCCESS;
    };
    let published = match super::run(|| fetch(&url)) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("latchkey: --running {url}: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let changed: Vec<(&str, String, String)> = restart_only(&cfg)
        .into_iter()
        .filter_map(|(key, file)| {
            let runs = published
                .get(key)
                .and_then(|v| v.as_str())
                .unwrap_or("unknown")
                .to_owned();
            (runs != file).then_some((key, runs, file))
        })
        .collect();
    if changed.is_empty() {
        println!("running instance at {url}: a reload (SIGHUP) applies everything in this file");
    } else {
        let keys: Vec<&str> = changed.iter().map(|(k, ..)| *k).collect();
        println!(
            "running instance at {url}: restart needed for: {} (a reload keeps their running values)",
            keys.join(", ")
        );
        for (key, runs, file) in &changed {
            println!("  {key}: runs {runs}; the file says {file}");
        }
    }
    ExitCode::SUCCESS
}

/// `GET {admin}/config/restart-only`, as a JSON object.
async fn fetch(admin: &str) -> anyhow::Result<serde_json::Map<String, serde_json::Value>> {
    let base = if admin.contains("://") {
        admin.to_owned()
    } else {
        format!("http://{admin}")
    };
    let url =
        url::Url::parse(&base).context("not a URL (give the admin listener, http://HOST:PORT)")?;
    anyhow::ensure!(
        url.scheme() == "http",
        "the admin listener speaks plain http, not {}",
        url.scheme()
    );
    let host = url.host_str().context("no host")?.to_owned();
    let port = url.port().unwrap_or(80);
    let get = async {
        let stream = tokio::net::TcpStream::connect((host.as_str(), port))
            .await
            .context("cannot connect to the admin listener")?;
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(conn);
        let req = http::Request::get("/config/restart-only")
            .header(http::header::HOST, format!("{host}:{port}"))
            .body(Empty::<Bytes>::new())?;
        let resp = sender.send_request(req).await?;
        let status = resp.status();
        let body = http_body_util::Limited::new(resp.into_body(), MAX_ANSWER)
            .collect()
            .await
            .map_err(|e| anyhow::anyhow!("reading the answer: {e}"))?
            .to_bytes();
        anyhow::ensure!(
            status.is_success(),
            "answered {status} (is this the admin listener, server.admin_listen?): {}",
            String::from_utf8_lossy(&body).trim()
        );
        Ok::<_, anyhow::Error>(body)
    };
    let body = tokio::time::timeout(TIMEOUT, get)
        .await
        .context("the admin listener did not answer within 5 s")??;
    serde_json::from_slice(&body).context("the admin listener's answer is not the expected JSON")
}
