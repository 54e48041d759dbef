//! A stand-in for github.com: GitHub cannot be reached from the tests, so
//! this small server implements what latchkey's `github` kind uses of it,
//! after GitHub's documentation ("Authorizing OAuth apps", the REST API's
//! "Users", "Emails" and "Organizations" pages), at the paths of a GitHub
//! Enterprise Server (`enterprise_url`), which are github.com's with the
//! API under `/api/v3`:
//!
//! - `GET /login/oauth/authorize?client_id&redirect_uri&scope&state
//!   &code_challenge&code_challenge_method=S256`: the person (the account
//!   set by [`GitHubStandIn::set_account`]) is taken as logged in and
//!   consenting; 302 to `redirect_uri?code=..&state=..`. An unknown client
//!   or redirect URI is a 400 page, as at GitHub.
//! - `POST /login/oauth/access_token` (form: client_id, client_secret,
//!   code, redirect_uri, code_verifier): the code works once, within its
//!   app, for its redirect URI and PKCE verifier; the answer is JSON with
//!   `Accept: application/json` (else form-encoded, as GitHub does), and a
//!   refused code is a **200** with `{"error":"bad_verification_code"}`.
//! - `GET /api/v3/user`, `/api/v3/user/emails`, `/api/v3/user/orgs`: need
//!   `Authorization: Bearer <token>` (or `token <token>`) and a
//!   `User-Agent` (GitHub refuses requests without one: 403); else 401.
//!
//! Accounts: `octo` (id 1, primary alice@example.com verified, a second
//! address unverified, in `example-org` and `other-org`), `unverified`
//! (id 2, primary not verified), `outsider` (id 3, verified, no orgs),
//! `joiner` (id 4, bob@example.com verified, in 150 organizations
//! `org-000`..`org-149`). Organizations come in pages as GitHub's REST API
//! pages lists: `per_page` (default 30, at most 100) and `page` (from 1).
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

pub const CLIENT_ID: &str = "Iv1.latchkeytest";
pub const CLIENT_SECRET: &str = "gh-client-secret-0123456789";

struct Grant {
    account: String,
    redirect_uri: String,
    challenge: String,
}

#[derive(Default)]
struct State {
    account: String,
    redirect_uris: Vec<String>,
    codes: HashMap<String, Grant>,
    tokens: HashMap<String, String>,
    /// The query of every authorize request, in order.
    authorizations: Vec<HashMap<String, String>>,
    /// Every code and token handed out (to look for them in logs).
    issued: Vec<String>,
    next: u64,
}

/// The running stand-in; it stops with the test's runtime.
pub struct GitHubStandIn {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
}

impl GitHubStandIn {
    /// Starts on a free loopback port (bound before latchkey's port is
    /// picked, so the two cannot collide), the app accepting no redirect
    /// URI until [`GitHubStandIn::register`].
    pub async fn start() -> GitHubStandIn {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State {
            account: "octo".into(),
            ..State::default()
        }));
        let shared = state.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let state = shared.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req| {
                        let state = state.clone();
                        async move { Ok::<_, Infallible>(handle(&state, req).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        GitHubStandIn { addr, state }
    }

    /// Registers `redirect_uri` (the app's callback URL) for the app.
    pub fn register(&self, redirect_uri: &str) {
        self.state
            .lock()
            .unwrap()
            .redirect_uris
            .push(redirect_uri.to_owned());
    }

    /// `http://127.0.0.1:{port}`: the `enterprise_url` to configure.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Who is "logged in at GitHub" for the next authorization.
    pub fn set_account(&self, account: &str) {
        self.state.lock().unwrap().account = account.to_owned();
    }

    /// The query of the last authorize request.
    pub fn last_authorization(&self) -> HashMap<String, String> {
        self.state
            .lock()
            .unwrap()
            .authorizations
            .last()
            .cloned()
            .unwrap()
    }

    /// Every code and access token handed out so far.
    pub fn issued(&self) -> Vec<String> {
        self.state.lock().unwrap().issued.clone()
    }
}

fn reply(status: StatusCode, content_type: &str, body: String) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(Full::new(Bytes::from(body)))
        .unwrap()
}

fn json_reply(status: StatusCode, v: Value) -> Response<Full<Bytes>> {
    reply(status, "application/json; charset=utf-8", v.to_string())
}

fn emails(account: &str) -> Value {
    match account {
        "octo" => json!([
            {"email": "Alice@Example.com", "primary": true, "verified": true, "visibility": "private"},
            {"email": "octo@old.example.net", "primary": false, "verified": false, "visibility": null}
        ]),
        "unverified" => json!([
            {"email": "unverified@example.com", "primary": true, "verified": false, "visibility": "public"}
        ]),
        "joiner" => json!([
            {"email": "bob@example.com", "primary": true, "verified": true, "visibility": "public"}
        ]),
        _ => json!([
            {"email": "outsider@example.com", "primary": true, "verified": true, "visibility": "public"}
        ]),
    }
}

fn orgs(account: &str, query: &HashMap<String, String>) -> Value {
    let all: Vec<Value> = match account {
        "octo" => vec![
            json!({"login": "example-org", "id": 10}),
            json!({"login": "other-org", "id": 11}),
        ],
        "unverified" => vec![json!({"login": "example-org", "id": 10})],
        "joiner" => (0..150)
            .map(|i| json!({"login": format!("org-{i:03}"), "id": 1000 + i}))
            .collect(),
        _ => Vec::new(),
    };
    let number = |name: &str, default: usize| {
        query
            .get(name)
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(default)
    };
    let per_page = number("per_page", 30).clamp(1, 100);
    let page = number("page", 1).max(1);
    Value::Array(
        all.into_iter()
            .skip((page - 1) * per_page)
            .take(per_page)
            .collect(),
    )
}

fn user_id(account: &str) -> u64 {
    match account {
        "octo" => 1,
        "unverified" => 2,
        "joiner" => 4,
        _ => 3,
    }
}

async fn handle(state: &Mutex<State>, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    let query: HashMap<String, String> =
        form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes())
            .into_owned()
            .collect();
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    match (parts.method.as_str(), parts.uri.path()) {
        ("GET", "/login/oauth/authorize") => {
            let mut s = state.lock().unwrap();
            s.authorizations.push(query.clone());
            let redirect = query.get("redirect_uri").cloned().unwrap_or_default();
            if query.get("client_id").map(String::as_str) != Some(CLIENT_ID)
                || !s.redirect_uris.contains(&redirect)
            {
                return reply(
                    StatusCode::BAD_REQUEST,
                    "text/html",
                    "<p>The redirect_uri MUST match the registered callback URL for this application.</p>".into(),
                );
            }
            let challenge = match query.get("code_challenge_method").map(String::as_str) {
                Some("S256") => query.get("code_challenge").cloned().unwrap_or_default(),
                _ => String::new(),
            };
            s.next += 1;
            let code = format!("ghcode{:016x}{}", s.next, "c0de");
            let grant = Grant {
                account: s.account.clone(),
                redirect_uri: redirect.clone(),
                challenge,
            };
            s.codes.insert(code.clone(), grant);
            s.issued.push(code.clone());
            let mut to = url::Url::parse(&redirect).unwrap();
            to.query_pairs_mut().append_pair("code", &code);
            if let Some(st) = query.get("state") {
                to.query_pairs_mut().append_pair("state", st);
            }
            Response::builder()
                .status(StatusCode::FOUND)
                .header("location", to.as_str())
                .body(Full::new(Bytes::new()))
                .unwrap()
        }
        ("POST", "/login/oauth/access_token") => {
            let form: HashMap<String, String> =
                form_urlencoded::parse(&body).into_owned().collect();
            let field = |k: &str| form.get(k).map(String::as_str).unwrap_or("");
            let wants_json = header("accept").contains("application/json");
            let mut s = state.lock().unwrap();
            let grant = s.codes.remove(field("code"));
            let ok = field("client_id") == CLIENT_ID
                && field("client_secret") == CLIENT_SECRET
                && grant.as_ref().is_some_and(|g| {
                    g.redirect_uri == field("redirect_uri")
                        && (g.challenge.is_empty()
                            || URL_SAFE_NO_PAD.encode(Sha256::digest(field("code_verifier")))
                                == g.challenge)
                });
            let answer = match (ok, grant) {
                (true, Some(g)) => {
                    s.next += 1;
                    let token = format!("gho_{:032x}", s.next * 7919);
                    s.tokens.insert(token.clone(), g.account);
                    s.issued.push(token.clone());
                    vec![
                        ("access_token", token),
                        ("scope", "read:org,read:user,user:email".to_owned()),
                        ("token_type", "bearer".to_owned()),
                    ]
                }
                _ => vec![
                    ("error", "bad_verification_code".to_owned()),
                    (
                        "error_description",
                        "The code passed is incorrect or expired.".to_owned(),
                    ),
                ],
            };
            if wants_json {
                let map: serde_json::Map<String, Value> = answer
                    .into_iter()
                    .map(|(k, v)| (k.to_owned(), Value::String(v)))
                    .collect();
                json_reply(StatusCode::OK, Value::Object(map))
            } else {
                let body = form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(answer)
                    .finish();
                reply(StatusCode::OK, "application/x-www-form-urlencoded", body)
            }
        }
        ("GET", path) if path.starts_with("/api/v3/") => {
            if header("user-agent").is_empty() {
                return reply(
                    StatusCode::FORBIDDEN,
                    "text/plain",
                    "Request forbidden by administrative rules. Please make sure your request has a User-Agent header".into(),
                );
            }
            let auth = header("authorization");
            let token = auth
                .strip_prefix("Bearer ")
                .or_else(|| auth.strip_prefix("token "))
                .unwrap_or("");
            let Some(account) = state.lock().unwrap().tokens.get(token).cloned() else {
                return json_reply(
                    StatusCode::UNAUTHORIZED,
                    json!({"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"}),
                );
            };
            match path {
                "/api/v3/user" => json_reply(
                    StatusCode::OK,
                    json!({"login": account, "id": user_id(&account), "type": "User", "email": null}),
                ),
                "/api/v3/user/emails" => json_reply(StatusCode::OK, emails(&account)),
                "/api/v3/user/orgs" => json_reply(StatusCode::OK, orgs(&account, &query)),
                _ => json_reply(StatusCode::NOT_FOUND, json!({"message": "Not Found"})),
            }
        }
        _ => json_reply(StatusCode::NOT_FOUND, json!({"message": "Not Found"})),
    }
}
