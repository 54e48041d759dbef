// Cookie and header parsing: `request::cookie`, `proxy::strip_cookie` and
// `IdentityHeaders::strip` on arbitrary header sets. Properties: a stripped
// cookie can no longer be read; no header that folds (case, `_` as `-`) to
// an identity header name survives `strip`; nothing panics.

use http::{HeaderMap, HeaderName, HeaderValue};
use latchkey::config::HeadersConfig;
use latchkey::upstream::{strip_cookie, IdentityHeaders};
use latchkey::http::request::cookie;

fn fold(s: &str) -> String {
    s.to_ascii_lowercase().replace('_', "-")
}

/// The property this target checks, for one input (also replayed by the
/// test suite over `fuzz/regressions/headers/`).
pub fn check(data: &[u8]) {
    let mut lines = data.split(|&b| b == b'\n');
    let chosen = lines.next().unwrap_or(&[]);
    let chosen = String::from_utf8_lossy(chosen).into_owned();
    let mut headers = HeaderMap::new();
    for line in lines {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let (name, value) = (&line[..colon], &line[colon + 1..]);
        // Short names stand for the interesting ones.
        let name: &[u8] = match name {
            b"c" => b"cookie",
            b"e" => b"X_Auth_Email",
            b"r" => b"x-AUTH-roles",
            other => other,
        };
        if let (Ok(n), Ok(v)) = (HeaderName::from_bytes(name), HeaderValue::from_bytes(value)) {
            headers.append(n, v);
        }
    }

    for name in ["latchkey_session", "__Host-latchkey_csrf", chosen.as_str()] {
        let _ = cookie(&headers, name);
        if name.is_empty() || name.contains([';', '=']) || name.trim() != name {
            continue;
        }
        let mut h = headers.clone();
        strip_cookie(&mut h, name);
        assert_eq!(cookie(&h, name), None, "{name:?} survived in {h:?}");
    }

    let Ok(ids) = IdentityHeaders::from_config(&HeadersConfig::default()) else {
        panic!("default identity headers must compile");
    };
    let mut h = headers.clone();
    ids.strip(&mut h);
    let own = [
        fold(ids.user_id.as_str()),
        fold(ids.email.as_str()),
        fold(ids.roles.as_str()),
    ];
    for k in h.keys() {
        assert!(!own.contains(&fold(k.as_str())), "{k} survived strip");
    }
    ids.set(&mut h, Some(("id", &chosen, std::slice::from_ref(&chosen))));
    for name in [&ids.user_id, &ids.email, &ids.roles] {
        assert_eq!(h.get_all(name).iter().count(), 1);
    }
}
