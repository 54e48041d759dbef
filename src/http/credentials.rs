//! What a request carries to say who is calling, read from its headers
//! once: the session cookies (at most `cookies::SAME_NAME_AT_MOST`) and an
//! `Authorization: Bearer` token. Whether they hold is identity's
//! business (`identity::identify`), which never reads headers itself.

use http::{header, HeaderMap};

use crate::http::cookies::{self, Cookies};
use crate::http::request::header_str;
use crate::identity::identify::Credentials;

/// The token of an `Authorization: Bearer <token>` header (scheme in any case).
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = header_str(headers, header::AUTHORIZATION)?;
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The request's credentials: its bearer token and its session cookies.
pub fn read<'h>(headers: &'h HeaderMap, cookies: &Cookies) -> Credentials<'h> {
    Credentials {
        bearer: bearer_token(headers),
        sessions: cookies::secrets(headers, &cookies.session_name).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn h(value: &'static str) -> HeaderMap {
        let mut m = HeaderMap::new();
        m.insert(header::AUTHORIZATION, HeaderValue::from_static(value));
        m
    }

    #[test]
    fn bearer_tokens_are_read_from_authorization() {
        assert_eq!(bearer_token(&h("Bearer abc.def.ghi")), Some("abc.def.ghi"));
        assert_eq!(bearer_token(&h("bearer  abc ")), Some("abc"));
        assert_eq!(bearer_token(&h("Basic dXNlcjpwdw==")), None);
        assert_eq!(bearer_token(&h("Bearer ")), None);
        assert_eq!(bearer_token(&HeaderMap::new()), None);
    }
}
