//! The one table of latchkey's own URLs: every `/.latchkey/*` route,
//! method + path → handler, in [`ROUTES`]. A `*` in a path is one
//! non-empty segment (a provider's id); the handler reads it. A path in the table asked with a
//! method it does not answer gets 405 with an `Allow` header built from
//! the table; a `/.latchkey/*` path not in it gets 404. No handler routes:
//! the handlers (sign-in's, forward-auth's) only answer. Which metrics
//! label a path counts under comes from here too.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use http::{header, HeaderValue, Method, Request};
use hyper::body::Incoming;

use crate::app::App;
use crate::gate::forward_auth::{self, Flavor};
use crate::gate::{render, Answer};
use crate::http::error::GateError;
use crate::http::request::Ctx;
use crate::obs::metrics::{Outcome, Route};
use crate::signin::{
    account, ceremony, link, logout, me, oauth, passkey_login, passkeys, step_up, token, verify,
};

/// Which methods a route answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Methods {
    /// GET, and HEAD with it.
    Get,
    Post,
    /// Any method: forward-auth, where the method is the front proxy's.
    Any,
}

impl Methods {
    fn answers(self, method: &Method) -> bool {
        match self {
            Methods::Get => *method == Method::GET || *method == Method::HEAD,
            Methods::Post => *method == Method::POST,
            Methods::Any => true,
        }
    }

    /// As listed in `Allow`.
    fn names(self) -> &'static [&'static str] {
        match self {
            Methods::Get => &["GET", "HEAD"],
            Methods::Post => &["POST"],
            Methods::Any => &[],
        }
    }
}

type Pending<'a> = Pin<Box<dyn Future<Output = Result<Answer, GateError>> + Send + 'a>>;
type Handler = for<'a> fn(&'a Arc<App>, Request<Incoming>, &'a Ctx) -> Pending<'a>;

struct Entry {
    path: &'static str,
    methods: Methods,
    /// The `route` label its requests are counted under.
    metric: Route,
    handler: Handler,
}

/// A sign-in handler: it gets the `SignIn` parts; its answers count as allowed.
macro_rules! sign_in {
    ($handler:path) => {
        |app, req, ctx| {
            Box::pin(async move {
                $handler(&app.sign_in(), req, ctx)
                    .await
                    .map(|resp| (resp, Outcome::Allowed))
            })
        }
    };
}

/// Every `/.latchkey/*` route. Forward-auth's first: a front proxy asks
/// them on every request, and the table is searched in order.
const ROUTES: &[Entry] = &[
    Entry {
        path: "/.latchkey/auth",
        methods: Methods::Any,
        metric: Route::Traefik,
        handler: |app, req, ctx| {
            Box::pin(async move { forward_auth::handle(app, &req, ctx, Flavor::Traefik).await })
        },
    },
    Entry {
        path: "/.latchkey/auth/request",
        methods: Methods::Any,
        metric: Route::Nginx,
        handler: |app, req, ctx| {
            Box::pin(async move { forward_auth::handle(app, &req, ctx, Flavor::Nginx).await })
        },
    },
    Entry {
        path: "/.latchkey/login",
        methods: Methods::Get,
        metric: Route::Pages,
        handler: sign_in!(link::login_page),
    },
    Entry {
        path: "/.latchkey/login",
        methods: Methods::Post,
        metric: Route::Pages,
        handler: sign_in!(link::request_link),
    },
    Entry {
        path: "/.latchkey/verify",
        methods: Methods::Get,
        metric: Route::Pages,
        handler: sign_in!(verify::confirm_page),
    },
    Entry {
        path: "/.latchkey/verify",
        methods: Methods::Post,
        metric: Route::Pages,
        handler: sign_in!(verify::verify),
    },
    Entry {
        path: "/.latchkey/code",
        methods: Methods::Post,
        metric: Route::Pages,
        handler: sign_in!(verify::redeem_code),
    },
    Entry {
        path: "/.latchkey/logout",
        methods: Methods::Get,
        metric: Route::Pages,
        handler: sign_in!(logout::confirm_page),
    },
    Entry {
        path: "/.latchkey/logout",
        methods: Methods::Post,
        metric: Route::Pages,
        handler: sign_in!(logout::logout),
    },
    Entry {
        path: "/.latchkey/signed-out",
        methods: Methods::Get,
        metric: Route::Pages,
        handler: sign_in!(logout::signed_out_page),
    },
    Entry {
        path: "/.latchkey/account",
        methods: Methods::Get,
        metric: Route::Pages,
        handler: sign_in!(account::page),
    },
    Entry {
        path: "/.latchkey/account/sessions",
        methods: Methods::Post,
        metric: Route::Pages,
        handler: sign_in!(account::end_sessions),
    },
    Entry {
        path: "/.latchkey/step-up",
        methods: Methods::Get,
        metric: Route::Pages,
        handler: sign_in!(step_up::page),
    },
    Entry {
        path: "/.latchkey/step-up/options",
        methods: Methods::Post,
        metric: Route::Pages,
        handler: sign_in!(step_up::options),
    },
    Entry {
        path: "/.latchkey/step-up",
        methods: Methods::Post,
        metric: Route::Pages,
        handler: sign_in!(step_up::finish),
    },
    Entry {
        path: "/.latchkey/account/passkeys",
        methods: Methods::Post,
        metric: Route::Pages,
        handler: sign_in!(passkeys::manage),
    },
    Entry {
        path: "/.latchkey/passkey/register/options",
        methods: Methods::Post,
        metric: Route::Pages,
        handler: sign_in!(passkeys::options),
    },
    Entry {
        path: "/.latchkey/passkey/register",
        methods: Methods::Post,
        metric: Route::Pages,
        handler: sign_in!(passkeys::finish),
    },
    Entry {
        path: "/.latchkey/passkey/login/options",
        methods: Methods::Post,
        metric: Route::Pages,
        handler: sign_in!(passkey_login::options),
    },
    Entry {
        path: "/.latchkey/passkey/login",
        methods: Methods::Post,
        metric: Route::Pages,
        handler: sign_in!(passkey_login::finish),
    },
    Entry {
        path: "/.latchkey/passkey.js",
        methods: Methods::Get,
        metric: Route::Pages,
        handler: sign_in!(ceremony::script),
    },
    Entry {
        path: "/.latchkey/me",
        methods: Methods::Get,
        metric: Route::Pages,
        handler: sign_in!(me::me),
    },
    Entry {
        path: "/.latchkey/token",
        methods: Methods::Post,
        metric: Route::Pages,
        handler: sign_in!(token::exchange),
    },
    Entry {
        path: "/.latchkey/jwks.json",
        methods: Methods::Get,
        metric: Route::Pages,
        handler: sign_in!(token::jwks),
    },
    Entry {
        path: "/.latchkey/oauth/*/start",
        methods: Methods::Get,
        metric: Route::Pages,
        handler: sign_in!(oauth::start),
    },
    Entry {
        path: "/.latchkey/oauth/*/callback",
        methods: Methods::Get,
        metric: Route::Pages,
        handler: sign_in!(oauth::callback),
    },
    Entry {
        path: "/.latchkey/oauth/*/handoff",
        methods: Methods::Get,
        metric: Route::Pages,
        handler: sign_in!(oauth::handoff),
    },
];

/// Which front door a (normalized, or raw when it did not normalize) path
/// is: a table route's label, `Pages` for any other `/.latchkey` path,
/// else `Proxy`.
pub fn metric_route(path: &str) -> Route {
    if !path.starts_with("/.latchkey") {
        return Route::Proxy; // every route is under /.latchkey/
    }
    match ROUTES.iter().find(|e| matches(e.path, path)) {
        Some(e) => e.metric,
        None if path == "/.latchkey" || path.starts_with("/.latchkey/") => Route::Pages,
        None => Route::Proxy,
    }
}

/// Serves one of latchkey's own URLs (`ctx.path` is a `/.latchkey` path).
pub(super) async fn serve(
    app: &Arc<App>,
    req: Request<Incoming>,
    ctx: &Ctx,
) -> Result<Answer, GateError> {
    let on_path = || ROUTES.iter().filter(|e| matches(e.path, &ctx.path));
    if let Some(e) = on_path().find(|e| e.methods.answers(req.method())) {
        return (e.handler)(app, req, ctx).await;
    }
    let Some(allow) = allow(&ctx.path) else {
        return Err(GateError::NotFound);
    };
    let (mut resp, outcome) = render(app, &GateError::MethodNotAllowed, ctx.html);
    if let Ok(v) = HeaderValue::from_str(&allow) {
        resp.headers_mut().insert(header::ALLOW, v);
    }
    Ok((resp, outcome))
}

/// The `Allow` header for `path`: every method the table answers there,
/// in table order. `None`: not a path in the table.
fn allow(path: &str) -> Option<String> {
    let names: Vec<&str> = ROUTES
        .iter()
        .filter(|e| matches(e.path, path))
        .flat_map(|e| e.methods.names().iter().copied())
        .collect();
    let known = ROUTES.iter().any(|e| matches(e.path, path));
    known.then(|| names.join(", "))
}

/// Whether `path` is `pattern`, where a `*` (always a whole segment of it)
/// stands for any one non-empty segment. One pass over the bytes that stops
/// at the first difference: this runs for routes of the table on every
/// `/.latchkey/` request.
fn matches(pattern: &str, path: &str) -> bool {
    let (want, got) = (pattern.as_bytes(), path.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < want.len() {
        if want[i] == b'*' {
            let start = j;
            while j < got.len() && got[j] != b'/' {
                j += 1;
            }
            if j == start {
                return false;
            }
        } else if got.get(j) != Some(&want[i]) {
            return false;
        } else {
            j += 1;
        }
        i += 1;
    }
    j == got.len()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::convert::Infallible;
    use std::net::SocketAddr;

    use bytes::Bytes;
    use http::StatusCode;
    use http_body_util::Empty;
    use hyper::service::service_fn;
    use hyper_util::rt::TokioIo;
    use tokio::net::{TcpListener, TcpStream};

    use super::*;
    use crate::app::settings::Settings;
    use crate::config::{FileConfig, KeyConfig};
    use crate::identity::keys::{generate_pem, Alg};

    /// An `App` with a signing key (so the token routes exist), served on
    /// 127.0.0.1:0 by `gate::handle`, one connection per request.
    async fn serve_app(dir: &std::path::Path) -> SocketAddr {
        let pem = generate_pem(Alg::Es256).unwrap();
        let key = dir.join("k.pem");
        std::fs::write(&key, pem).unwrap();
        let mut cfg = FileConfig::default();
        cfg.server.public_url = "http://127.0.0.1".into();
        cfg.assertion.keys = vec![KeyConfig {
            kid: "k".into(),
            file: key.display().to_string(),
        }];
        let settings = Settings::compile(&cfg).unwrap();
        let app = Arc::new(App::new(settings).unwrap());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((stream, peer)) = listener.accept().await {
                let app = app.clone();
                let service = service_fn(move |req| {
                    let app = app.clone();
                    async move { Ok::<_, Infallible>(crate::gate::handle(app, req, peer, false).await) }
                });
                tokio::spawn(
                    hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service),
                );
            }
        });
        addr
    }

    async fn ask(addr: SocketAddr, method: &Method, path: &str) -> http::Response<Incoming> {
        let stream = TcpStream::connect(addr).await.unwrap();
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        tokio::spawn(conn);
        let req = Request::builder()
            .method(method.clone())
            .uri(path)
            .header(header::HOST, "127.0.0.1")
            .body(Empty::<Bytes>::new())
            .unwrap();
        sender.send_request(req).await.unwrap()
    }

    #[test]
    fn the_table_holds_latchkey_paths_each_method_once() {
        let mut seen = BTreeSet::new();
        for e in ROUTES {
            assert!(e.path.starts_with("/.latchkey/"), "{}", e.path);
            assert!(
                e.path
                    .split('/')
                    .all(|seg| seg == "*" || !seg.contains('*')),
                "{}: a * is a whole segment",
                e.path
            );
            assert!(seen.insert((e.path, e.methods as u8)), "{} twice", e.path);
            assert!(
                e.methods != Methods::Any
                    || ROUTES.iter().filter(|o| o.path == e.path).count() == 1,
                "{}: Any beside other methods",
                e.path
            );
        }
    }

    #[tokio::test]
    async fn every_route_answers_and_a_wrong_method_gets_405_with_allow() {
        let dir = tempfile::tempdir().unwrap();
        let addr = serve_app(dir.path()).await;
        for e in ROUTES.iter().filter(|e| !e.path.contains('*')) {
            let method = match e.methods {
                Methods::Get | Methods::Any => Method::GET,
                Methods::Post => Method::POST,
            };
            let resp = ask(addr, &method, e.path).await;
            let status = resp.status();
            assert!(
                status != StatusCode::NOT_FOUND && status != StatusCode::METHOD_NOT_ALLOWED,
                "{method} {}: {status}",
                e.path
            );
        }
        let paths: BTreeSet<&str> = ROUTES.iter().map(|e| e.path).collect();
        for pattern in paths {
            let path = &pattern.replace('*', "corp");
            let path = path.as_str();
            let want: BTreeSet<&str> = ROUTES
                .iter()
                .filter(|e| e.path == pattern)
                .flat_map(|e| e.methods.names().iter().copied())
                .collect();
            if ROUTES
                .iter()
                .any(|e| e.path == pattern && e.methods == Methods::Any)
            {
                continue;
            }
            for wrong in [Method::PUT, Method::DELETE, Method::OPTIONS, Method::PATCH] {
                let resp = ask(addr, &wrong, path).await;
                assert_eq!(
                    resp.status(),
                    StatusCode::METHOD_NOT_ALLOWED,
                    "{wrong} {path}"
                );
                let allow = resp
                    .headers()
                    .get(header::ALLOW)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_else(|| panic!("{wrong} {path}: no Allow"));
                let got: BTreeSet<&str> = allow.split(", ").collect();
                assert_eq!(got, want, "{wrong} {path}");
            }
        }
        // Not in the table: 404, no Allow.
        let resp = ask(addr, &Method::PUT, "/.latchkey/nothing").await;
        assert_eq!(resp.status(), StatusCode::NOT_FOUND);
        assert!(resp.headers().get(header::ALLOW).is_none());
    }

    #[test]
    fn a_star_is_one_non_empty_segment() {
        let p = "/.latchkey/oauth/*/start";
        assert!(matches(p, "/.latchkey/oauth/corp/start"));
        for no in [
            "/.latchkey/oauth//start",
            "/.latchkey/oauth/corp/x/start",
            "/.latchkey/oauth/corp/start/",
            "/.latchkey/oauth/corp",
            "/.latchkey/oauth/corp/startx",
            "/.latchkey/oauth/",
            "/.latchkey/oauth/*",
            "",
        ] {
            assert!(!matches(p, no), "{no}");
        }
        assert!(
            matches(p, "/.latchkey/oauth/*/start"),
            "a literal * is a segment"
        );
        assert!(matches("/.latchkey/auth", "/.latchkey/auth"));
        for no in [
            "/.latchkey/auth/",
            "/.latchkey/aut",
            "/.latchkey/authx",
            "/.latchkey/auth/request",
            "/.latchkey/Auth",
        ] {
            assert!(!matches("/.latchkey/auth", no), "{no}");
        }
    }
}
