//! Magic-link sign-in: the pages and POSTs under `/.latchkey/` that turn an
//! email address into a session, and back out again.
//!
//! - `POST login` answers the same "check your email" page, in the same
//!   time, whether or not the address may sign in: everything that depends on
//!   the address (lookups, storing the link, sending mail) runs in a task off
//!   the request path. The browser gets an attempt cookie that binds the
//!   link to it.
//! - `GET verify` only shows a confirm button (mail scanners open links);
//!   `POST verify` uses the link once (atomic take), and only in the browser
//!   that asked (`login.same_browser`); elsewhere it says where to open it and
//!   uses nothing up.
//! - `POST code` signs in with the short code from the same email, typed into
//!   the browser that asked; `limits.code_attempts` wrong codes void it. The
//!   store compares, counts and uses up in one atomic step
//!   (`Store::check_code`), so codes fired at once buy no extra guesses.
//! - Every form carries a CSRF token (double-submit cookie) and is refused
//!   when its Origin/Referer names another site.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{HeaderMap, Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use ipnet::Ipv6Net;
use tracing::Instrument as _;

use crate::app::settings::{Signup, CODE_DIGITS};
use crate::app::App;
use crate::http::cookies;
use crate::http::error::{json, GateError};
use crate::http::pages::{LinkEmail, Page};
use crate::http::request::{query_param, Ctx, Form};
use crate::identity::secret::Secret;
use crate::identity::session::Identity;
use crate::identity::tokens;
use crate::obs::audit::{self, Actor, AuditEvent};
use crate::obs::metrics::SignInFailure;
use crate::signin::mail::Email;
use crate::store::records::{
    normalize_email, user_id, AttemptRecord, LinkRecord, SessionRecord, TokenHash, User,
};
use crate::store::{CodeCheck, Store};
use crate::Body;

/// Serves one of latchkey's own sign-in URLs (`ctx.path` starts with `/.latchkey/`).
pub async fn handle(
    app: &Arc<App>,
    req: Request<Incoming>,
    ctx: &Ctx,
) -> Result<Response<Body>, GateError> {
    let method = req.method().clone();
    let is_get = method == Method::GET || method == Method::HEAD;
    match (ctx.path.as_str(), is_get, method == Method::POST) {
        ("/.latchkey/login", true, _) => Ok(login_page(app, req.headers(), ctx, None)),
        ("/.latchkey/login", _, true) => request_link(app, req, ctx).await,
        ("/.latchkey/verify", true, _) => confirm_page(app, req.headers(), ctx).await,
        ("/.latchkey/verify", _, true) => verify(app, req, ctx).await,
        ("/.latchkey/code", _, true) => redeem_code(app, req, ctx).await,
        ("/.latchkey/logout", true, _) => {
            let (csrf, set) = csrf_token(app, req.headers());
            let mut resp = app.settings.pages.respond(
                StatusCode::OK,
                &Page::LogoutConfirm {
                    csrf: csrf.expose(),
                },
            );
            set_csrf(app, &mut resp, &csrf, set);
            Ok(resp)
        }
        ("/.latchkey/logout", _, true) => logout(app, req, ctx).await,
        ("/.latchkey/me", true, _) => me(app, req.headers(), ctx).await,
        ("/.latchkey/token", _, true) => tokens::exchange(app, req, ctx).await,
        ("/.latchkey/jwks.json", true, _) => Ok(tokens::jwks(app)),
        (
            "/.latchkey/login"
            | "/.latchkey/verify"
            | "/.latchkey/code"
            | "/.latchkey/logout"
            | "/.latchkey/me"
            | "/.latchkey/token"
            | "/.latchkey/jwks.json",
            _,
            _,
        ) => Err(GateError::MethodNotAllowed),
        _ => Err(GateError::NotFound),
    }
}

// --- CSRF -------------------------------------------------------------------

/// The browser's CSRF token, or a fresh one (`true`: it must be set).
fn csrf_token(app: &App, headers: &HeaderMap) -> (Secret, bool) {
    match cookies::secrets(headers, cookies::csrf_name(&app.settings)).next() {
        Some(t) => (t, false),
        None => (Secret::generate(&mut rand::rng()), true),
    }
}

fn set_csrf(app: &App, resp: &mut Response<Body>, token: &Secret, set: bool) {
    if set {
        cookies::add(resp, cookies::csrf(&app.settings, token.expose()));
    }
}

/// The form's token must match the cookie (one of them, when the browser
/// sends more than one of that name), and a stated origin (Origin, else
/// Referer; `Origin: null` states none) must be this host or public_url's.
fn check_csrf(app: &App, headers: &HeaderMap, form: &Form, ctx: &Ctx) -> Result<(), GateError> {
    let cookie_tokens: Vec<Secret> =
        cookies::secrets(headers, cookies::csrf_name(&app.settings)).collect();
    if cookie_tokens.is_empty() {
        return Err(GateError::Csrf("no CSRF cookie"));
    }
    let form_token = Secret::parse(form.get("csrf")).ok_or(GateError::Csrf("no CSRF field"))?;
    if !cookie_tokens.contains(&form_token) {
        return Err(GateError::Csrf("CSRF token mismatch"));
    }
    if !same_origin(app, headers, ctx) {
        return Err(GateError::Csrf("cross-site form"));
    }
    Ok(())
}

/// No stated origin (Origin, else Referer), or one on this host or
/// public_url's.
pub fn same_origin(app: &App, headers: &HeaderMap, ctx: &Ctx) -> bool {
    crate::http::origin::form_is_own(headers, ctx, &app.settings.public_url)
}

// --- rate limits --------------------------------------------------------------

/// Which per-client-IP limit a POST counts against (`[limits]`).
enum PerIp {
    /// Asking for links.
    Links,
    /// Using links and codes.
    Redemptions,
}

async fn limit(app: &App, ctx: &Ctx, which: PerIp) -> Result<(), GateError> {
    let l = &app.settings.limits;
    let (key, max, window) = match which {
        PerIp::Links => ("link-ip", l.links_per_ip, l.link_window),
        PerIp::Redemptions => ("verify-ip", l.verify_per_ip, l.verify_window),
    };
    let client = client_key(ctx.client.ip, l.ipv6_prefix);
    within_limit(app, &format!("{key}:{client}"), max, window).await
}

/// The client as per-IP limits count it: an IPv4 address (IPv4-mapped IPv6
/// too) by itself, an IPv6 address by its network of `v6_prefix` bits
/// (`2001:db8:1:2::/64`), since one site holds a whole /64 and could
/// otherwise take a fresh address for every request.
fn client_key(ip: IpAddr, v6_prefix: u8) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => Ipv6Net::new(v6, v6_prefix.min(128))
                .map(|n| n.trunc().to_string())
                .unwrap_or_else(|_| v6.to_string()),
        },
    }
}

/// Counts one hit on the store's counter `key` (shared by every instance);
/// past `max` in `window`: 429 with `Retry-After`.
pub(crate) async fn within_limit(
    app: &App,
    key: &str,
    max: u64,
    window: Duration,
) -> Result<(), GateError> {
    let (count, left) = app.store.hit(key, window).await?;
    if count > max {
        return Err(GateError::TooManyRequests { retry_after: left });
    }
    Ok(())
}

/// A POSTed form that passed the CSRF check, with the request's headers.
async fn checked_form(
    app: &App,
    req: Request<Incoming>,
    ctx: &Ctx,
) -> Result<(HeaderMap, Form), GateError> {
    let headers = req.headers().clone();
    let form = Form::read(req, app.settings.limits.form_body_bytes).await?;
    check_csrf(app, &headers, &form, ctx)?;
    Ok((headers, form))
}

/// The "link expired or already used" page, counted as a failed sign-in.
fn link_invalid(app: &App, ctx: &Ctx) -> Response<Body> {
    refused(app, ctx, "", SignInFailure::Invalid);
    app.settings
        .pages
        .respond(StatusCode::GONE, &Page::LinkInvalid)
}

// --- pages and POSTs ------------------------------------------------------------

fn login_page(app: &App, headers: &HeaderMap, ctx: &Ctx, error: Option<&str>) -> Response<Body> {
    let rd = query_param(ctx.query.as_deref(), "rd")
        .and_then(|rd| app.settings.return_policy.check(&rd))
        .unwrap_or_default();
    login_form(app, headers, &rd, error, StatusCode::OK)
}

fn login_form(
    app: &App,
    headers: &HeaderMap,
    rd: &str,
    error: Option<&str>,
    status: StatusCode,
) -> Response<Body> {
    let (csrf, set) = csrf_token(app, headers);
    let mut resp = app.settings.pages.respond(
        status,
        &Page::Login {
            csrf: csrf.expose(),
            rd,
            error,
        },
    );
    set_csrf(app, &mut resp, &csrf, set);
    resp
}

async fn request_link(
    app: &Arc<App>,
    req: Request<Incoming>,
    ctx: &Ctx,
) -> Result<Response<Body>, GateError> {
    let s = &app.settings;
    let (headers, form) = checked_form(app, req, ctx).await?;
    limit(app, ctx, PerIp::Links).await?;
    let rd = s.return_policy.check(form.get("rd")).unwrap_or_default();
    let Some(email) = normalize_email(form.get("email")) else {
        return Ok(login_form(
            app,
            &headers,
            &rd,
            Some("Enter a valid email address, like name@example.com."),
            StatusCode::UNPROCESSABLE_ENTITY,
        ));
    };

    // Reuse this browser's attempt cookie if it has one, so an earlier
    // email's link keeps working here.
    let attempt = cookies::secrets(&headers, cookies::attempt_name(s))
        .next()
        .unwrap_or_else(|| Secret::generate(&mut rand::rng()));
    let retry = retry_url(&rd);
    let pending = PendingLink {
        email,
        return_to: rd,
        attempt: attempt.hash(),
        link_base: link_base(app, ctx),
        ip: ctx.client.ip.to_string(),
        user_agent: ctx.user_agent.clone(),
        now: ctx.now,
    };
    let task_app = app.clone();
    // The request's span goes along: the task's lines carry its id.
    tokio::spawn(async move { pending.send(&task_app).await }.instrument(tracing::Span::current()));

    let (csrf, set) = csrf_token(app, &headers);
    let expires_in = human_duration(s.login.link_ttl);
    let mut resp = s.pages.respond(
        StatusCode::OK,
        &Page::CheckEmail {
            csrf: csrf.expose(),
            code_digits: CODE_DIGITS,
            expires_in: &expires_in,
            error: None,
            mail_down: app.mail_stats.transport_down(),
            retry_url: &retry,
        },
    );
    set_csrf(app, &mut resp, &csrf, set);
    cookies::add(&mut resp, cookies::attempt(s, attempt.expose()));
    Ok(resp)
}

/// Where links in emails point: the host where sign-in started when it is
/// public_url's or an app's, else public_url. Only configured parts go in:
/// public_url's origin for its own host; for an app host (apps have no
/// scheme or port of their own) public_url's scheme and port, since
/// latchkey answers every host at the address public_url names. Nothing of
/// the Host header (its port, its case, a trailing dot) reaches the link.
fn link_base(app: &App, ctx: &Ctx) -> String {
    let s = &app.settings;
    let public = &s.public_url;
    match s.apps.get(&ctx.host) {
        Some(a) if a.host != s.public_host => {
            let port = public.port().map(|p| format!(":{p}")).unwrap_or_default();
            format!("{}://{}{port}", public.scheme(), a.host)
        }
        _ => public.origin().ascii_serialization(),
    }
}

/// Everything about a link request that depends on the address: done off
/// the request path, so the answer reveals nothing.
struct PendingLink {
    email: String,
    return_to: String,
    attempt: TokenHash,
    link_base: String,
    ip: String,
    user_agent: String,
    now: u64,
}

impl PendingLink {
    async fn send(self, app: &App) {
        if let Err(e) = self.try_send(app).await {
            if matches!(e, GateError::Store(_)) {
                app.metrics.store_error();
            }
            tracing::error!(error = %e, "could not prepare a sign-in link");
        }
    }

    async fn try_send(self, app: &App) -> Result<(), GateError> {
        let s = &app.settings;
        let id = user_id(&self.email);
        let who = Actor {
            user_id: &id,
            ip: &self.ip,
            user_agent: &self.user_agent,
        };
        // Keyed by the address's hash: no address in store keys.
        let email_key = format!("link-email:{id}");
        let (count, _) = app.store.hit(&email_key, s.limits.link_window).await?;
        if count > s.limits.links_per_email {
            let refused = AuditEvent::SignInRefused(SignInFailure::RateLimited);
            audit::record(&app.metrics, refused, who);
            return Ok(());
        }
        if !may_sign_in(app, &self.email).await? {
            let refused = AuditEvent::SignInRefused(SignInFailure::Refused);
            audit::record(&app.metrics, refused, who);
            return Ok(());
        }
        let (token, code) = {
            let mut rng = rand::rng();
            (
                Secret::generate(&mut rng),
                Secret::generate_code(&mut rng, CODE_DIGITS),
            )
        };
        let ttl = s.login.link_ttl;
        let expires_at = self.now + ttl.as_millis() as u64;
        let link = LinkRecord {
            email: self.email.clone(),
            return_to: self.return_to,
            attempt: self.attempt.to_hex(),
            created_at: self.now,
            expires_at,
            ip: self.ip.clone(),
            user_agent: self.user_agent.clone(),
        };
        app.store.put_link(&token.hash(), &link, ttl).await?;
        let attempt = AttemptRecord {
            link: token.hash().to_hex(),
            code: code.hash().to_hex(),
            failures: 0,
        };
        app.store.put_attempt(&self.attempt, &attempt, ttl).await?;

        let url = format!(
            "{}/.latchkey/verify?token={}",
            self.link_base,
            token.expose()
        );
        let expires_in = human_duration(ttl);
        let expires_at_text = clock_time(expires_at);
        let (subject, text, html) = s.pages.email(&LinkEmail {
            link: &url,
            code: code.expose(),
            expires_in: &expires_in,
            expires_at: &expires_at_text,
            ip: &self.ip,
            user_agent: &self.user_agent,
            site: self
                .link_base
                .split_once("://")
                .map_or(self.link_base.as_str(), |(_, host)| host),
        });
        app.mail.enqueue(Email {
            to: self.email.clone(),
            subject,
            text,
            html,
        });
        audit::record(&app.metrics, AuditEvent::SignInRequested, who);
        Ok(())
    }
}

/// A listed user, a stored user, or an address signup lets in.
async fn may_sign_in(app: &App, email: &str) -> Result<bool, GateError> {
    let s = &app.settings;
    if s.users.contains_key(email) || app.store.get_user(&user_id(email)).await?.is_some() {
        return Ok(true);
    }
    Ok(match s.login.signup {
        Signup::Open => true,
        Signup::Domains => {
            let domain = email.rsplit('@').next().unwrap_or("");
            s.login.allowed_domains.iter().any(|d| d == domain)
        }
        Signup::Closed => false,
    })
}

async fn confirm_page(
    app: &App,
    headers: &HeaderMap,
    ctx: &Ctx,
) -> Result<Response<Body>, GateError> {
    let token = query_param(ctx.query.as_deref(), "token").and_then(|t| Secret::parse(&t));
    let live = match &token {
        Some(t) => app.store.peek_link(&t.hash()).await?.is_some(),
        None => false,
    };
    let (Some(token), true) = (token, live) else {
        return Ok(app
            .settings
            .pages
            .respond(StatusCode::GONE, &Page::LinkInvalid));
    };
    let (csrf, set) = csrf_token(app, headers);
    let mut resp = app.settings.pages.respond(
        StatusCode::OK,
        &Page::Confirm {
            csrf: csrf.expose(),
            token: token.expose(),
        },
    );
    set_csrf(app, &mut resp, &csrf, set);
    Ok(resp)
}

async fn verify(
    app: &Arc<App>,
    req: Request<Incoming>,
    ctx: &Ctx,
) -> Result<Response<Body>, GateError> {
    let s = &app.settings;
    let (headers, form) = checked_form(app, req, ctx).await?;
    limit(app, ctx, PerIp::Redemptions).await?;
    let invalid = || link_invalid(app, ctx);
    let Some(token) = Secret::parse(form.get("token")) else {
        return Ok(invalid());
    };
    let hash = token.hash();
    let Some(link) = app.store.peek_link(&hash).await? else {
        return Ok(invalid());
    };
    let attempts: Vec<Secret> = cookies::secrets(&headers, cookies::attempt_name(s)).collect();
    let same_browser = TokenHash::from_hex(&link.attempt)
        .is_some_and(|want| attempts.iter().any(|a| a.hash() == want));
    if s.login.same_browser && !same_browser {
        // Nothing used up: the link still works in the browser that asked.
        refused(app, ctx, &user_id(&link.email), SignInFailure::WrongBrowser);
        return Ok(s.pages.respond(
            StatusCode::FORBIDDEN,
            &Page::WrongBrowser {
                requested_ip: &link.ip,
                requested_agent: &link.user_agent,
                retry_url: &retry_url(&link.return_to),
            },
        ));
    }
    let Some(link) = app.store.take_link(&hash).await? else {
        return Ok(invalid());
    };
    for a in &attempts {
        app.store.delete_attempt(&a.hash()).await?;
    }
    sign_in(app, &headers, ctx, &link).await
}

async fn redeem_code(
    app: &Arc<App>,
    req: Request<Incoming>,
    ctx: &Ctx,
) -> Result<Response<Body>, GateError> {
    let s = &app.settings;
    let (headers, form) = checked_form(app, req, ctx).await?;
    limit(app, ctx, PerIp::Redemptions).await?;
    let invalid = || link_invalid(app, ctx);
    // Compared, counted and used up in one atomic store step: concurrent
    // guesses get no more than `code_attempts` judgements between them.
    // The first of the browser's attempt cookies that names an attempt is
    // the one judged.
    let typed = Secret::parse_code(form.get("code"), CODE_DIGITS).map(|c| c.hash());
    let mut verdict = CodeCheck::Missing;
    for a in cookies::secrets(&headers, cookies::attempt_name(s)) {
        verdict = app
            .store
            .check_code(&a.hash(), typed.as_ref(), s.limits.code_attempts)
            .await?;
        if verdict != CodeCheck::Missing {
            break;
        }
    }
    let attempt = match verdict {
        CodeCheck::Match(attempt) => attempt,
        CodeCheck::Missing => return Ok(invalid()),
        CodeCheck::Voided(attempt) => {
            if let Some(h) = TokenHash::from_hex(&attempt.link) {
                app.store.take_link(&h).await?;
            }
            refused(app, ctx, "", SignInFailure::CodeVoided);
            return Ok(s.pages.respond(StatusCode::GONE, &Page::LinkInvalid));
        }
        CodeCheck::Wrong { left } => {
            let error = format!(
                "That code is not right. {left} {} left.",
                if left == 1 { "try" } else { "tries" }
            );
            let (csrf, set) = csrf_token(app, &headers);
            let expires_in = human_duration(s.login.link_ttl);
            let mut resp = s.pages.respond(
                StatusCode::UNPROCESSABLE_ENTITY,
                &Page::CheckEmail {
                    csrf: csrf.expose(),
                    code_digits: CODE_DIGITS,
                    expires_in: &expires_in,
                    error: Some(&error),
                    mail_down: app.mail_stats.transport_down(),
                    retry_url: "/.latchkey/login",
                },
            );
            set_csrf(app, &mut resp, &csrf, set);
            return Ok(resp);
        }
    };
    let Some(link) = (match TokenHash::from_hex(&attempt.link) {
        Some(h) => app.store.take_link(&h).await?,
        None => None,
    }) else {
        return Ok(invalid());
    };
    sign_in(app, &headers, ctx, &link).await
}

/// The link checked out: find or create the user, start a fresh session
/// (ending any the browser had), and send the browser on.
async fn sign_in(
    app: &App,
    headers: &HeaderMap,
    ctx: &Ctx,
    link: &LinkRecord,
) -> Result<Response<Body>, GateError> {
    let s = &app.settings;
    let Some(user) = resolve_user(app, &link.email, ctx.now).await? else {
        refused(app, ctx, &user_id(&link.email), SignInFailure::Refused);
        return Ok(s.pages.respond(StatusCode::GONE, &Page::LinkInvalid));
    };
    for old in cookies::secrets(headers, &s.session.cookie_name) {
        if let Some(cache) = &app.session_cache {
            cache.forget(&old.hash());
        }
        app.store.revoke_session(&old.hash()).await?;
    }
    let token = Secret::generate(&mut rand::rng());
    let record = SessionRecord {
        user_id: user.id.clone(),
        email: user.email.clone(),
        created_at: ctx.now,
        expires_at: ctx.now + s.session.max_lifetime.as_millis() as u64,
        ip: ctx.client.ip.to_string(),
        user_agent: ctx.user_agent.clone(),
    };
    app.store
        .create_session(&token.hash(), &record, s.session.idle_timeout, ctx.now)
        .await?;
    audit_event(app, ctx, &user.id, AuditEvent::SignInCompleted);
    let target = if link.return_to.is_empty() {
        landing(app, &user)
    } else {
        link.return_to.clone()
    };
    let mut resp = redirect(StatusCode::SEE_OTHER, &target);
    cookies::add(&mut resp, cookies::session(s, token.expose()));
    cookies::add(&mut resp, cookies::clear_attempt(s));
    Ok(resp)
}

/// Records an audit event for this request's client.
fn audit_event(app: &App, ctx: &Ctx, user_id: &str, event: AuditEvent) {
    let ip = ctx.client.ip.to_string();
    let who = Actor {
        user_id,
        ip: &ip,
        user_agent: &ctx.user_agent,
    };
    audit::record(&app.metrics, event, who);
}

/// A sign-in that did not happen (`user_id` empty when not known).
fn refused(app: &App, ctx: &Ctx, user_id: &str, why: SignInFailure) {
    audit_event(app, ctx, user_id, AuditEvent::SignInRefused(why));
}

/// The user behind an address: listed in config, stored, or created now if
/// signup lets them in. `None`: may not sign in.
async fn resolve_user(app: &App, email: &str, now: u64) -> Result<Option<User>, GateError> {
    if let Some(u) = app.settings.users.get(email) {
        return Ok(Some(u.clone()));
    }
    if let Some(u) = app.store.get_user(&user_id(email)).await? {
        return Ok(Some(u));
    }
    if !may_sign_in(app, email).await? {
        return Ok(None);
    }
    let user = User {
        id: user_id(email),
        email: email.to_owned(),
        roles: app.settings.login.default_roles.clone(),
        created_at: now,
    };
    app.store.put_user(&user).await?;
    tracing::info!(user_id = %user.id, "user created at first sign-in");
    Ok(Some(user))
}

/// Where a user goes after sign-in with no return address: the landing page
/// of the first of their roles that has one, else "/".
pub fn landing(app: &App, user: &User) -> String {
    user.roles
        .iter()
        .find_map(|r| app.settings.login.landing.get(r))
        .cloned()
        .unwrap_or_else(|| "/".into())
}

async fn logout(app: &App, req: Request<Incoming>, ctx: &Ctx) -> Result<Response<Body>, GateError> {
    let s = &app.settings;
    let (headers, form) = checked_form(app, req, ctx).await?;
    // Every session cookie the browser sent ends: it is cleared below.
    let tokens: Vec<Secret> = cookies::secrets(&headers, &s.session.cookie_name).collect();
    if !tokens.is_empty() {
        // Whose session it was, for the audit trail.
        let id = app
            .identify(&headers, ctx.now)
            .await?
            .map(|i| i.user.id)
            .unwrap_or_default();
        let mut ended = false;
        for token in &tokens {
            if let Some(cache) = &app.session_cache {
                cache.forget(&token.hash());
            }
            ended |= app.store.revoke_session(&token.hash()).await?;
        }
        if ended {
            audit_event(app, ctx, &id, AuditEvent::SignedOut);
        }
    }
    let mut resp = match s.return_policy.check(form.get("rd")) {
        Some(rd) => redirect(StatusCode::SEE_OTHER, &rd),
        None => s.pages.respond(
            StatusCode::OK,
            &Page::SignedOut {
                login_url: "/.latchkey/login",
            },
        ),
    };
    cookies::add(&mut resp, cookies::clear_session(s));
    Ok(resp)
}

async fn me(app: &App, headers: &HeaderMap, ctx: &Ctx) -> Result<Response<Body>, GateError> {
    match app.identify(headers, ctx.now).await? {
        Some(identity) => Ok(json(StatusCode::OK, &me_json(&identity))),
        None if ctx.bearer => Ok(tokens::challenge(
            StatusCode::UNAUTHORIZED,
            tokens::INVALID_TOKEN,
            &serde_json::json!({ "authenticated": false }),
        )),
        None => Ok(json(
            StatusCode::UNAUTHORIZED,
            &serde_json::json!({ "authenticated": false }),
        )),
    }
}

fn me_json(identity: &Identity) -> serde_json::Value {
    // A session's idle end (just slid forward), or a bearer token's `exp`.
    let expires_at = identity
        .session
        .as_ref()
        .map(|s| s.idle_expires_at.min(s.expires_at))
        .or(identity.token.as_ref().map(|t| t.expires_at))
        .map(rfc3339);
    serde_json::json!({
        "authenticated": true,
        "user": {
            "id": identity.user.id,
            "email": identity.user.email,
            "roles": identity.user.roles,
        },
        "expires_at": expires_at,
    })
}

/// The sign-in page on this host, keeping a (validated) return address.
fn retry_url(rd: &str) -> String {
    if rd.is_empty() {
        "/.latchkey/login".into()
    } else {
        crate::gate::login_url("", rd)
    }
}

/// A redirect that is never cached.
pub fn redirect(status: StatusCode, location: &str) -> Response<Body> {
    crate::http::response::redirect(status, location)
}

pub fn rfc3339(ms: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

/// "14:05 UTC" for an email.
fn clock_time(ms: u64) -> String {
    let full = rfc3339(ms);
    full.get(11..16)
        .map(|hm| format!("{hm} UTC"))
        .unwrap_or(full)
}

/// "10 minutes", "1 hour", "90 seconds".
pub fn human_duration(d: Duration) -> String {
    let secs = d.as_secs();
    let (n, unit) = if secs.is_multiple_of(3600) && secs >= 3600 {
        (secs / 3600, "hour")
    } else if secs.is_multiple_of(60) && secs >= 60 {
        (secs / 60, "minute")
    } else {
        (secs, "second")
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

/// Unix milliseconds now.
pub fn now_ms() -> u64 {
    crate::unix_ms(SystemTime::now())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_clients_are_counted_per_network() {
        let key = |ip: &str, bits| client_key(ip.parse().unwrap_or_else(|_| unreachable!()), bits);
        let cases: &[(&str, u8, &str)] = &[
            ("2001:db8:1:2::1", 64, "2001:db8:1:2::/64"),
            ("2001:db8:1:2:ffff:ffff:ffff:ffff", 64, "2001:db8:1:2::/64"),
            ("2001:db8:1:2::1", 128, "2001:db8:1:2::1/128"),
            ("2001:db8:1:2::1", 48, "2001:db8:1::/48"),
            ("2001:db8:1:2::1", 1, "::/1"),
            ("::ffff:192.0.2.1", 64, "192.0.2.1"),
            ("192.0.2.1", 64, "192.0.2.1"),
            ("::1", 64, "::/64"),
        ];
        for (ip, bits, want) in cases {
            assert_eq!(key(ip, *bits), *want, "{ip} /{bits}");
        }
    }

    #[test]
    fn durations_read_like_a_person_wrote_them() {
        assert_eq!(human_duration(Duration::from_secs(600)), "10 minutes");
        assert_eq!(human_duration(Duration::from_secs(3600)), "1 hour");
        assert_eq!(human_duration(Duration::from_secs(90)), "90 seconds");
        assert_eq!(clock_time(0), "00:00 UTC");
    }
}
