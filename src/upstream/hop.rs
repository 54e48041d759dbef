//! Hop-by-hop headers: the ones that describe one connection and are never
//! forwarded, in either direction, plus every header a `Connection` header
//! names. Which upgrade may pass anyway is `upgrade`'s call; the identity
//! headers that must not be named after these are `identity`'s.

use http::header::{
    HeaderMap, HeaderName, HeaderValue, CONNECTION, TE, TRAILER, TRANSFER_ENCODING, UPGRADE,
};

const KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
const PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");
const HTTP2_SETTINGS: HeaderName = HeaderName::from_static("http2-settings");

/// Hop-by-hop headers (RFC 9110 §7.6.1, plus the legacy `Keep-Alive` and
/// `Proxy-Connection`, and h2c's `HTTP2-Settings`, RFC 7540 §3.2.1): they
/// describe one connection and are never forwarded.
pub(super) const HOP_BY_HOP: [HeaderName; 10] = [
    CONNECTION,
    KEEP_ALIVE,
    PROXY_CONNECTION,
    HTTP2_SETTINGS,
    TE,
    TRAILER,
    TRANSFER_ENCODING,
    UPGRADE,
    http::header::PROXY_AUTHENTICATE,
    http::header::PROXY_AUTHORIZATION,
];

/// The comma-separated tokens of every `Connection` header, trimmed.
pub(super) fn connection_tokens(headers: &HeaderMap) -> impl Iterator<Item = &[u8]> {
    headers
        .get_all(CONNECTION)
        .iter()
        .flat_map(|v| v.as_bytes().split(|b| *b == b','))
        .map(<[u8]>::trim_ascii)
        .filter(|t| !t.is_empty())
}

/// Removes hop-by-hop headers (`Connection`, `Keep-Alive`,
/// `Proxy-Connection`, `HTTP2-Settings`, `TE`, `Trailer`, `Transfer-Encoding`, `Upgrade`,
/// `Proxy-Authenticate`, `Proxy-Authorization`) and every header named in
/// `Connection`.
pub fn remove_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = connection_tokens(headers)
        .filter_map(|t| HeaderName::from_bytes(t).ok())
        .collect();
    for name in &named {
        headers.remove(name);
    }
    for name in &HOP_BY_HOP {
        headers.remove(name);
    }
}

/// A header's value when it is sent exactly once.
pub(super) fn one_value<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Option<&'a HeaderValue> {
    let mut values = headers.get_all(name).iter();
    match (values.next(), values.next()) {
        (Some(v), None) => Some(v),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::upstream::test_headers::{map, owned, pairs, Pairs};

    #[test]
    fn hop_by_hop_and_connection_named_headers_go() {
        let cases: &[(Pairs, Pairs)] = &[
            (
                &[
                    ("connection", "keep-alive"),
                    ("keep-alive", "timeout=5"),
                    ("proxy-connection", "keep-alive"),
                    ("te", "trailers"),
                    ("trailer", "x-checksum"),
                    ("transfer-encoding", "chunked"),
                    ("upgrade", "websocket"),
                    ("proxy-authenticate", "Basic"),
                    ("proxy-authorization", "Basic eA=="),
                    ("accept", "*/*"),
                ],
                &[("accept", "*/*")],
            ),
            (
                &[
                    ("connection", "close, X-Secret"),
                    ("connection", " x-other ,,"),
                    ("x-secret", "1"),
                    ("x-other", "2"),
                    ("x-kept", "3"),
                ],
                &[("x-kept", "3")],
            ),
            (&[("connection", "bad header name, x-a"), ("x-a", "1")], &[]),
            (
                &[("http2-settings", "AAMAAABk"), ("x-kept", "3")],
                &[("x-kept", "3")],
            ),
            (&[("x-kept", "3")], &[("x-kept", "3")]),
        ];
        for (input, want) in cases {
            let mut h = map(input);
            remove_hop_by_hop(&mut h);
            assert_eq!(pairs(&h), owned(want), "input {input:?}");
        }
    }
}
