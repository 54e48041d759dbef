//! Signing keys: the P-256 (ES256) or Ed25519 (EdDSA) private keys named in
//! `[assertion] keys`, read once at start-up. This module owns the key
//! material and the JWS mechanics around it: signing a JWT on the hot path
//! (the parsed key pair and the encoded header are kept, so a request costs
//! one claims serialization and one signature), verifying a token latchkey
//! signed itself (bearer tokens, with `jsonwebtoken`), publishing the public
//! halves as a JWKS, and generating fresh keys for `latchkey keys generate`.
//! What goes into a token is `assertion`'s and `bearer`'s business.
//!
//! The first key signs; every key verifies and is published. Rotation
//! without a gap: add the new key last (published, not signing), wait until
//! verifiers have refetched the JWKS, move it first, and drop the old key once
//! the tokens it signed have expired.
//!
//! All cryptography is aws-lc-rs, the process's one provider.

use std::path::Path;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    EcdsaKeyPair, Ed25519KeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING,
};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use bytes::Bytes;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::PrivateKeyDer;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::config::KeyConfig;

/// How long verifiers may cache the JWKS. Rotation waits at least this
/// long between publishing a key and signing with it.
pub const JWKS_MAX_AGE: std::time::Duration = std::time::Duration::from_secs(300);

/// Clock skew tolerated when checking `exp` and `iat` between instances.
const LEEWAY_SECS: u64 = 5;

/// The signature algorithm, fixed by the kind of key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alg {
    /// ECDSA on P-256 with SHA-256: the default.
    Es256,
    /// Ed25519.
    EdDsa,
}

impl Alg {
    pub fn name(self) -> &'static str {
        match self {
            Alg::Es256 => "ES256",
            Alg::EdDsa => "EdDSA",
        }
    }

    fn jwt(self) -> Algorithm {
        match self {
            Alg::Es256 => Algorithm::ES256,
            Alg::EdDsa => Algorithm::EdDSA,
        }
    }
}

/// The kind of token, written as the JWT header's `typ`: a verifier that
/// wants one kind refuses the other, so an assertion an app received can
/// never be replayed to latchkey as a bearer token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Typ {
    /// An identity assertion for an app (`typ: JWT`).
    Assertion,
    /// A bearer token for latchkey itself (`typ: at+jwt`, RFC 9068).
    Access,
}

impl Typ {
    fn header(self) -> &'static str {
        match self {
            Typ::Assertion => "JWT",
            Typ::Access => "at+jwt",
        }
    }
}

enum Pair {
    Ec(EcdsaKeyPair),
    Ed(Ed25519KeyPair),
}

struct SigningKey {
    kid: String,
    alg: Alg,
    pair: Pair,
    decoding: DecodingKey,
    /// The encoded JWT header for each `Typ` (`[Assertion, Access]`).
    headers: [String; 2],
}

/// Every configured key, newest (signing) first. Empty when none are
/// configured: nothing is signed and the JWKS is empty.
pub struct Keys {
    keys: Vec<SigningKey>,
    jwks: Bytes,
    rng: SystemRandom,
}

/// A JWT could not be made.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error("no signing key is configured")]
    NoKey,
    #[error("claims do not serialize: {0}")]
    Claims(#[from] serde_json::Error),
    #[error("signing failed: {0}")]
    Crypto(#[from] aws_lc_rs::error::Unspecified),
}

/// Why a token was refused.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("token header names no key latchkey holds")]
    UnknownKey,
    #[error("token is of another kind (typ)")]
    WrongType,
    #[error("{0}")]
    Jwt(#[from] jsonwebtoken::errors::Error),
}

impl Keys {
    /// No keys: assertions off, bearer tokens unavailable, JWKS empty.
    pub fn none() -> Keys {
        Keys::from_keys(Vec::new())
    }

    /// Reads every key file, reporting every problem with its key path.
    pub fn from_config(entries: &[KeyConfig]) -> Result<Keys, Vec<String>> {
        let mut problems = Vec::new();
        let mut keys: Vec<SigningKey> = Vec::new();
        let mut seen: Vec<&str> = Vec::new();
        for (i, entry) in entries.iter().enumerate() {
            let at = format!("assertion.keys[{i}]");
            let kid = &entry.kid;
            let kid_ok = !kid.is_empty()
                && kid.len() <= 64
                && kid
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
            if !kid_ok {
                problems.push(format!(
                    "{at}.kid: {kid:?} is not a key id; expected 1 to 64 letters, digits, '-', '_' or '.', like \"2026-11\""
                ));
                continue;
            }
            if seen.contains(&kid.as_str()) {
                problems.push(format!(
                    "{at}.kid: {kid:?} is listed twice; expected each key id once"
                ));
                continue;
            }
            seen.push(kid);
            match load_pair(Path::new(&entry.file)) {
                Ok((alg, pair)) => keys.push(SigningKey::new(kid.clone(), alg, pair)),
                Err(why) => problems.push(format!(
                    "{at}.file: {:?} {why}; expected a PEM file with a P-256 or Ed25519 private key (make one with `latchkey keys generate`)",
                    entry.file
                )),
            }
        }
        if problems.is_empty() {
            Ok(Keys::from_keys(keys))
        } else {
            Err(problems)
        }
    }

    /// Keys from PEM text, in order (tests, tools).
    pub fn from_pems(pems: &[(&str, &str)]) -> Result<Keys, String> {
        let mut keys = Vec::new();
        for (kid, pem) in pems {
            let der = PrivateKeyDer::from_pem_slice(pem.as_bytes())
                .map_err(|e| format!("{kid}: not a PEM private key: {e}"))?;
            let (alg, pair) = parse_pair(&der).map_err(|e| format!("{kid}: {e}"))?;
            keys.push(SigningKey::new((*kid).to_owned(), alg, pair));
        }
        Ok(Keys::from_keys(keys))
    }

    fn from_keys(keys: Vec<SigningKey>) -> Keys {
        let jwks: Vec<serde_json::Value> = keys.iter().map(SigningKey::jwk).collect();
        let jwks = serde_json::json!({ "keys": jwks }).to_string();
        Keys {
            keys,
            jwks: Bytes::from(jwks),
            rng: SystemRandom::new(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The signing key's id and algorithm, if any.
    pub fn signing(&self) -> Option<(&str, Alg)> {
        self.keys.first().map(|k| (k.kid.as_str(), k.alg))
    }

    /// `(kid, alg)` of every key, signing key first.
    pub fn describe(&self) -> Vec<(&str, Alg)> {
        self.keys.iter().map(|k| (k.kid.as_str(), k.alg)).collect()
    }

    /// The JWKS document (`{"keys":[...]}`), built once.
    pub fn jwks(&self) -> Bytes {
        self.jwks.clone()
    }

    /// Signs `claims` as a JWT of kind `typ` with the signing key.
    pub fn sign(&self, typ: Typ, claims: &impl Serialize) -> Result<String, SignError> {
        let key = self.keys.first().ok_or(SignError::NoKey)?;
        let payload = serde_json::to_vec(claims)?;
        let header = &key.headers[typ as usize];
        let mut jwt = String::with_capacity(header.len() + payload.len() * 4 / 3 + 96);
        jwt.push_str(header);
        jwt.push('.');
        URL_SAFE_NO_PAD.encode_string(&payload, &mut jwt);
        let signature = match &key.pair {
            Pair::Ec(p) => p.sign(&self.rng, jwt.as_bytes())?,
            Pair::Ed(p) => p.sign(jwt.as_bytes()),
        };
        jwt.push('.');
        URL_SAFE_NO_PAD.encode_string(signature.as_ref(), &mut jwt);
        Ok(jwt)
    }

    /// Whether `token` names one of these keys in its header: a token
    /// latchkey made (valid or not), as opposed to someone else's.
    pub fn holds(&self, token: &str) -> bool {
        !self.keys.is_empty()
            && (self.made_header(token).is_some()
                || jsonwebtoken::decode_header(token)
                    .ok()
                    .and_then(|h| h.kid)
                    .is_some_and(|kid| self.keys.iter().any(|k| k.kid == kid)))
    }

    /// The key and kind whose header `token` carries byte for byte, as
    /// `sign` writes it: what every token latchkey made looks like, found
    /// without decoding base64 or JSON. `None` sends the caller to the
    /// general path (`jsonwebtoken::decode_header`), which judges the same.
    fn made_header(&self, token: &str) -> Option<(&SigningKey, Typ)> {
        let (head, _) = token.split_once('.')?;
        self.keys.iter().find_map(|k| {
            [Typ::Assertion, Typ::Access]
                .into_iter()
                .find(|t| k.headers[*t as usize] == head)
                .map(|t| (k, t))
        })
    }

    /// Checks a token latchkey signed: a known `kid`, that key's algorithm,
    /// the signature, `typ`, `aud`, `iss` and `exp` (a few seconds' leeway).
    pub fn verify<T: DeserializeOwned>(
        &self,
        token: &str,
        typ: Typ,
        audience: &str,
        issuer: &str,
    ) -> Result<T, VerifyError> {
        let key = match self.made_header(token) {
            Some((key, made)) if made == typ => key,
            Some(_) => return Err(VerifyError::WrongType),
            None => {
                let header = jsonwebtoken::decode_header(token)?;
                let key = header
                    .kid
                    .as_deref()
                    .and_then(|kid| self.keys.iter().find(|k| k.kid == kid))
                    .ok_or(VerifyError::UnknownKey)?;
                if header.typ.as_deref() != Some(typ.header()) {
                    return Err(VerifyError::WrongType);
                }
                key
            }
        };
        let mut v = Validation::new(key.alg.jwt());
        v.set_audience(&[audience]);
        v.set_issuer(&[issuer]);
        v.set_required_spec_claims(&["exp", "iat", "aud", "iss", "sub"]);
        v.leeway = LEEWAY_SECS;
        Ok(jsonwebtoken::decode::<T>(token, &key.decoding, &v)?.claims)
    }
}

impl SigningKey {
    fn new(kid: String, alg: Alg, pair: Pair) -> SigningKey {
        let header = |typ: Typ| {
            let json = serde_json::json!({ "alg": alg.name(), "typ": typ.header(), "kid": kid });
            URL_SAFE_NO_PAD.encode(json.to_string())
        };
        let headers = [header(Typ::Assertion), header(Typ::Access)];
        let decoding = match &pair {
            Pair::Ec(p) => {
                let (x, y) = ec_xy(p);
                DecodingKey::from_ec_components(&x, &y)
            }
            Pair::Ed(p) => DecodingKey::from_ed_components(&URL_SAFE_NO_PAD.encode(p.public_key())),
        };
        // Both come from a key aws-lc accepted, so decoding cannot fail;
        // should it, the key verifies nothing rather than panicking.
        let decoding = decoding.unwrap_or_else(|_| DecodingKey::from_secret(&[]));
        SigningKey {
            kid,
            alg,
            pair,
            decoding,
            headers,
        }
    }

    fn jwk(&self) -> serde_json::Value {
        match &self.pair {
            Pair::Ec(p) => {
                let (x, y) = ec_xy(p);
                serde_json::json!({
                    "kty": "EC", "crv": "P-256", "x": x, "y": y,
                    "kid": self.kid, "alg": self.alg.name(), "use": "sig",
                })
            }
            Pair::Ed(p) => serde_json::json!({
                "kty": "OKP", "crv": "Ed25519", "x": URL_SAFE_NO_PAD.encode(p.public_key()),
                "kid": self.kid, "alg": self.alg.name(), "use": "sig",
            }),
        }
    }
}

/// The public point's coordinates, base64url (the key is uncompressed:
/// `04 || x || y`, 32 bytes each).
fn ec_xy(p: &EcdsaKeyPair) -> (String, String) {
    let point = p.public_key().as_ref();
    let coords = point.get(1..).unwrap_or_default();
    let (x, y) = coords.split_at(coords.len() / 2);
    (URL_SAFE_NO_PAD.encode(x), URL_SAFE_NO_PAD.encode(y))
}

fn load_pair(path: &Path) -> Result<(Alg, Pair), String> {
    let der = PrivateKeyDer::from_pem_file(path).map_err(|e| match e {
        rustls_pki_types::pem::Error::Io(io) => format!("cannot be read ({io})"),
        rustls_pki_types::pem::Error::NoItemsFound => "holds no PEM private key".to_owned(),
        other => format!("is not valid PEM ({other})"),
    })?;
    parse_pair(&der)
}

fn parse_pair(der: &PrivateKeyDer<'_>) -> Result<(Alg, Pair), String> {
    let bytes = der.secret_der();
    match der {
        PrivateKeyDer::Pkcs1(_) => Err("holds an RSA key".to_owned()),
        _ => {
            if let Ok(p) =
                EcdsaKeyPair::from_private_key_der(&ECDSA_P256_SHA256_FIXED_SIGNING, bytes)
            {
                return Ok((Alg::Es256, Pair::Ec(p)));
            }
            if let Ok(p) = Ed25519KeyPair::from_pkcs8(bytes) {
                return Ok((Alg::EdDsa, Pair::Ed(p)));
            }
            Err("holds a key that is neither P-256 nor Ed25519".to_owned())
        }
    }
}

/// A fresh private key as PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`).
pub fn generate_pem(alg: Alg) -> Result<String, aws_lc_rs::error::Unspecified> {
    let der = match alg {
        Alg::Es256 => EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)?.to_pkcs8v1()?,
        Alg::EdDsa => Ed25519KeyPair::generate()?.to_pkcs8v1()?,
    };
    let b64 = STANDARD.encode(der.as_ref());
    let mut pem = String::from("-----BEGIN PRIVATE KEY-----\n");
    for line in b64.as_bytes().chunks(64) {
        pem.push_str(&String::from_utf8_lossy(line));
        pem.push('\n');
    }
    pem.push_str("-----END PRIVATE KEY-----\n");
    Ok(pem)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Serialize, serde::Deserialize, PartialEq)]
    struct Claims {
        iss: String,
        aud: String,
        sub: String,
        iat: u64,
        exp: u64,
    }

    fn claims(aud: &str, exp_in: i64) -> Claims {
        let now = jsonwebtoken::get_current_timestamp();
        Claims {
            iss: "https://auth.example.com".into(),
            aud: aud.into(),
            sub: "u1".into(),
            iat: now,
            exp: now.saturating_add_signed(exp_in),
        }
    }

    fn keys(algs: &[(&str, Alg)]) -> Keys {
        let pems: Vec<(String, String)> = algs
            .iter()
            .map(|(kid, alg)| ((*kid).to_owned(), generate_pem(*alg).unwrap_or_default()))
            .collect();
        let refs: Vec<(&str, &str)> = pems.iter().map(|(k, p)| (k.as_str(), p.as_str())).collect();
        Keys::from_pems(&refs).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn signed_tokens_verify_with_jsonwebtoken_for_both_algorithms() {
        for alg in [Alg::Es256, Alg::EdDsa] {
            let k = keys(&[("a", alg)]);
            let c = claims("app.example.com", 60);
            let jwt = k.sign(Typ::Assertion, &c).unwrap_or_default();
            let back: Claims = k
                .verify(
                    &jwt,
                    Typ::Assertion,
                    "app.example.com",
                    "https://auth.example.com",
                )
                .unwrap_or_else(|e| panic!("{alg:?}: {e}"));
            assert_eq!(back, c);
            let header = jsonwebtoken::decode_header(&jwt).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(header.kid.as_deref(), Some("a"));
            assert_eq!(header.alg, alg.jwt());
            assert!(k.holds(&jwt));
        }
    }

    #[test]
    fn refusals() {
        let k = keys(&[("new", Alg::Es256), ("old", Alg::EdDsa)]);
        let iss = "https://auth.example.com";
        let good = k.sign(Typ::Access, &claims(iss, 60)).unwrap_or_default();
        assert!(k.verify::<Claims>(&good, Typ::Access, iss, iss).is_ok());
        // Another kind, another audience, expired, tampered, unknown key.
        assert!(matches!(
            k.verify::<Claims>(&good, Typ::Assertion, iss, iss),
            Err(VerifyError::WrongType)
        ));
        assert!(k
            .verify::<Claims>(&good, Typ::Access, "other", iss)
            .is_err());
        let expired = k.sign(Typ::Access, &claims(iss, -60)).unwrap_or_default();
        assert!(k.verify::<Claims>(&expired, Typ::Access, iss, iss).is_err());
        let mut parts: Vec<String> = good.split('.').map(str::to_owned).collect();
        let mut c = claims(iss, 60);
        c.sub = "admin".into();
        parts[1] = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&c).unwrap_or_default());
        let tampered = parts.join(".");
        assert!(k
            .verify::<Claims>(&tampered, Typ::Access, iss, iss)
            .is_err());
        let stranger = keys(&[("new", Alg::Es256)]);
        let forged = stranger
            .sign(Typ::Access, &claims(iss, 60))
            .unwrap_or_default();
        assert!(k.verify::<Claims>(&forged, Typ::Access, iss, iss).is_err());
        let unknown = keys(&[("zzz", Alg::Es256)]);
        let t = unknown
            .sign(Typ::Access, &claims(iss, 60))
            .unwrap_or_default();
        assert!(!k.holds(&t));
        assert!(matches!(
            k.verify::<Claims>(&t, Typ::Access, iss, iss),
            Err(VerifyError::UnknownKey)
        ));
        assert!(!k.holds("not a jwt"));
    }

    #[test]
    fn jwks_publishes_every_key_in_order() {
        let k = keys(&[("new", Alg::Es256), ("old", Alg::EdDsa)]);
        let v: serde_json::Value = serde_json::from_slice(&k.jwks()).unwrap_or_default();
        let ids: Vec<&str> = v["keys"]
            .as_array()
            .map(|a| a.iter().filter_map(|j| j["kid"].as_str()).collect())
            .unwrap_or_default();
        assert_eq!(ids, ["new", "old"]);
        assert_eq!(v["keys"][0]["crv"], "P-256");
        assert_eq!(v["keys"][1]["kty"], "OKP");
        assert!(
            v.to_string().find("\"d\"").is_none(),
            "private part published"
        );
        assert_eq!(Keys::none().jwks(), Bytes::from_static(b"{\"keys\":[]}"));
    }

    /// The README's Rust example ("Trusting latchkey in your app"), as
    /// written there, against the published JWKS.
    #[test]
    fn the_readme_rust_example_verifies_against_the_jwks() {
        use jsonwebtoken::jwk::{JwkSet, KeyAlgorithm};
        use jsonwebtoken::{decode, decode_header, errors::ErrorKind};

        #[derive(serde::Deserialize)]
        #[allow(dead_code)]
        struct Caller {
            sub: String,
            email: String,
            roles: Vec<String>,
        }

        fn caller(jwks: &JwkSet, token: &str) -> jsonwebtoken::errors::Result<Caller> {
            let kid = decode_header(token)?.kid.ok_or(ErrorKind::InvalidToken)?;
            let jwk = jwks.find(&kid).ok_or(ErrorKind::InvalidToken)?;
            let alg = match jwk.common.key_algorithm {
                Some(KeyAlgorithm::ES256) => Algorithm::ES256,
                Some(KeyAlgorithm::EdDSA) => Algorithm::EdDSA,
                _ => return Err(ErrorKind::InvalidAlgorithm.into()),
            };
            let mut v = Validation::new(alg);
            v.set_audience(&["app.example.com"]);
            v.set_issuer(&["https://auth.example.com"]);
            Ok(decode::<Caller>(token, &DecodingKey::from_jwk(jwk)?, &v)?.claims)
        }

        #[derive(Serialize)]
        struct Full {
            iss: String,
            aud: String,
            sub: String,
            email: String,
            roles: Vec<String>,
            iat: u64,
            exp: u64,
        }
        for alg in [Alg::Es256, Alg::EdDsa] {
            let k = keys(&[("new", alg), ("old", Alg::Es256)]);
            let jwks: JwkSet = serde_json::from_slice(&k.jwks()).unwrap_or_else(|e| panic!("{e}"));
            let c = claims("app.example.com", 60);
            let full = Full {
                iss: c.iss,
                aud: c.aud,
                sub: c.sub,
                email: "a@example.com".into(),
                roles: vec!["admin".into()],
                iat: c.iat,
                exp: c.exp,
            };
            let token = k.sign(Typ::Assertion, &full).unwrap_or_default();
            let who = caller(&jwks, &token).unwrap_or_else(|e| panic!("{alg:?}: {e}"));
            assert_eq!(
                (who.email.as_str(), who.roles),
                ("a@example.com", vec!["admin".to_owned()])
            );
            let other = keys(&[("new", alg)])
                .sign(Typ::Assertion, &full)
                .unwrap_or_default();
            assert!(caller(&jwks, &other).is_err(), "a stranger's key");
        }
    }

    #[test]
    fn key_files_that_are_not_usable_name_the_key() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let garbage = dir.path().join("garbage.pem");
        std::fs::write(&garbage, "hello").unwrap_or_else(|e| panic!("{e}"));
        let entries = [
            KeyConfig {
                kid: "a b".into(),
                file: "x".into(),
            },
            KeyConfig {
                kid: "k".into(),
                file: garbage.display().to_string(),
            },
            KeyConfig {
                kid: "m".into(),
                file: "/nonexistent/k.pem".into(),
            },
        ];
        let Err(problems) = Keys::from_config(&entries) else {
            panic!("accepted bad keys");
        };
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(problems[0].starts_with("assertion.keys[0].kid: \"a b\""));
        assert!(problems[1].contains("assertion.keys[1].file") && problems[1].contains("no PEM"));
        assert!(problems[2].contains("cannot be read"));
    }
}
