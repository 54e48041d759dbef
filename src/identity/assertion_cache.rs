//! Identity assertions made once and reused for a short while: signing one
//! (ES256 or EdDSA) is most of an allowed request's own CPU, and the same
//! caller asks for the same app many times a second.
//!
//! An assertion is reused only for exactly the claims it would be made of
//! again: the key is the app's host (`aud`) and every identity claim it
//! carries (user id, email, roles, `amr`); only `iat` and `exp` differ. A
//! role change, a new email or another way of signing in therefore never
//! gets an old assertion: it misses, and a fresh one is signed. The
//! assertion names the person, not the session or token (it carries no
//! session id), so a person's sessions share one per app: 100,000 sessions
//! of a few people need a few entries, not 100,000. Revocations need
//! nothing here: a refused session never reaches the point where an
//! assertion is made.
//!
//! It is reused while it is younger than a sixth of `assertion.ttl` (10 s of
//! the default 60 s; with a ttl under 6 s, only within the second of its
//! `iat`, when a fresh one would carry the same claims): an app always gets
//! one with at least five sixths of its life left. The cache is bounded
//! ([`ENTRIES`]) and belongs to one `App`: a reload (new keys, new ttl)
//! starts an empty one. It keeps each as the header value it is sent as
//! (checked once), so a reuse costs a reference count, not a copy.

use std::time::Duration;

use http::HeaderValue;
use quick_cache::sync::Cache;

use crate::identity::assertion::Signer;
use crate::identity::session::Identity;

/// At most this many assertions are kept (each a few hundred bytes).
pub const ENTRIES: usize = 4096;

/// Recently signed assertions (see the module doc).
pub struct AssertionCache {
    cache: Cache<Vec<u8>, (HeaderValue, u64)>,
}

impl Default for AssertionCache {
    fn default() -> Self {
        AssertionCache {
            cache: Cache::new(ENTRIES),
        }
    }
}

impl AssertionCache {
    /// The assertion for `identity` calling the app at `host`: a reused one
    /// when young enough, else one `signer` signs now (and keeps). `None`
    /// without signing keys, as [`Signer::assertion`].
    pub fn get(
        &self,
        signer: Signer<'_>,
        identity: &Identity,
        host: &str,
        ttl: Duration,
        now_ms: u64,
    ) -> Option<HeaderValue> {
        if signer.keys.is_empty() {
            return None;
        }
        let key = key(identity, host);
        let now_s = now_ms / 1000;
        let reuse_s = (ttl.as_secs() / 6).max(1);
        if let Some((jwt, iat)) = self.cache.get(&key) {
            if now_s >= iat && now_s - iat < reuse_s {
                return Some(jwt);
            }
        }
        let jwt = signer.assertion(identity, host, ttl, now_ms)?;
        // base64url and dots: always a valid header value.
        let jwt = HeaderValue::from_maybe_shared(bytes::Bytes::from(jwt.into_bytes())).ok()?;
        self.cache.insert(key, (jwt.clone(), now_s));
        Some(jwt)
    }
}

/// Every claim source, each field length-prefixed (no two identities can
/// spell the same key).
fn key(identity: &Identity, host: &str) -> Vec<u8> {
    let user = &identity.user;
    let head: [&[u8]; 4] = [
        host.as_bytes(),
        user.id.as_bytes(),
        user.email.as_bytes(),
        identity.amr().as_bytes(),
    ];
    let fields = || {
        head.into_iter()
            .chain(user.roles.iter().map(|r| r.as_bytes()))
    };
    let mut key = Vec::with_capacity(fields().map(|f| f.len() + 4).sum());
    for f in fields() {
        key.extend_from_slice(&u32::try_from(f.len()).unwrap_or(u32::MAX).to_le_bytes());
        key.extend_from_slice(f);
    }
    key
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::identity::keys::{generate_pem, Alg, Keys};
    use crate::identity::session::SessionRef;
    use crate::store::records::{TokenHash, User};

    fn identity(roles: &[&str], hash: u8, amr: &str) -> Identity {
        Identity {
            user: User {
                id: "u1".into(),
                email: "a@example.com".into(),
                roles: roles.iter().map(|r| (*r).to_owned()).collect(),
                created_at: 0,
            },
            session: Some(SessionRef {
                hash: TokenHash([hash; 32]),
                created_at: 0,
                expires_at: u64::MAX,
                idle_expires_at: u64::MAX,
                amr: amr.into(),
            }),
            token: None,
        }
    }

    /// The same stored value handed out again (not one signed anew).
    fn same(a: &HeaderValue, b: &HeaderValue) -> bool {
        a.as_bytes().as_ptr() == b.as_bytes().as_ptr()
    }

    #[test]
    fn reused_only_for_the_same_claims_and_while_young() {
        let pem = generate_pem(Alg::EdDsa).unwrap();
        let keys = Keys::from_pems(&[("k", &pem)]).unwrap();
        let signer = Signer {
            keys: &keys,
            issuer: "https://auth.example.com",
        };
        let c = AssertionCache::default();
        let ttl = Duration::from_secs(60);
        let t0 = 1_000_000_000;
        let a = c
            .get(signer, &identity(&["admin"], 1, "email"), "app", ttl, t0)
            .unwrap();
        let again = c.get(
            signer,
            &identity(&["admin"], 1, "email"),
            "app",
            ttl,
            t0 + 9_000,
        );
        assert!(same(&a, &again.unwrap()), "reused within ttl/6");
        // Another session of the same person: the same claims, one assertion.
        let other_session = c.get(signer, &identity(&["admin"], 2, "email"), "app", ttl, t0);
        assert!(same(&a, &other_session.unwrap()), "shared by sessions");
        for (other, what) in [
            (
                c.get(signer, &identity(&["member"], 1, "email"), "app", ttl, t0),
                "roles",
            ),
            (
                c.get(signer, &identity(&["admin"], 1, "passkey"), "app", ttl, t0),
                "amr",
            ),
            (
                c.get(signer, &identity(&["admin"], 1, "email"), "app2", ttl, t0),
                "host",
            ),
            (
                c.get(
                    signer,
                    &identity(&["admin"], 1, "email"),
                    "app",
                    ttl,
                    t0 + 10_000,
                ),
                "age",
            ),
        ] {
            assert!(!same(&a, &other.unwrap()), "{what} changed: signed anew");
        }
        // A split role list is not the same key as a joined one.
        assert_ne!(
            key(&identity(&["a", "b"], 1, "email"), "h"),
            key(&identity(&["ab"], 1, "email"), "h")
        );
    }
}
