//! The identity headers the app receives (`X-Auth-User-Id`, `-Email`,
//! `-Roles`, `-Assertion`, or the names `[headers]` gives): their names
//! checked once at start-up, every client-sent spelling of them removed, and
//! latchkey's values set. Who the user is comes in as an argument
//! (`identity`'s job); the other headers are `hop`'s and `forwarded`'s.

use http::header::{HeaderMap, HeaderName, HeaderValue};

use super::hop::HOP_BY_HOP;
use crate::config::HeadersConfig;

/// Headers an identity header may not be named after: latchkey sets or
/// removes these itself, so an identity in them would be lost or harmful.
const RESERVED: [&str; 8] = [
    "host",
    "cookie",
    "content-length",
    "content-type",
    "authorization",
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
];

/// Identity header names, pre-built once (no allocation per request).
#[derive(Debug, Clone)]
pub struct IdentityHeaders {
    pub user_id: HeaderName,
    pub email: HeaderName,
    pub roles: HeaderName,
    /// The signed identity assertion (`X-Auth-Assertion`).
    pub assertion: HeaderName,
}

impl IdentityHeaders {
    /// Checks and builds the three names from `[headers]`. Every problem
    /// names its key: `headers.email: "X Auth" is not a valid header name`.
    pub fn from_config(cfg: &HeadersConfig) -> Result<IdentityHeaders, Vec<String>> {
        let mut problems = Vec::new();
        let mut parse = |key: &str, value: &str| -> Option<HeaderName> {
            let name = match HeaderName::from_bytes(value.as_bytes()) {
                Ok(name) => name,
                Err(_) => {
                    problems.push(format!(
                        "headers.{key}: {value:?} is not a valid header name \
                         (expected letters, digits and '-', like \"X-Auth-Email\")"
                    ));
                    return None;
                }
            };
            let hop_by_hop = HOP_BY_HOP;
            let reserved = RESERVED
                .iter()
                .copied()
                .chain(hop_by_hop.iter().map(HeaderName::as_str))
                .find(|r| same_name(name.as_str().as_bytes(), r.as_bytes()));
            if let Some(r) = reserved {
                problems.push(format!(
                    "headers.{key}: {value:?} cannot be used, latchkey manages the {r:?} header itself \
                     (expected a name of your own, like \"X-Auth-Email\")"
                ));
                return None;
            }
            Some(name)
        };
        let user_id = parse("user_id", &cfg.user_id);
        let email = parse("email", &cfg.email);
        let roles = parse("roles", &cfg.roles);
        let assertion = parse("assertion", &cfg.assertion);
        let (Some(user_id), Some(email), Some(roles), Some(assertion)) =
            (user_id, email, roles, assertion)
        else {
            return Err(problems);
        };
        let named = [
            ("user_id", &user_id),
            ("email", &email),
            ("roles", &roles),
            ("assertion", &assertion),
        ];
        for (i, (a_key, a)) in named.iter().enumerate() {
            for (b_key, b) in &named[i + 1..] {
                if same_name(a.as_str().as_bytes(), b.as_str().as_bytes()) {
                    problems.push(format!(
                        "headers.{b_key}: {:?} is the same header as headers.{a_key} \
                         (expected different names)",
                        b.as_str()
                    ));
                }
            }
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(IdentityHeaders {
            user_id,
            email,
            roles,
            assertion,
        })
    }

    /// Whether `name` is one of the four, once lower-cased with `_` read
    /// as `-` (some servers and CGI-style apps treat the two alike).
    fn matches(&self, name: &HeaderName) -> bool {
        let n = name.as_str().as_bytes();
        [&self.user_id, &self.email, &self.roles, &self.assertion]
            .iter()
            .any(|own| same_name(n, own.as_str().as_bytes()))
    }

    /// Removes every header that is one of the four names after
    /// lower-casing and mapping `_` to `-`: `X_Auth_Email`, `x-auth-email`,
    /// `X-AUTH-EMAIL` and all their duplicates are gone. Allocates only when
    /// there is something to remove.
    pub fn strip(&self, headers: &mut HeaderMap) {
        let mut doomed: Vec<HeaderName> = Vec::new();
        for name in headers.keys() {
            if self.matches(name) {
                doomed.push(name.clone());
            }
        }
        for name in &doomed {
            headers.remove(name);
        }
    }

    /// Sets all three headers, replacing any present (roles joined with
    /// `,`). `None` is an anonymous request: all three present and empty, so
    /// that a front proxy copying them overwrites forged ones.
    ///
    /// A value that cannot be a header value (control characters such as
    /// CR or LF) is sent empty and logged, never sent raw.
    pub fn set(&self, headers: &mut HeaderMap, identity: Option<(&str, &str, &[String])>) {
        let (user_id, email, roles) = match identity {
            Some((user_id, email, roles)) => (
                value_or_empty(&self.user_id, user_id.as_bytes()),
                value_or_empty(&self.email, email.as_bytes()),
                value_or_empty(&self.roles, roles.join(",").as_bytes()),
            ),
            None => (
                HeaderValue::from_static(""),
                HeaderValue::from_static(""),
                HeaderValue::from_static(""),
            ),
        };
        headers.insert(self.user_id.clone(), user_id);
        headers.insert(self.email.clone(), email);
        headers.insert(self.roles.clone(), roles);
    }

    /// Sets the assertion header, replacing any present; `None` (anonymous,
    /// or no signing keys) sends it empty, like the other three.
    pub fn set_assertion(&self, headers: &mut HeaderMap, assertion: Option<HeaderValue>) {
        let value = assertion.unwrap_or_else(|| HeaderValue::from_static(""));
        headers.insert(self.assertion.clone(), value);
    }
}

fn value_or_empty(name: &HeaderName, bytes: &[u8]) -> HeaderValue {
    HeaderValue::from_bytes(bytes).unwrap_or_else(|_| {
        tracing::warn!(header = %name, "identity value is not a valid header value; sent empty");
        HeaderValue::from_static("")
    })
}

/// Header names equal after ASCII lower-casing and reading `_` as `-`.
fn same_name(a: &[u8], b: &[u8]) -> bool {
    fn fold(c: u8) -> u8 {
        if c == b'_' {
            b'-'
        } else {
            c.to_ascii_lowercase()
        }
    }
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| fold(*x) == fold(*y))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::upstream::test_headers::{map, owned, pairs, Identity, Pairs};

    fn default_headers() -> IdentityHeaders {
        IdentityHeaders::from_config(&HeadersConfig::default()).unwrap()
    }

    #[test]
    fn strip_removes_every_spelling_and_duplicate() {
        let cases: &[(Pairs, Pairs)] = &[
            (&[("x-auth-email", "a@x")], &[]),
            (&[("X-AUTH-EMAIL", "a@x")], &[]),
            (&[("X_Auth_Email", "a@x")], &[]),
            (&[("x_auth-email", "a@x")], &[]),
            (&[("x-auth_user_id", "1")], &[]),
            (&[("X_Auth_Assertion", "forged.jwt.sig")], &[]),
            (&[("x-auth-roles", "admin"), ("x-auth-roles", "root")], &[]),
            (
                &[
                    ("x-auth-email", "a"),
                    ("x_auth_email", "b"),
                    ("X-Auth-Roles", "c"),
                    ("x-auth-user-id", "d"),
                    ("x-other", "kept"),
                ],
                &[("x-other", "kept")],
            ),
            (&[("x-auth-emails", "kept")], &[("x-auth-emails", "kept")]),
            (&[("x-auth-emai", "kept")], &[("x-auth-emai", "kept")]),
            (&[("accept", "*/*")], &[("accept", "*/*")]),
        ];
        let ids = default_headers();
        for (input, want) in cases {
            let mut h = map(input);
            ids.strip(&mut h);
            assert_eq!(pairs(&h), owned(want), "input {input:?}");
        }
    }

    #[test]
    fn strip_uses_configured_names() {
        let cfg = HeadersConfig {
            user_id: "Remote-User".into(),
            email: "Remote-Email".into(),
            roles: "Remote-Groups".into(),
            ..HeadersConfig::default()
        };
        let ids = IdentityHeaders::from_config(&cfg).unwrap();
        let mut h = map(&[
            ("remote_user", "x"),
            ("REMOTE-EMAIL", "y"),
            ("x-auth-email", "z"),
        ]);
        ids.strip(&mut h);
        assert_eq!(pairs(&h), owned(&[("x-auth-email", "z")]));
    }

    #[test]
    fn set_replaces_and_fills_all_three() {
        let ids = default_headers();
        let roles = vec!["admin".to_owned(), "member".to_owned()];
        let no_roles: Vec<String> = vec![];
        let cases: &[(Identity, Pairs)] = &[
            (
                Some(("u1", "a@x.com", &roles)),
                &[
                    ("x-auth-user-id", "u1"),
                    ("x-auth-email", "a@x.com"),
                    ("x-auth-roles", "admin,member"),
                ],
            ),
            (
                Some(("u2", "b@x.com", &no_roles)),
                &[
                    ("x-auth-user-id", "u2"),
                    ("x-auth-email", "b@x.com"),
                    ("x-auth-roles", ""),
                ],
            ),
            (
                None,
                &[
                    ("x-auth-user-id", ""),
                    ("x-auth-email", ""),
                    ("x-auth-roles", ""),
                ],
            ),
            (
                Some(("u3", "evil@x\r\nX-Injected: 1", &no_roles)),
                &[
                    ("x-auth-user-id", "u3"),
                    ("x-auth-email", ""),
                    ("x-auth-roles", ""),
                ],
            ),
        ];
        for (identity, want) in cases {
            let mut h = map(&[("x-auth-email", "forged"), ("x-auth-email", "forged2")]);
            ids.set(&mut h, *identity);
            assert_eq!(pairs(&h), owned(want), "identity {identity:?}");
        }
    }

    #[test]
    fn from_config_names_the_key() {
        let cases: &[(&str, &str, &str, &[&str])] = &[
            ("X-A", "X-B", "X-C", &[]),
            (
                "X-A",
                "X Auth",
                "X-C",
                &["headers.email: \"X Auth\" is not a valid header name"],
            ),
            ("", "X-B", "X-C", &["headers.user_id: \"\" is not a valid"]),
            (
                "X-A",
                "X-B",
                "Cookie",
                &["headers.roles: \"Cookie\" cannot be used"],
            ),
            (
                "Connection",
                "X-B",
                "X-C",
                &["headers.user_id: \"Connection\" cannot"],
            ),
            (
                "X-A",
                "X_A",
                "X-C",
                &["headers.email: \"x_a\" is the same header as headers.user_id"],
            ),
            (
                "X:A",
                "X-B",
                "X B",
                &["headers.user_id: \"X:A\"", "headers.roles: \"X B\""],
            ),
        ];
        for (user_id, email, roles, want) in cases {
            let cfg = HeadersConfig {
                user_id: (*user_id).into(),
                email: (*email).into(),
                roles: (*roles).into(),
                ..HeadersConfig::default()
            };
            match IdentityHeaders::from_config(&cfg) {
                Ok(_) => assert!(want.is_empty(), "{cfg:?} passed, expected {want:?}"),
                Err(problems) => {
                    assert_eq!(problems.len(), want.len(), "{problems:?}");
                    for (p, w) in problems.iter().zip(want.iter()) {
                        assert!(p.starts_with(w), "{p:?} should start with {w:?}");
                    }
                }
            }
        }
    }
}
