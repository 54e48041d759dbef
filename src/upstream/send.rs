//! Sending one request to a plain-HTTP upstream over latchkey's own
//! connections (`hyper::client::conn::http1`, idle ones kept by `idle`),
//! and the one retry a request may get.
//!
//! A connection goes back to the idle set only when it is known good: its
//! response was HTTP/1.1 without `Connection: close`, and its body was read
//! to the end (a response cut short, or whose client went away, closes its
//! connection). It is kept no longer than our idle timeout, nor than the
//! upstream's own `Keep-Alive: timeout`, less a margin for the time the
//! response took to reach us.
//!
//! An idle connection can still die between that check and its use (the
//! upstream's keep-alive timer fires as the request goes out, the upstream
//! restarts). A request is sent again, once and on a new connection, only
//! when it cannot have reached the upstream twice, as nginx does with its
//! cached connections:
//!
//! - hyper gives the request back: it was never written (the connection
//!   was found closed first), whatever its method;
//! - it went out on a reused connection, its method is idempotent (RFC 9110
//!   §9.2.2: GET, HEAD, OPTIONS, TRACE, PUT, DELETE), it has no body, and
//!   the connection closed before any response came back.
//!
//! A POST that was written is never sent again, even when no answer came:
//! the upstream may have acted on it. Neither is anything once a response
//! head has arrived, nor a request on a connection opened for it (a new
//! connection that fails is the upstream failing, not a stale pool).

use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderMap, HeaderName};
use http::uri::Authority;
use http::{Method, Request, Response, Uri, Version};
use http_body_util::BodyExt;
use hyper::body::{Body as HttpBody, Frame, Incoming, SizeHint};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::error::ProxyError;
use super::hop::connection_tokens;
use super::idle::IdleSets;
use super::up_body::UpBody;
use crate::Body;

const KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");

/// What it takes to send a request again that has no body: its head.
struct Replay {
    method: Method,
    uri: Uri,
    headers: HeaderMap,
}

impl Replay {
    /// The head of `req` when `req` may be sent again after it was written
    /// (an idempotent method, no body).
    fn of(req: &Request<UpBody>) -> Option<Replay> {
        let idempotent = matches!(
            *req.method(),
            Method::GET
                | Method::HEAD
                | Method::OPTIONS
                | Method::TRACE
                | Method::PUT
                | Method::DELETE
        );
        (idempotent && req.body().is_end_stream()).then(|| Replay {
            method: req.method().clone(),
            uri: req.uri().clone(),
            headers: req.headers().clone(),
        })
    }

    fn into_request(self) -> Request<UpBody> {
        let mut req = Request::new(UpBody::Empty);
        *req.method_mut() = self.method;
        *req.uri_mut() = self.uri;
        *req.version_mut() = Version::HTTP_11;
        *req.headers_mut() = self.headers;
        req
    }
}

/// Whether `e` says the connection closed (or broke) before a response
/// head came back, rather than the upstream answering something unreadable.
fn closed_before_response(e: &hyper::Error) -> bool {
    if e.is_incomplete_message() || e.is_canceled() || e.is_closed() {
        return true;
    }
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind::*;
            return matches!(
                io.kind(),
                ConnectionReset | ConnectionAborted | BrokenPipe | UnexpectedEof
            );
        }
        source = s.source();
    }
    false
}

/// Sends `req` (origin-form target, `Host` set) to the plain-HTTP upstream
/// at `upstream`: on an idle connection from `sets` when there is one, else
/// on a new one (within `connect_timeout`); sent again once under the rule
/// above. The response body gives its connection back when read to the end.
pub(super) async fn send(
    sets: &Arc<IdleSets>,
    upstream: &Authority,
    connect_timeout: Duration,
    req: Request<Incoming>,
) -> Result<Response<Body>, ProxyError> {
    let mut req = req.map(UpBody::Client);
    let mut retried = false;
    loop {
        let reused = if retried { None } else { sets.take(upstream) };
        let (mut conn, home, reused) = match reused {
            Some((conn, home)) => (conn, home, true),
            None => (
                connect(upstream, connect_timeout).await?,
                sets.here(),
                false,
            ),
        };
        tracing::trace!(%upstream, reused, retried, "upstream connection");
        if let Err(e) = conn.ready().await {
            if reused {
                // Found dead before a byte was written: the next one.
                continue;
            }
            return Err(ProxyError::Upstream(Box::new(e)));
        }
        let replay = if reused && !retried {
            Replay::of(&req)
        } else {
            None
        };
        match conn.try_send_request(req).await {
            Ok(resp) => return Ok(returning(resp, conn, home, sets, upstream)),
            Err(mut e) => {
                let again = match e.take_message() {
                    Some(unsent) => Some(unsent),
                    None if closed_before_response(e.error()) => replay.map(Replay::into_request),
                    None => None,
                };
                match again {
                    Some(again) if !retried => {
                        tracing::debug!(
                            error = %e.error(),
                            %upstream,
                            "pooled upstream connection closed; sending again on a new one"
                        );
                        retried = true;
                        req = again;
                    }
                    _ => {
                        tracing::debug!(
                            error = %e.error(),
                            cause = ?std::error::Error::source(e.error()),
                            reused,
                            retried,
                            %upstream,
                            "upstream request failed; not sent again"
                        );
                        return Err(ProxyError::Upstream(Box::new(e.into_error())));
                    }
                }
            }
        }
    }
}

/// A new connection to `upstream` (`TCP_NODELAY`), its driver spawned on
/// this worker.
async fn connect(
    upstream: &Authority,
    timeout: Duration,
) -> Result<SendRequest<UpBody>, ProxyError> {
    let host = upstream.host();
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let port = upstream.port_u16().unwrap_or(80);
    let tcp = match tokio::time::timeout(timeout, TcpStream::connect((host, port))).await {
        Err(_) => {
            return Err(ProxyError::Connect(
                format!("no connection within {timeout:?}").into(),
            ))
        }
        Ok(Err(e)) => return Err(ProxyError::Connect(Box::new(e))),
        Ok(Ok(tcp)) => tcp,
    };
    let _ = tcp.set_nodelay(true);
    let (send, conn) = http1::handshake(TokioIo::new(tcp))
        .await
        .map_err(|e| ProxyError::Connect(Box::new(e)))?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!(error = %e, "upstream connection ended with an error");
        }
    });
    Ok(send)
}

/// How long the upstream keeps an idle connection, when it says
/// (`Keep-Alive: timeout=N`), less a margin: the response took time to
/// reach us, so its timer started before ours.
fn upstream_keep(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(KEEP_ALIVE)?.to_str().ok()?;
    value.split(',').find_map(|param| {
        let (name, secs) = param.split_once('=')?;
        if !name.trim().eq_ignore_ascii_case("timeout") {
            return None;
        }
        let t = Duration::from_secs(secs.trim().trim_matches('"').parse().ok()?);
        Some(t.saturating_sub(Duration::from_secs(1)).max(t / 2))
    })
}

/// Whether the connection may carry another request after `resp`, and for
/// how long the upstream keeps it (when it says).
fn reusable(resp: &Response<Incoming>) -> Option<Option<Duration>> {
    let close = connection_tokens(resp.headers()).any(|t| t.eq_ignore_ascii_case(b"close"));
    (resp.version() == Version::HTTP_11 && !close).then(|| upstream_keep(resp.headers()))
}

/// `resp` with a body that gives `conn` back to `sets` once read to the
/// end, when the connection may be reused.
fn returning(
    resp: Response<Incoming>,
    conn: SendRequest<UpBody>,
    home: usize,
    sets: &Arc<IdleSets>,
    upstream: &Authority,
) -> Response<Body> {
    let back = reusable(&resp).map(|keep| Back {
        home,
        sets: sets.clone(),
        upstream: upstream.clone(),
        conn,
        keep,
    });
    resp.map(|inner| {
        let mut body = Returning { inner, back };
        if body.inner.is_end_stream() {
            body.release();
        }
        body.boxed()
    })
}

/// A connection on its way back to the idle set.
struct Back {
    /// The set it belongs to (`idle`).
    home: usize,
    sets: Arc<IdleSets>,
    upstream: Authority,
    conn: SendRequest<UpBody>,
    keep: Option<Duration>,
}

/// A response body that gives its connection back at its end; dropped
/// before (the client went away, the body broke), it closes it.
struct Returning {
    inner: Incoming,
    back: Option<Back>,
}

impl Returning {
    fn release(&mut self) {
        if let Some(back) = self.back.take() {
            back.sets
                .put(back.home, &back.upstream, back.conn, back.keep);
        }
    }
}

impl HttpBody for Returning {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.get_mut();
        let frame = ready!(Pin::new(&mut this.inner).poll_frame(cx));
        match &frame {
            None => this.release(),
            Some(Ok(_)) if this.inner.is_end_stream() => this.release(),
            Some(Ok(_)) => {}
            Some(Err(_)) => this.back = None,
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::upstream::test_headers::map;

    #[test]
    fn the_upstreams_keep_alive_less_a_margin() {
        let s = Duration::from_secs;
        let cases: &[(&str, Option<Duration>)] = &[
            ("timeout=5, max=100", Some(s(4))),
            ("max=100, Timeout = 60", Some(s(59))),
            ("timeout=1", Some(Duration::from_millis(500))),
            ("timeout=0", Some(s(0))),
            ("timeout=soon", None),
            ("max=3", None),
        ];
        for (value, want) in cases {
            assert_eq!(
                upstream_keep(&map(&[("keep-alive", value)])),
                *want,
                "{value}"
            );
        }
        assert_eq!(upstream_keep(&map(&[])), None);
    }

    #[test]
    fn only_idempotent_requests_without_a_body_replay() {
        for (method, want) in [
            (Method::GET, true),
            (Method::HEAD, true),
            (Method::PUT, true),
            (Method::DELETE, true),
            (Method::OPTIONS, true),
            (Method::POST, false),
            (Method::PATCH, false),
        ] {
            let mut req = Request::new(UpBody::Empty);
            *req.method_mut() = method.clone();
            assert_eq!(Replay::of(&req).is_some(), want, "{method}");
        }
    }
}
