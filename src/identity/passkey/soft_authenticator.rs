//! A software authenticator for the unit tests: it makes ES256, EdDSA or
//! RS256 credentials and answers ceremonies the way a browser's
//! `toJSON()` writes them, with every field open to tampering.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair, ECDSA_P256_SHA256_ASN1_SIGNING,
    RSA_PKCS1_SHA256,
};
use ciborium::Value;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::{b64_encode, RelyingParty};

pub(super) enum Key {
    Es256(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
    Rs256(RsaKeyPair),
}

#[derive(Clone, Copy)]
pub(super) enum Kind {
    Es256,
    Ed25519,
    Rs256,
}

/// What goes into one answer; `Answer::for_rp` is an honest one.
#[derive(Clone)]
pub(super) struct Answer {
    pub kind: String,
    pub challenge: Vec<u8>,
    pub origin: String,
    pub cross_origin: bool,
    pub rp_id: String,
    pub flags: u8,
    pub sign_count: u32,
    pub fmt: &'static str,
}

impl Answer {
    pub fn for_rp(rp: &RelyingParty, challenge: &[u8], create: bool) -> Answer {
        Answer {
            kind: if create {
                "webauthn.create"
            } else {
                "webauthn.get"
            }
            .into(),
            challenge: challenge.to_vec(),
            origin: rp.origin.clone(),
            cross_origin: false,
            rp_id: rp.id.clone(),
            flags: 0x01 | 0x04,
            sign_count: 0,
            fmt: "none",
        }
    }
}

pub(super) struct SoftAuthenticator {
    pub key: Key,
    pub id: Vec<u8>,
    pub user_id: String,
}

impl SoftAuthenticator {
    pub fn new(kind: Kind, user_id: &str) -> SoftAuthenticator {
        let rng = SystemRandom::new();
        let key = match kind {
            Kind::Es256 => {
                let pkcs8 =
                    EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
                Key::Es256(
                    EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref())
                        .unwrap(),
                )
            }
            Kind::Ed25519 => Key::Ed25519(Ed25519KeyPair::generate().unwrap()),
            Kind::Rs256 => Key::Rs256(RsaKeyPair::generate(KeySize::Rsa2048).unwrap()),
        };
        let mut id = vec![0u8; 16];
        aws_lc_rs::rand::fill(&mut id).unwrap();
        SoftAuthenticator {
            key,
            id,
            user_id: user_id.into(),
        }
    }

    pub fn cose_key(&self) -> Vec<u8> {
        let i = |n: i64| Value::Integer(n.into());
        let map = match &self.key {
            Key::Es256(k) => {
                let point = k.public_key().as_ref();
                vec![
                    (i(1), i(2)),
                    (i(3), i(-7)),
                    (i(-1), i(1)),
                    (i(-2), Value::Bytes(point[1..33].to_vec())),
                    (i(-3), Value::Bytes(point[33..65].to_vec())),
                ]
            }
            Key::Ed25519(k) => vec![
                (i(1), i(1)),
                (i(3), i(-8)),
                (i(-1), i(6)),
                (i(-2), Value::Bytes(k.public_key().as_ref().to_vec())),
            ],
            Key::Rs256(k) => {
                let (n, e) = rsa_components(k.public_key().as_ref());
                vec![
                    (i(1), i(3)),
                    (i(3), i(-257)),
                    (i(-1), Value::Bytes(n)),
                    (i(-2), Value::Bytes(e)),
                ]
            }
        };
        cbor(&Value::Map(map))
    }

    pub fn client_data(answer: &Answer) -> Vec<u8> {
        let mut data = json!({
            "type": answer.kind,
            "challenge": b64_encode(&answer.challenge),
            "origin": answer.origin,
        });
        if answer.cross_origin {
            data["crossOrigin"] = json!(true);
        }
        serde_json::to_vec(&data).unwrap()
    }

    pub fn auth_data(&self, answer: &Answer, with_credential: bool) -> Vec<u8> {
        let mut out = Sha256::digest(answer.rp_id.as_bytes()).to_vec();
        let flags = answer.flags | if with_credential { 0x40 } else { 0 };
        out.push(flags);
        out.extend_from_slice(&answer.sign_count.to_be_bytes());
        if with_credential {
            out.extend_from_slice(&[0u8; 16]);
            out.extend_from_slice(&(self.id.len() as u16).to_be_bytes());
            out.extend_from_slice(&self.id);
            out.extend_from_slice(&self.cose_key());
        }
        out
    }

    /// A registration answer, as JSON bytes.
    pub fn register(&self, answer: &Answer) -> Vec<u8> {
        let auth_data = self.auth_data(answer, true);
        let attestation = Value::Map(vec![
            (Value::Text("fmt".into()), Value::Text(answer.fmt.into())),
            (Value::Text("attStmt".into()), Value::Map(vec![])),
            (Value::Text("authData".into()), Value::Bytes(auth_data)),
        ]);
        let id = b64_encode(&self.id);
        serde_json::to_vec(&json!({
            "id": id, "rawId": id, "type": "public-key",
            "response": {
                "clientDataJSON": b64_encode(&Self::client_data(answer)),
                "attestationObject": b64_encode(&cbor(&attestation)),
                "transports": ["internal", "bogus", "internal"],
            },
            "clientExtensionResults": {},
        }))
        .unwrap()
    }

    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        let rng = SystemRandom::new();
        match &self.key {
            Key::Es256(k) => k.sign(&rng, message).unwrap().as_ref().to_vec(),
            Key::Ed25519(k) => k.sign(message).as_ref().to_vec(),
            Key::Rs256(k) => {
                let mut sig = vec![0u8; k.public_modulus_len()];
                k.sign(&RSA_PKCS1_SHA256, &rng, message, &mut sig).unwrap();
                sig
            }
        }
    }

    /// An assertion answer, as JSON bytes.
    pub fn assert(&self, answer: &Answer) -> Vec<u8> {
        let auth_data = self.auth_data(answer, false);
        let client_data = Self::client_data(answer);
        let mut signed = auth_data.clone();
        signed.extend_from_slice(&Sha256::digest(&client_data));
        let id = b64_encode(&self.id);
        serde_json::to_vec(&json!({
            "id": id, "rawId": id, "type": "public-key",
            "response": {
                "clientDataJSON": b64_encode(&client_data),
                "authenticatorData": b64_encode(&auth_data),
                "signature": b64_encode(&self.sign(&signed)),
                "userHandle": b64_encode(self.user_id.as_bytes()),
            },
            "clientExtensionResults": {},
        }))
        .unwrap()
    }
}

pub(super) fn cbor(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::ser::into_writer(value, &mut out).unwrap();
    out
}

/// `n` and `e` out of a DER RSAPublicKey (SEQUENCE of two INTEGERs).
fn rsa_components(der: &[u8]) -> (Vec<u8>, Vec<u8>) {
    fn read(der: &[u8]) -> (u8, &[u8], &[u8]) {
        let tag = der[0];
        let (len, start) = if der[1] & 0x80 == 0 {
            (usize::from(der[1]), 2)
        } else {
            let n = usize::from(der[1] & 0x7f);
            let len = der[2..2 + n]
                .iter()
                .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
            (len, 2 + n)
        };
        (tag, &der[start..start + len], &der[start + len..])
    }
    let (_, seq, _) = read(der);
    let (_, n, rest) = read(seq);
    let (_, e, _) = read(rest);
    (n.to_vec(), e.to_vec())
}
