//! Bearer tokens whose signature was checked recently: verifying one
//! (ES256 or EdDSA, plus base64 and JSON) is nine tenths of a bearer
//! request's own CPU, and an API client sends the same token many times a
//! second.
//!
//! What is kept is only what `Keys::verify` proved of a token: its `sub`,
//! `jti` and `exp`, under the SHA-256 of the whole token (a token that
//! differs by one byte is another key, and is verified afresh). Nothing
//! else is skipped: every request still reads the token's record from the
//! store, so a revoked token (`tokens revoke`, a removed user, a logout of
//! the session it was exchanged from) is refused on the very next request,
//! cached or not. An entry is used only before the token's `exp` (never
//! within the verifier's leeway after it), and the cache belongs to one
//! `App`: a reload that rotates a key away starts an empty one, so a token
//! signed by a key no longer held is verified again, and refused. Bounded
//! ([`ENTRIES`]).

use std::sync::Arc;

use quick_cache::sync::Cache;
use sha2::{Digest, Sha256};

/// At most this many checked tokens are kept (each about 150 bytes).
pub const ENTRIES: usize = 4096;

/// What a valid signature proved of a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    pub sub: String,
    pub jti: String,
    /// Unix seconds.
    pub exp: u64,
}

/// Recently verified bearer tokens (see the module doc).
pub struct BearerCache {
    cache: Cache<[u8; 32], Arc<Checked>>,
}

impl Default for BearerCache {
    fn default() -> Self {
        BearerCache {
            cache: Cache::new(ENTRIES),
        }
    }
}

impl BearerCache {
    /// The key `token` is kept under.
    pub fn key(token: &str) -> [u8; 32] {
        Sha256::digest(token.as_bytes()).into()
    }

    /// What was proved of the token under `key`, while it has not expired.
    pub fn get(&self, key: &[u8; 32], now_ms: u64) -> Option<Arc<Checked>> {
        self.cache
            .get(key)
            .filter(|c| now_ms < c.exp.saturating_mul(1000))
    }

    /// Keeps what `Keys::verify` just proved.
    pub fn put(&self, key: [u8; 32], checked: Arc<Checked>) {
        self.cache.insert(key, checked);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn entries_end_at_the_tokens_exp_and_keys_are_the_whole_token() {
        let c = BearerCache::default();
        let k = BearerCache::key("a.b.c");
        let checked = Checked {
            sub: "u".into(),
            jti: "j".into(),
            exp: 2_000,
        };
        c.put(k, Arc::new(checked.clone()));
        assert_eq!(c.get(&k, 1_999_999).as_deref(), Some(&checked));
        assert!(c.get(&k, 2_000_000).is_none(), "ends at exp");
        assert!(c.get(&BearerCache::key("a.b.d"), 0).is_none());
    }
}
