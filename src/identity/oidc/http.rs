//! The HTTP client latchkey uses to talk to identity providers: hyper-util's
//! pooled client over hyper-rustls (the same TLS stack and crypto provider
//! as everything else), one deadline per exchange, bodies capped, answers
//! read as JSON. It turns transport failures into `OidcError`'s
//! `Unreachable` / `Timeout` / `Status` / `BadResponse`; it knows nothing
//! of OpenID itself.

use std::time::Duration;

use bytes::Bytes;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, USER_AGENT};
use http::{HeaderValue, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use serde::de::DeserializeOwned;
use url::Url;

use super::OidcError;
use crate::tls::TlsError;

/// Largest answer read from a provider (discovery, keys, tokens, userinfo).
const MAX_BODY: usize = 1024 * 1024;

/// A pooled client for provider traffic; clones share the pool.
#[derive(Clone)]
pub struct ProviderHttp {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    timeout: Duration,
}

impl std::fmt::Debug for ProviderHttp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderHttp")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// A request body and how to authenticate, for [`ProviderHttp::send`].
pub(crate) enum Auth<'a> {
    None,
    Basic(&'a str),
    Bearer(&'a str),
}

impl ProviderHttp {
    /// HTTPS verified against the public web roots (or `ca_file`'s CAs),
    /// plain HTTP allowed (config only accepts it on loopback); each
    /// exchange must finish within `timeout`.
    pub fn new(
        ca_file: Option<&std::path::Path>,
        timeout: Duration,
    ) -> Result<ProviderHttp, TlsError> {
        let tls = crate::tls::client_config(ca_file)?;
        let mut http = HttpConnector::new();
        http.set_nodelay(true);
        http.set_connect_timeout(Some(timeout));
        http.enforce_http(false);
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        Ok(ProviderHttp { client, timeout })
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// GETs `url` and reads a JSON answer.
    pub(crate) async fn get_json<T: DeserializeOwned>(
        &self,
        url: &Url,
        auth: Auth<'_>,
    ) -> Result<T, OidcError> {
        self.send(Method::GET, url, auth, None).await
    }

    /// POSTs `form` (urlencoded) to `url` and reads a JSON answer.
    pub(crate) async fn post_form<T: DeserializeOwned>(
        &self,
        url: &Url,
        auth: Auth<'_>,
        form: String,
    ) -> Result<T, OidcError> {
        self.send(Method::POST, url, auth, Some(form)).await
    }

    async fn send<T: DeserializeOwned>(
        &self,
        method: Method,
        url: &Url,
        auth: Auth<'_>,
        form: Option<String>,
    ) -> Result<T, OidcError> {
        let shown = redacted(url);
        let bad = |source: Box<dyn std::error::Error + Send + Sync>| OidcError::BadResponse {
            url: shown.clone(),
            source,
        };
        let mut req = Request::builder()
            .method(method)
            .uri(url.as_str())
            .header(ACCEPT, "application/json")
            .header(USER_AGENT, concat!("latchkey/", env!("CARGO_PKG_VERSION")));
        match auth {
            Auth::None => {}
            Auth::Basic(v) | Auth::Bearer(v) => {
                let scheme = if matches!(auth, Auth::Basic(_)) {
                    "Basic"
                } else {
                    "Bearer"
                };
                let mut value = HeaderValue::from_str(&format!("{scheme} {v}"))
                    .map_err(|e| bad(Box::new(e)))?;
                value.set_sensitive(true);
                req = req.header(AUTHORIZATION, value);
            }
        }
        let body = match form {
            Some(f) => {
                req = req.header(CONTENT_TYPE, "application/x-www-form-urlencoded");
                Full::new(Bytes::from(f))
            }
            None => Full::new(Bytes::new()),
        };
        let req = req.body(body).map_err(|e| bad(Box::new(e)))?;

        let exchange = async {
            let resp = self
                .client
                .request(req)
                .await
                .map_err(|e| OidcError::Unreachable {
                    url: shown.clone(),
                    source: Box::new(e),
                })?;
            let status = resp.status();
            let bytes = Limited::new(resp.into_body(), MAX_BODY)
                .collect()
                .await
                .map_err(&bad)?
                .to_bytes();
            Ok::<_, OidcError>((status, bytes))
        };
        let (status, bytes) = tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| OidcError::Timeout {
                url: shown.clone(),
                after: self.timeout,
            })??;
        if !status.is_success() {
            return Err(OidcError::Status {
                url: shown,
                status,
                error: oauth_error_code(status, &bytes),
            });
        }
        serde_json::from_slice(&bytes).map_err(|e| bad(Box::new(e)))
    }
}

/// The `error` code of an OAuth error answer, if it is a plain token.
fn oauth_error_code(status: StatusCode, body: &[u8]) -> Option<String> {
    if !status.is_client_error() {
        return None;
    }
    #[derive(serde::Deserialize)]
    struct OauthError {
        error: String,
    }
    let e: OauthError = serde_json::from_slice(body).ok()?;
    let ok = e.error.len() <= 64
        && e.error
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_');
    ok.then_some(e.error)
}

/// The URL without query or fragment, for messages.
fn redacted(url: &Url) -> String {
    let mut u = url.clone();
    u.set_query(None);
    u.set_fragment(None);
    u.to_string()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_provider_that_accepts_but_never_answers_is_a_timeout() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let hold = tokio::spawn(async move {
            let mut held = Vec::new();
            loop {
                let (sock, _) = listener.accept().await.unwrap();
                held.push(sock);
            }
        });
        let http = ProviderHttp::new(None, Duration::from_millis(300)).unwrap();
        let url = Url::parse(&format!("http://{addr}/.well-known/openid-configuration")).unwrap();
        let err = http
            .get_json::<serde_json::Value>(&url, Auth::None)
            .await
            .unwrap_err();
        assert!(matches!(err, OidcError::Timeout { .. }), "{err:?}");
        assert_eq!(err.status(), StatusCode::GATEWAY_TIMEOUT);
        hold.abort();
    }

    #[tokio::test]
    async fn a_closed_port_is_unreachable() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let http = ProviderHttp::new(None, Duration::from_secs(5)).unwrap();
        let url = Url::parse(&format!("http://127.0.0.1:{port}/jwks")).unwrap();
        let err = http
            .get_json::<serde_json::Value>(&url, Auth::None)
            .await
            .unwrap_err();
        assert!(matches!(err, OidcError::Unreachable { .. }), "{err:?}");
        assert_eq!(err.status(), StatusCode::BAD_GATEWAY);
    }

    #[test]
    fn oauth_error_codes_are_kept_only_when_plain() {
        let code = |b: &str| oauth_error_code(StatusCode::BAD_REQUEST, b.as_bytes());
        assert_eq!(
            code(r#"{"error":"invalid_grant"}"#).as_deref(),
            Some("invalid_grant")
        );
        assert_eq!(code(r#"{"error":"<script>"}"#), None);
        assert_eq!(code("not json"), None);
    }
}
