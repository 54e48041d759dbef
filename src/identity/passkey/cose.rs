//! The credential's public key: read from its COSE_Key (RFC 9052 §7,
//! RFC 9053) once at registration and again, from the stored bytes, at
//! each sign-in, and used to check an assertion's signature with aws-lc-rs.
//! ES256 (P-256), EdDSA (Ed25519) and RS256 (2048 bits or more) are the
//! ones latchkey offers and accepts.

use aws_lc_rs::signature::{self, ParsedPublicKey, RsaPublicKeyComponents, VerificationAlgorithm};
use ciborium::Value;

use super::PasskeyError;

/// COSE algorithm numbers, in the order latchkey prefers them.
pub(super) const ALGORITHMS: [i64; 3] = [ES256, EDDSA, RS256];
const ES256: i64 = -7;
const EDDSA: i64 = -8;
const RS256: i64 = -257;

const KTY: i64 = 1;
const ALG: i64 = 3;
const CRV_OR_N: i64 = -1;
const X_OR_E: i64 = -2;
const Y: i64 = -3;

const KTY_OKP: i64 = 1;
const KTY_EC2: i64 = 2;
const KTY_RSA: i64 = 3;
const CRV_P256: i64 = 1;
const CRV_ED25519: i64 = 6;

/// A public key ready to check signatures.
pub(super) struct PublicKey(ParsedPublicKey);

impl PublicKey {
    /// Reads a COSE_Key; refuses other algorithms and keys that do not
    /// parse as points or RSA keys of the right size.
    pub(super) fn from_cose(bytes: &[u8]) -> Result<PublicKey, PasskeyError> {
        let value: Value =
            ciborium::de::from_reader(bytes).map_err(|_| PasskeyError::Malformed("COSE key"))?;
        let Value::Map(entries) = value else {
            return Err(PasskeyError::Malformed("COSE key is not a map"));
        };
        let int = |label: i64| -> Option<i64> {
            match field(&entries, label)? {
                Value::Integer(i) => i64::try_from(*i).ok(),
                _ => None,
            }
        };
        let bytes_of = |label: i64| -> Result<&[u8], PasskeyError> {
            match field(&entries, label) {
                Some(Value::Bytes(b)) => Ok(b),
                _ => Err(PasskeyError::BadKey),
            }
        };
        let alg = int(ALG).ok_or(PasskeyError::Malformed("COSE key without alg"))?;
        let kty = int(KTY).ok_or(PasskeyError::Malformed("COSE key without kty"))?;
        let parsed = match (alg, kty) {
            (ES256, KTY_EC2) => {
                if int(CRV_OR_N) != Some(CRV_P256) {
                    return Err(PasskeyError::UnsupportedAlgorithm);
                }
                let (x, y) = (bytes_of(X_OR_E)?, bytes_of(Y)?);
                if x.len() != 32 || y.len() != 32 {
                    return Err(PasskeyError::BadKey);
                }
                let point = [&[0x04][..], x, y].concat();
                parse(&signature::ECDSA_P256_SHA256_ASN1, &point)?
            }
            (EDDSA, KTY_OKP) => {
                if int(CRV_OR_N) != Some(CRV_ED25519) {
                    return Err(PasskeyError::UnsupportedAlgorithm);
                }
                let x = bytes_of(X_OR_E)?;
                if x.len() != 32 {
                    return Err(PasskeyError::BadKey);
                }
                parse(&signature::ED25519, x)?
            }
            (RS256, KTY_RSA) => {
                let n = strip_zeros(bytes_of(CRV_OR_N)?);
                let e = strip_zeros(bytes_of(X_OR_E)?);
                if n.len() < 256 || n.len() > 1024 || e.is_empty() || e.len() > 8 {
                    return Err(PasskeyError::BadKey);
                }
                RsaPublicKeyComponents { n, e }
                    .to_parsed_public_key(&signature::RSA_PKCS1_2048_8192_SHA256)
                    .map_err(|_| PasskeyError::BadKey)?
            }
            (ES256 | EDDSA | RS256, _) => return Err(PasskeyError::BadKey),
            _ => return Err(PasskeyError::UnsupportedAlgorithm),
        };
        Ok(PublicKey(parsed))
    }

    /// Checks `signature` over `message`.
    pub(super) fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), PasskeyError> {
        self.0
            .verify_sig(message, signature)
            .map_err(|_| PasskeyError::BadSignature)
    }
}

fn field(entries: &[(Value, Value)], label: i64) -> Option<&Value> {
    entries.iter().find_map(|(k, v)| match k {
        Value::Integer(i) if i64::try_from(*i).ok() == Some(label) => Some(v),
        _ => None,
    })
}

fn parse(
    alg: &'static dyn VerificationAlgorithm,
    bytes: &[u8],
) -> Result<ParsedPublicKey, PasskeyError> {
    ParsedPublicKey::new(alg, bytes).map_err(|_| PasskeyError::BadKey)
}

fn strip_zeros(bytes: &[u8]) -> &[u8] {
    let first = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    &bytes[first..]
}
