//! The two answers a browser sends back: a new credential
//! (`navigator.credentials.create`, WebAuthn §7.1) and an assertion
//! (`navigator.credentials.get`, §7.2), both as `PublicKeyCredential.toJSON()`
//! writes them. Each step of the spec that concerns a relying party without
//! attestation is here, in the spec's order; what to do with the result
//! (store it, sign in) is the caller's.

use ciborium::Value;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::client_data::{self, Ceremony};
use super::cose::PublicKey;
use super::{authenticator_data, b64_decode, b64_encode, PasskeyError, RelyingParty};

/// The prefix of a stored credential: a version, then the COSE_Key.
const STORED_PREFIX: &str = "cose1:";

/// Transports a browser may name (§5.8.4); anything else is dropped.
const TRANSPORTS: [&str; 6] = ["usb", "nfc", "ble", "smart-card", "hybrid", "internal"];

/// A passkey the browser made, checked; store it as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPasskey {
    /// The credential id, base64url without padding.
    pub id: String,
    /// The public key, for `verify_assertion` (`PasskeyRecord.credential`).
    pub credential: String,
    pub sign_count: u32,
    pub transports: Vec<String>,
    pub user_verified: bool,
}

/// An assertion, read but not yet checked: its credential id and user
/// handle tell the caller which stored passkey to check it against.
#[derive(Clone)]
pub struct AssertionResponse {
    /// The credential id, base64url without padding.
    pub id: String,
    /// The user handle (latchkey's user id), when the browser sent one.
    pub user_handle: Option<String>,
    pub(super) client_data_json: Vec<u8>,
    pub(super) authenticator_data: Vec<u8>,
    pub(super) signature: Vec<u8>,
}

impl std::fmt::Debug for AssertionResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AssertionResponse")
            .field("id", &self.id)
            .field("user_handle", &self.user_handle)
            .finish_non_exhaustive()
    }
}

/// A checked assertion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verified {
    /// The new counter, to store.
    pub sign_count: u32,
    pub user_verified: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Credential<R> {
    id: String,
    raw_id: Option<String>,
    #[serde(rename = "type")]
    kind: String,
    response: R,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Attestation {
    #[serde(rename = "clientDataJSON")]
    client_data_json: String,
    attestation_object: String,
    #[serde(default)]
    transports: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Assertion {
    #[serde(rename = "clientDataJSON")]
    client_data_json: String,
    authenticator_data: String,
    signature: String,
    #[serde(default)]
    user_handle: Option<String>,
}

/// Checks a new credential made for `challenge` on `rp` (§7.1).
pub fn verify_registration(
    rp: &RelyingParty,
    challenge: &[u8],
    response_json: &[u8],
) -> Result<NewPasskey, PasskeyError> {
    let cred: Credential<Attestation> = serde_json::from_slice(response_json)
        .map_err(|_| PasskeyError::Malformed("registration JSON"))?;
    let raw_id = credential_id(&cred)?;
    let client_data = b64_decode(&cred.response.client_data_json, "clientDataJSON")?;
    client_data::check(&client_data, Ceremony::Create, challenge, rp)?;
    let attestation = b64_decode(&cred.response.attestation_object, "attestationObject")?;
    let auth_data_bytes = attestation_auth_data(&attestation)?;
    let auth_data = authenticator_data::parse(&auth_data_bytes, rp)?;
    let Some(new) = auth_data.credential else {
        return Err(PasskeyError::Malformed(
            "no credential in authenticatorData",
        ));
    };
    if new.id != raw_id.as_slice() {
        return Err(PasskeyError::Malformed(
            "credential id differs from authenticatorData",
        ));
    }
    PublicKey::from_cose(new.public_key)?;
    let mut transports: Vec<String> = Vec::new();
    for t in &cred.response.transports {
        if TRANSPORTS.contains(&t.as_str()) && !transports.contains(t) {
            transports.push(t.clone());
        }
    }
    Ok(NewPasskey {
        id: b64_encode(new.id),
        credential: format!("{STORED_PREFIX}{}", b64_encode(new.public_key)),
        sign_count: auth_data.sign_count,
        transports,
        user_verified: auth_data.user_verified,
    })
}

/// Reads an assertion's JSON; nothing is checked yet but its shape.
pub fn parse_assertion(response_json: &[u8]) -> Result<AssertionResponse, PasskeyError> {
    let cred: Credential<Assertion> = serde_json::from_slice(response_json)
        .map_err(|_| PasskeyError::Malformed("assertion JSON"))?;
    let raw_id = credential_id(&cred)?;
    let user_handle = match cred.response.user_handle.as_deref() {
        None | Some("") => None,
        Some(text) => {
            let bytes = b64_decode(text, "userHandle")?;
            Some(String::from_utf8(bytes).map_err(|_| PasskeyError::Malformed("userHandle"))?)
        }
    };
    Ok(AssertionResponse {
        id: b64_encode(&raw_id),
        user_handle,
        client_data_json: b64_decode(&cred.response.client_data_json, "clientDataJSON")?,
        authenticator_data: b64_decode(&cred.response.authenticator_data, "authenticatorData")?,
        signature: b64_decode(&cred.response.signature, "signature")?,
    })
}

/// Checks an assertion for `challenge` on `rp` against the stored
/// `credential` and its last counter (§7.2 steps 11–22).
pub fn verify_assertion(
    rp: &RelyingParty,
    challenge: &[u8],
    response: &AssertionResponse,
    credential: &str,
    stored_sign_count: u32,
) -> Result<Verified, PasskeyError> {
    client_data::check(&response.client_data_json, Ceremony::Get, challenge, rp)?;
    let auth_data = authenticator_data::parse(&response.authenticator_data, rp)?;
    if auth_data.credential.is_some() {
        return Err(PasskeyError::Malformed("credential data in an assertion"));
    }
    let cose = credential
        .strip_prefix(STORED_PREFIX)
        .ok_or(PasskeyError::BadKey)
        .and_then(|b64| b64_decode(b64, "stored credential").map_err(|_| PasskeyError::BadKey))?;
    let key = PublicKey::from_cose(&cose)?;
    let mut signed = response.authenticator_data.clone();
    signed.extend_from_slice(&Sha256::digest(&response.client_data_json));
    key.verify(&signed, &response.signature)?;
    let got = auth_data.sign_count;
    if (got != 0 || stored_sign_count != 0) && got <= stored_sign_count {
        return Err(PasskeyError::ClonedAuthenticator {
            stored: stored_sign_count,
            got,
        });
    }
    Ok(Verified {
        sign_count: got,
        user_verified: auth_data.user_verified,
    })
}

/// The credential id, from `rawId` and `id`, which must agree.
fn credential_id<R>(cred: &Credential<R>) -> Result<Vec<u8>, PasskeyError> {
    if cred.kind != "public-key" {
        return Err(PasskeyError::WrongType);
    }
    let id = b64_decode(&cred.id, "credential id")?;
    if let Some(raw) = &cred.raw_id {
        if b64_decode(raw, "rawId")? != id {
            return Err(PasskeyError::Malformed("id and rawId differ"));
        }
    }
    if id.is_empty() || id.len() > 1023 {
        return Err(PasskeyError::Malformed("credential id length"));
    }
    Ok(id)
}

/// `authData` out of the attestation object `{fmt, attStmt, authData}`.
/// The statement is not checked (latchkey asks for none); with `fmt` "none"
/// it must be empty.
fn attestation_auth_data(raw: &[u8]) -> Result<Vec<u8>, PasskeyError> {
    let value: Value =
        ciborium::de::from_reader(raw).map_err(|_| PasskeyError::Malformed("attestationObject"))?;
    let Value::Map(entries) = value else {
        return Err(PasskeyError::Malformed("attestationObject is not a map"));
    };
    let get = |name: &str| {
        entries
            .iter()
            .find_map(|(k, v)| (k.as_text() == Some(name)).then_some(v))
    };
    let fmt = get("fmt").and_then(Value::as_text);
    let statement_empty = matches!(get("attStmt"), Some(Value::Map(m)) if m.is_empty());
    match fmt {
        Some("none") if !statement_empty => {
            return Err(PasskeyError::Malformed(
                "attestation statement with fmt none",
            ))
        }
        Some(_) => {}
        None => return Err(PasskeyError::Malformed("attestationObject without fmt")),
    }
    match get("authData") {
        Some(Value::Bytes(b)) => Ok(b.clone()),
        _ => Err(PasskeyError::Malformed(
            "attestationObject without authData",
        )),
    }
}
