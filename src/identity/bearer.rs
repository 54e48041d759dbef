//! Bearer tokens (`Authorization: Bearer`, `typ: at+jwt`, `aud` =
//! public_url's origin): for API clients. Each has a record in the store
//! under its `jti`; a request is let in only while that record lives and
//! its user exists, with the user's current roles (the token carries
//! none). This file makes them (`Signer::issue`, used by signin's
//! `POST /.latchkey/token` for short ones and `latchkey tokens issue` for
//! long ones) and checks them (`Identifier::identify_bearer`). Reading the
//! header is http's (`http::credentials`); the exchange endpoint and the
//! `WWW-Authenticate` challenge are signin's (`signin::token`).

use std::sync::Arc;
use std::time::Duration;

use rand::RngCore;
use serde::{Deserialize, Serialize};

use crate::identity::assertion::Signer;
use crate::identity::bearer_cache::{BearerCache, Checked};
use crate::identity::identify::Identifier;
use crate::identity::keys::{SignError, Typ};
use crate::identity::session::Identity;
use crate::store::records::{TokenHash, TokenRecord, User};
use crate::store::{Store, StoreError, StoreResult};

#[derive(Serialize, Deserialize)]
struct AccessClaims {
    iss: String,
    aud: String,
    sub: String,
    jti: String,
    iat: u64,
    exp: u64,
}

/// A bearer token could not be issued.
#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    #[error("session store: {0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Sign(#[from] SignError),
}

/// A jti: 128 random bits, hex.
fn new_jti() -> String {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn is_jti(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl Signer<'_> {
    /// Makes a bearer token for `user`, valid for `ttl`, and stores its
    /// record (it works only while the record lives). Returns the token and
    /// the record.
    pub async fn issue(
        &self,
        store: &impl Store,
        user: &User,
        name: &str,
        session: Option<&TokenHash>,
        ttl: Duration,
        now_ms: u64,
    ) -> Result<(String, TokenRecord), IssueError> {
        if self.keys.is_empty() {
            return Err(SignError::NoKey.into());
        }
        let iat = now_ms / 1000;
        let exp = iat + ttl.as_secs().max(1);
        let record = TokenRecord {
            jti: new_jti(),
            user_id: user.id.clone(),
            email: user.email.clone(),
            name: name.to_owned(),
            created_at: now_ms,
            expires_at: exp * 1000,
            session: session.map(TokenHash::to_hex),
        };
        let claims = AccessClaims {
            iss: self.issuer.to_owned(),
            aud: self.issuer.to_owned(),
            sub: user.id.clone(),
            jti: record.jti.clone(),
            iat,
            exp,
        };
        let jwt = self.keys.sign(Typ::Access, &claims)?;
        store.put_token(&record, now_ms).await?;
        Ok((jwt, record))
    }
}

impl Identifier<'_> {
    /// Who a bearer token latchkey made speaks for: its signature, kind,
    /// audience and expiry check out, its record is in the store, and its
    /// user still exists (configured users win, as for sessions). `Ok(None)`
    /// for any token that does not; the reason goes to the debug log.
    pub(crate) async fn identify_bearer(
        &self,
        token: &str,
        now: u64,
    ) -> StoreResult<Option<Identity>> {
        let Some(claims) = self.checked(token, now) else {
            return Ok(None);
        };
        let Some((record, stored_user)) = self.store.get_token(&claims.jti).await? else {
            tracing::debug!(jti = %claims.jti, "bearer token refused: revoked or expired");
            return Ok(None);
        };
        if record.user_id != claims.sub {
            tracing::warn!(jti = %claims.jti, "bearer token refused: its record names another user");
            return Ok(None);
        }
        let Some(user) = self.current_user(&record.email, stored_user.as_ref()) else {
            tracing::debug!(jti = %claims.jti, "bearer token refused: its user was removed");
            return Ok(None);
        };
        if let Some(hex) = &record.session {
            // Exchanged from a session: alive only with it, and its use
            // slides that session's idle end like a cookie request would.
            let touched = match TokenHash::from_hex(hex) {
                Some(hash) => {
                    self.store
                        .touch_session(&hash, self.session.idle_timeout, now)
                        .await?
                }
                None => None,
            };
            if touched.is_none_or(|(session, _)| session.user_id != record.user_id) {
                tracing::debug!(jti = %claims.jti, "bearer token refused: its session ended");
                return Ok(None);
            }
        }
        Ok(Some(Identity {
            user,
            session: None,
            token: Some(record),
        }))
    }

    /// What the token's signature proves (its kind, audience, issuer and
    /// expiry checked too, and a well-formed jti): from `bearer_cache` when
    /// it was verified recently, else verified now (and kept). `None` for a
    /// token that does not hold; the reason goes to the debug log.
    fn checked(&self, token: &str, now: u64) -> Option<Arc<Checked>> {
        let key = BearerCache::key(token);
        if let Some(hit) = self.bearer_cache.get(&key, now) {
            return Some(hit);
        }
        let iss = self.signer.issuer;
        let claims: AccessClaims = match self.signer.keys.verify(token, Typ::Access, iss, iss) {
            Ok(c) => c,
            Err(e) => {
                tracing::debug!(error = %e, "bearer token refused");
                return None;
            }
        };
        if !is_jti(&claims.jti) {
            tracing::debug!("bearer token refused: malformed jti");
            return None;
        }
        let checked = Arc::new(Checked {
            sub: claims.sub,
            jti: claims.jti,
            exp: claims.exp,
        });
        self.bearer_cache.put(key, checked.clone());
        Some(checked)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jtis_are_hex_and_unique() {
        let (a, b) = (new_jti(), new_jti());
        assert_eq!(a.len(), 32);
        assert!(is_jti(&a));
        assert_ne!(a, b);
        assert!(!is_jti("a:b"));
        assert!(!is_jti(""));
    }
}
