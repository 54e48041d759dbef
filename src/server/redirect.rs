//! The plain-HTTP listener's one answer (`server.http_redirect_listen`): a
//! permanent redirect to the same URL on HTTPS, to latchkey's own host or an
//! app's only (never elsewhere), on public_url's port.

use http::header::LOCATION;
use http::{HeaderValue, Request, Response, StatusCode};

use crate::app::settings::Settings;
use crate::http::request::raw_host;
use crate::policy::path::normalize_host;
use crate::Body;

/// The answer of the plain-HTTP listener: the same URL on HTTPS. The host
/// kept is the request's only when it is latchkey's own or an app's (no
/// redirect elsewhere); the port is public_url's.
pub(super) fn redirect_to_https<B>(s: &Settings, req: &Request<B>) -> Response<Body> {
    let host = raw_host(req)
        .and_then(normalize_host)
        .filter(|h| *h == s.public_host || s.apps.contains_key(h))
        .unwrap_or_else(|| s.public_host.clone());
    let port = s
        .public_url
        .port()
        .map(|p| format!(":{p}"))
        .unwrap_or_default();
    let target = req
        .uri()
        .path_and_query()
        .map(|pq| pq.as_str())
        .filter(|pq| pq.starts_with('/'))
        .unwrap_or("/");
    let location = HeaderValue::from_str(&format!("https://{host}{port}{target}"))
        .or_else(|_| HeaderValue::from_str(&format!("https://{}{port}/", s.public_host)));
    let mut resp = crate::http::response::text(
        StatusCode::PERMANENT_REDIRECT,
        "This site is served over HTTPS.\n",
    );
    if let Ok(location) = location {
        resp.headers_mut().insert(LOCATION, location);
    }
    resp
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::config::FileConfig;

    fn settings(public_url: &str) -> Settings {
        let cfg = FileConfig::from_toml(&format!(
            r#"
[server]
public_url = "{public_url}"

[[apps]]
host = "app.example.com"
"#
        ))
        .unwrap();
        Settings::compile(&cfg).unwrap()
    }

    fn location(s: &Settings, host: &str, target: &str) -> String {
        let req = Request::builder()
            .uri(target)
            .header("host", host)
            .body(())
            .unwrap();
        let resp = redirect_to_https(s, &req);
        assert_eq!(resp.status(), StatusCode::PERMANENT_REDIRECT);
        resp.headers()[LOCATION].to_str().unwrap().to_owned()
    }

    #[test]
    fn redirects_keep_known_hosts_only() {
        let s = settings("https://auth.example.com");
        let cases = [
            (
                "auth.example.com",
                "/x?y=1",
                "https://auth.example.com/x?y=1",
            ),
            ("app.example.com:80", "/a/b", "https://app.example.com/a/b"),
            ("APP.example.com.", "/", "https://app.example.com/"),
            ("evil.example", "/steal", "https://auth.example.com/steal"),
            ("", "/", "https://auth.example.com/"),
            (
                "bad host",
                "//evil.example/",
                "https://auth.example.com//evil.example/",
            ),
        ];
        for (host, target, want) in cases {
            assert_eq!(location(&s, host, target), want, "{host} {target}");
        }
    }

    #[test]
    fn redirects_use_public_url_port() {
        let s = settings("https://auth.example.com:8443");
        assert_eq!(
            location(&s, "app.example.com:8080", "/p"),
            "https://app.example.com:8443/p"
        );
    }
}
