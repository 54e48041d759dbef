//! The pages and POSTs under `/.latchkey/` that turn a person into a
//! session and back out again: the sign-in page and its email link + code
//! (`link`, `verify`), sign-in with a provider (`oauth`), `logout`, `me`, the
//! account page (`account`) and the person's passkeys there (`passkeys`),
//! the step-up page (`step_up`), sign-in with a passkey (`passkey_login`)
//! and what the passkey ceremonies share (`ceremony`), the bearer-token
//! exchange and the JWKS (`token`); the CSRF check of their forms (`csrf`) and their rate
//! limits (`limits`); mail (`mail`) and the new-device email (`device`).
//!
//! Handlers get a [`SignIn`]: references to exactly the parts they use,
//! handed out by `App`. Which URL reaches which handler is `gate::router`'s
//! business (no handler here routes); rendering errors is gate's.

pub(crate) mod account;
pub(crate) mod ceremony;
pub(crate) mod csrf;
pub(crate) mod device;
pub(crate) mod limits;
pub(crate) mod link;
pub(crate) mod logout;
pub mod mail;
pub(crate) mod me;
pub mod oauth;
pub(crate) mod passkey_login;
pub(crate) mod passkeys;
pub(crate) mod settings;
pub(crate) mod step_up;
pub(crate) mod time_text;
pub(crate) mod token;
pub(crate) mod verify;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use http::{Response, StatusCode};
use url::Url;

use crate::http::cookies::Cookies;
use crate::http::pages::{Pages, ProviderButton};
use crate::http::request::Ctx;
use crate::identity::assertion::Signer;
use crate::identity::cache::SessionCache;
use crate::identity::identify::Identifier;
use crate::obs::audit::{self, Actor, AuditEvent};
use crate::obs::mail_stats::MailStats;
use crate::obs::metrics::{Metrics, SignInFailure};
use crate::policy::redirect::ReturnPolicy;
use crate::store::records::User;
use crate::store::Backend;
use crate::Body;
use mail::MailQueue;
use settings::{Limits, LoginSettings};

/// What sign-in's handlers use, borrowed from `App` for one request.
pub struct SignIn<'a> {
    pub login: &'a LoginSettings,
    pub limits: &'a Limits,
    pub cookies: &'a Cookies,
    /// Users from `[[users]]`, by normalized email.
    pub users: &'a HashMap<String, User>,
    pub public_url: &'a Url,
    pub return_policy: &'a ReturnPolicy,
    pub pages: &'a Pages,
    /// Lifetime of a bearer token from `POST /.latchkey/token`.
    pub token_ttl: Duration,
    pub store: &'a Backend,
    /// `session.cache`: sessions ended here are forgotten at once, before
    /// Redis tells the other instances.
    pub session_cache: Option<&'a SessionCache>,
    pub mail: &'a MailQueue,
    pub mail_stats: &'a MailStats,
    pub metrics: &'a Metrics,
    /// Who is calling (logout, me, the token exchange).
    pub identifier: Identifier<'a>,
    /// Runs a link request's work off the request path.
    pub detached: &'a dyn Detached,
    /// `[[login.providers]]`, each with its client once discovered.
    pub providers: &'a [Arc<oauth::ProviderSlot>],
}

/// Work that must outlive the request that asked for it. `App` implements
/// it, since only it owns what such a task holds on to.
pub trait Detached: Send + Sync {
    /// Runs `pending.send` in a task of its own, in the request's span.
    fn prepare_link(&self, pending: link::PendingLink);
}

impl SignIn<'_> {
    /// The signing keys and the issuer.
    pub fn signer(&self) -> Signer<'_> {
        self.identifier.signer
    }

    /// Records an audit event for this request's client.
    fn audit(&self, ctx: &Ctx, user_id: &str, event: AuditEvent) {
        let ip = ctx.client.ip.to_string();
        let who = Actor {
            user_id,
            ip: &ip,
            user_agent: &ctx.user_agent,
        };
        audit::record(self.metrics, event, who);
    }

    /// A sign-in that did not happen (`user_id` empty when not known).
    fn refused(&self, ctx: &Ctx, user_id: &str, why: SignInFailure) {
        self.audit(ctx, user_id, AuditEvent::SignInRefused(why));
    }
}

/// The sign-in page's URL at `base` (an origin, or "" for this host) with
/// a return address.
pub fn login_url(base: &str, rd: &str) -> String {
    page_url(base, "/.latchkey/login", rd)
}

/// The step-up page's URL at `base` with a return address.
pub fn step_up_url(base: &str, rd: &str) -> String {
    page_url(base, "/.latchkey/step-up", rd)
}

/// `{base}{page}?rd={rd, urlencoded}`, written into one String (every
/// signed-out browser request makes one).
fn page_url(base: &str, page: &str, rd: &str) -> String {
    let mut url = String::with_capacity(base.len() + page.len() + 4 + rd.len() * 3 / 2);
    url.push_str(base);
    url.push_str(page);
    url.push_str("?rd=");
    url.extend(form_urlencoded::byte_serialize(rd.as_bytes()));
    url
}

/// The sign-in page's buttons, each keeping the return address.
pub fn buttons(cx: &SignIn<'_>, rd: &str) -> Vec<ProviderButton> {
    let rd: String = form_urlencoded::byte_serialize(rd.as_bytes()).collect();
    cx.providers
        .iter()
        .map(|p| ProviderButton {
            name: p.settings.name.clone(),
            kind: p.settings.kind.as_str(),
            href: format!("/.latchkey/oauth/{}/start?rd={rd}", p.settings.id),
            available: p.client().is_some(),
        })
        .collect()
}

/// The sign-in page on this host, keeping a (validated) return address.
fn retry_url(rd: &str) -> String {
    if rd.is_empty() {
        "/.latchkey/login".into()
    } else {
        login_url("", rd)
    }
}

/// A redirect that is never cached.
pub fn redirect(status: StatusCode, location: &str) -> Response<Body> {
    crate::http::response::redirect(status, location)
}
