//! Upgrades: only WebSocket passes, and only when both sides say so. The
//! request side tells a WebSocket upgrade from every other one (those lose
//! their headers with the hop-by-hop ones, in `hop`); the response side
//! checks the upstream's 101 and joins the two upgraded connections. The
//! server must serve connections with upgrades enabled for the client side
//! to complete (`server`'s job).

use http::header::{HeaderMap, HeaderValue, CONNECTION, UPGRADE};
use http::Response;
use hyper::body::Incoming;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;

use super::error::ProxyError;
use super::hop::{connection_tokens, one_value};

/// The one protocol a request may switch to through latchkey (RFC 6455's
/// token, compared without regard to case). h2c in particular never passes:
/// an app that switched to it would serve every request inside the tunnel
/// unjudged (and RFC 9113 §3.1 retires that upgrade anyway).
const WEBSOCKET: &[u8] = b"websocket";

/// Whether the request asks to switch to WebSocket and nothing else:
/// `Connection: upgrade` and exactly one `Upgrade` header that is exactly
/// `websocket`. Any other upgrade (`h2c`, `websocket, h2c`, two `Upgrade`
/// headers, `TLS/1.2`) is not one: its headers are removed as hop-by-hop
/// and the request is forwarded as a plain request.
fn is_websocket_upgrade(headers: &HeaderMap) -> bool {
    one_value(headers, &UPGRADE).is_some_and(is_websocket)
        && connection_tokens(headers).any(|t| t.eq_ignore_ascii_case(b"upgrade"))
}

/// `Upgrade: websocket`, in any case, with nothing else listed.
fn is_websocket(protocol: &HeaderValue) -> bool {
    protocol
        .as_bytes()
        .trim_ascii()
        .eq_ignore_ascii_case(WEBSOCKET)
}

/// The client's side of the upgrade, when `req` asks for WebSocket (and
/// nothing else); `None` forwards it as a plain request.
pub(super) fn asked<B>(req: &mut http::Request<B>) -> Option<OnUpgrade> {
    is_websocket_upgrade(req.headers()).then(|| hyper::upgrade::on(req))
}

/// Asks the upstream for the WebSocket upgrade the client asked for (the
/// client's own `Connection` and `Upgrade` are gone with the hop-by-hop
/// headers by now).
pub(super) fn ask(headers: &mut HeaderMap) {
    headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
}

/// The upstream answered 101 (`protocol`: its one `Upgrade` value, read
/// before the hop-by-hop headers went): when the client asked for WebSocket
/// and that is what the upstream switched to, says so to the client and
/// joins both upgraded connections in a spawned task; else a 502.
pub(super) fn join(
    resp: &mut Response<Incoming>,
    client_upgrade: Option<OnUpgrade>,
    protocol: Option<HeaderValue>,
) -> Result<(), ProxyError> {
    let Some(client_upgrade) = client_upgrade else {
        return Err(ProxyError::UnaskedUpgrade);
    };
    match protocol {
        Some(protocol) if is_websocket(&protocol) => {
            resp.headers_mut().insert(UPGRADE, protocol);
        }
        _ => return Err(ProxyError::WrongUpgrade),
    }
    resp.headers_mut()
        .insert(CONNECTION, HeaderValue::from_static("upgrade"));
    let upstream_upgrade = hyper::upgrade::on(resp);
    tokio::spawn(async move {
        match tokio::try_join!(client_upgrade, upstream_upgrade) {
            Ok((client, upstream)) => {
                let mut client = TokioIo::new(client);
                let mut upstream = TokioIo::new(upstream);
                if let Err(e) = tokio::io::copy_bidirectional(&mut client, &mut upstream).await {
                    tracing::debug!(error = %e, "upgraded connection ended with an error");
                }
            }
            Err(e) => tracing::debug!(error = %e, "upgrade did not complete"),
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::upstream::test_headers::{map, Pairs};

    #[test]
    fn only_an_exact_websocket_upgrade_is_one() {
        let cases: &[(Pairs, bool)] = &[
            (&[("connection", "Upgrade"), ("upgrade", "websocket")], true),
            (
                &[
                    ("connection", "keep-alive, upgrade"),
                    ("upgrade", "WebSocket"),
                ],
                true,
            ),
            (
                &[
                    ("connection", "x"),
                    ("connection", "upgrade"),
                    ("upgrade", "websocket"),
                ],
                true,
            ),
            (
                &[
                    ("connection", "Upgrade, HTTP2-Settings"),
                    ("upgrade", "h2c"),
                ],
                false,
            ),
            (
                &[("connection", "Upgrade"), ("upgrade", "websocket, h2c")],
                false,
            ),
            (
                &[("connection", "Upgrade"), ("upgrade", "h2c, websocket")],
                false,
            ),
            (
                &[
                    ("connection", "Upgrade"),
                    ("upgrade", "websocket"),
                    ("upgrade", "h2c"),
                ],
                false,
            ),
            (
                &[("connection", "Upgrade"), ("upgrade", "websocket/13")],
                false,
            ),
            (&[("connection", "Upgrade"), ("upgrade", "")], false),
            (&[("connection", "Upgrade")], false),
            (
                &[("connection", "keep-alive"), ("upgrade", "websocket")],
                false,
            ),
            (&[("upgrade", "websocket")], false),
        ];
        for (input, want) in cases {
            assert_eq!(is_websocket_upgrade(&map(input)), *want, "{input:?}");
        }
    }
}
