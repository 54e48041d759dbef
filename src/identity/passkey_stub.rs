//! A stand-in for the WebAuthn verifier (`identity::passkey`) with its
//! API only, so the ceremonies above it build before it lands: options
//! are real, every verification refuses. Replaced by the real module.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

pub struct RelyingParty {
    pub id: String,
    pub name: String,
    pub origin: String,
}

pub fn creation_options(
    rp: &RelyingParty,
    challenge: &[u8],
    user_id: &str,
    email: &str,
    exclude: &[String],
) -> serde_json::Value {
    serde_json::json!({
        "rp": { "id": rp.id, "name": rp.name },
        "user": { "id": URL_SAFE_NO_PAD.encode(user_id), "name": email, "displayName": email },
        "challenge": URL_SAFE_NO_PAD.encode(challenge),
        "pubKeyCredParams": [{ "type": "public-key", "alg": -7 }, { "type": "public-key", "alg": -257 }],
        "timeout": 300000,
        "excludeCredentials": exclude.iter().map(|id| serde_json::json!({ "type": "public-key", "id": id })).collect::<Vec<_>>(),
        "authenticatorSelection": { "residentKey": "required", "requireResidentKey": true, "userVerification": "preferred" },
        "attestation": "none",
    })
}

pub fn request_options(rp: &RelyingParty, challenge: &[u8], allow: &[String]) -> serde_json::Value {
    serde_json::json!({
        "rpId": rp.id,
        "challenge": URL_SAFE_NO_PAD.encode(challenge),
        "timeout": 300000,
        "allowCredentials": allow.iter().map(|id| serde_json::json!({ "type": "public-key", "id": id })).collect::<Vec<_>>(),
        "userVerification": "preferred",
    })
}

pub struct NewPasskey {
    pub id: String,
    pub credential: String,
    pub sign_count: u32,
    pub transports: Vec<String>,
    pub user_verified: bool,
}

pub fn verify_registration(
    _rp: &RelyingParty,
    _challenge: &[u8],
    _response_json: &[u8],
) -> Result<NewPasskey, PasskeyError> {
    Err(PasskeyError::BadKey)
}

pub struct AssertionResponse {
    pub id: String,
    pub user_handle: Option<String>,
}

pub fn parse_assertion(response_json: &[u8]) -> Result<AssertionResponse, PasskeyError> {
    let v: serde_json::Value =
        serde_json::from_slice(response_json).map_err(|_| PasskeyError::Malformed("json"))?;
    Ok(AssertionResponse {
        id: v["id"].as_str().unwrap_or_default().to_owned(),
        user_handle: None,
    })
}

pub struct Verified {
    pub sign_count: u32,
    pub user_verified: bool,
}

pub fn verify_assertion(
    _rp: &RelyingParty,
    _challenge: &[u8],
    _response: &AssertionResponse,
    _credential: &str,
    _stored_sign_count: u32,
) -> Result<Verified, PasskeyError> {
    Err(PasskeyError::BadSignature)
}

#[derive(Debug)]
pub enum PasskeyError {
    Malformed(&'static str),
    WrongType,
    ChallengeMismatch,
    OriginMismatch,
    CrossOrigin,
    RpIdMismatch,
    UserNotPresent,
    UnsupportedAlgorithm,
    BadKey,
    BadSignature,
    ClonedAuthenticator { stored: u32, got: u32 },
}

impl PasskeyError {
    pub fn audit_reason(&self) -> &'static str {
        "stub"
    }
}

impl std::fmt::Display for PasskeyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("This passkey could not be checked.")
    }
}

impl std::error::Error for PasskeyError {}
