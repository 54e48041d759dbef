//! The one table of latchkey's own URLs: every `/.latchkey/*` route,
//! method + path → handler, in [`ROUTES`]. A path in the table asked with a
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
use crate::signin::{link, logout, me, token, verify};

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

/// Every `/.latchkey/*` route.
const ROUTES: &[Entry] = &[
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
];

/// Which front door a (normalized, or raw when it did not normalize) path
/// is: a table route's label, `Pages` for any other `/.latchkey` path,
/// else `Proxy`.
pub fn metric_route(path: &str) -> Route {
    match ROUTES.iter().find(|e| e.path == path) {
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
    let on_path = || ROUTES.iter().filter(|e| e.path == ctx.path);
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
        .filter(|e| e.path == path)
        .flat_map(|e| e.methods.names().iter().copied())
        .collect();
    let known = ROUTES.iter().any(|e| e.path == path);
    known.then(|| names.join(", "))
}
