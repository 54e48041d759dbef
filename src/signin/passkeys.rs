//! A person's own passkeys, from the account page:
//!
//! - "Add a passkey" (run by `passkey.js`): `POST
//!   /.latchkey/passkey/register/options` (JSON `{"name": ...}`) answers
//!   creation options (a discoverable credential, user verification
//!   preferred, attestation `none`, the person's passkeys excluded) with a
//!   challenge bound to this browser and this person; `POST
//!   /.latchkey/passkey/register` takes `credential.toJSON()`, lets the
//!   verifier check it and stores the passkey (answer `{"location": URL}`).
//! - `POST /.latchkey/account/passkeys` (a plain CSRF form, no script):
//!   field `id` and either `name` (rename) or `remove` = `1`.

use http::{Request, Response, StatusCode};
use hyper::body::Incoming;

use crate::http::error::GateError;
use crate::http::request::Ctx;
use crate::identity::passkey::{creation_options, verify_registration};
use crate::obs::audit::AuditEvent;
use crate::signin::account::{signed_in, ACCOUNT};
use crate::signin::ceremony::{self, clean_name, Posted, Purpose};
use crate::signin::csrf::checked_form;
use crate::signin::step_up::PASSKEY;
use crate::signin::{redirect, SignIn};
use crate::store::records::PasskeyRecord;
use crate::store::Store;
use crate::Body;

/// At most this many passkeys per person.
const MAX_PASSKEYS: usize = 20;

/// A passkey is added only by a session made this recently (or one that
/// proved a passkey): a stolen, older session cookie cannot enrol the
/// thief's own passkey and with it pass `mfa = true` rules (GitHub's "sudo
/// mode", Authelia's identity check before registering a device).
pub const FRESH_SIGN_IN: std::time::Duration = std::time::Duration::from_secs(10 * 60);

fn bad_name(cx: &SignIn<'_>, ctx: &Ctx, user_id: &str) -> GateError {
    ceremony::refuse(
        cx,
        ctx,
        user_id,
        StatusCode::BAD_REQUEST,
        "bad_name",
        "A passkey's name is at most 64 characters, on one line.",
    )
}

/// `POST /.latchkey/passkey/register/options`.
pub async fn options(
    cx: &SignIn<'_>,
    req: Request<Incoming>,
    ctx: &Ctx,
) -> Result<Response<Body>, GateError> {
    let (posted, identity) = Posted::read_signed_in(cx, req, ctx).await?;
    let user = &identity.user;
    let made = identity.session.as_ref().map_or(0, |s| s.created_at);
    let fresh_ms = u64::try_from(FRESH_SIGN_IN.as_millis()).unwrap_or(u64::MAX);
    if identity.amr() != PASSKEY && made.saturating_add(fresh_ms) < ctx.now {
        return Err(ceremony::refuse(
            cx,
            ctx,
            &user.id,
            StatusCode::FORBIDDEN,
            "sign_in_not_fresh",
            "To add a passkey, sign in again first: a passkey can be added within 10 minutes \
             of signing in by email or provider (or after using a passkey). Sign out, sign in, \
             then come back to this page.",
        ));
    }
    let asked: serde_json::Value = serde_json::from_slice(&posted.body).unwrap_or_default();
    let Some(name) = clean_name(asked["name"].as_str().unwrap_or_default()) else {
        return Err(bad_name(cx, ctx, &user.id));
    };
    let exclude: Vec<String> = cx
        .store
        .list_passkeys(&user.id)
        .await?
        .into_iter()
        .map(|p| p.id)
        .collect();
    if exclude.len() >= MAX_PASSKEYS {
        return Err(ceremony::refuse(
            cx,
            ctx,
            &user.id,
            StatusCode::BAD_REQUEST,
            "too_many_passkeys",
            "You have 20 passkeys already. Remove one before adding another.",
        ));
    }
    let (challenge, cookie) =
        ceremony::issue(cx, ctx, Purpose::Register, &user.id, "", &name).await?;
    Ok(ceremony::options(
        &creation_options(&posted.rp, &challenge, &user.id, &user.email, &exclude),
        cookie,
    ))
}

/// `POST /.latchkey/passkey/register`.
pub async fn finish(
    cx: &SignIn<'_>,
    req: Request<Incoming>,
    ctx: &Ctx,
) -> Result<Response<Body>, GateError> {
    let (Posted { headers, body, rp }, identity) = Posted::read_signed_in(cx, req, ctx).await?;
    let user_id = identity.user.id.clone();
    let challenge = ceremony::take(cx, &headers, ctx, Purpose::Register, &user_id).await?;
    let new = verify_registration(&rp, &challenge.bytes, &body)
        .map_err(|e| ceremony::refused_by_verifier(cx, ctx, &user_id, "", &e))?;
    if cx.store.get_passkey(&user_id, &new.id).await?.is_some() {
        return Err(ceremony::refuse(
            cx,
            ctx,
            &user_id,
            StatusCode::BAD_REQUEST,
            "already_registered",
            "This passkey is already on your account.",
        ));
    }
    let record = PasskeyRecord {
        user_id: user_id.clone(),
        id: new.id,
        name: challenge.name,
        created_at: ctx.now,
        last_used: 0,
        sign_count: new.sign_count,
        transports: new.transports,
        credential: new.credential,
    };
    cx.store.put_passkey(&record).await?;
    cx.audit(ctx, &user_id, AuditEvent::PasskeyAdded);
    if cx.login.new_device_email {
        crate::signin::device::mail_notice(cx, ctx, &identity.user, Some(&record.name));
    }
    tracing::info!(user_id = %user_id, "passkey added");
    let resp = redirect(StatusCode::SEE_OTHER, &format!("{ACCOUNT}?passkey=added"));
    Ok(ceremony::landing(cx, resp))
}

/// `POST /.latchkey/account/passkeys`: rename or remove one of the
/// caller's passkeys. Another person's id, or one already gone, changes
/// nothing ("not found").
pub async fn manage(
    cx: &SignIn<'_>,
    req: Request<Incoming>,
    ctx: &Ctx,
) -> Result<Response<Body>, GateError> {
    let (headers, form) = checked_form(cx, req, ctx).await?;
    let Some((identity, _)) = signed_in(cx, &headers, ctx).await? else {
        return Ok(redirect(
            StatusCode::FOUND,
            &crate::signin::login_url("", ACCOUNT),
        ));
    };
    let user_id = &identity.user.id;
    let id = form.get("id");
    if id.is_empty() || id.len() > 1400 {
        return Err(GateError::BadRequest(
            "expected a field `id` (a passkey's id)",
        ));
    }
    let outcome = match (form.get("remove"), form.get("name")) {
        ("1", _) => {
            if cx.store.delete_passkey(user_id, id).await? {
                cx.audit(ctx, user_id, AuditEvent::PasskeyRemoved);
                "removed"
            } else {
                "none"
            }
        }
        ("", raw) => {
            let Some(name) = clean_name(raw) else {
                return Err(bad_name(cx, ctx, user_id));
            };
            match cx.store.get_passkey(user_id, id).await? {
                Some(mut p) => {
                    p.name = name;
                    cx.store.put_passkey(&p).await?;
                    cx.audit(ctx, user_id, AuditEvent::PasskeyRenamed);
                    "renamed"
                }
                None => "none",
            }
        }
        _ => {
            return Err(GateError::BadRequest(
                "expected a field `name` (a new name) or `remove` = `1`",
            ))
        }
    };
    Ok(redirect(
        StatusCode::SEE_OTHER,
        &format!("{ACCOUNT}?passkey={outcome}"),
    ))
}
