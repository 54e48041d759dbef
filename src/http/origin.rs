//! Web origins (scheme, host, port) read and compared as browsers do, with
//! `url::Url::origin()`: `https://Host:443`, `https://host` and
//! `https://host./path` are one origin; `http://host` and
//! `https://host:8443` are others. Used by the CSRF checks, which decide
//! what to do with the answer; what a request states (Origin, else Referer)
//! is read by `request::form_origin`.

use http::HeaderMap;
use url::{Host, Url};

use crate::http::request::{form_origin, Ctx};

/// A tuple origin. Host names compare without a trailing dot (`host.` is
/// `host` to DNS and to latchkey's host normalization); the url crate has
/// already lower-cased them, mapped IDNA and written IP addresses one way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    scheme: String,
    host: Host<String>,
    port: u16,
}

impl Origin {
    /// The origin of `url`. `None` for an opaque one (`data:`, `file:`,
    /// `about:blank`): it equals no origin, not even itself.
    pub fn of(url: &Url) -> Option<Origin> {
        match url.origin() {
            url::Origin::Tuple(scheme, host, port) => {
                let host = match host {
                    Host::Domain(d) => Host::Domain(match d.strip_suffix('.') {
                        Some(stripped) => stripped.to_owned(),
                        None => d,
                    }),
                    ip => ip,
                };
                Some(Origin { scheme, host, port })
            }
            url::Origin::Opaque(_) => None,
        }
    }

    /// The origin of a URL or a serialized origin as a browser sends it in
    /// `Origin` or `Referer`. `None` for `null`, opaque origins and what is
    /// not a URL.
    pub fn parse(s: &str) -> Option<Origin> {
        Origin::of(&Url::parse(s).ok()?)
    }

    /// The origin of a request for `authority` (a Host header: name and
    /// maybe a port) over `scheme`.
    pub fn of_request(scheme: &str, authority: &str) -> Option<Origin> {
        if authority.is_empty() || authority.contains(['/', '?', '#', '@', '\\']) {
            return None;
        }
        Origin::parse(&format!("{scheme}://{authority}/"))
    }
}

/// Whether a form comes from latchkey's own pages: it states no origin
/// (Origin, else Referer; `Origin: null` states none), or the one it states
/// is `public_url`'s or the requested host's. The requested host counts
/// over the request's scheme as latchkey sees it, or public_url's (behind a
/// TLS-terminating proxy that is not in `trusted_proxies`, every request
/// looks like plain http to latchkey while the browser's origin is https).
pub fn form_is_own(headers: &HeaderMap, ctx: &Ctx, public_url: &Url) -> bool {
    let Some(stated) = form_origin(headers) else {
        return true;
    };
    let Some(stated) = Origin::parse(stated) else {
        return false;
    };
    if Origin::of(public_url).is_some_and(|o| o == stated) {
        return true;
    }
    [ctx.client.proto, public_url.scheme()]
        .iter()
        .filter_map(|scheme| Origin::of_request(scheme, &ctx.raw_host))
        .any(|own| own == stated)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn same(a: &str, b: &str) -> bool {
        match (Origin::parse(a), Origin::parse(b)) {
            (Some(a), Some(b)) => a == b,
            _ => false,
        }
    }

    #[test]
    fn origins_compare_as_browsers_do() {
        // (a, b, one origin)
        let cases: &[(&str, &str, bool)] = &[
            // Default ports are no port.
            ("https://host:443", "https://host", true),
            ("http://host:80", "http://host", true),
            ("https://host:80", "https://host", false),
            ("http://host:443", "https://host", false),
            ("https://host:8443", "https://host:8443", true),
            ("https://host:8443", "https://host", false),
            // Scheme and host case, paths, queries, credentials.
            ("HTTPS://HOST", "https://host", true),
            (
                "https://App.Example.com/a/b?c#d",
                "https://app.example.com",
                true,
            ),
            ("https://user:pw@host/", "https://host", true),
            // A trailing dot is the same name.
            ("https://host./", "https://host", true),
            ("https://host.:443", "https://host:443", true),
            ("https://host..", "https://host", false),
            // Another scheme is another origin.
            ("http://host", "https://host", false),
            ("ws://host", "http://host", false),
            // Look-alikes.
            ("https://host.evil.example", "https://host", false),
            ("https://evilhost", "https://host", false),
            ("https://host@evil.example", "https://host", false),
            // IP addresses, written any way.
            ("http://[::1]:8080", "http://[0:0::1]:8080", true),
            (
                "http://[2001:DB8::1]",
                "http://[2001:db8:0:0:0:0:0:1]:80",
                true,
            ),
            ("http://127.0.0.1", "http://127.0.0.1:80", true),
            ("http://[::1]", "http://127.0.0.1", false),
            // IDNA.
            (
                "https://BÜCHER.example",
                "https://xn--bcher-kva.example",
                true,
            ),
            // Opaque and unreadable origins equal nothing, not even themselves.
            ("null", "null", false),
            ("null", "https://host", false),
            ("data:text/html,x", "data:text/html,x", false),
            ("file:///etc/passwd", "file:///etc/passwd", false),
            ("", "", false),
            ("host", "host", false),
            ("//host", "https://host", false),
        ];
        for (a, b, want) in cases {
            assert_eq!(same(a, b), *want, "{a} vs {b}");
            assert_eq!(same(b, a), *want, "{b} vs {a}");
        }
    }

    #[test]
    fn a_request_origin_is_scheme_and_host_header() {
        let o = |s: &str, a: &str| Origin::of_request(s, a);
        assert_eq!(o("https", "host:443"), Origin::parse("https://host"));
        assert_eq!(o("http", "Host.:8080"), Origin::parse("http://host:8080"));
        assert_eq!(o("http", "[::1]:81"), Origin::parse("http://[::1]:81"));
        for bad in ["", "host/x", "evil@host", "host?x", "host#x", "a\\b"] {
            assert_eq!(o("https", bad), None, "{bad:?}");
        }
    }

    fn ctx(proto: &'static str, raw_host: &str) -> Ctx {
        Ctx {
            client: crate::http::request::Client {
                ip: "192.0.2.1".parse().unwrap(),
                peer: "192.0.2.1".parse().unwrap(),
                via_trusted_proxy: false,
                prior_forwarded_for: None,
                proto,
            },
            raw_host: raw_host.into(),
            host: String::new(),
            path: "/.latchkey/login".into(),
            query: None,
            now: 0,
            html: true,
            bearer: false,
            user_agent: String::new(),
            request_id: String::new(),
            method_override: None,
        }
    }

    #[test]
    fn a_form_is_own_from_the_requested_host_or_public_url() {
        let public = Url::parse("https://auth.example.com").unwrap();
        let headers = |pairs: &[(&'static str, &'static str)]| {
            let mut h = HeaderMap::new();
            for (k, v) in pairs {
                h.append(*k, http::HeaderValue::from_static(v));
            }
            h
        };
        let https_app = ctx("https", "app.example.com");
        let http_app = ctx("http", "app.example.com:8080");
        /// (request, headers, own)
        type Case<'a> = (&'a Ctx, &'a [(&'static str, &'static str)], bool);
        let cases: &[Case] = &[
            (&https_app, &[], true),
            (&https_app, &[("origin", "null")], true),
            (&https_app, &[("origin", "https://app.example.com")], true),
            (
                &https_app,
                &[("origin", "https://app.example.com:443")],
                true,
            ),
            (&https_app, &[("origin", "https://APP.example.com.")], true),
            (
                &https_app,
                &[("origin", "https://auth.example.com:443")],
                true,
            ),
            (
                &https_app,
                &[("origin", "https://app.example.com:8443")],
                false,
            ),
            (&https_app, &[("origin", "http://app.example.com")], false),
            (&https_app, &[("origin", "https://evil.example")], false),
            (
                &https_app,
                &[("origin", "https://app.example.com.evil.example")],
                false,
            ),
            (&https_app, &[("origin", "garbage")], false),
            (&https_app, &[("origin", "data:,x")], false),
            (
                &https_app,
                &[("referer", "https://app.example.com/x?y")],
                true,
            ),
            (
                &https_app,
                &[("referer", "https://evil.example/app.example.com")],
                false,
            ),
            (
                &https_app,
                &[("origin", "null"), ("referer", "https://evil.example/")],
                false,
            ),
            // The scheme latchkey sees, or public_url's.
            (
                &http_app,
                &[("origin", "http://app.example.com:8080")],
                true,
            ),
            (
                &http_app,
                &[("origin", "https://app.example.com:8080")],
                true,
            ),
            (&http_app, &[("origin", "http://app.example.com")], false),
            (&http_app, &[("origin", "http://auth.example.com")], false),
        ];
        for (ctx, pairs, want) in cases {
            let h = headers(pairs);
            assert_eq!(
                form_is_own(&h, ctx, &public),
                *want,
                "{} {pairs:?}",
                ctx.raw_host
            );
        }
    }
}
