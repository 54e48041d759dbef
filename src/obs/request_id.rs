//! The per-request id: taken from an incoming `X-Request-Id` when it looks
//! sane (1 to 128 visible ASCII characters), generated otherwise. It names
//! the request's tracing span, goes to the upstream as `X-Request-Id`, and
//! comes back on forward-auth answers so the front proxy can pass it on.

use std::fmt;

use http::{HeaderMap, HeaderName, HeaderValue};
use rand::RngCore;

pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Longer incoming ids are replaced, not cut.
const MAX_LEN: usize = 128;

#[derive(Clone, PartialEq, Eq)]
pub struct RequestId(String);

impl RequestId {
    /// The client's (or front proxy's) id if it is sane, else a fresh one.
    pub fn from_headers(headers: &HeaderMap, rng: &mut impl RngCore) -> RequestId {
        let mut values = headers.get_all(&X_REQUEST_ID).iter();
        match (values.next(), values.next()) {
            (Some(v), None) if is_sane(v.as_bytes()) => {
                RequestId(String::from_utf8_lossy(v.as_bytes()).into_owned())
            }
            _ => RequestId::generate(rng),
        }
    }

    /// 128 random bits as 32 hex digits.
    pub fn generate(rng: &mut impl RngCore) -> RequestId {
        let mut bytes = [0u8; 16];
        rng.fill_bytes(&mut bytes);
        let mut s = String::with_capacity(32);
        for b in bytes {
            s.push(char::from(HEX[usize::from(b >> 4)]));
            s.push(char::from(HEX[usize::from(b & 0xf)]));
        }
        RequestId(s)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// As a header value (always valid: visible ASCII only).
    pub fn header_value(&self) -> Option<HeaderValue> {
        HeaderValue::from_str(&self.0).ok()
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn is_sane(v: &[u8]) -> bool {
    (1..=MAX_LEN).contains(&v.len()) && v.iter().all(|b| (0x21..=0x7e).contains(b))
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RequestId({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id_for(values: &[&[u8]]) -> RequestId {
        let mut h = HeaderMap::new();
        for v in values {
            if let Ok(v) = HeaderValue::from_bytes(v) {
                h.append(X_REQUEST_ID, v);
            }
        }
        RequestId::from_headers(&h, &mut rand::rng())
    }

    #[test]
    fn sane_ids_are_kept_and_others_replaced() {
        let long_ok = "a".repeat(128);
        let kept: &[&str] = &[
            "abc",
            "0f8c2a6e-3d7b-4c1e-9a55-2b6f0e7d1c3a",
            "Root=1-67891233-abcdef012345678912345678;Parent=53995c3f42cd8ad8",
            &long_ok,
        ];
        for v in kept {
            assert_eq!(id_for(&[v.as_bytes()]).as_str(), *v);
        }
        let too_long = "a".repeat(129);
        let replaced: &[&[&[u8]]] = &[
            &[],
            &[b""],
            &[b"has space"],
            &[b"tab\there"],
            &[b"caf\xc3\xa9"],
            &[b"del\x7f"],
            &[too_long.as_bytes()],
            &[b"one", b"two"],
        ];
        for values in replaced {
            let id = id_for(values);
            assert_eq!(id.as_str().len(), 32, "{values:?} gave {id:?}");
            assert!(id.as_str().bytes().all(|b| b.is_ascii_hexdigit()));
        }
    }

    #[test]
    fn generated_ids_differ() {
        let mut rng = rand::rng();
        assert_ne!(RequestId::generate(&mut rng), RequestId::generate(&mut rng));
    }
}
