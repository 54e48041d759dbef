//! The records the store keeps: users, sessions, links, sign-in attempts
//! and bearer-token records, and `TokenHash`, the SHA-256 of a secret under
//! which each is kept. Plain data (serde), no behaviour beyond naming: the
//! secrets themselves live in `identity::secret` and never reach the store.

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// SHA-256 of a secret: what the store keys and compares on.
#[derive(Clone, Copy, Serialize, Deserialize)]
pub struct TokenHash(pub [u8; 32]);

impl TokenHash {
    /// Lower-case hex, used in store keys and as the public id of a session.
    pub fn to_hex(&self) -> String {
        let mut s = String::with_capacity(64);
        for b in self.0 {
            s.push(char::from(HEX[(b >> 4) as usize]));
            s.push(char::from(HEX[(b & 15) as usize]));
        }
        s
    }

    pub fn from_hex(hex: &str) -> Option<TokenHash> {
        if hex.len() != 64 {
            return None;
        }
        let mut out = [0u8; 32];
        for (i, pair) in hex.as_bytes().chunks(2).enumerate() {
            let hi = (pair[0] as char).to_digit(16)?;
            let lo = (pair[1] as char).to_digit(16)?;
            out[i] = (hi * 16 + lo) as u8;
        }
        Some(TokenHash(out))
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

impl PartialEq for TokenHash {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenHash({}..)", &self.to_hex()[..8])
    }
}

impl Eq for TokenHash {}

/// A person who may sign in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// Stable: derived from the normalized email (see `user_id`).
    pub id: String,
    pub email: String,
    pub roles: Vec<String>,
    /// Unix milliseconds.
    pub created_at: u64,
}

/// Lower-cases and trims an address; `None` if it is not plausibly one.
pub fn normalize_email(raw: &str) -> Option<String> {
    let email = raw.trim().to_ascii_lowercase();
    let (local, domain) = email.rsplit_once('@')?;
    let ok = !local.is_empty()
        && local.len() <= 64
        && email.len() <= 254
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && !email.contains(['<', '>', ',', ';', '"', '\\'])
        && domain
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
    ok.then_some(email)
}

/// The stable id of the user with this (normalized) email. Derived, so every
/// instance agrees without coordination and re-adding an address keeps its id.
pub fn user_id(email: &str) -> String {
    let digest = Sha256::digest(format!("latchkey-user:{email}").as_bytes());
    TokenHash(digest.into()).to_hex()[..24].to_owned()
}

/// A signed-in browser, as stored under the hash of its token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRecord {
    pub user_id: String,
    pub email: String,
    /// Unix milliseconds.
    pub created_at: u64,
    /// Unix milliseconds: the absolute end, never extended.
    pub expires_at: u64,
    pub ip: String,
    pub user_agent: String,
    /// How the session was made: `email` (the link or its code) or
    /// `oidc:ID` (a provider). Older records, from before providers, load
    /// as `email`.
    #[serde(default = "email_amr")]
    pub amr: String,
    /// Roles the provider's `role_map` gave at this sign-in, on top of the
    /// user's own.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_roles: Vec<String>,
}

fn email_amr() -> String {
    "email".into()
}

/// A passkey (WebAuthn credential) a user registered, kept under (user id,
/// credential id). `credential` is the WebAuthn library's own record of it
/// (public key, sign count, transports and flags, as JSON); the plain
/// fields beside it are what pages and the CLI show.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasskeyRecord {
    pub user_id: String,
    /// The credential id, base64url without padding.
    pub id: String,
    /// The person's name for it ("Laptop"), at most 64 characters.
    pub name: String,
    /// Unix milliseconds.
    pub created_at: u64,
    /// Unix milliseconds of the last sign-in with it, 0 for never.
    pub last_used: u64,
    /// The signature counter last seen (0: the authenticator keeps none).
    pub sign_count: u32,
    /// How the browser said it can reach the authenticator (usb, internal...).
    pub transports: Vec<String>,
    /// The library's serialized credential, with the public key.
    pub credential: String,
}

/// A sign-in with a provider in flight, stored under the hash of a random
/// value in a short-lived cookie and used up by one atomic take.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum OAuthRecord {
    /// Between `/start` and `/callback` (on public_url's host): what the
    /// callback checks the provider's answer against.
    Pending {
        provider: String,
        state: String,
        nonce: String,
        code_verifier: String,
        /// Already validated return address ("" for none).
        return_to: String,
        /// When the sign-in started on an app host: the hash (hex) of the
        /// cookie that browser got there; "" when it started here.
        bind: String,
    },
    /// Signed in at the callback, to be carried to the app host where the
    /// sign-in started (its cookie, `bind`, must come along).
    Handoff {
        provider: String,
        email: String,
        /// The provider's `role_map` roles, on top of the user's.
        roles: Vec<String>,
        return_to: String,
        bind: String,
    },
    /// A passkey ceremony in flight (`signin::ceremony`): the challenge
    /// the browser was handed, used up by the one answer to it, in the
    /// browser holding the cookie, within five minutes.
    Passkey {
        /// `register`, `sign_in` or `step_up`.
        purpose: String,
        /// The 32 random bytes, base64url without padding.
        challenge: String,
        /// Whose ceremony it is ("" for a sign-in, where the passkey says).
        user_id: String,
        /// Unix milliseconds.
        created_at: u64,
        /// Already validated return address ("" for none).
        return_to: String,
        /// A registration's name for the new passkey.
        name: String,
    },
}

impl fmt::Debug for OAuthRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OAuthRecord(..)")
    }
}

/// A session as listed for admins: its public id is the token hash in hex.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    pub id: String,
    pub record: SessionRecord,
    /// Unix milliseconds when it ends if left idle (<= record.expires_at).
    pub idle_expires_at: u64,
}

/// A requested magic link, stored under the hash of the link token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkRecord {
    pub email: String,
    /// Already validated return address ("" for none).
    pub return_to: String,
    /// Hash of the attempt cookie of the browser that asked (hex).
    pub attempt: String,
    /// Unix milliseconds.
    pub created_at: u64,
    pub expires_at: u64,
    pub ip: String,
    pub user_agent: String,
}

/// The browser-side half of a sign-in attempt, stored under the hash of the
/// attempt cookie: which link it asked for and the hash of the typed code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptRecord {
    /// Hash of the link token (hex).
    pub link: String,
    /// Hash of the one-time code (hex).
    pub code: String,
    pub failures: u32,
}

/// A bearer token, as stored under its `jti` (the token's public id; the
/// signed token itself is never stored). A token works only while its
/// record lives, so revoking it takes effect on the very next request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecord {
    pub jti: String,
    pub user_id: String,
    pub email: String,
    /// What it is for: `--name` of `latchkey tokens issue`, or "session"
    /// for one exchanged at `POST /.latchkey/token`.
    pub name: String,
    /// Unix milliseconds.
    pub created_at: u64,
    /// Unix milliseconds: the token's `exp`; the record expires with it.
    pub expires_at: u64,
    /// For a token exchanged at `POST /.latchkey/token`: the hash (hex) of
    /// the session it came from. Such a token works only while that session
    /// lives (a logout or revocation ends both), and its use counts as the
    /// session's activity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::secret::Secret;

    #[test]
    fn hashes_round_trip_through_hex() {
        let h = Secret::generate(&mut rand::rng()).hash();
        assert_eq!(TokenHash::from_hex(&h.to_hex()), Some(h));
        assert_eq!(TokenHash::from_hex("zz"), None);
    }

    #[test]
    fn a_session_stored_before_providers_loads_as_made_by_email() {
        let old = r#"{"user_id":"u","email":"a@x.com","created_at":1,"expires_at":2,"ip":"","user_agent":""}"#;
        let s: SessionRecord = serde_json::from_str(old).unwrap();
        assert_eq!(s.amr, "email");
        assert!(s.extra_roles.is_empty());
        let pending = OAuthRecord::Handoff {
            provider: "corp".into(),
            email: "a@x.com".into(),
            roles: vec![],
            return_to: "/".into(),
            bind: "secret-ish".into(),
        };
        assert_eq!(format!("{pending:?}"), "OAuthRecord(..)");
    }

    #[test]
    fn emails_are_normalized_and_ids_stable() {
        assert_eq!(
            normalize_email(" Alice@Example.COM "),
            Some("alice@example.com".into())
        );
        for bad in [
            "",
            "alice",
            "@x.com",
            "a@b",
            "a b@x.com",
            "a@x.com>",
            "a@.x.com",
        ] {
            assert_eq!(normalize_email(bad), None, "{bad}");
        }
        assert_eq!(user_id("alice@example.com"), user_id("alice@example.com"));
        assert_ne!(user_id("alice@example.com"), user_id("bob@example.com"));
    }
}
