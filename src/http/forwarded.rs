//! The headers a front proxy describes a request with (`X-Forwarded-*`,
//! `X-Original-*`), and the one function that reads them: [`read`].
//!
//! A header may arrive as several field lines of one name, and RFC 9110 §5.3
//! says those lines are one comma-separated list. Taking only the first line
//! (or only the last) would judge one request while the app reads another,
//! so [`Forwarded::lines`] says per header what several lines mean: the
//! `X-Forwarded-For` list is combined in order (a proxy such as HAProxy with
//! `option forwardfor` appends its own line after the client's), and a header
//! that carries one value is refused when repeated. The README's table
//! "Forwarded headers" is this table; a unit test keeps them the same.
//!
//! Whether to believe these headers at all (only from `trusted_proxies`) is
//! the callers' decision: `request::Client::resolve` (the client's address
//! and scheme) and `forward_auth::Target::read` (the original request).

use std::borrow::Cow;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use http::{HeaderMap, HeaderName};

/// Every forwarded header latchkey reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forwarded {
    For,
    Proto,
    Host,
    Method,
    Uri,
    OriginalUrl,
    OriginalUri,
    OriginalMethod,
}

/// What several field lines of one header mean.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lines {
    /// One list, in order: the lines are joined with ", ".
    List,
    /// One value: a second line is refused.
    One,
}

impl Forwarded {
    #[cfg(test)]
    pub const ALL: [Forwarded; 8] = [
        Forwarded::For,
        Forwarded::Proto,
        Forwarded::Host,
        Forwarded::Method,
        Forwarded::Uri,
        Forwarded::OriginalUrl,
        Forwarded::OriginalUri,
        Forwarded::OriginalMethod,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Forwarded::For => "X-Forwarded-For",
            Forwarded::Proto => "X-Forwarded-Proto",
            Forwarded::Host => "X-Forwarded-Host",
            Forwarded::Method => "X-Forwarded-Method",
            Forwarded::Uri => "X-Forwarded-Uri",
            Forwarded::OriginalUrl => "X-Original-URL",
            Forwarded::OriginalUri => "X-Original-URI",
            Forwarded::OriginalMethod => "X-Original-Method",
        }
    }

    /// [`Forwarded::name`] as a `HeaderName`, made at compile time: a map
    /// lookup by a `&str` parses the name on every call. A `static`, so
    /// that no call builds (and drops) the whole table.
    pub fn header(self) -> &'static HeaderName {
        static NAMES: [HeaderName; 8] = [
            HeaderName::from_static("x-forwarded-for"),
            HeaderName::from_static("x-forwarded-proto"),
            HeaderName::from_static("x-forwarded-host"),
            HeaderName::from_static("x-forwarded-method"),
            HeaderName::from_static("x-forwarded-uri"),
            HeaderName::from_static("x-original-url"),
            HeaderName::from_static("x-original-uri"),
            HeaderName::from_static("x-original-method"),
        ];
        &NAMES[self as usize]
    }

    pub fn lines(self) -> Lines {
        match self {
            Forwarded::For => Lines::List,
            _ => Lines::One,
        }
    }
}

/// Why forwarded headers from a trusted proxy were refused (400; 403 from
/// the Nginx endpoint, since nginx turns any other answer into a 500).
#[derive(Debug, thiserror::Error)]
pub enum ForwardedError {
    #[error("{0} sent on more than one line")]
    Repeated(&'static str),
    #[error("{0} is not visible ASCII")]
    NotAscii(&'static str),
    #[error("X-Forwarded-For hop {0:?} from a trusted proxy is not an IP address")]
    BadHop(String),
    #[error("X-Forwarded-Proto from a trusted proxy is neither http nor https")]
    BadProto,
}

/// The value of `which`: `None` when absent or empty; the lines of a list
/// header joined in order (lines of only empty elements skipped); a one-value header sent on
/// two lines, or any line that is not visible ASCII, is an error rather
/// than read as absent.
pub fn read(headers: &HeaderMap, which: Forwarded) -> Result<Option<Cow<'_, str>>, ForwardedError> {
    let name = which.name();
    let mut lines = headers.get_all(which.header()).iter().map(|v| {
        v.to_str()
            .map(str::trim)
            .map_err(|_| ForwardedError::NotAscii(name))
    });
    match which.lines() {
        Lines::One => {
            let Some(first) = lines.next() else {
                return Ok(None);
            };
            if lines.next().is_some() {
                return Err(ForwardedError::Repeated(name));
            }
            let v = first?;
            Ok((!v.is_empty()).then_some(Cow::Borrowed(v)))
        }
        Lines::List => {
            let mut parts = Vec::new();
            for line in lines {
                let line = line?;
                // A line of empty elements (``, `, ,`) adds nothing.
                if line.split(',').any(|e| !e.trim().is_empty()) {
                    parts.push(line);
                }
            }
            Ok(match parts.as_slice() {
                [] => None,
                [one] => Some(Cow::Borrowed(*one)),
                _ => Some(Cow::Owned(parts.join(", "))),
            })
        }
    }
}

/// The address in one `X-Forwarded-For` element: an IP address, IPv6
/// optionally in brackets, either optionally with a port (Azure's
/// Application Gateway appends `ip:port`). `None` for anything else
/// (`unknown`, an obfuscated name, a zone index).
pub fn hop_address(hop: &str) -> Option<IpAddr> {
    hop.parse::<IpAddr>()
        .ok()
        .or_else(|| hop.parse::<SocketAddr>().ok().map(|s| s.ip()))
        .or_else(|| {
            let inner = hop.strip_prefix('[')?.strip_suffix(']')?;
            inner.parse::<Ipv6Addr>().ok().map(IpAddr::V6)
        })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn each_header_name_is_its_name() {
        for which in Forwarded::ALL {
            assert!(
                which.header().as_str().eq_ignore_ascii_case(which.name()),
                "{which:?}"
            );
        }
    }
    use http::{HeaderName, HeaderValue};

    fn map(pairs: &[(&str, &[u8])]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_bytes(v).unwrap(),
            );
        }
        h
    }

    /// (lines sent, what `read` gives: Ok(value) or Err(()))
    type Case<'a> = (&'a [(&'a str, &'a [u8])], Result<Option<&'a str>, ()>);

    #[test]
    fn list_headers_combine_every_line_in_order() {
        let cases: &[Case] = &[
            (&[], Ok(None)),
            (&[("x-forwarded-for", b"1.1.1.1")], Ok(Some("1.1.1.1"))),
            (
                &[
                    ("x-forwarded-for", b"6.6.6.6"),
                    ("X-Forwarded-For", b"7.7.7.7, 10.0.0.1"),
                ],
                Ok(Some("6.6.6.6, 7.7.7.7, 10.0.0.1")),
            ),
            (
                &[("x-forwarded-for", b" "), ("x-forwarded-for", b"7.7.7.7")],
                Ok(Some("7.7.7.7")),
            ),
            (&[("x-forwarded-for", b"")], Ok(None)),
            (&[("x-forwarded-for", b", ,")], Ok(None)),
            (
                &[("x-forwarded-for", b",,"), ("x-forwarded-for", b"7.7.7.7,")],
                Ok(Some("7.7.7.7,")),
            ),
            (
                &[
                    ("x-forwarded-for", b"1.1.1.1"),
                    ("x-forwarded-for", b"\xff"),
                ],
                Err(()),
            ),
        ];
        for (lines, want) in cases {
            let h = map(lines);
            let got = read(&h, Forwarded::For).map_err(|_| ());
            assert_eq!(
                got.as_ref().map(|v| v.as_deref()),
                want.as_ref().map(|v| *v),
                "{lines:?}"
            );
        }
    }

    #[test]
    fn one_value_headers_refuse_a_second_line() {
        for which in Forwarded::ALL {
            if which.lines() == Lines::List {
                continue;
            }
            let name = which.name();
            let cases: &[Case] = &[
                (&[], Ok(None)),
                (&[(name, b" v ")], Ok(Some("v"))),
                (&[(name, b"")], Ok(None)),
                (&[(name, b"a"), (name, b"a")], Err(())),
                (&[(name, b"a"), (name, b"")], Err(())),
                (&[(name, b"caf\xc3\xa9")], Err(())),
            ];
            for (lines, want) in cases {
                let h = map(lines);
                let got = read(&h, which).map_err(|_| ());
                assert_eq!(
                    got.as_ref().map(|v| v.as_deref()),
                    want.as_ref().map(|v| *v),
                    "{lines:?}"
                );
            }
        }
    }

    #[test]
    fn hops_are_addresses_with_an_optional_port() {
        for (hop, want) in [
            ("203.0.113.7", Some("203.0.113.7")),
            ("203.0.113.7:5123", Some("203.0.113.7")),
            ("2001:db8::7", Some("2001:db8::7")),
            ("[2001:db8::7]", Some("2001:db8::7")),
            ("[2001:db8::7]:443", Some("2001:db8::7")),
            ("unknown", None),
            ("_hidden", None),
            ("fe80::1%eth0", None),
            ("", None),
            ("1.2.3", None),
        ] {
            assert_eq!(
                hop_address(hop).map(|a| a.to_string()).as_deref(),
                want,
                "{hop}"
            );
        }
    }

    /// The README's table lists exactly these headers with these rules.
    #[test]
    fn the_readme_table_is_this_table() {
        let readme = include_str!("../../README.md");
        for which in Forwarded::ALL {
            let rule = match which.lines() {
                Lines::List => "combined",
                Lines::One => "refused",
            };
            let row = readme
                .lines()
                .find(|l| l.starts_with(&format!("| `{}` |", which.name())))
                .unwrap_or_else(|| panic!("README has no row for {}", which.name()));
            assert!(
                row.contains(rule),
                "README row for {} should say {rule}: {row}",
                which.name()
            );
        }
    }
}
