//! `clientDataJSON`, what the browser says it asked the authenticator to
//! sign: the ceremony type, the challenge, the page's origin and whether it
//! ran in another site's frame (WebAuthn §5.8.1). Checked against what
//! latchkey expects; the signature over it is checked elsewhere.

use serde::Deserialize;

use super::{b64_decode, PasskeyError, RelyingParty};

/// The two ceremonies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Ceremony {
    Create,
    Get,
}

impl Ceremony {
    fn type_name(self) -> &'static str {
        match self {
            Ceremony::Create => "webauthn.create",
            Ceremony::Get => "webauthn.get",
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ClientData {
    #[serde(rename = "type")]
    kind: String,
    challenge: String,
    origin: String,
    #[serde(default)]
    cross_origin: Option<bool>,
    #[serde(default)]
    top_origin: Option<String>,
}

/// Checks the raw `clientDataJSON` bytes for this ceremony, challenge and
/// relying party (§7.1 steps 7–10, §7.2 steps 11–14).
pub(super) fn check(
    raw: &[u8],
    ceremony: Ceremony,
    challenge: &[u8],
    rp: &RelyingParty,
) -> Result<(), PasskeyError> {
    let data: ClientData =
        serde_json::from_slice(raw).map_err(|_| PasskeyError::Malformed("clientDataJSON"))?;
    if data.kind != ceremony.type_name() {
        return Err(PasskeyError::WrongType);
    }
    let got = b64_decode(&data.challenge, "challenge")?;
    if !constant_time_eq(&got, challenge) {
        return Err(PasskeyError::ChallengeMismatch);
    }
    if data.origin != rp.origin {
        return Err(PasskeyError::OriginMismatch);
    }
    if data.cross_origin == Some(true) || data.top_origin.is_some_and(|t| t != rp.origin) {
        return Err(PasskeyError::CrossOrigin);
    }
    Ok(())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
