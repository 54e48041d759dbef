//! Sign-in with a provider (`[[login.providers]]`): the buttons on the
//! sign-in page and the URLs under `/.latchkey/oauth/{id}/`.
//!
//! - `start` (any app host, or public_url's): on an app host it sets a
//!   short-lived bind cookie there and sends the browser on to public_url's
//!   `start`, naming the cookie's hash; there it keeps state, nonce, PKCE
//!   verifier and return address in the store (10 minutes, under the hash
//!   of a fresh cookie) and 302s to the provider.
//! - `callback` (public_url's host, the redirect URI to register): takes that
//!   record atomically (so it works once, only in this browser), lets the
//!   OIDC client verify the answer, resolves the user by the verified email
//!   exactly as the email link does, and starts the session here, or, when
//!   the sign-in began on an app host, hands it over to that host.
//! - `handoff` (the app host): takes the handoff record, checks the bind
//!   cookie, starts the session there and 303s to the return address.
//!
//! The protocol itself (discovery, tokens, verification) is
//! `identity::oidc`'s; discovering at start-up and retrying is `app`'s,
//! which fills each [`ProviderSlot`].

use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use http::{HeaderMap, Request, Response, StatusCode};
use hyper::body::Incoming;
use url::Url;

use crate::http::cookies::{self, OAUTH_MAX_AGE};
use crate::http::error::GateError;
use crate::http::request::{query_param, Ctx};
use crate::identity::oidc::{
    CallbackParams, OidcError, PendingLogin, ProviderClient, ProviderSettings,
};
use crate::identity::secret::Secret;
use crate::obs::metrics::SignInFailure;
use crate::signin::verify::{resolve_user, start_session, NewSession};
use crate::signin::{redirect, SignIn};
use crate::store::records::{OAuthRecord, TokenHash};
use crate::store::Store;
use crate::Body;

/// How long a signed-in handoff to an app host may take.
const HANDOFF_TTL: Duration = Duration::from_secs(60);

/// One configured provider and, once discovery succeeded, its client.
pub struct ProviderSlot {
    pub settings: ProviderSettings,
    client: RwLock<Option<Arc<ProviderClient>>>,
}

impl ProviderSlot {
    pub fn new(settings: ProviderSettings) -> ProviderSlot {
        ProviderSlot {
            settings,
            client: RwLock::new(None),
        }
    }

    /// The discovered client; `None` until discovery succeeds.
    pub fn client(&self) -> Option<Arc<ProviderClient>> {
        self.client
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Discovery succeeded (or was not needed): the button works from now on.
    pub fn set_client(&self, client: impl Into<ProviderClient>) {
        *self.client.write().unwrap_or_else(PoisonError::into_inner) =
            Some(Arc::new(client.into()));
    }
}

/// The redirect URI to register at a provider.
pub fn redirect_uri(public_url: &Url, id: &str) -> Option<Url> {
    public_url
        .join(&format!("/.latchkey/oauth/{id}/callback"))
        .ok()
}

/// The provider a `/.latchkey/oauth/{id}/...` path names.
fn provider<'c>(cx: &'c SignIn<'_>, ctx: &Ctx) -> Result<&'c ProviderSlot, GateError> {
    let id = ctx.path.split('/').nth(3).unwrap_or_default();
    cx.providers
        .iter()
        .find(|p| p.settings.id == id)
        .map(|p| &**p)
        .ok_or(GateError::NotFound)
}

/// A failed provider sign-in: one log line (no secrets), one metric, the
/// error's page (gate renders it).
fn failed(cx: &SignIn<'_>, ctx: &Ctx, id: &str, e: GateError) -> GateError {
    let why = match &e {
        GateError::OAuthState => SignInFailure::BadState,
        GateError::Provider(OidcError::UnverifiedEmail { .. } | OidcError::MissingEmail) => {
            SignInFailure::UnverifiedEmail
        }
        GateError::NotAllowed | GateError::Provider(OidcError::NotInAllowedOrg { .. }) => {
            SignInFailure::Refused
        }
        _ => SignInFailure::Provider,
    };
    let label = match &e {
        GateError::Provider(o) => o.label(),
        _ => why.label(),
    };
    tracing::warn!(provider = %id, reason = label, error = %e, "provider sign-in failed");
    cx.refused(ctx, "", why);
    e
}

/// `GET /.latchkey/oauth/{id}/start?rd=`: off to the provider.
pub async fn start(
    cx: &SignIn<'_>,
    _req: Request<Incoming>,
    ctx: &Ctx,
) -> Result<Response<Body>, GateError> {
    let slot = provider(cx, ctx)?;
    let id = &slot.settings.id;
    let Some(client) = slot.client() else {
        return Err(failed(
            cx,
            ctx,
            id,
            GateError::ProviderUnavailable(id.clone()),
        ));
    };
    let query = ctx.query.as_deref();
    let rd = query_param(query, "rd")
        .and_then(|rd| cx.return_policy.check(&rd))
        .unwrap_or_default();
    if cx.login.link_hosts.contains(&ctx.host) {
        // An app host: the callback comes back to public_url's host, whose
        // cookies this host cannot see. Bind this browser here, go there.
        let bind = Secret::generate(&mut rand::rng());
        let back = app_origin(cx, &ctx.host);
        let rd = if rd.starts_with('/') {
            format!("{back}{rd}")
        } else if rd.is_empty() {
            format!("{back}/")
        } else {
            rd
        };
        let mut there = cx.public_url.clone();
        there.set_path(&format!("/.latchkey/oauth/{id}/start"));
        there
            .query_pairs_mut()
            .append_pair("rd", &rd)
            .append_pair("bind", &bind.hash().to_hex());
        let mut resp = redirect(StatusCode::FOUND, there.as_str());
        cookies::add(
            &mut resp,
            cx.cookies
                .oauth(cx.cookies.oauth_bind_name(), bind.expose()),
        );
        return Ok(resp);
    }
    let bind = query_param(query, "bind")
        .filter(|b| TokenHash::from_hex(b).is_some())
        .unwrap_or_default();
    let auth = client.start(&mut rand::rng());
    let cookie = Secret::generate(&mut rand::rng());
    let record = OAuthRecord::Pending {
        provider: id.clone(),
        state: auth.pending.state.expose().to_owned(),
        nonce: auth.pending.nonce.expose().to_owned(),
        code_verifier: auth.pending.code_verifier.expose().to_owned(),
        return_to: rd,
        bind,
    };
    cx.store
        .put_oauth(&cookie.hash(), &record, OAUTH_MAX_AGE)
        .await?;
    let mut resp = redirect(StatusCode::FOUND, auth.url.as_str());
    cookies::add(
        &mut resp,
        cx.cookies.oauth(cx.cookies.oauth_name(), cookie.expose()),
    );
    Ok(resp)
}

/// The origin latchkey answers an app host at (public_url's scheme and port).
fn app_origin(cx: &SignIn<'_>, host: &str) -> String {
    let public = cx.public_url;
    let port = public.port().map(|p| format!(":{p}")).unwrap_or_default();
    format!("{}://{host}{port}", public.scheme())
}

/// Takes the first live record that one of the browser's `name` cookies names.
async fn take_record(
    cx: &SignIn<'_>,
    headers: &HeaderMap,
    name: &str,
) -> Result<Option<OAuthRecord>, GateError> {
    for c in cookies::secrets(headers, name) {
        if let Some(r) = cx.store.take_oauth(&c.hash()).await? {
            return Ok(Some(r));
        }
    }
    Ok(None)
}

/// `GET /.latchkey/oauth/{id}/callback`: the provider sent the person back.
pub async fn callback(
    cx: &SignIn<'_>,
    req: Request<Incoming>,
    ctx: &Ctx,
) -> Result<Response<Body>, GateError> {
    let slot = provider(cx, ctx)?;
    let id = slot.settings.id.clone();
    let headers = req.headers();
    let result = finish(cx, slot, headers, ctx).await;
    let mut resp = result.map_err(|e| failed(cx, ctx, &id, e))?;
    cookies::add(&mut resp, cx.cookies.clear_oauth(cx.cookies.oauth_name()));
    Ok(resp)
}

async fn finish(
    cx: &SignIn<'_>,
    slot: &ProviderSlot,
    headers: &HeaderMap,
    ctx: &Ctx,
) -> Result<Response<Body>, GateError> {
    let id = &slot.settings.id;
    let Some(OAuthRecord::Pending {
        provider,
        state,
        nonce,
        code_verifier,
        return_to,
        bind,
    }) = take_record(cx, headers, cx.cookies.oauth_name()).await?
    else {
        return Err(GateError::OAuthState);
    };
    let pending = PendingLogin::from_parts(&state, &nonce, &code_verifier)
        .filter(|_| provider == *id)
        .ok_or(GateError::OAuthState)?;
    let client = slot
        .client()
        .ok_or_else(|| GateError::ProviderUnavailable(id.clone()))?;
    let params = CallbackParams::from_query(ctx.query.as_deref().unwrap_or(""));
    let identity = client.finish(&pending, &params).await?;
    let Some(user) = resolve_user(cx, &identity.email, ctx.now).await? else {
        return Err(GateError::NotAllowed);
    };
    let roles: Vec<String> = identity.mapped_roles.iter().cloned().collect();
    tracing::info!(provider = %id, user_id = %user.id, "signed in with a provider");
    // Started on an app host: carry the sign-in back there, to the browser
    // holding that host's bind cookie.
    let app_host = Url::parse(&return_to)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .filter(|h| cx.login.link_hosts.contains(h));
    if let (false, Some(host)) = (bind.is_empty(), app_host) {
        let token = Secret::generate(&mut rand::rng());
        let record = OAuthRecord::Handoff {
            provider: id.clone(),
            email: user.email.clone(),
            roles,
            return_to,
            bind,
        };
        cx.store
            .put_oauth(&token.hash(), &record, HANDOFF_TTL)
            .await?;
        let target = format!(
            "{}/.latchkey/oauth/{id}/handoff?token={}",
            app_origin(cx, &host),
            token.expose()
        );
        return Ok(redirect(StatusCode::SEE_OTHER, &target));
    }
    let made = NewSession {
        user: &user,
        amr: identity.amr(),
        extra_roles: roles,
        return_to: &return_to,
    };
    start_session(cx, headers, ctx, made).await
}

/// `GET /.latchkey/oauth/{id}/handoff?token=`: the session, on the app
/// host where the sign-in started, for the browser that started it.
pub async fn handoff(
    cx: &SignIn<'_>,
    req: Request<Incoming>,
    ctx: &Ctx,
) -> Result<Response<Body>, GateError> {
    let slot = provider(cx, ctx)?;
    let id = slot.settings.id.clone();
    let result = carry(cx, &id, req.headers(), ctx).await;
    let mut resp = result.map_err(|e| failed(cx, ctx, &id, e))?;
    cookies::add(
        &mut resp,
        cx.cookies.clear_oauth(cx.cookies.oauth_bind_name()),
    );
    Ok(resp)
}

async fn carry(
    cx: &SignIn<'_>,
    id: &str,
    headers: &HeaderMap,
    ctx: &Ctx,
) -> Result<Response<Body>, GateError> {
    let token = query_param(ctx.query.as_deref(), "token").and_then(|t| Secret::parse(&t));
    let record = match token {
        Some(t) => cx.store.take_oauth(&t.hash()).await?,
        None => None,
    };
    let Some(OAuthRecord::Handoff {
        provider,
        email,
        roles,
        return_to,
        bind,
    }) = record
    else {
        return Err(GateError::OAuthState);
    };
    let want = TokenHash::from_hex(&bind).ok_or(GateError::OAuthState)?;
    let same_browser =
        cookies::secrets(headers, cx.cookies.oauth_bind_name()).any(|b| b.hash() == want);
    if provider != id || !same_browser {
        return Err(GateError::OAuthState);
    }
    let Some(user) = resolve_user(cx, &email, ctx.now).await? else {
        return Err(GateError::NotAllowed);
    };
    let made = NewSession {
        user: &user,
        amr: format!("oidc:{provider}"),
        extra_roles: roles,
        return_to: &return_to,
    };
    start_session(cx, headers, ctx, made).await
}
