//! The built-in echo app: an upstream that shows what it received.
//!
//! `latchkey demo` puts it behind the proxy so a person can see the identity
//! headers arrive; the tests use it as the upstream whose JSON answer says
//! exactly what the proxy forwarded. It knows nothing about latchkey's
//! config: it highlights headers named `X-Auth-*` (the default identity
//! names) and links to `/.latchkey/me` and `/.latchkey/logout`.
//!
//! Answers:
//! - `Accept` containing `text/html`: a small HTML page listing the method,
//!   the target and every header, all HTML-escaped.
//! - otherwise JSON: `{"method", "uri", "headers": [[name, value], ...],
//!   "body": <first 64 KiB, UTF-8 lossy>, "body_len": <bytes received>}`.
//! - `Connection: upgrade` + `Upgrade`: 101 with the same `Upgrade`, then
//!   every byte received on the upgraded connection is written back (a raw
//!   byte echo, not a WebSocket frame server).

use std::convert::Infallible;
use std::future::Future;
use std::time::Duration;

use http::header::{ACCEPT, CONNECTION, CONTENT_TYPE, UPGRADE};
use http::{HeaderValue, Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;

use crate::{full, Body};

/// How much of a request body the echo shows.
const BODY_SHOWN: usize = 64 * 1024;

/// Serves until `shutdown` resolves, then lets open requests finish (up to
/// a few seconds). Upgraded connections are not waited for.
pub async fn serve(listener: TcpListener, shutdown: impl Future<Output = ()> + Send + 'static) {
    let builder = auto::Builder::new(TokioExecutor::new());
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    let conn = builder
                        .serve_connection_with_upgrades(TokioIo::new(stream), service_fn(handle))
                        .into_owned();
                    let conn = graceful.watch(conn);
                    tokio::spawn(async move {
                        if let Err(e) = conn.await {
                            tracing::debug!(error = %e, "echo connection ended with an error");
                        }
                    });
                }
                Err(e) => {
                    // Out of file descriptors and the like: wait, do not spin.
                    tracing::warn!(error = %e, "echo: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        }
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(Duration::from_secs(5)) => {}
    }
}

async fn handle(req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    if wants_upgrade(&req) {
        return Ok(upgrade(req));
    }
    let wants_html = req
        .headers()
        .get_all(ACCEPT)
        .iter()
        .any(|v| v.as_bytes().windows(9).any(|w| w == b"text/html"));
    let (parts, body) = req.into_parts();
    let method = parts.method.as_str();
    let uri = parts.uri.to_string();
    let headers: Vec<(&str, String)> = parts
        .headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let (shown, len) = read_body(body).await;
    let response = if wants_html {
        Response::builder()
            .header(CONTENT_TYPE, "text/html; charset=utf-8")
            .body(full(html_page(method, &uri, &headers)))
    } else {
        let json = serde_json::json!({
            "method": method,
            "uri": uri,
            "headers": headers.iter().map(|(k, v)| [*k, v.as_str()]).collect::<Vec<_>>(),
            "body": String::from_utf8_lossy(&shown),
            "body_len": len,
        });
        Response::builder()
            .header(CONTENT_TYPE, "application/json")
            .body(full(json.to_string()))
    };
    Ok(response.unwrap_or_else(|_| plain(StatusCode::INTERNAL_SERVER_ERROR, "echo failed")))
}

/// Reads the whole body, keeping the first [`BODY_SHOWN`] bytes; returns
/// them and the total length. A broken body ends the count early.
async fn read_body(mut body: Incoming) -> (Vec<u8>, u64) {
    let mut shown = Vec::new();
    let mut len = 0u64;
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else { break };
        if let Ok(data) = frame.into_data() {
            len += data.len() as u64;
            let room = BODY_SHOWN.saturating_sub(shown.len());
            shown.extend_from_slice(&data[..room.min(data.len())]);
        }
    }
    (shown, len)
}

fn wants_upgrade(req: &Request<Incoming>) -> bool {
    req.headers().contains_key(UPGRADE)
        && req.headers().get_all(CONNECTION).iter().any(|v| {
            v.as_bytes()
                .split(|b| *b == b',')
                .any(|t| t.trim_ascii().eq_ignore_ascii_case(b"upgrade"))
        })
}

/// Answers 101 and echoes every byte on the upgraded connection.
fn upgrade(mut req: Request<Incoming>) -> Response<Body> {
    let protocol = req
        .headers()
        .get(UPGRADE)
        .cloned()
        .unwrap_or(HeaderValue::from_static("echo"));
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => {
                let (mut reader, mut writer) = tokio::io::split(TokioIo::new(upgraded));
                if let Err(e) = tokio::io::copy(&mut reader, &mut writer).await {
                    tracing::debug!(error = %e, "echo: upgraded connection ended with an error");
                }
            }
            Err(e) => tracing::debug!(error = %e, "echo: upgrade failed"),
        }
    });
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(UPGRADE, protocol)
        .header(CONNECTION, "upgrade")
        .body(full(""))
        .unwrap_or_else(|_| plain(StatusCode::INTERNAL_SERVER_ERROR, "echo failed"))
}

fn plain(status: StatusCode, text: &'static str) -> Response<Body> {
    let mut r = Response::new(full(text));
    *r.status_mut() = status;
    r
}

/// Escapes text for HTML element content and quoted attribute values.
fn escape(s: &str) -> String {
    minijinja::HtmlEscape(s).to_string()
}

fn html_page(method: &str, uri: &str, headers: &[(&str, String)]) -> String {
    use std::fmt::Write;
    let email = headers
        .iter()
        .find(|(k, _)| *k == "x-auth-email")
        .map(|(_, v)| v.as_str())
        .unwrap_or("");
    let who = if email.is_empty() {
        "You are not signed in (anonymous request).".to_owned()
    } else {
        format!("Signed in as <strong>{}</strong>.", escape(email))
    };
    let mut rows = String::new();
    for (name, value) in headers {
        let class = if name.starts_with("x-auth-") {
            " class=\"identity\""
        } else {
            ""
        };
        let _ = writeln!(
            rows,
            "<tr{class}><th>{}</th><td>{}</td></tr>",
            escape(name),
            escape(value)
        );
    }
    format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>latchkey echo</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 60rem; padding: 0 1rem; color: #111; }}
table {{ border-collapse: collapse; width: 100%; }}
th, td {{ text-align: left; padding: .3rem .6rem; border-bottom: 1px solid #ddd; font-family: ui-monospace, monospace; font-size: .9rem; vertical-align: top; word-break: break-all; }}
th {{ white-space: nowrap; }}
tr.identity {{ background: #fef3c7; font-weight: bold; }}
nav a {{ margin-right: 1rem; }}
</style>
</head>
<body>
<h1>latchkey echo</h1>
<p>{who}</p>
<nav><a href="/.latchkey/me">/.latchkey/me</a> <a href="/.latchkey/logout">Sign out</a></nav>
<h2>Request</h2>
<p><code>{method} {uri}</code></p>
<h2>Headers</h2>
<p>Identity headers set by latchkey are highlighted.</p>
<table>
{rows}</table>
</body>
</html>
"#,
        method = escape(method),
        uri = escape(uri),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_covers_the_five() {
        assert_eq!(
            escape(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#x27;&amp;&#x27;&lt;&#x2f;a&gt;"
        );
    }

    #[test]
    fn page_escapes_and_highlights() {
        let page = html_page(
            "GET",
            "/<script>?a=\"1\"",
            &[
                ("x-auth-email", "<b>@x".to_owned()),
                ("x-evil", "<script>alert(1)</script>".to_owned()),
            ],
        );
        assert!(!page.contains("<script>"), "{page}");
        assert!(!page.contains("<b>@x"), "{page}");
        assert!(page.contains("Signed in as <strong>&lt;b&gt;@x</strong>"));
        assert!(page.contains("<tr class=\"identity\"><th>x-auth-email</th>"));
        assert!(page.contains("&#x2f;&lt;script&gt;?a=&quot;1&quot;"));
        assert!(page.contains(r#"href="/.latchkey/logout""#));
        assert!(page.contains(r#"href="/.latchkey/me""#));
    }

    #[test]
    fn page_says_anonymous() {
        let page = html_page("GET", "/", &[("x-auth-email", String::new())]);
        assert!(page.contains("not signed in"));
    }
}
