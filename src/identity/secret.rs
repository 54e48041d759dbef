//! Secrets a client holds (cookie value, link token, code): 256 random bits
//! or a short typed code. A `Secret` has no `Display`, its `Debug` hides the
//! value, and comparisons are constant time. The store only ever sees its
//! `TokenHash` (SHA-256). Generating takes the random source as an argument
//! so tests can drive it.

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::{Rng, RngCore};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::store::records::TokenHash;

/// A secret a client holds: 256 random bits, base64url without padding.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    /// 256 fresh random bits.
    pub fn generate(rng: &mut impl RngCore) -> Secret {
        let mut bytes = [0u8; 32];
        rng.fill_bytes(&mut bytes);
        Secret(URL_SAFE_NO_PAD.encode(bytes))
    }

    /// A short one-time code a person can type: `digits` decimal digits.
    pub fn generate_code(rng: &mut impl RngCore, digits: u32) -> Secret {
        let code: String = (0..digits)
            .map(|_| char::from(b'0' + rng.random_range(0..10u8)))
            .collect();
        Secret(code)
    }

    /// Accepts a value from a client if it has the shape of a token
    /// (43 base64url characters); anything else is no token at all.
    pub fn parse(value: &str) -> Option<Secret> {
        let ok = value.len() == 43
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        ok.then(|| Secret(value.to_owned()))
    }

    /// Accepts a typed code: digits only, spaces and dashes ignored.
    pub fn parse_code(value: &str, digits: u32) -> Option<Secret> {
        let code: String = value
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '-')
            .collect();
        let ok = code.len() == digits as usize && code.bytes().all(|b| b.is_ascii_digit());
        ok.then_some(Secret(code))
    }

    /// The value itself, for the one place that must send it (a cookie, a link).
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn hash(&self) -> TokenHash {
        TokenHash(Sha256::digest(self.0.as_bytes()).into())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl PartialEq for Secret {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_bytes().ct_eq(other.0.as_bytes()).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_256_bits_and_parse_back() {
        let mut rng = rand::rng();
        let s = Secret::generate(&mut rng);
        assert_eq!(s.expose().len(), 43);
        assert!(Secret::parse(s.expose()).is_some_and(|p| p == s));
        assert!(Secret::parse("short").is_none());
        assert!(Secret::parse(&"a".repeat(42).replace('a', "+")).is_none());
        assert_eq!(format!("{s:?}"), "Secret(..)");
    }

    #[test]
    fn codes_ignore_spaces_and_dashes() {
        let c = Secret::parse_code(" 123-456 ", 6);
        assert_eq!(c.map(|c| c.expose().to_owned()), Some("123456".into()));
        assert!(Secret::parse_code("12345a", 6).is_none());
        let g = Secret::generate_code(&mut rand::rng(), 6);
        assert!(Secret::parse_code(g.expose(), 6).is_some());
    }
}
