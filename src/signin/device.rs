//! The new-device email (`login.new_device_email`, which also turns on the
//! "passkey added" notice, `mail_notice`): each browser keeps a
//! long-lived, HttpOnly device cookie (a random value, no fingerprinting);
//! at each sign-in the store notes the pair (user, hash of that value), and
//! the first time a pair is seen the person gets an email saying when,
//! from which IP and browser, with a link to the account page to end that
//! session. The email goes through the mail queue, off the request path.
//! A browser that lost its cookie is a new device again.

use http::HeaderMap;

use crate::http::cookies::{self, DEVICE_MAX_AGE};
use crate::http::error::GateError;
use crate::http::pages::NewDeviceEmail;
use crate::http::request::Ctx;
use crate::identity::secret::Secret;
use crate::signin::mail::Email;
use crate::signin::time_text::date_time;
use crate::signin::SignIn;
use crate::store::records::User;
use crate::store::Store;

/// Notes this browser for `user` and mails them if it is new to them.
/// Returns the device value the browser keeps (its own, or a fresh one).
pub(super) async fn note(
    cx: &SignIn<'_>,
    headers: &HeaderMap,
    ctx: &Ctx,
    user: &User,
) -> Result<Secret, GateError> {
    let device = cookies::secrets(headers, cx.cookies.device_name())
        .next()
        .unwrap_or_else(|| Secret::generate(&mut rand::rng()));
    let new = cx
        .store
        .note_device(&user.id, &device.hash(), DEVICE_MAX_AGE)
        .await?;
    if new {
        mail_notice(cx, ctx, user, None);
        tracing::info!(user_id = %user.id, "sign-in from a new browser; notice mailed");
    }
    Ok(device)
}

/// Queues a security notice to `user`: a sign-in from a new browser, or
/// (`passkey`, its name) a passkey just added, with when, IP, browser and
/// the account page's address.
pub(super) fn mail_notice(cx: &SignIn<'_>, ctx: &Ctx, user: &User, passkey: Option<&str>) {
    let origin = cx.public_url.origin().ascii_serialization();
    let account_url = format!("{origin}/.latchkey/account");
    let when = date_time(ctx.now);
    let ip = ctx.client.ip.to_string();
    let (subject, text, html) = cx.pages.new_device_email(&NewDeviceEmail {
        email: &user.email,
        when: &when,
        ip: &ip,
        user_agent: &ctx.user_agent,
        account_url: &account_url,
        site: &ctx.host,
        passkey,
    });
    cx.mail.enqueue(Email {
        to: user.email.clone(),
        subject,
        text,
        html,
    });
}
