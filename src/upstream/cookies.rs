//! latchkey's own cookies (session, CSRF, sign-in attempt) removed from the
//! `Cookie` header the app receives, every other cookie kept byte for byte.
//! Which cookies are latchkey's is the caller's to say; reading them is
//! `http::cookies`'.

use http::header::{HeaderMap, HeaderValue, COOKIE};

/// Removes cookie `name` from every `Cookie` header, keeping the others
/// byte-for-byte, separators included; drops a header left empty.
/// Allocates only when a header carries the cookie.
pub fn strip_cookie(headers: &mut HeaderMap, name: &str) {
    strip_cookies(headers, &[name]);
}

/// `strip_cookie` for several names in one pass over the `Cookie` headers.
pub fn strip_cookies(headers: &mut HeaderMap, names: &[&str]) {
    let doomed = |pair: &[u8]| {
        let name = cookie_name(pair);
        names.iter().any(|n| !n.is_empty() && n.as_bytes() == name)
    };
    let carries = |v: &HeaderValue| v.as_bytes().split(|b| *b == b';').any(doomed);
    if !headers.get_all(COOKIE).iter().any(carries) {
        return;
    }
    let mut kept_values = Vec::new();
    for value in headers.get_all(COOKIE) {
        if !carries(value) {
            kept_values.push(value.clone());
            continue;
        }
        let mut kept: Vec<u8> = Vec::with_capacity(value.len());
        for pair in value.as_bytes().split(|b| *b == b';') {
            if cookie_name(pair).is_empty() || doomed(pair) {
                continue;
            }
            if !kept.is_empty() {
                kept.push(b';');
            }
            kept.extend_from_slice(pair);
        }
        let kept = kept.trim_ascii();
        if !kept.is_empty() {
            // Pieces of a valid header value are valid header values.
            if let Ok(v) = HeaderValue::from_bytes(kept) {
                kept_values.push(v);
            }
        }
    }
    headers.remove(COOKIE);
    for v in kept_values {
        headers.append(COOKIE, v);
    }
}

/// The name of one `name=value` pair of a `Cookie` header, trimmed.
fn cookie_name(pair: &[u8]) -> &[u8] {
    let end = pair.iter().position(|b| *b == b'=').unwrap_or(pair.len());
    pair.get(..end).unwrap_or(pair).trim_ascii()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::upstream::test_headers::map;

    #[test]
    fn strip_cookie_keeps_the_others_byte_for_byte() {
        let cases: &[(&[&str], &[&str])] = &[
            (&["latchkey_session=abc"], &[]),
            (&["a=1; latchkey_session=abc; b=2"], &["a=1; b=2"]),
            (&["a=1;latchkey_session=abc;b=2"], &["a=1;b=2"]),
            (&["latchkey_session=abc;b=\"x y\""], &["b=\"x y\""]),
            (&["a=1;latchkey_session=abc"], &["a=1"]),
            (&["a=1", "latchkey_session=abc", "b=%20"], &["a=1", "b=%20"]),
            (&["latchkey_session=1; latchkey_session=2; c=3"], &["c=3"]),
            (
                &["latchkey_session_old=1;  x=latchkey_session"],
                &["latchkey_session_old=1;  x=latchkey_session"],
            ),
            (&["a=1; b=2"], &["a=1; b=2"]),
            (&[" latchkey_session = abc ; d=4"], &["d=4"]),
            (&["latchkey_session"], &[]),
            (&["a=1; ; latchkey_session=x"], &["a=1"]),
        ];
        for (input, want) in cases {
            let mut h = HeaderMap::new();
            for v in *input {
                h.append(COOKIE, HeaderValue::from_str(v).unwrap());
            }
            strip_cookie(&mut h, "latchkey_session");
            let got: Vec<&str> = h
                .get_all(COOKIE)
                .iter()
                .map(|v| v.to_str().unwrap())
                .collect();
            assert_eq!(got, *want, "input {input:?}");
        }
    }

    #[test]
    fn strip_cookies_removes_every_named_cookie_in_one_pass() {
        let own = ["latchkey_session", "latchkey_csrf", "latchkey_attempt"];
        let cases: &[(&[&str], &[&str])] = &[
            (
                &["a=1; latchkey_session=s; latchkey_csrf=c; b=2; latchkey_attempt=t"],
                &["a=1; b=2"],
            ),
            (
                &["latchkey_csrf=c", "x=latchkey_attempt"],
                &["x=latchkey_attempt"],
            ),
            (
                &["latchkey_csrf_x=1; latchkey=2"],
                &["latchkey_csrf_x=1; latchkey=2"],
            ),
            (&["latchkey_attempt=1", "latchkey_session=2"], &[]),
        ];
        for (input, want) in cases {
            let mut h = HeaderMap::new();
            for v in *input {
                h.append(COOKIE, HeaderValue::from_str(v).unwrap());
            }
            strip_cookies(&mut h, &own);
            let got: Vec<&str> = h
                .get_all(COOKIE)
                .iter()
                .map(|v| v.to_str().unwrap())
                .collect();
            assert_eq!(got, *want, "input {input:?}");
        }
    }

    #[test]
    fn strip_cookie_leaves_untouched_header_alone() {
        let mut h = map(&[("cookie", "a=1;b=2;  c=3")]);
        strip_cookie(&mut h, "latchkey_session");
        assert_eq!(h.get(COOKIE).unwrap(), "a=1;b=2;  c=3");
    }
}
