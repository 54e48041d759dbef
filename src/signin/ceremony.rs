//! What every passkey ceremony (registration, sign-in, step-up) shares,
//! around the verifier in `identity::passkey`:
//!
//! - the relying party: RP id `session.cookie_domain` when set, else the
//!   requested host; the origin the browser states (the CSRF check has
//!   already refused any other than latchkey's own);
//! - the challenge: 32 random bytes, stored single-use for five minutes
//!   under the hash of a fresh host-only, HttpOnly cookie (an
//!   `OAuthRecord::Passkey`, taken atomically like a provider sign-in's
//!   state), so it answers once, in the browser it was handed to, for the
//!   ceremony it was made for;
//! - refusals: a clear 4xx for the person (JSON for the script, a page
//!   otherwise), one audit event with a short reason, and a warn line for
//!   a sign count that went backwards;
//! - the JSON answers: options with the cookie, and the end of a ceremony
//!   as `{"location": URL}` (the script goes there) instead of a 303.

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use bytes::Bytes;
use http::{header, HeaderMap, Request, Response, StatusCode};
use hyper::body::Incoming;
use rand::RngCore;

use crate::http::cookies;
use crate::http::error::{json, GateError};
use crate::http::request::{header_str, Ctx};
use crate::identity::passkey::{verify_assertion, AssertionResponse, PasskeyError, RelyingParty};
use crate::identity::secret::Secret;
use crate::identity::session::Identity;
use crate::obs::audit::AuditEvent;
use crate::signin::account::signed_in;
use crate::signin::csrf::checked_json;
use crate::signin::SignIn;
use crate::store::records::{OAuthRecord, PasskeyRecord, User};
use crate::store::Store;
use crate::Body;

/// How long a challenge can be answered.
pub const CHALLENGE_TTL: Duration = Duration::from_secs(300);

/// The largest ceremony body read (a registration with attestation
/// `none` is about 1.5 KiB).
pub const BODY_LIMIT: usize = 16 * 1024;

/// Which ceremony a challenge was made for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Register,
    SignIn,
    StepUp,
}

impl Purpose {
    fn as_str(self) -> &'static str {
        match self {
            Purpose::Register => "register",
            Purpose::SignIn => "sign_in",
            Purpose::StepUp => "step_up",
        }
    }
}

/// A challenge taken back from the store: what its options were made with.
pub struct Challenge {
    pub bytes: Vec<u8>,
    pub return_to: String,
    pub name: String,
}

/// The relying party for this request.
pub fn relying_party(cx: &SignIn<'_>, headers: &HeaderMap, ctx: &Ctx) -> RelyingParty {
    let id = cx
        .cookies
        .domain
        .clone()
        .unwrap_or_else(|| ctx.host.clone());
    let origin = match header_str(headers, header::ORIGIN.as_str()) {
        Some(o) if o != "null" => o.to_owned(),
        _ => format!("{}://{}", ctx.client.proto, ctx.raw_host),
    };
    RelyingParty {
        name: id.clone(),
        id,
        origin,
    }
}

/// A ceremony's POST, past its CSRF check: the request's headers, its
/// JSON body (up to [`BODY_LIMIT`]) and the relying party it runs for.
pub struct Posted {
    pub headers: HeaderMap,
    pub body: Bytes,
    pub rp: RelyingParty,
}

impl Posted {
    pub async fn read(
        cx: &SignIn<'_>,
        req: Request<Incoming>,
        ctx: &Ctx,
    ) -> Result<Posted, GateError> {
        let (headers, body) = checked_json(cx, req, ctx, BODY_LIMIT).await?;
        let rp = relying_party(cx, &headers, ctx);
        Ok(Posted { headers, body, rp })
    }

    /// `read`, for a ceremony only a signed-in session may run (401
    /// otherwise, audited).
    pub async fn read_signed_in(
        cx: &SignIn<'_>,
        req: Request<Incoming>,
        ctx: &Ctx,
    ) -> Result<(Posted, Identity), GateError> {
        let posted = Posted::read(cx, req, ctx).await?;
        let Some((identity, _)) = signed_in(cx, &posted.headers, ctx).await? else {
            return Err(refuse(
                cx,
                ctx,
                "",
                StatusCode::UNAUTHORIZED,
                "not_signed_in",
                "You are not signed in (any more). Sign in, then try again.",
            ));
        };
        Ok((posted, identity))
    }

    /// The body's `rd`, validated like every return address ("" if none).
    pub fn return_address(&self, cx: &SignIn<'_>) -> String {
        let asked: serde_json::Value = serde_json::from_slice(&self.body).unwrap_or_default();
        asked["rd"]
            .as_str()
            .and_then(|rd| cx.return_policy.check(rd))
            .unwrap_or_default()
    }
}

/// Makes and stores a challenge for `purpose`; the Set-Cookie that binds
/// it to this browser comes back beside it.
pub async fn issue(
    cx: &SignIn<'_>,
    ctx: &Ctx,
    purpose: Purpose,
    user_id: &str,
    return_to: &str,
    name: &str,
) -> Result<(Vec<u8>, String), GateError> {
    let mut bytes = vec![0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let cookie = Secret::generate(&mut rand::rng());
    let record = OAuthRecord::Passkey {
        purpose: purpose.as_str().to_owned(),
        challenge: URL_SAFE_NO_PAD.encode(&bytes),
        user_id: user_id.to_owned(),
        created_at: ctx.now,
        return_to: return_to.to_owned(),
        name: name.to_owned(),
    };
    cx.store
        .put_oauth(&cookie.hash(), &record, CHALLENGE_TTL)
        .await?;
    Ok((bytes, cx.cookies.passkey(cookie.expose(), CHALLENGE_TTL)))
}

/// Uses up the challenge this browser's cookie names, made for `purpose`
/// and `user_id` ("" for a sign-in). Refused (and audited) when there is
/// none: never issued, already answered, older than five minutes, made in
/// another browser, for another ceremony or for another person.
pub async fn take(
    cx: &SignIn<'_>,
    headers: &HeaderMap,
    ctx: &Ctx,
    purpose: Purpose,
    user_id: &str,
) -> Result<Challenge, GateError> {
    for c in cookies::secrets(headers, cx.cookies.passkey_name()) {
        let Some(OAuthRecord::Passkey {
            purpose: p,
            challenge,
            user_id: owner,
            created_at,
            return_to,
            name,
        }) = cx.store.take_oauth(&c.hash()).await?
        else {
            continue;
        };
        let fresh = ctx.now.saturating_sub(created_at) <= CHALLENGE_TTL.as_millis() as u64;
        let bytes = URL_SAFE_NO_PAD.decode(challenge.as_bytes()).ok();
        let fits = fresh && p == purpose.as_str() && owner == user_id;
        if let (true, Some(bytes)) = (fits, bytes) {
            return Ok(Challenge {
                bytes,
                return_to,
                name,
            });
        }
    }
    Err(refuse(
        cx,
        ctx,
        user_id,
        StatusCode::BAD_REQUEST,
        "challenge",
        "This passkey request expired or was already used. Try again.",
    ))
}

/// A refused ceremony: one audit event, and the error the person sees.
pub fn refuse(
    cx: &SignIn<'_>,
    ctx: &Ctx,
    user_id: &str,
    status: StatusCode,
    reason: &'static str,
    message: &str,
) -> GateError {
    tracing::info!(reason, user_id, "passkey refused");
    cx.audit(ctx, user_id, AuditEvent::PasskeyRefused(reason));
    GateError::Passkey {
        status,
        reason,
        message: message.to_owned(),
    }
}

/// The verifier said no. A sign count that went backwards (a cloned
/// authenticator, or a restored one) is 403 and a warning; the rest 400.
pub fn refused_by_verifier(
    cx: &SignIn<'_>,
    ctx: &Ctx,
    user_id: &str,
    credential_id: &str,
    e: &PasskeyError,
) -> GateError {
    let status = match e {
        PasskeyError::ClonedAuthenticator { stored, got } => {
            tracing::warn!(
                user_id,
                credential = credential_id,
                stored,
                got,
                "passkey sign count went backwards: refused (a cloned authenticator?)"
            );
            StatusCode::FORBIDDEN
        }
        _ => StatusCode::BAD_REQUEST,
    };
    refuse(cx, ctx, user_id, status, e.audit_reason(), &e.to_string())
}

/// Refused: no passkey of this person has the credential id (never
/// registered, removed, or another person's).
pub fn unknown_passkey(cx: &SignIn<'_>, ctx: &Ctx, user_id: &str) -> GateError {
    refuse(
        cx,
        ctx,
        user_id,
        StatusCode::BAD_REQUEST,
        "unknown_credential",
        "This passkey is not registered for this account here (it may have been removed). \
         Sign in another way.",
    )
}

/// The assertion `response` to `challenge`, by the stored passkey
/// `record`: verified (signature, origin, RP id, sign count), and then
/// the new sign count and the time of use stored. A refusal changes
/// nothing. Whose passkey it is, and that they may sign in, the caller
/// has found (`user_by_id`) before.
pub async fn prove(
    cx: &SignIn<'_>,
    ctx: &Ctx,
    rp: &RelyingParty,
    challenge: &Challenge,
    response: &AssertionResponse,
    mut record: PasskeyRecord,
) -> Result<(), GateError> {
    let verified = verify_assertion(
        rp,
        &challenge.bytes,
        response,
        &record.credential,
        record.sign_count,
    )
    .map_err(|e| refused_by_verifier(cx, ctx, &record.user_id, &record.id, &e))?;
    record.sign_count = verified.sign_count;
    record.last_used = ctx.now;
    cx.store.put_passkey(&record).await?;
    Ok(())
}

/// The user with this id: listed in config, else stored.
pub async fn user_by_id(cx: &SignIn<'_>, id: &str) -> Result<Option<User>, GateError> {
    if let Some(u) = cx.users.values().find(|u| u.id == id) {
        return Ok(Some(u.clone()));
    }
    Ok(cx.store.get_user(id).await?)
}

/// Options for the browser, with the cookie binding their challenge.
pub fn options(value: &serde_json::Value, set_cookie: String) -> Response<Body> {
    let mut resp = json(StatusCode::OK, value);
    cookies::add(&mut resp, set_cookie);
    resp
}

/// A ceremony's end for the script: a 303's `Location` as JSON
/// `{"location": URL}` (its cookies kept), the challenge cookie cleared.
pub fn landing(cx: &SignIn<'_>, resp: Response<Body>) -> Response<Body> {
    let location = header_str(resp.headers(), header::LOCATION.as_str())
        .unwrap_or("/")
        .to_owned();
    let mut out = json(StatusCode::OK, &serde_json::json!({ "location": location }));
    for v in resp.headers().get_all(header::SET_COOKIE) {
        out.headers_mut().append(header::SET_COOKIE, v.clone());
    }
    cookies::add(&mut out, cx.cookies.clear_passkey());
    out
}

/// `GET /.latchkey/passkey.js`: the script that runs the ceremonies
/// (`static/passkey.js`), cached for five minutes.
pub async fn script(
    _cx: &SignIn<'_>,
    _req: Request<Incoming>,
    _ctx: &Ctx,
) -> Result<Response<Body>, GateError> {
    let mut resp = crate::http::response::script(include_str!("../../static/passkey.js"));
    crate::http::response::cacheable(&mut resp, CHALLENGE_TTL);
    Ok(resp)
}

/// A passkey's name as the person typed it: trimmed, at most 64
/// characters, no control characters; empty becomes "Passkey".
pub fn clean_name(raw: &str) -> Option<String> {
    let name = raw.trim();
    if name.chars().count() > 64 || name.chars().any(char::is_control) {
        return None;
    }
    Some(if name.is_empty() { "Passkey" } else { name }.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_bounded_and_never_empty() {
        assert_eq!(clean_name("  Laptop "), Some("Laptop".into()));
        assert_eq!(clean_name(""), Some("Passkey".into()));
        assert_eq!(clean_name(&"é".repeat(64)), Some("é".repeat(64)));
        assert_eq!(clean_name(&"x".repeat(65)), None);
        assert_eq!(clean_name("a\nb"), None);
    }
}
