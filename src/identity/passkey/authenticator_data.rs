//! `authenticatorData`, the bytes the authenticator signs (WebAuthn §6.1):
//! the SHA-256 of the RP id, the flags, the signature counter and, at
//! registration, the new credential's id and COSE public key.

use sha2::{Digest, Sha256};

use super::{PasskeyError, RelyingParty};

const USER_PRESENT: u8 = 0x01;
const USER_VERIFIED: u8 = 0x04;
const BACKUP_ELIGIBLE: u8 = 0x08;
const BACKED_UP: u8 = 0x10;
const ATTESTED_CREDENTIAL: u8 = 0x40;
const EXTENSIONS: u8 = 0x80;

/// Longest credential id WebAuthn allows (§6.5.1, `credentialIdLength`).
const MAX_CREDENTIAL_ID: usize = 1023;

/// A new credential inside registration's authenticator data.
#[derive(Debug)]
pub(super) struct AttestedCredential<'a> {
    pub id: &'a [u8],
    /// The COSE_Key, exactly as the authenticator wrote it.
    pub public_key: &'a [u8],
}

#[derive(Debug)]
pub(super) struct AuthenticatorData<'a> {
    pub user_verified: bool,
    pub sign_count: u32,
    pub credential: Option<AttestedCredential<'a>>,
}

/// Parses `raw` and checks what every ceremony requires: the RP id hash,
/// user presence, consistent backup flags, and no bytes left over.
pub(super) fn parse<'a>(
    raw: &'a [u8],
    rp: &RelyingParty,
) -> Result<AuthenticatorData<'a>, PasskeyError> {
    if raw.len() < 37 {
        return Err(PasskeyError::Malformed("authenticatorData too short"));
    }
    let (rp_id_hash, rest) = raw.split_at(32);
    let flags = rest[0];
    let sign_count = u32::from_be_bytes([rest[1], rest[2], rest[3], rest[4]]);
    let mut rest = &rest[5..];
    if rp_id_hash != Sha256::digest(rp.id.as_bytes()).as_slice() {
        return Err(PasskeyError::RpIdMismatch);
    }
    if flags & USER_PRESENT == 0 {
        return Err(PasskeyError::UserNotPresent);
    }
    if flags & BACKED_UP != 0 && flags & BACKUP_ELIGIBLE == 0 {
        return Err(PasskeyError::Malformed("backed up but not backup eligible"));
    }
    let credential = if flags & ATTESTED_CREDENTIAL != 0 {
        Some(attested_credential(&mut rest)?)
    } else {
        None
    };
    if flags & EXTENSIONS != 0 {
        ciborium::de::from_reader::<ciborium::Value, _>(&mut rest)
            .map_err(|_| PasskeyError::Malformed("authenticator extensions"))?;
    }
    if !rest.is_empty() {
        return Err(PasskeyError::Malformed("bytes after authenticatorData"));
    }
    Ok(AuthenticatorData {
        user_verified: flags & USER_VERIFIED != 0,
        sign_count,
        credential,
    })
}

/// aaguid (16) | id length (2, big endian) | id | COSE_Key (CBOR).
fn attested_credential<'a>(rest: &mut &'a [u8]) -> Result<AttestedCredential<'a>, PasskeyError> {
    let short = PasskeyError::Malformed("attested credential data too short");
    if rest.len() < 18 {
        return Err(short);
    }
    let id_len = usize::from(u16::from_be_bytes([rest[16], rest[17]]));
    if id_len == 0 || id_len > MAX_CREDENTIAL_ID {
        return Err(PasskeyError::Malformed("credential id length"));
    }
    let after_len = &rest[18..];
    if after_len.len() < id_len {
        return Err(short);
    }
    let (id, key_and_more) = after_len.split_at(id_len);
    let mut cursor = key_and_more;
    ciborium::de::from_reader::<ciborium::Value, _>(&mut cursor)
        .map_err(|_| PasskeyError::Malformed("credential public key"))?;
    let used = key_and_more.len() - cursor.len();
    *rest = cursor;
    Ok(AttestedCredential {
        id,
        public_key: &key_and_more[..used],
    })
}
