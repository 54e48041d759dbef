//! What the browser is asked to do: the JSON forms of
//! `PublicKeyCredentialCreationOptions` and `...RequestOptions` (WebAuthn
//! §5.4, §5.5), ready for `PublicKeyCredential.parseCreationOptionsFromJSON`
//! and `parseRequestOptionsFromJSON`. latchkey asks for a discoverable
//! credential, prefers user verification and wants no attestation.

use serde_json::{json, Value};

use super::{b64_encode, cose, RelyingParty};

/// How long the browser may wait for the person, in milliseconds; the same
/// five minutes the challenge lives.
const TIMEOUT_MS: u64 = 300_000;

/// Options to make a passkey for `user_id` (sent back as the user handle
/// at sign-in; it carries no personal data) named after `email`, never
/// again on an authenticator that holds one of `exclude` (credential ids,
/// base64url).
pub fn creation_options(
    rp: &RelyingParty,
    challenge: &[u8],
    user_id: &str,
    email: &str,
    exclude: &[String],
) -> Value {
    let params: Vec<Value> = cose::ALGORITHMS
        .iter()
        .map(|alg| json!({"type": "public-key", "alg": alg}))
        .collect();
    json!({
        "rp": {"id": rp.id, "name": rp.name},
        "user": {"id": b64_encode(user_id.as_bytes()), "name": email, "displayName": email},
        "challenge": b64_encode(challenge),
        "pubKeyCredParams": params,
        "timeout": TIMEOUT_MS,
        "excludeCredentials": descriptors(exclude),
        "authenticatorSelection": {
            "residentKey": "required",
            "requireResidentKey": true,
            "userVerification": "preferred",
        },
        "attestation": "none",
    })
}

/// Options to prove a passkey: any of this site's (`allow` empty, for the
/// sign-in page and autofill) or one of `allow` (step-up).
pub fn request_options(rp: &RelyingParty, challenge: &[u8], allow: &[String]) -> Value {
    json!({
        "challenge": b64_encode(challenge),
        "rpId": rp.id,
        "timeout": TIMEOUT_MS,
        "userVerification": "preferred",
        "allowCredentials": descriptors(allow),
    })
}

fn descriptors(ids: &[String]) -> Vec<Value> {
    ids.iter()
        .map(|id| json!({"type": "public-key", "id": id}))
        .collect()
}
