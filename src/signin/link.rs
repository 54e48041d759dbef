//! Asking for a magic link: `GET /.latchkey/login` (the form) and
//! `POST /.latchkey/login`, which answers the same "check your email"
//! page, in the same time, whether or not the address may sign in:
//! everything that depends on the address (lookups, storing the link,
//! sending mail) is a `PendingLink`, run off the request path
//! (`Detached`). The browser gets an attempt cookie that binds the link
//! to it. Using the link or its code is `verify`'s; sending the mail is
//! `mail`'s.

use http::{HeaderMap, Request, Response, StatusCode};
use hyper::body::Incoming;

use crate::http::cookies;
use crate::http::error::GateError;
use crate::http::pages::{LinkEmail, Page};
use crate::http::request::{query_param, Ctx};
use crate::identity::secret::Secret;
use crate::obs::audit::{self, Actor, AuditEvent};
use crate::obs::metrics::SignInFailure;
use crate::signin::csrf::{checked_form, csrf_token, set_csrf};
use crate::signin::limits::{limit, PerIp};
use crate::signin::mail::Email;
use crate::signin::settings::{Signup, CODE_DIGITS};
use crate::signin::time_text::{clock_time, human_duration};
use crate::signin::{buttons, retry_url, SignIn};
use crate::store::records::{normalize_email, user_id, AttemptRecord, LinkRecord, TokenHash};
use crate::store::Store;
use crate::Body;

/// `GET /.latchkey/login`: the form, keeping a (validated) `rd`.
pub async fn login_page(
    cx: &SignIn<'_>,
    req: Request<Incoming>,
    ctx: &Ctx,
) -> Result<Response<Body>, GateError> {
    let rd = query_param(ctx.query.as_deref(), "rd")
        .and_then(|rd| cx.return_policy.check(&rd))
        .unwrap_or_default();
    Ok(login_form(cx, req.headers(), &rd, None, StatusCode::OK))
}

fn login_form(
    cx: &SignIn<'_>,
    headers: &HeaderMap,
    rd: &str,
    error: Option<&str>,
    status: StatusCode,
) -> Response<Body> {
    let (csrf, set) = csrf_token(cx, headers);
    let mut resp = cx.pages.respond(
        status,
        &Page::Login {
            csrf: csrf.expose(),
            rd,
            error,
            providers: &buttons(cx, rd),
            email: cx.login.email,
        },
    );
    set_csrf(cx, &mut resp, &csrf, set);
    resp
}

/// `POST /.latchkey/login`: "check your email", whatever the address.
pub async fn request_link(
    cx: &SignIn<'_>,
    req: Request<Incoming>,
    ctx: &Ctx,
) -> Result<Response<Body>, GateError> {
    if !cx.login.email {
        // `login.email = false`: providers only.
        return Err(GateError::NotFound);
    }
    let (headers, form) = checked_form(cx, req, ctx).await?;
    limit(cx, ctx, PerIp::Links).await?;
    let rd = cx.return_policy.check(form.get("rd")).unwrap_or_default();
    let Some(email) = normalize_email(form.get("email")) else {
        return Ok(login_form(
            cx,
            &headers,
            &rd,
            Some("Enter a valid email address, like name@example.com."),
            StatusCode::UNPROCESSABLE_ENTITY,
        ));
    };

    // Reuse this browser's attempt cookie if it has one, so an earlier
    // email's link keeps working here.
    let attempt = cookies::secrets(&headers, cx.cookies.attempt_name())
        .next()
        .unwrap_or_else(|| Secret::generate(&mut rand::rng()));
    let retry = retry_url(&rd);
    cx.detached.prepare_link(PendingLink {
        email,
        return_to: rd,
        attempt: attempt.hash(),
        link_base: link_base(cx, ctx),
        ip: ctx.client.ip.to_string(),
        user_agent: ctx.user_agent.clone(),
        now: ctx.now,
    });

    let (csrf, set) = csrf_token(cx, &headers);
    let expires_in = human_duration(cx.login.link_ttl);
    let mut resp = cx.pages.respond(
        StatusCode::OK,
        &Page::CheckEmail {
            csrf: csrf.expose(),
            code_digits: CODE_DIGITS,
            expires_in: &expires_in,
            error: None,
            mail_down: cx.mail_stats.transport_down(),
            retry_url: &retry,
        },
    );
    set_csrf(cx, &mut resp, &csrf, set);
    cookies::add(&mut resp, cx.cookies.attempt(attempt.expose()));
    Ok(resp)
}

/// Where links in emails point: the host where sign-in started when it is
/// public_url's or an app's, else public_url. Only configured parts go in:
/// public_url's origin for its own host; for an app host (apps have no
/// scheme or port of their own) public_url's scheme and port, since
/// latchkey answers every host at the address public_url names. Nothing of
/// the Host header (its port, its case, a trailing dot) reaches the link.
fn link_base(cx: &SignIn<'_>, ctx: &Ctx) -> String {
    let public = cx.public_url;
    match cx.login.link_hosts.get(&ctx.host) {
        Some(host) => {
            let port = public.port().map(|p| format!(":{p}")).unwrap_or_default();
            format!("{}://{host}{port}", public.scheme())
        }
        None => public.origin().ascii_serialization(),
    }
}

/// Everything about a link request that depends on the address: done off
/// the request path, so the answer reveals nothing.
pub struct PendingLink {
    email: String,
    return_to: String,
    attempt: TokenHash,
    link_base: String,
    ip: String,
    user_agent: String,
    now: u64,
}

impl PendingLink {
    /// Counts, checks, stores the link and its code, and queues the mail;
    /// failures are logged (nobody is waiting for an answer).
    pub async fn send(self, cx: &SignIn<'_>) {
        if let Err(e) = self.try_send(cx).await {
            if matches!(e, GateError::Store(_)) {
                cx.metrics.store_error();
            }
            tracing::error!(error = %e, "could not prepare a sign-in link");
        }
    }

    async fn try_send(self, cx: &SignIn<'_>) -> Result<(), GateError> {
        let id = user_id(&self.email);
        let who = Actor {
            user_id: &id,
            ip: &self.ip,
            user_agent: &self.user_agent,
        };
        // Keyed by the address's hash: no address in store keys.
        let email_key = format!("link-email:{id}");
        let (count, _) = cx.store.hit(&email_key, cx.limits.link_window).await?;
        if count > cx.limits.links_per_email {
            let refused = AuditEvent::SignInRefused(SignInFailure::RateLimited);
            audit::record(cx.metrics, refused, who);
            return Ok(());
        }
        if !may_sign_in(cx, &self.email).await? {
            let refused = AuditEvent::SignInRefused(SignInFailure::Refused);
            audit::record(cx.metrics, refused, who);
            return Ok(());
        }
        let (token, code) = {
            let mut rng = rand::rng();
            (
                Secret::generate(&mut rng),
                Secret::generate_code(&mut rng, CODE_DIGITS),
            )
        };
        let ttl = cx.login.link_ttl;
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
        cx.store.put_link(&token.hash(), &link, ttl).await?;
        let attempt = AttemptRecord {
            link: token.hash().to_hex(),
            code: code.hash().to_hex(),
            failures: 0,
        };
        cx.store.put_attempt(&self.attempt, &attempt, ttl).await?;

        let url = format!(
            "{}/.latchkey/verify?token={}",
            self.link_base,
            token.expose()
        );
        let expires_in = human_duration(ttl);
        let expires_at_text = clock_time(expires_at);
        let (subject, text, html) = cx.pages.email(&LinkEmail {
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
        cx.mail.enqueue(Email {
            to: self.email.clone(),
            subject,
            text,
            html,
        });
        audit::record(cx.metrics, AuditEvent::SignInRequested, who);
        Ok(())
    }
}

/// A listed user, a stored user, or an address signup lets in.
pub(super) async fn may_sign_in(cx: &SignIn<'_>, email: &str) -> Result<bool, GateError> {
    if cx.users.contains_key(email) || cx.store.get_user(&user_id(email)).await?.is_some() {
        return Ok(true);
    }
    Ok(match cx.login.signup {
        Signup::Open => true,
        Signup::Domains => {
            let domain = email.rsplit('@').next().unwrap_or("");
            cx.login.allowed_domains.iter().any(|d| d == domain)
        }
        Signup::Closed => false,
    })
}
