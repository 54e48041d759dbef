//! The audit trail: one `tracing` event under the target `latchkey::obs::audit`
//! for every sign-in requested, completed and refused, every sign-out and
//! every revocation, every passkey added, renamed, removed or refused and
//! every step-up, each with the user id, client IP and user agent. Ops
//! route that target to its own sink (`LATCHKEY_LOG=latchkey::obs::audit=info`
//! keeps it even when everything else is quiet).
//!
//! The user id is the stable hash of the address (`session::user_id`), never
//! the address itself; no token, cookie or code is ever a field. Recording
//! a sign-in event also counts it in `Metrics`, so the two never disagree.

use std::fmt;

use crate::obs::metrics::{Metrics, SignInFailure};

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditEvent {
    /// A link (and code) was sent to an address that may sign in.
    SignInRequested,
    /// A link or code was used and a session created.
    SignInCompleted,
    /// A sign-in did not happen, and why.
    SignInRefused(SignInFailure),
    /// The person signed out (`POST /.latchkey/logout`).
    SignedOut,
    /// Sessions ended by someone other than their holder (an admin with
    /// `latchkey sessions revoke`, a removed user).
    SessionsRevoked,
    /// The person registered a passkey on the account page.
    PasskeyAdded,
    /// The person renamed one of their passkeys.
    PasskeyRenamed,
    /// The person removed one of their passkeys.
    PasskeyRemoved,
    /// A session proved a passkey on the step-up page (and was replaced).
    SteppedUp,
    /// A passkey ceremony (registration, sign-in, step-up) was refused;
    /// the reason is a short snake_case word (`challenge`, `cloned_authenticator`...).
    PasskeyRefused(&'static str),
}

impl AuditEvent {
    pub fn name(self) -> &'static str {
        match self {
            AuditEvent::SignInRequested => "sign_in_requested",
            AuditEvent::SignInCompleted => "sign_in_completed",
            AuditEvent::SignInRefused(_) => "sign_in_refused",
            AuditEvent::SignedOut => "signed_out",
            AuditEvent::SessionsRevoked => "sessions_revoked",
            AuditEvent::PasskeyAdded => "passkey_added",
            AuditEvent::PasskeyRenamed => "passkey_renamed",
            AuditEvent::PasskeyRemoved => "passkey_removed",
            AuditEvent::SteppedUp => "stepped_up",
            AuditEvent::PasskeyRefused(_) => "passkey_refused",
        }
    }
}

/// Who and from where. Empty strings when unknown (e.g. a refused link
/// whose address was never looked up, or an admin command with no client).
#[derive(Debug, Clone, Copy, Default)]
pub struct Actor<'a> {
    pub user_id: &'a str,
    pub ip: &'a str,
    pub user_agent: &'a str,
}

/// Logs `event` on the audit target and counts sign-in events.
pub fn record(metrics: &Metrics, event: AuditEvent, who: Actor<'_>) {
    let reason = match event {
        AuditEvent::SignInRequested => {
            metrics.sign_in_requested();
            None
        }
        AuditEvent::SignInCompleted => {
            metrics.sign_in_completed();
            None
        }
        AuditEvent::SignInRefused(why) => {
            metrics.sign_in_failed(why);
            Some(why.label())
        }
        AuditEvent::PasskeyRefused(why) => Some(why),
        AuditEvent::SignedOut
        | AuditEvent::SessionsRevoked
        | AuditEvent::PasskeyAdded
        | AuditEvent::PasskeyRenamed
        | AuditEvent::PasskeyRemoved
        | AuditEvent::SteppedUp => None,
    };
    tracing::info!(
        target: "latchkey::obs::audit",
        event = event.name(),
        reason,
        user_id = who.user_id,
        ip = who.ip,
        user_agent = who.user_agent,
        "{}",
        Describe(event)
    );
}

/// The human sentence for an event.
struct Describe(AuditEvent);

impl fmt::Display for Describe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.0 {
            AuditEvent::SignInRequested => "sign-in link sent",
            AuditEvent::SignInCompleted => "signed in",
            AuditEvent::SignInRefused(_) => "sign-in refused",
            AuditEvent::SignedOut => "signed out",
            AuditEvent::SessionsRevoked => "sessions revoked",
            AuditEvent::PasskeyAdded => "passkey added",
            AuditEvent::PasskeyRenamed => "passkey renamed",
            AuditEvent::PasskeyRemoved => "passkey removed",
            AuditEvent::SteppedUp => "stepped up with a passkey",
            AuditEvent::PasskeyRefused(_) => "passkey refused",
        })
    }
}
