// Forward-auth target parsing (X-Forwarded-* for Traefik/Caddy,
// X-Original-* for Nginx) from a trusted proxy. Properties: never a
// panic; an accepted target has a normalized host and path (what the rules
// judge) and a URL that parses.

use std::net::{IpAddr, Ipv4Addr};

use http::{HeaderMap, HeaderName, HeaderValue, Method};
use latchkey::gate::forward_auth::{Flavor, Target};
use latchkey::policy::path::{normalize_host, normalize_path};
use latchkey::http::request::{Client, Ctx};
use latchkey::app::settings::NginxTarget;

const NAMES: &[&str] = &[
    "x-forwarded-method",
    "x-forwarded-proto",
    "x-forwarded-host",
    "x-forwarded-uri",
    "x-original-url",
    "x-original-uri",
    "x-original-method",
];

/// The property this target checks, for one input (also replayed by the
/// test suite over `fuzz/regressions/forward_auth_target/`).
pub fn check(data: &[u8]) {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let flavor = if flags & 1 == 0 { Flavor::Traefik } else { Flavor::Nginx };
    let nginx = if flags & 2 == 0 { NginxTarget::Url } else { NginxTarget::Uri };
    let mut headers = HeaderMap::new();
    // Each line: one byte choosing the header, then its value.
    for line in rest.split(|&b| b == b'\n') {
        let Some((&which, value)) = line.split_first() else {
            continue;
        };
        let name = HeaderName::from_static(NAMES[usize::from(which) % NAMES.len()]);
        if let Ok(v) = HeaderValue::from_bytes(value) {
            headers.append(name, v);
        }
    }
    let ctx = Ctx {
        client: Client {
            ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            peer: IpAddr::V4(Ipv4Addr::LOCALHOST),
            via_trusted_proxy: true,
            prior_forwarded_for: None,
            proto: "http",
        },
        raw_host: "auth.example.com".into(),
        host: "auth.example.com".into(),
        path: "/.latchkey/auth".into(),
        query: None,
        now: 0,
        html: false,
        bearer: false,
        user_agent: String::new(),
        request_id: String::new(),
        method_override: None,
    };
    let Ok(t) = Target::read(flavor, nginx, &headers, &ctx, &Method::GET) else {
        return;
    };
    assert_eq!(normalize_path(&t.path).as_deref(), Ok(t.path.as_str()));
    assert_eq!(normalize_host(&t.host).as_deref(), Some(t.host.as_str()));
    assert!(url::Url::parse(&t.url()).is_ok(), "{:?} -> {}", t, t.url());
}
