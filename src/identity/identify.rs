//! Who is calling: a bearer token latchkey made (`Authorization: Bearer`,
//! checked by `tokens`), else the session cookie, looked up in the store
//! (one round trip that also slides the idle timeout; a second one reads
//! the user's record when the user is not in `[[users]]`). Either way joined
//! with the user's current record. Users from `[[users]]` win over stored
//! ones; a session or token whose user no longer exists is no identity at
//! all, so removing a user or changing their roles takes effect on the very
//! next request. A browser may send several session cookies (a host-only
//! and a `Domain` one, or one another app under cookie_domain set): the
//! first of them (at most `cookies::SAME_NAME_AT_MOST`) that is a live
//! session is the identity.
//!
//! A bearer token that latchkey did not make (another key id, or not a JWT)
//! is the app's business: it is ignored here and the cookie decides. One
//! that latchkey made but that fails (expired, revoked, tampered) is no
//! identity, and the cookie is not consulted.

use std::sync::Arc;

use http::HeaderMap;

use crate::app::App;
use crate::http::cookies;
use crate::identity::session::{Identity, SessionRef};
use crate::identity::tokens::bearer_token;
use crate::store::records::TokenHash;
use crate::store::{Store, StoreResult};

impl App {
    /// `Ok(None)`: no credentials, or none that holds. `Err`: the store
    /// could not answer (never treated as signed out).
    pub async fn identify(&self, headers: &HeaderMap, now: u64) -> StoreResult<Option<Identity>> {
        let s = &self.settings;
        if let Some(bearer) = bearer_token(headers).filter(|t| s.keys.holds(t)) {
            return self.identify_bearer(bearer, now).await;
        }
        // Of several session cookies (see `cookies::secrets`), the first
        // that is a live session wins.
        for token in cookies::secrets(headers, &s.session.cookie_name) {
            if let Some(identity) = self.identify_session(token.hash(), now).await? {
                return Ok(Some(identity));
            }
        }
        Ok(None)
    }

    /// The live session under `hash`, joined with its user.
    async fn identify_session(&self, hash: TokenHash, now: u64) -> StoreResult<Option<Identity>> {
        let s = &self.settings;
        let cached = self.session_cache.as_ref().and_then(|c| c.get(&hash, now));
        let lookup = match cached {
            Some(hit) => hit,
            None => {
                let Some((record, idle_end)) = self
                    .store
                    .touch_session(&hash, s.session.idle_timeout, now)
                    .await?
                else {
                    return Ok(None);
                };
                // A second round trip only for users kept in the store.
                let stored_user = match s.users.contains_key(&record.email) {
                    true => None,
                    false => self.store.get_user(&record.user_id).await?,
                };
                let found = Arc::new((record, idle_end, stored_user));
                if let Some(cache) = &self.session_cache {
                    cache.put(&hash, found.clone(), now);
                }
                found
            }
        };
        let (record, idle_end, stored_user) = &*lookup;
        let idle_end = *idle_end;
        let user = match s.users.get(&record.email) {
            Some(configured) => configured.clone(),
            None => match stored_user {
                Some(u) => u.clone(),
                None => return Ok(None),
            },
        };
        Ok(Some(Identity {
            user,
            session: Some(SessionRef {
                hash,
                expires_at: record.expires_at,
                idle_expires_at: idle_end,
            }),
            token: None,
        }))
    }
}
