//! An upstream: the parsed `[[apps]].upstream` URL (scheme, authority, path
//! prefix, and its own connection pool when it trusts a CA of its own), and
//! the target a request is sent to. Sending is `client`'s.

use http::uri::{Authority, PathAndQuery, Scheme};
use http::Uri;

use super::error::ProxyError;
use super::pool::{build_client, UpstreamClient, CONNECT_TIMEOUT};
use crate::tls::TlsError;

/// A parsed `[[apps]].upstream`: `http://127.0.0.1:3000`, or with a path
/// prefix, `http://h:3000/base` (then `/x?q` is forwarded as `/base/x?q`),
/// or `https://...`, verified against the public web roots unless a CA file
/// was given ([`Upstream::trusting`]).
#[derive(Debug, Clone)]
pub struct Upstream {
    scheme: Scheme,
    authority: Authority,
    /// Its own client when it trusts a CA of its own; else the shared one.
    pub(super) client: Option<UpstreamClient>,
    /// The path prefix without its trailing `/`; empty for none.
    prefix: String,
}

impl Upstream {
    /// Parses and checks an upstream URL. The message says what was wrong
    /// and what is expected; the caller adds the key.
    pub fn parse(s: &str) -> Result<Upstream, String> {
        const EXPECTED: &str = "expected http(s)://host:port or http(s)://host:port/prefix";
        let uri: Uri = s
            .parse()
            .map_err(|e| format!("{s:?} is not a valid URL ({e}); {EXPECTED}"))?;
        let scheme = match uri.scheme_str() {
            Some("http") => Scheme::HTTP,
            Some("https") => Scheme::HTTPS,
            Some(other) => return Err(format!("{s:?} has scheme {other:?}; {EXPECTED}")),
            None => return Err(format!("{s:?} has no scheme; {EXPECTED}")),
        };
        let authority = match uri.authority() {
            Some(a) if !a.host().is_empty() => a.clone(),
            _ => return Err(format!("{s:?} has no host; {EXPECTED}")),
        };
        if authority.as_str().contains('@') {
            return Err(format!(
                "{s:?} contains user information, which is not supported; {EXPECTED}"
            ));
        }
        if uri.query().is_some() {
            return Err(format!("{s:?} has a query string; {EXPECTED}"));
        }
        let prefix = uri.path().trim_end_matches('/').to_owned();
        Ok(Upstream {
            scheme,
            authority,
            client: None,
            prefix,
        })
    }

    pub fn is_https(&self) -> bool {
        self.scheme == Scheme::HTTPS
    }

    /// Verifies this (https) upstream against the CA certificates in
    /// `ca_file` only, with a connection pool of its own.
    pub fn trusting(mut self, ca_file: &std::path::Path) -> Result<Upstream, TlsError> {
        let tls = crate::tls::client_config(Some(ca_file))?;
        self.client = Some(build_client(tls, CONNECT_TIMEOUT));
        Ok(self)
    }

    /// `host:port`: where a plain-HTTP upstream is connected to, and the
    /// key of its idle connections.
    pub(super) fn authority(&self) -> &Authority {
        &self.authority
    }

    /// The target in origin form (what goes on the request line to a
    /// plain-HTTP upstream over latchkey's own connections): the prefix,
    /// then `path_and_query` (which must start with `/`).
    pub(super) fn origin_form(&self, path_and_query: &str) -> Result<Uri, ProxyError> {
        if !path_and_query.starts_with('/') {
            return Err(ProxyError::Target(path_and_query.to_owned()));
        }
        let pq = if self.prefix.is_empty() {
            PathAndQuery::try_from(path_and_query)
        } else {
            PathAndQuery::try_from([self.prefix.as_str(), path_and_query].concat())
        }
        .map_err(|_| ProxyError::Target(path_and_query.to_owned()))?;
        Ok(Uri::from(pq))
    }

    /// The URI the upstream receives through hyper-util's client, in
    /// absolute form (it connects by it): its authority, the prefix, then
    /// `path_and_query` (which must start with `/`).
    pub(super) fn uri_for(&self, path_and_query: &str) -> Result<Uri, ProxyError> {
        let mut parts = self.origin_form(path_and_query)?.into_parts();
        parts.scheme = Some(self.scheme.clone());
        parts.authority = Some(self.authority.clone());
        Uri::from_parts(parts).map_err(|_| ProxyError::Target(path_and_query.to_owned()))
    }
}

impl std::fmt::Display for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}://{}{}", self.scheme, self.authority, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use http::StatusCode;

    #[test]
    fn upstream_parse() {
        let ok: &[(&str, &str, &str)] = &[
            (
                "http://127.0.0.1:3000",
                "/x?q=1",
                "http://127.0.0.1:3000/x?q=1",
            ),
            ("http://127.0.0.1:3000/", "/", "http://127.0.0.1:3000/"),
            ("http://h:3000/base", "/x?q", "http://h:3000/base/x?q"),
            ("http://h/base/", "/", "http://h/base/"),
            ("http://[::1]:8080", "/a", "http://[::1]:8080/a"),
            ("https://h:8443/p", "/a", "https://h:8443/p/a"),
        ];
        for (s, pq, want) in ok {
            let up = Upstream::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"));
            assert_eq!(up.uri_for(pq).unwrap().to_string(), *want, "{s} + {pq}");
            let origin = up.origin_form(pq).unwrap();
            assert_eq!(
                want.strip_prefix(&format!("{}://{}", up.scheme, up.authority())),
                Some(origin.to_string().as_str()),
                "{s} + {pq}"
            );
        }
        let bad: &[(&str, &str)] = &[
            ("ftp://h", "has scheme \"ftp\""),
            ("127.0.0.1:3000", "has no scheme"),
            ("/path", "has no scheme"),
            ("http://u:p@h", "user information"),
            ("http://h/?x=1", "query string"),
            ("http://h :1", "is not a valid URL"),
            ("", "is not a valid URL"),
        ];
        for (s, want) in bad {
            match Upstream::parse(s) {
                Ok(u) => panic!("{s:?} parsed as {u}"),
                Err(e) => assert!(e.contains(want), "{s:?}: {e:?} lacks {want:?}"),
            }
        }
    }

    #[test]
    fn targets_must_be_origin_form() {
        let up = Upstream::parse("http://h:1").unwrap();
        for pq in ["", "*", "x", "http://evil/"] {
            assert_eq!(
                up.uri_for(pq).unwrap_err().status(),
                StatusCode::BAD_REQUEST,
                "{pq:?}"
            );
            assert_eq!(
                up.origin_form(pq).unwrap_err().status(),
                StatusCode::BAD_REQUEST,
                "{pq:?}"
            );
        }
    }
}
