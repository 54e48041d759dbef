//! Safe return addresses (`rd`): where a browser may be sent after sign-in or
//! sign-out, the defence against open redirects.
//!
//! `ReturnPolicy` is built once from public_url, the `[[apps]]` hosts and the
//! optional cookie_domain. `check` accepts only
//! - a relative path starting with exactly one `/` (`/x`, never `//x` or
//!   `/\x`, not even once percent-decoded or after dot segments are removed),
//!   given back as path, query and fragment normalized by the `url` crate; or
//! - an absolute `http`/`https` URL written `scheme://host...` without
//!   userinfo, whose host is public_url's, an app's, or cookie_domain or one of
//!   its subdomains, given back as the `url` crate serializes it. When
//!   public_url is `https`, `http` addresses are refused: the session cookie
//!   is `Secure` there, so a downgrade could only lose the session or leak it.
//!
//! Everything else is refused: empty or longer than 2048 bytes, any ASCII
//! control character (browsers silently strip tab, CR and LF, so `/\t/evil.com`
//! would become `//evil.com`), leading or trailing spaces, a backslash
//! anywhere, other schemes (`javascript:`, `data:`, ...), scheme-relative
//! `//host`, `https:host` and `https:///host`. Hosts are compared in the
//! `url` crate's ASCII serialization (IDNA to punycode, lower case, canonical
//! IP literals) with one trailing dot ignored. Building sign-in links (from
//! the configured hosts) and choosing the page to land on are `login.rs`'s job.

use url::{Host, Position, Url};

/// Longest return address accepted, in bytes.
pub const MAX_RETURN_LEN: usize = 2048;

/// Base used to resolve relative return paths; never leaves this module.
const RELATIVE_BASE: &str = "http://relative.invalid/";

/// Which return addresses are safe to redirect a browser to.
#[derive(Debug, Clone)]
pub struct ReturnPolicy {
    public_host: Option<String>,
    public_https: bool,
    app_hosts: Vec<String>,
    /// Without a leading dot.
    cookie_domain: Option<String>,
}

impl ReturnPolicy {
    /// public_url's host, the [[apps]] hosts, and optionally cookie_domain
    /// ("example.com": it and all its subdomains). Hosts that cannot be parsed
    /// are left out (config validation reports them).
    pub fn new(
        public_url: &Url,
        app_hosts: &[String],
        cookie_domain: Option<&str>,
    ) -> ReturnPolicy {
        ReturnPolicy {
            public_host: public_url.host().map(|h| host_key(&h)),
            public_https: public_url.scheme() == "https",
            app_hosts: app_hosts.iter().filter_map(|h| canonical_host(h)).collect(),
            cookie_domain: cookie_domain
                .map(|d| d.strip_prefix('.').unwrap_or(d))
                .and_then(canonical_host),
        }
    }

    /// The address to send the browser to, or None when `rd` is not safe.
    /// Relative paths come back as a path ("/x?y"), allowed absolute URLs come
    /// back serialized by `url` (normalized).
    pub fn check(&self, rd: &str) -> Option<String> {
        if rd.is_empty()
            || rd.len() > MAX_RETURN_LEN
            || rd.bytes().any(|b| b.is_ascii_control() || b == b'\\')
            || rd.starts_with(' ')
            || rd.ends_with(' ')
        {
            return None;
        }
        if rd.starts_with('/') {
            self.check_relative(rd)
        } else {
            self.check_absolute(rd)
        }
    }

    /// true if `host` (normalized) is one of public_url's host, an app host,
    /// or within cookie_domain.
    pub fn is_allowed_host(&self, host: &str) -> bool {
        let host = host.strip_suffix('.').unwrap_or(host);
        self.is_own_host(host)
            || self.cookie_domain.as_deref().is_some_and(|d| {
                host.eq_ignore_ascii_case(d)
                    || (host.len() > d.len() + 1
                        && host.as_bytes()[host.len() - d.len() - 1] == b'.'
                        && host
                            .get(host.len() - d.len()..)
                            .is_some_and(|tail| tail.eq_ignore_ascii_case(d)))
            })
    }

    /// true if `host` (normalized) is public_url's host or an app host, not
    /// merely inside cookie_domain.
    pub fn is_own_host(&self, host: &str) -> bool {
        let host = host.strip_suffix('.').unwrap_or(host);
        self.public_host
            .iter()
            .chain(&self.app_hosts)
            .any(|h| h.eq_ignore_ascii_case(host))
    }

    fn check_relative(&self, rd: &str) -> Option<String> {
        let path_end = rd.find(['?', '#']).unwrap_or(rd.len());
        if starts_another_host(&rd.as_bytes()[..path_end]) {
            return None;
        }
        let base = Url::parse(RELATIVE_BASE).ok()?;
        let url = base.join(rd).ok()?;
        if url.origin() != base.origin() {
            return None;
        }
        let out = &url[Position::BeforePath..];
        if !out.starts_with('/') || starts_another_host(out.as_bytes()) {
            return None;
        }
        Some(out.to_owned())
    }

    fn check_absolute(&self, rd: &str) -> Option<String> {
        let (scheme, rest) = rd.split_once(':')?;
        let https = if scheme.eq_ignore_ascii_case("https") {
            true
        } else if scheme.eq_ignore_ascii_case("http") {
            false
        } else {
            return None;
        };
        if !https && self.public_https {
            return None;
        }
        // Exactly two slashes, then a host: not "https:evil.com", not "https:///evil.com".
        let after = rest.strip_prefix("//")?;
        let authority_end = after.find(['/', '?', '#']).unwrap_or(after.len());
        let authority = &after[..authority_end];
        if authority.is_empty() || authority.contains('@') {
            return None;
        }
        let url = Url::parse(rd).ok()?;
        if url.scheme() != if https { "https" } else { "http" }
            || !url.username().is_empty()
            || url.password().is_some()
        {
            return None;
        }
        let host = host_key(&url.host()?);
        if !self.is_allowed_host(&host) {
            return None;
        }
        Some(url.into())
    }
}

/// True when a path would be read as `//host` or `/\host` somewhere along
/// the way: as written, or after percent-decoding it (repeatedly).
fn starts_another_host(path: &[u8]) -> bool {
    let mut current = path.to_vec();
    for _ in 0..4 {
        if current.get(1).is_some_and(|&b| b == b'/' || b == b'\\')
            || current.iter().any(|b| b.is_ascii_control())
        {
            return true;
        }
        let decoded = percent_decode(&current);
        if decoded == current {
            return false;
        }
        current = decoded;
    }
    // Still changing after several rounds: nobody needs that.
    true
}

fn percent_decode(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hi = bytes.get(i + 1).and_then(|&h| char::from(h).to_digit(16));
            let lo = bytes.get(i + 2).and_then(|&l| char::from(l).to_digit(16));
            if let (Some(hi), Some(lo)) = (hi, lo) {
                out.push((hi * 16 + lo) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b);
        i += 1;
    }
    out
}

/// A host as `url` serializes it, IPv6 in brackets, without a trailing dot.
fn host_key(host: &Host<&str>) -> String {
    match host {
        Host::Domain(d) => d.strip_suffix('.').unwrap_or(d).to_ascii_lowercase(),
        Host::Ipv4(a) => a.to_string(),
        Host::Ipv6(a) => format!("[{a}]"),
    }
}

/// A configured host name (optionally with port) in `host_key` form.
fn canonical_host(raw: &str) -> Option<String> {
    if raw.is_empty()
        || raw
            .bytes()
            .any(|b| matches!(b, b'/' | b'?' | b'#' | b'@' | b'\\') || b.is_ascii_whitespace())
    {
        return None;
    }
    let url = Url::parse(&format!("http://{raw}/")).ok()?;
    url.host().map(|h| host_key(&h))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(public_url: &str) -> ReturnPolicy {
        let Ok(public_url) = Url::parse(public_url) else {
            panic!("{public_url}")
        };
        ReturnPolicy::new(
            &public_url,
            &[
                "app.example.com".into(),
                "Wiki.Example.ORG.".into(),
                "[::1]:8443".into(),
                "b\u{fc}cher.example".into(),
                "10.0.0.5".into(),
            ],
            Some("corp.example.net"),
        )
    }

    #[test]
    fn check_table() {
        let p = policy("https://auth.example.com");
        #[rustfmt::skip]
        let cases: &[(&str, Option<&str>)] = &[
            // relative paths
            ("/", Some("/")),
            ("/x", Some("/x")),
            ("/x?y=1&z", Some("/x?y=1&z")),
            ("/x#frag", Some("/x#frag")),
            ("/a/../b", Some("/b")),
            ("/a b", Some("/a%20b")),
            ("/caf\u{e9}", Some("/caf%C3%A9")),
            ("/@evil.com", Some("/@evil.com")),
            ("/x?next=//evil.com", Some("/x?next=//evil.com")),
            ("/x?q=%2F%2Fevil", Some("/x?q=%2F%2Fevil")),
            ("//evil.com", None),
            ("///evil.com", None),
            ("/\\evil.com", None),
            ("/\t/evil.com", None),
            ("/\n/evil.com", None),
            ("/\r\n/evil.com", None),
            ("/%2F/evil.com", None),
            ("/%2fevil.com", None),
            ("/%5Cevil.com", None),
            ("/%5cevil.com", None),
            ("/%252F/evil.com", None),
            ("/%09/evil.com", None),
            ("/.//evil.com", None),
            ("/a/..//evil.com", None),
            ("/%2e%2e//evil.com", None),
            ("/x\\y", None),
            (" /x", None),
            ("/x ", None),
            ("/x\0", None),
            ("/x\x7f", None),
            // absolute, allowed hosts
            ("https://auth.example.com/x?y", Some("https://auth.example.com/x?y")),
            ("https://app.example.com", Some("https://app.example.com/")),
            ("HTTPS://APP.Example.COM/A", Some("https://app.example.com/A")),
            ("https://app.example.com./x", Some("https://app.example.com./x")),
            ("https://app.example.com:8443/x", Some("https://app.example.com:8443/x")),
            ("https://wiki.example.org/p", Some("https://wiki.example.org/p")),
            ("https://[::1]:8443/x", Some("https://[::1]:8443/x")),
            ("https://[0:0::1]/x", Some("https://[::1]/x")),
            ("https://10.0.0.5/x", Some("https://10.0.0.5/x")),
            ("https://b\u{fc}cher.example/", Some("https://xn--bcher-kva.example/")),
            ("https://xn--bcher-kva.example/", Some("https://xn--bcher-kva.example/")),
            ("https://corp.example.net/", Some("https://corp.example.net/")),
            ("https://a.b.corp.example.net/x", Some("https://a.b.corp.example.net/x")),
            ("https://app.example.com/x#frag", Some("https://app.example.com/x#frag")),
            // absolute, refused
            ("http://app.example.com/x", None),
            ("https://evil.com/", None),
            ("https://evil.com#@app.example.com", None),
            ("https://evil.com?@app.example.com", None),
            ("https://app.example.com@evil.com/", None),
            ("https://user:pw@app.example.com/", None),
            ("https://user@app.example.com/", None),
            ("https://app.example.com.evil.com/", None),
            ("https://evilcorp.example.net/", None),
            ("https://example.net/", None),
            ("https://xn--pp-8cd.example.com/", None),
            ("https://\u{430}pp.example.com/", None),
            ("https://[::2]/", None),
            ("https://10.0.0.6/", None),
            ("https://0x0a000005/", Some("https://10.0.0.5/")),
            ("https:app.example.com", None),
            ("https:/app.example.com", None),
            ("https:///app.example.com", None),
            ("https:\\\\app.example.com", None),
            ("https://app.example.com\\@evil.com", None),
            ("https://evil.com\\.app.example.com", None),
            ("https://app.example.com\t/x", None),
            ("https://", None),
            ("https://:443/", None),
            ("javascript:alert(1)", None),
            ("JavaScript://app.example.com/%0aalert(1)", None),
            ("data:text/html,<script>", None),
            ("ftp://app.example.com/", None),
            ("app.example.com/x", None),
            ("x", None),
            ("?x=1", None),
            ("#x", None),
            ("", None),
        ];
        assert!(cases.len() >= 40);
        for (rd, want) in cases {
            assert_eq!(p.check(rd).as_deref(), *want, "{rd:?}");
        }
    }

    #[test]
    fn length_limit() {
        let p = policy("https://auth.example.com");
        let ok = format!("/{}", "a".repeat(MAX_RETURN_LEN - 1));
        assert_eq!(p.check(&ok).as_deref(), Some(ok.as_str()));
        let long = format!("/{}", "a".repeat(MAX_RETURN_LEN));
        assert_eq!(p.check(&long), None);
    }

    #[test]
    fn http_allowed_when_public_url_is_http() {
        let p = policy("http://localhost:8080");
        assert_eq!(
            p.check("http://localhost:8080/x").as_deref(),
            Some("http://localhost:8080/x")
        );
        assert_eq!(
            p.check("http://app.example.com/").as_deref(),
            Some("http://app.example.com/")
        );
        assert_eq!(
            p.check("https://app.example.com/").as_deref(),
            Some("https://app.example.com/")
        );
        assert_eq!(p.check("http://evil.com/"), None);
    }

    #[test]
    fn allowed_hosts() {
        let p = policy("https://Auth.Example.com.");
        #[rustfmt::skip]
        let cases: &[(&str, bool, bool)] = &[
            // host, is_allowed_host, is_own_host
            ("auth.example.com", true, true),
            ("auth.example.com.", true, true),
            ("AUTH.example.com", true, true),
            ("app.example.com", true, true),
            ("wiki.example.org", true, true),
            ("[::1]", true, true),
            ("10.0.0.5", true, true),
            ("xn--bcher-kva.example", true, true),
            ("corp.example.net", true, false),
            ("x.corp.example.net", true, false),
            ("x.y.corp.example.net.", true, false),
            ("evilcorp.example.net", false, false),
            (".corp.example.net", false, false),
            ("example.net", false, false),
            ("example.com", false, false),
            ("x.app.example.com", false, false),
            ("app.example.com.evil.com", false, false),
            ("", false, false),
        ];
        for (host, allowed, own) in cases {
            assert_eq!(p.is_allowed_host(host), *allowed, "allowed {host:?}");
            assert_eq!(p.is_own_host(host), *own, "own {host:?}");
        }
    }

    #[test]
    fn cookie_domain_with_leading_dot() {
        let Ok(url) = Url::parse("https://auth.example.com") else {
            panic!()
        };
        let p = ReturnPolicy::new(&url, &[], Some(".Example.com"));
        assert!(p.is_allowed_host("example.com"));
        assert!(p.is_allowed_host("a.example.com"));
        assert!(!p.is_allowed_host("evilexample.com"));
        assert_eq!(p.check("https://evilexample.com/"), None);
        assert_eq!(
            p.check("https://a.example.com/x").as_deref(),
            Some("https://a.example.com/x")
        );
    }

    #[test]
    fn never_panics_and_answers_are_stable() {
        const PIECES: &[&str] = &[
            "/",
            "\\",
            "%2F",
            "%5c",
            "%25",
            "https:",
            "//",
            "app.example.com",
            "evil.com",
            "@",
            "#",
            "?",
            ".",
            "..",
            "\t",
            " ",
            ":8443",
            "[::1]",
            "\u{430}",
            "corp.example.net",
            "javascript:",
        ];
        let p = policy("https://auth.example.com");
        let mut state: u64 = 0x2545_f491_4f6c_dd1d;
        for _ in 0..20_000 {
            let mut rd = String::new();
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let mut r = state;
            for _ in 0..(r % 7) {
                r /= 7;
                rd.push_str(PIECES[(r % PIECES.len() as u64) as usize]);
                r /= PIECES.len() as u64;
            }
            if let Some(out) = p.check(&rd) {
                // What we send the browser is itself a safe return address.
                assert_eq!(p.check(&out).as_deref(), Some(out.as_str()), "{rd:?}");
                assert!(!out.starts_with("//"), "{rd:?} -> {out:?}");
            }
        }
    }
}
