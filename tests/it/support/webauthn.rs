//! A software passkey for driving latchkey's ceremonies from Rust tests:
//! an ES256 (P-256) key made with aws-lc-rs that answers creation and
//! request options the way a browser's `PublicKeyCredential.toJSON()`
//! writes them. What it says can be bent for the bad-input cases: another
//! origin, another RP id, a counter of the test's choosing.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_ASN1_SIGNING};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ciborium::Value;
use serde_json::json;
use sha2::{Digest, Sha256};

pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

pub fn unb64(text: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(text).expect("base64url")
}

/// How an answer is made; `Answer::honest` for the options' own RP.
#[derive(Clone)]
pub struct Answer {
    pub challenge: Vec<u8>,
    pub origin: String,
    pub rp_id: String,
    pub sign_count: u32,
}

impl Answer {
    /// An answer to `options` (creation or request options JSON) from a
    /// page at `origin`.
    pub fn honest(options: &serde_json::Value, origin: &str) -> Answer {
        let rp_id = options["rp"]["id"]
            .as_str()
            .or(options["rpId"].as_str())
            .expect("an RP id in the options")
            .to_owned();
        Answer {
            challenge: unb64(options["challenge"].as_str().expect("a challenge")),
            origin: origin.to_owned(),
            rp_id,
            sign_count: 0,
        }
    }
}

pub struct SoftPasskey {
    key: EcdsaKeyPair,
    pub id: Vec<u8>,
    /// The user handle it was made for (latchkey's user id).
    pub user_id: String,
}

impl SoftPasskey {
    /// A passkey for the user the creation options name.
    pub fn new(options: &serde_json::Value) -> SoftPasskey {
        let user = unb64(options["user"]["id"].as_str().expect("user.id"));
        let mut id = vec![0u8; 16];
        aws_lc_rs::rand::fill(&mut id).expect("random id");
        SoftPasskey {
            key: EcdsaKeyPair::generate(&ECDSA_P256_SHA256_ASN1_SIGNING).expect("P-256 key"),
            id,
            user_id: String::from_utf8(user).expect("a UTF-8 user id"),
        }
    }

    pub fn id_b64(&self) -> String {
        b64(&self.id)
    }

    fn cose_key(&self) -> Vec<u8> {
        let point = self.key.public_key().as_ref();
        let map = Value::Map(vec![
            (Value::Integer(1.into()), Value::Integer(2.into())),
            (Value::Integer(3.into()), Value::Integer((-7).into())),
            (Value::Integer((-1).into()), Value::Integer(1.into())),
            (
                Value::Integer((-2).into()),
                Value::Bytes(point[1..33].to_vec()),
            ),
            (
                Value::Integer((-3).into()),
                Value::Bytes(point[33..65].to_vec()),
            ),
        ]);
        let mut out = Vec::new();
        ciborium::ser::into_writer(&map, &mut out).expect("CBOR");
        out
    }

    fn client_data(kind: &str, a: &Answer) -> Vec<u8> {
        json!({
            "type": kind,
            "challenge": b64(&a.challenge),
            "origin": a.origin,
            "crossOrigin": false,
        })
        .to_string()
        .into_bytes()
    }

    fn auth_data(&self, a: &Answer, with_credential: bool) -> Vec<u8> {
        let mut out = Sha256::digest(a.rp_id.as_bytes()).to_vec();
        // UP | UV, and AT when a credential follows.
        out.push(if with_credential { 0x45 } else { 0x05 });
        out.extend_from_slice(&a.sign_count.to_be_bytes());
        if with_credential {
            out.extend_from_slice(&[0u8; 16]);
            out.extend_from_slice(&(self.id.len() as u16).to_be_bytes());
            out.extend_from_slice(&self.id);
            out.extend_from_slice(&self.cose_key());
        }
        out
    }

    /// `credential.toJSON()` of a registration.
    pub fn register(&self, a: &Answer) -> String {
        let attestation = Value::Map(vec![
            (Value::Text("fmt".into()), Value::Text("none".into())),
            (Value::Text("attStmt".into()), Value::Map(vec![])),
            (
                Value::Text("authData".into()),
                Value::Bytes(self.auth_data(a, true)),
            ),
        ]);
        let mut object = Vec::new();
        ciborium::ser::into_writer(&attestation, &mut object).expect("CBOR");
        json!({
            "id": self.id_b64(),
            "rawId": self.id_b64(),
            "type": "public-key",
            "authenticatorAttachment": "platform",
            "clientExtensionResults": {},
            "response": {
                "clientDataJSON": b64(&Self::client_data("webauthn.create", a)),
                "attestationObject": b64(&object),
                "transports": ["internal"],
            },
        })
        .to_string()
    }

    /// `credential.toJSON()` of an assertion, naming `user_handle`.
    pub fn assert_as(&self, a: &Answer, user_handle: &str) -> String {
        let client_data = Self::client_data("webauthn.get", a);
        let auth_data = self.auth_data(a, false);
        let mut signed = auth_data.clone();
        signed.extend_from_slice(&Sha256::digest(&client_data));
        let sig = self
            .key
            .sign(&SystemRandom::new(), &signed)
            .expect("signature");
        json!({
            "id": self.id_b64(),
            "rawId": self.id_b64(),
            "type": "public-key",
            "authenticatorAttachment": "platform",
            "clientExtensionResults": {},
            "response": {
                "clientDataJSON": b64(&client_data),
                "authenticatorData": b64(&auth_data),
                "signature": b64(sig.as_ref()),
                "userHandle": b64(user_handle.as_bytes()),
            },
        })
        .to_string()
    }

    /// An assertion by this passkey for its own user.
    pub fn assert(&self, a: &Answer) -> String {
        self.assert_as(a, &self.user_id)
    }
}
