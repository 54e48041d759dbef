//! What an incoming request says, read once at the edge: the real client
//! (through `trusted_proxies` only), its host and scheme, its cookies, its
//! forms, and whether a person's browser or a program is asking.
//!
//! X-Forwarded-* are believed only when the TCP peer is a trusted proxy; from
//! anyone else they are ignored and the peer's own address is the client.
//! `forwarded::read` reads them (every line, one rule per header).

use std::borrow::Cow;
use std::net::{IpAddr, SocketAddr};

use bytes::Bytes;
use http::header::{AsHeaderName, ACCEPT, COOKIE, HOST, ORIGIN, REFERER};
use http::{HeaderMap, HeaderName, Method, Request};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use ipnet::IpNet;

use crate::http::error::GateError;
use crate::http::forwarded::{self, Forwarded, ForwardedError};
use crate::policy::path::{normalize_host, split_host_port};
use crate::policy::rules::KNOWN_METHODS;

/// The client as latchkey believes it to be.
#[derive(Debug, Clone)]
pub struct Client {
    pub ip: IpAddr,
    /// The TCP peer: the hop latchkey appends to `X-Forwarded-For`.
    pub peer: IpAddr,
    /// The TCP peer is one of `trusted_proxies`.
    pub via_trusted_proxy: bool,
    /// X-Forwarded-For as received from a trusted proxy, every line (to
    /// append to).
    pub prior_forwarded_for: Option<String>,
    /// "https" or "http", as the client used it.
    pub proto: &'static str,
}

impl Client {
    /// The client behind `peer`. From a trusted proxy: the right-most
    /// `X-Forwarded-For` hop (all lines, in order) that is not itself a
    /// trusted proxy, and `X-Forwarded-Proto`; a repeated one-value header,
    /// a hop that is not an address, or another scheme is refused
    /// (`forwarded::read`).
    pub fn resolve(
        peer: SocketAddr,
        tls: bool,
        headers: &HeaderMap,
        trusted: &[IpNet],
    ) -> Result<Client, ForwardedError> {
        let peer_ip = canonical(peer.ip());
        let own_proto = if tls { "https" } else { "http" };
        if !is_trusted(peer_ip, trusted) {
            return Ok(Client {
                ip: peer_ip,
                peer: peer_ip,
                via_trusted_proxy: false,
                prior_forwarded_for: None,
                proto: own_proto,
            });
        }
        let xff = forwarded::read(headers, Forwarded::For)?;
        // Empty elements are skipped (RFC 9110 §5.6.1). A hop reached past
        // trusted proxies that is not an address means one of them wrote
        // something latchkey cannot read: refused, not guessed.
        let mut ip = peer_ip;
        let hops = xff.as_deref().unwrap_or("").rsplit(',').map(str::trim);
        for hop in hops.filter(|h| !h.is_empty()) {
            let addr = forwarded::hop_address(hop)
                .ok_or_else(|| ForwardedError::BadHop(hop.chars().take(64).collect()))?;
            ip = canonical(addr);
            if !is_trusted(ip, trusted) {
                break;
            }
        }
        let proto = match forwarded::read(headers, Forwarded::Proto)?.as_deref() {
            None => own_proto,
            Some(p) if p.eq_ignore_ascii_case("https") => "https",
            Some(p) if p.eq_ignore_ascii_case("http") => "http",
            Some(_) => return Err(ForwardedError::BadProto),
        };
        Ok(Client {
            ip,
            peer: peer_ip,
            via_trusted_proxy: true,
            prior_forwarded_for: xff.map(Cow::into_owned),
            proto,
        })
    }
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

fn is_trusted(ip: IpAddr, trusted: &[IpNet]) -> bool {
    trusted.iter().any(|n| n.contains(&ip))
}

/// A header's value if present, once, and visible ASCII. `name` is best a
/// `HeaderName` (a constant): a `&str` is parsed on every lookup.
pub fn header_str(headers: &HeaderMap, name: impl AsHeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The Host the client asked for, as sent (may carry a port): the target's
/// authority (HTTP/2's `:authority`, an HTTP/1.1 absolute-form target) or
/// else the `Host` header. `None`, to be refused with 400, when there is no
/// host, when `Host` is sent twice (RFC 9112 §3.2), or when a `Host` header
/// beside an authority names another host (RFC 9112 §3.2.2, RFC 9113
/// §8.3.1): the request would be judged for one host and could reach the
/// app as the other.
pub fn raw_host<B>(req: &Request<B>) -> Option<&str> {
    let mut hosts = req.headers().get_all(HOST).iter();
    let header = match (hosts.next(), hosts.next()) {
        (None, _) => None,
        (Some(v), None) => Some(v.to_str().ok()?),
        (Some(_), Some(_)) => return None,
    };
    match (req.uri().authority().map(|a| a.as_str()), header) {
        (Some(authority), Some(h)) if !authority.eq_ignore_ascii_case(h) => None,
        (Some(authority), _) => Some(authority),
        (None, header) => header,
    }
}

/// The `Host` the app receives: the normalized name that was judged
/// (`host`), plus the port `raw` carried, if any, as a plain number; so
/// `App.Example.com.:08080` is judged as `app.example.com` and forwarded as
/// `app.example.com:8080`.
pub fn forwarded_host(raw: &str, host: &str) -> String {
    let port = split_host_port(raw)
        .and_then(|(_, port)| port)
        .and_then(|p| p.parse::<u16>().ok());
    match port {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    }
}

/// Whether `method` is spelled as the standard methods are: `DELETE`, never
/// `delete` or `Delete`. Methods are case-sensitive (RFC 9110 §9.1), so a
/// rule for `DELETE` does not match `delete`, yet apps that upper-case the
/// method (Werkzeug, ASGI servers) would run their DELETE handler: a case
/// variant of a method a rule can name is refused, never judged as one
/// method and run as another. Methods no rule can name (`PURGE`, `purge`)
/// pass as sent; no decision depends on their case.
pub fn method_is_canonical(method: &Method) -> bool {
    let m = method.as_str();
    // A method a rule can name, exactly (nearly every request): canonical.
    KNOWN_METHODS.contains(&m)
        || !KNOWN_METHODS
            .iter()
            .any(|known| known.eq_ignore_ascii_case(m) && *known != m)
}

/// The headers through which a client asks an app to run another method
/// than the request's own (Express `method-override`, Symfony, Google's
/// APIs, many Java stacks): `X-HTTP-Method-Override`, `X-HTTP-Method`,
/// `X-Method-Override`.
pub const METHOD_OVERRIDE_HEADERS: [HeaderName; 3] = [
    HeaderName::from_static("x-http-method-override"),
    HeaderName::from_static("x-http-method"),
    HeaderName::from_static("x-method-override"),
];

/// `X-Requested-With`: `XMLHttpRequest` from a script.
const X_REQUESTED_WITH: HeaderName = HeaderName::from_static("x-requested-with");

/// The method a client asks the app to run instead of the request's own,
/// if any: one value in one of [`METHOD_OVERRIDE_HEADERS`]. Such a request
/// is judged as both methods (an app that honours the header runs the
/// override). Two different overrides, or one that is not a canonical
/// method, are refused: there is no one method to judge.
pub fn method_override(headers: &HeaderMap) -> Result<Option<Method>, GateError> {
    let mut found: Option<Method> = None;
    for name in &METHOD_OVERRIDE_HEADERS {
        for value in headers.get_all(name) {
            let method = Method::from_bytes(value.as_bytes())
                .ok()
                .filter(method_is_canonical)
                .ok_or(GateError::BadRequest("bad method override header"))?;
            match &found {
                Some(seen) if *seen != method => {
                    return Err(GateError::BadRequest("conflicting method override headers"))
                }
                _ => found = Some(method),
            }
        }
    }
    Ok(found)
}

/// The normalized host name (no port) of a raw Host value.
pub fn host_name(raw: &str) -> Result<String, GateError> {
    normalize_host(raw).ok_or(GateError::BadHost)
}

/// The first readable value of cookie `name` (see [`cookies`]). Of two
/// pairs with the same name the first wins: browsers send the cookie with
/// the longest Path first.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    cookie_pairs(headers).find_map(|pair| readable(pair, name))
}

/// Every readable value of cookie `name`, in the order sent, from every
/// `Cookie` header line. The headers are read as bytes and split at `;`; a
/// pair that holds anything but ASCII, or whose value holds anything but
/// visible ASCII, is skipped (another app under the cookie domain may set
/// `name=José`), never the whole header. Each pair is read as the `cookie`
/// crate's `Cookie::parse` reads one (split at the first `=`, name and
/// value trimmed, a pair without `=` or without a name skipped), without
/// building a `Cookie`; quotes around a value are dropped.
pub fn cookies<'a>(headers: &'a HeaderMap, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    cookie_pairs(headers).filter_map(move |pair| readable(pair, name))
}

fn cookie_pairs(headers: &HeaderMap) -> impl Iterator<Item = &[u8]> {
    headers
        .get_all(COOKIE)
        .iter()
        .flat_map(|v| v.as_bytes().split(|b| *b == b';'))
}

/// The value of one `name=value` pair if it is cookie `name` and readable.
/// Read as bytes, the name first: a pair of another name (most of them)
/// costs a search for `=` and a comparison. Whitespace is what `str::trim`
/// removes from ASCII; a pair holding anything but ASCII never matches (an
/// ASCII name cannot equal it, and its value fails the visible-ASCII check).
fn readable<'a>(pair: &'a [u8], name: &str) -> Option<&'a str> {
    let eq = pair.iter().position(|b| *b == b'=')?;
    let pair_name = trim(&pair[..eq]);
    if pair_name.is_empty() || pair_name != name.as_bytes() {
        return None;
    }
    // The value as a slice of the header, without one pair of surrounding
    // quotes.
    let value = trim(&pair[eq + 1..]);
    let value = match value {
        [b'"', inner @ .., b'"'] => inner,
        v => v,
    };
    match value.iter().all(u8::is_ascii_graphic) {
        true => std::str::from_utf8(value).ok(),
        false => None,
    }
}

/// `bytes` without the ASCII whitespace `str::trim` removes (which, unlike
/// `u8::is_ascii_whitespace`, includes the vertical tab).
fn trim(bytes: &[u8]) -> &[u8] {
    let space = |b: &u8| matches!(b, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r');
    let start = bytes.iter().position(|b| !space(b)).unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !space(b))
        .map_or(start, |i| i + 1);
    &bytes[start..end]
}

/// A person's browser navigating (gets pages and redirects), as opposed to
/// a script or XHR (gets status codes).
pub fn wants_html(headers: &HeaderMap) -> bool {
    let xhr = header_str(headers, X_REQUESTED_WITH)
        .is_some_and(|v| v.eq_ignore_ascii_case("xmlhttprequest"));
    let accepts_html = header_str(headers, ACCEPT).is_some_and(|v| v.contains("text/html"));
    accepts_html && !xhr
}

/// The origin the browser says a form came from: Origin, else Referer.
/// `Origin: null` states no origin (browsers send it from pages with
/// `Referrer-Policy: no-referrer`, and from sandboxed or `data:` documents,
/// which are cross-site and so never carry the SameSite CSRF cookie).
pub fn form_origin(headers: &HeaderMap) -> Option<&str> {
    match header_str(headers, ORIGIN) {
        Some("null") | None => header_str(headers, REFERER),
        Some(o) => Some(o),
    }
}

/// An urlencoded form body, read up to `limit` bytes.
pub struct Form(Vec<(String, String)>);

impl Form {
    pub async fn read(req: Request<Incoming>, limit: usize) -> Result<Form, GateError> {
        let body = Limited::new(req.into_body(), limit)
            .collect()
            .await
            .map_err(|_| GateError::BodyTooLarge)?
            .to_bytes();
        Ok(Form::parse(&body))
    }

    pub fn parse(body: &Bytes) -> Form {
        Form(form_urlencoded::parse(body).into_owned().collect())
    }

    /// The first value of `field`, or "".
    pub fn get(&self, field: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == field)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    }
}

/// The first value of `field` in a query string.
pub fn query_param(query: Option<&str>, field: &str) -> Option<String> {
    form_urlencoded::parse(query?.as_bytes())
        .find(|(k, _)| k == field)
        .map(|(_, v)| v.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trusted() -> Vec<IpNet> {
        vec!["10.0.0.0/8".parse().unwrap_or_else(|_| unreachable!())]
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, http::HeaderValue::from_static(v));
        }
        h
    }

    fn resolve(peer: &str, h: &HeaderMap) -> Result<Client, ForwardedError> {
        let peer = peer.parse().unwrap_or_else(|_| unreachable!());
        Client::resolve(peer, false, h, &trusted())
    }

    #[test]
    fn forwarded_headers_count_only_from_trusted_peers() {
        let h = headers(&[
            ("x-forwarded-for", "6.6.6.6"),
            ("x-forwarded-proto", "https"),
        ]);
        let untrusted = resolve("1.2.3.4:5", &h).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(untrusted.ip.to_string(), "1.2.3.4");
        assert_eq!(untrusted.proto, "http");
        assert!(untrusted.prior_forwarded_for.is_none());
        let via = resolve("10.0.0.1:5", &h).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(via.ip.to_string(), "6.6.6.6");
        assert_eq!(via.peer.to_string(), "10.0.0.1");
        assert_eq!(via.proto, "https");
    }

    /// X-Forwarded-For lines from a trusted peer (10.0.0.1), and who the
    /// client is (`Err` = refused); from an untrusted peer none of it counts.
    #[test]
    fn the_client_is_the_rightmost_untrusted_hop_of_every_line() {
        /// (lines, Ok((client, the list latchkey keeps)) or refused)
        type Case<'a> = (&'a [&'a str], Result<(&'a str, &'a str), ()>);
        let cases: &[Case] = &[
            (&[], Ok(("10.0.0.1", ""))),
            (
                &["9.9.9.9, 7.7.7.7, 10.1.1.1"],
                Ok(("7.7.7.7", "9.9.9.9, 7.7.7.7, 10.1.1.1")),
            ),
            // HAProxy `option forwardfor` appends its own line after the client's.
            (&["6.6.6.6", "7.7.7.7"], Ok(("7.7.7.7", "6.6.6.6, 7.7.7.7"))),
            (
                &["6.6.6.6, 6.6.6.6", "7.7.7.7, 10.2.2.2"],
                Ok(("7.7.7.7", "6.6.6.6, 6.6.6.6, 7.7.7.7, 10.2.2.2")),
            ),
            // Only trusted hops: the left-most.
            (
                &["10.3.3.3", "10.2.2.2"],
                Ok(("10.3.3.3", "10.3.3.3, 10.2.2.2")),
            ),
            // Empty elements and lines are skipped.
            (&["7.7.7.7,,", " "], Ok(("7.7.7.7", "7.7.7.7,,"))),
            (&[""], Ok(("10.0.0.1", ""))),
            // Ports and brackets.
            (&["7.7.7.7:5123"], Ok(("7.7.7.7", "7.7.7.7:5123"))),
            (
                &["[2001:db8::7]:443"],
                Ok(("2001:db8::7", "[2001:db8::7]:443")),
            ),
            (&["::ffff:7.7.7.7"], Ok(("7.7.7.7", "::ffff:7.7.7.7"))),
            // Garbage left of the client is the client's business...
            (&["garbage, 7.7.7.7"], Ok(("7.7.7.7", "garbage, 7.7.7.7"))),
            // ...but reached past trusted proxies it is refused.
            (&["7.7.7.7, unknown"], Err(())),
            (&["unknown", "10.2.2.2"], Err(())),
            (&["7.7.7.7 10.2.2.2"], Err(())),
        ];
        for (lines, want) in cases {
            let mut h = HeaderMap::new();
            for l in *lines {
                h.append(
                    "x-forwarded-for",
                    http::HeaderValue::from_str(l).unwrap_or_else(|_| unreachable!()),
                );
            }
            let got = resolve("10.0.0.1:5", &h)
                .map(|c| (c.ip.to_string(), c.prior_forwarded_for.unwrap_or_default()));
            let got = got
                .as_ref()
                .map(|(ip, xff)| (ip.as_str(), xff.as_str()))
                .map_err(|_| ());
            assert_eq!(got, *want, "{lines:?}");
            let untrusted = resolve("1.2.3.4:5", &h).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(untrusted.ip.to_string(), "1.2.3.4");
        }
    }

    #[test]
    fn a_trusted_scheme_is_http_or_https_on_one_line() {
        for (lines, want) in [
            (&[][..], Ok("http")),
            (&["https"][..], Ok("https")),
            (&["HTTP"][..], Ok("http")),
            (&["https", "http"][..], Err(())),
            (&["https, http"][..], Err(())),
            (&["ftp"][..], Err(())),
        ] {
            let mut h = HeaderMap::new();
            for l in lines {
                h.append("x-forwarded-proto", http::HeaderValue::from_static(l));
            }
            let got = resolve("10.0.0.1:5", &h).map(|c| c.proto).map_err(|_| ());
            assert_eq!(got, want, "{lines:?}");
            let untrusted = resolve("1.2.3.4:5", &h).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(untrusted.proto, "http", "ignored from others");
        }
    }

    #[test]
    fn unreadable_cookie_pairs_are_skipped_not_the_header() {
        fn map(lines: &[&[u8]]) -> HeaderMap {
            let mut h = HeaderMap::new();
            for l in lines {
                let v = http::HeaderValue::from_bytes(l).unwrap_or_else(|_| unreachable!());
                h.append(COOKIE, v);
            }
            h
        }
        // (Cookie lines, every readable value of `s`, in order)
        let cases: &[(&[&[u8]], &[&str])] = &[
            (&[b"s=abc; name=Jos\xc3\xa9"], &["abc"]),
            (&[b"name=Jos\xc3\xa9; s=abc"], &["abc"]),
            (&[b"a=\xff\xfe;s=abc;b=2"], &["abc"]),
            (&[b"\xc3\xa9=1; s=abc"], &["abc"]),
            (&[b"s=Jos\xc3\xa9; s=abc"], &["abc"]),
            (&[b"s=\x80", b"s=abc"], &["abc"]),
            (&[b"x=1", b"s=abc", b"s=def"], &["abc", "def"]),
            (&[b"s=abc; s=def"], &["abc", "def"]),
            (&[b"s=\"abc\""], &["abc"]),
            (&[b" s = abc ;"], &["abc"]),
            (&[b"s=a b"], &[]),
            (&[b"s=\t"], &[""]),
            (&[b"s="], &[""]),
            (&[b"s"], &[]),
            (&[b"ss=abc; s_=x; S=y"], &[]),
            (&[b"x=s=abc"], &[]),
        ];
        for (lines, want) in cases {
            let h = map(lines);
            let got: Vec<&str> = cookies(&h, "s").collect();
            assert_eq!(got, *want, "{lines:?}");
            assert_eq!(cookie(&h, "s"), want.first().copied(), "{lines:?}");
        }
    }

    /// `readable` reads a pair exactly as `cookie::Cookie::parse` does.
    #[test]
    fn pairs_are_read_as_the_cookie_crate_reads_them() {
        let pairs = [
            "s=abc",
            " s = abc ",
            "s=",
            "s",
            "=abc",
            " =abc",
            "s==a",
            "s=a=b",
            "s=\t",
            "\ts\t=\tv\t",
            "s =\"q\"",
            "x=s=abc",
            "S=abc",
            "s=a b",
            "\x0bs\x0b=\x0bv\x0b",
            "\x0cs=v\r",
            "s=\"\"",
            "s=\"",
            "s=\"a",
            "s=José",
        ];
        for pair in pairs {
            let crate_reads = cookie::Cookie::parse(pair).ok().and_then(|c| {
                let value = c.value_raw()?;
                let value = match value.len() >= 2 && value.starts_with('"') && value.ends_with('"')
                {
                    true => &value[1..value.len() - 1],
                    false => value,
                };
                (c.name_raw()? == "s" && value.bytes().all(|b| b.is_ascii_graphic()))
                    .then(|| value.to_owned())
            });
            assert_eq!(
                readable(pair.as_bytes(), "s").map(str::to_owned),
                crate_reads,
                "{pair:?}"
            );
        }
    }

    #[test]
    fn one_host_and_the_authority_wins_only_when_host_agrees() {
        // (target, Host headers, the host judged)
        let cases: &[(&str, &[&str], Option<&str>)] = &[
            ("/x", &["app.test"], Some("app.test")),
            ("/x", &["App.Test:8080"], Some("App.Test:8080")),
            ("/x", &[], None),
            ("/x", &["app.test", "app.test"], None),
            ("/x", &["app.test", "evil.test"], None),
            ("/x", &["app.test", ""], None),
            ("http://app.test/x", &[], Some("app.test")),
            (
                "http://app.test:81/x",
                &["app.test:81"],
                Some("app.test:81"),
            ),
            ("http://APP.test/x", &["app.TEST"], Some("APP.test")),
            ("http://evil.test/x", &["app.test"], None),
            ("http://app.test/x", &["evil.test"], None),
            ("http://app.test/x", &["app.test:80"], None),
            ("http://app.test/x", &[""], None),
        ];
        for (target, hosts, want) in cases {
            let mut req = Request::builder().uri(*target);
            for h in *hosts {
                req = req.header(HOST, *h);
            }
            let req = req.body(()).unwrap_or_else(|_| unreachable!());
            assert_eq!(raw_host(&req), *want, "{target} {hosts:?}");
        }
    }

    #[test]
    fn the_app_receives_the_judged_host_with_the_port_sent() {
        let cases: &[(&str, &str)] = &[
            ("app.test", "app.test"),
            ("App.Test.", "app.test"),
            ("APP.test.:8080", "app.test:8080"),
            ("app.test:08080", "app.test:8080"),
            ("app.test:", "app.test"),
            ("[0:0::1]:81", "[::1]:81"),
            ("127.0.0.1:80", "127.0.0.1:80"),
        ];
        for (raw, want) in cases {
            let host = host_name(raw).unwrap_or_else(|_| unreachable!());
            assert_eq!(forwarded_host(raw, &host), *want, "{raw}");
        }
    }

    #[test]
    fn case_variants_of_standard_methods_are_not_canonical() {
        let cases: &[(&str, bool)] = &[
            ("GET", true),
            ("DELETE", true),
            ("PROPFIND", true),
            ("PURGE", true),
            ("purge", true),
            ("X-Custom", true),
            ("get", false),
            ("Get", false),
            ("delete", false),
            ("dELETE", false),
            ("pUt", false),
            ("post", false),
            ("patch", false),
            ("options", false),
            ("propfind", false),
        ];
        for (m, want) in cases {
            let method = Method::from_bytes(m.as_bytes()).unwrap_or_else(|_| unreachable!());
            assert_eq!(method_is_canonical(&method), *want, "{m}");
        }
    }

    #[test]
    fn cookies_and_accept() {
        let h = headers(&[
            ("cookie", "a=1; latchkey_session=abc; b=2"),
            ("accept", "text/html,*/*"),
        ]);
        assert_eq!(cookie(&h, "latchkey_session"), Some("abc"));
        assert_eq!(cookie(&h, "latchkey"), None);
        assert!(wants_html(&h));
        assert!(!wants_html(&headers(&[("accept", "application/json")])));
        assert!(!wants_html(&headers(&[
            ("accept", "text/html"),
            ("x-requested-with", "XMLHttpRequest")
        ])));
    }
}

/// The facts about one request that every handler needs, read once.
#[derive(Debug, Clone)]
pub struct Ctx {
    pub client: Client,
    /// Host as the client sent it (may carry a port).
    pub raw_host: String,
    /// Normalized host name.
    pub host: String,
    /// Normalized path: what the rules judge and what is forwarded.
    pub path: String,
    pub query: Option<String>,
    /// Unix milliseconds at arrival.
    pub now: u64,
    /// A browser navigating (pages, redirects) rather than a program.
    pub html: bool,
    /// The request carries `Authorization: Bearer`: an API client, answered
    /// with 401/403 and a `WWW-Authenticate` challenge, never a redirect.
    pub bearer: bool,
    pub user_agent: String,
    /// The request id (`request_id.rs`): forwarded upstream as `X-Request-Id`.
    pub request_id: String,
    /// The method a `X-HTTP-Method-Override` (or a sibling header) asks
    /// the app to run: the request is judged as that method too.
    pub method_override: Option<Method>,
}
