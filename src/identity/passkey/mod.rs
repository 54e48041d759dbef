//! Passkeys (WebAuthn) as a relying party: the options a browser needs to
//! create or use a passkey, and the checks of what it answers. Everything
//! here is pure: the challenge comes in from the caller (who made it from
//! App's randomness, keeps it single-use and short-lived, and binds it to
//! one browser), the stored credential comes in as the string `NewPasskey`
//! gave at registration. Lookups, sessions and pages are `signin`'s.
//!
//! Written on aws-lc-rs (latchkey's one crypto provider) and ciborium for
//! CBOR, to the letter of WebAuthn Level 3 §7.1 and §7.2, because the
//! WebAuthn crates bring a second crypto provider (webauthn-rs: OpenSSL;
//! webauthn_rp: RustCrypto). Attestation is not asked for (`"none"`), so
//! no attestation statement is trusted or needed.

mod authenticator_data;
mod client_data;
mod cose;
mod options;
mod verify;

pub use options::{creation_options, request_options};
pub use verify::{
    parse_assertion, verify_assertion, verify_registration, AssertionResponse, NewPasskey, Verified,
};

use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

/// Who latchkey is to authenticators, for one ceremony.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelyingParty {
    /// The RP id: `cookie_domain` when set, else the host the ceremony runs on.
    pub id: String,
    /// Shown by the browser when a passkey is made.
    pub name: String,
    /// The page's origin exactly as the browser reports it
    /// (`http://app.localhost:8080`).
    pub origin: String,
}

/// Why a ceremony's answer was refused. `Display` is a sentence for the
/// person; `audit_reason` a short name for the audit log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasskeyError {
    #[error("The passkey answer could not be read ({0}).")]
    Malformed(&'static str),
    #[error("The answer is not for this step (wrong ceremony type).")]
    WrongType,
    #[error("The answer is for another, or an expired, request. Please try again.")]
    ChallengeMismatch,
    #[error("The answer was made for another site.")]
    OriginMismatch,
    #[error("The answer was made inside another site's frame.")]
    CrossOrigin,
    #[error("The passkey belongs to another site.")]
    RpIdMismatch,
    #[error("The authenticator did not confirm that you were present.")]
    UserNotPresent,
    #[error("This kind of passkey is not supported (use one with ES256, EdDSA or RS256).")]
    UnsupportedAlgorithm,
    #[error("The passkey's public key is not valid.")]
    BadKey,
    #[error("The passkey's signature does not match.")]
    BadSignature,
    #[error(
        "This passkey's counter went backwards ({got} after {stored}): it may have been \
         copied, so it was refused."
    )]
    ClonedAuthenticator { stored: u32, got: u32 },
}

impl PasskeyError {
    /// A short snake_case name for audit events and logs.
    pub fn audit_reason(&self) -> &'static str {
        match self {
            PasskeyError::Malformed(_) => "malformed",
            PasskeyError::WrongType => "wrong_type",
            PasskeyError::ChallengeMismatch => "challenge_mismatch",
            PasskeyError::OriginMismatch => "origin_mismatch",
            PasskeyError::CrossOrigin => "cross_origin",
            PasskeyError::RpIdMismatch => "rp_id_mismatch",
            PasskeyError::UserNotPresent => "user_not_present",
            PasskeyError::UnsupportedAlgorithm => "unsupported_algorithm",
            PasskeyError::BadKey => "bad_key",
            PasskeyError::BadSignature => "bad_signature",
            PasskeyError::ClonedAuthenticator { .. } => "sign_count_went_back",
        }
    }
}

/// base64url as browsers write it (no padding), also read with padding.
const B64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

fn b64_encode(bytes: &[u8]) -> String {
    base64::Engine::encode(&B64, bytes)
}

fn b64_decode(text: &str, what: &'static str) -> Result<Vec<u8>, PasskeyError> {
    base64::Engine::decode(&B64, text).map_err(|_| PasskeyError::Malformed(what))
}

#[cfg(test)]
mod soft_authenticator;
#[cfg(test)]
mod tests;
