//! Who is calling: a bearer token latchkey made (checked by `bearer`), else
//! the session cookie, looked up in the store (one round trip that also
//! slides the idle timeout; a second one reads the user's record when the
//! user is not in `[[users]]`). Either way joined with the user's current
//! record. Users from `[[users]]` win over stored ones; a session or token
//! whose user no longer exists is no identity at all, so removing a user
//! or changing their roles takes effect on the very next request. A browser
//! may send several session cookies (a host-only and a `Domain` one, or one
//! another app under cookie_domain set): the first of them that is a live
//! session is the identity.
//!
//! A bearer token that latchkey did not make (another key id, or not a JWT)
//! is the app's business: it is ignored here and the cookie decides. One
//! that latchkey made but that fails (expired, revoked, tampered) is no
//! identity, and the cookie is not consulted.
//!
//! Reading the credentials off a request is http's (`http::credentials`);
//! this file gets them as values, with the parts it needs (`Identifier`,
//! handed out by `App`).

use std::collections::HashMap;
use std::sync::Arc;

use crate::identity::assertion::Signer;
use crate::identity::bearer_cache::BearerCache;
use crate::identity::cache::{CachedSession, Lookup, SessionCache, Slid};
use crate::identity::secret::Secret;
use crate::identity::session::{Identity, SessionRef, SessionSettings};
use crate::store::records::{TokenHash, User};
use crate::store::{Backend, Store, StoreResult};

/// What a request carries to say who it is (read by `http::credentials`).
pub struct Credentials<'h> {
    /// The token of `Authorization: Bearer`, whoever made it.
    pub bearer: Option<&'h str>,
    /// The session cookies' values that have a token's shape, in the order sent.
    pub sessions: Vec<Secret>,
}

/// What looking a caller up needs, borrowed from `App`.
pub struct Identifier<'a> {
    pub store: &'a Backend,
    /// `session.cache`; `None` when off (or not on Redis).
    pub cache: Option<&'a SessionCache>,
    pub session: &'a SessionSettings,
    /// Users from `[[users]]`, by normalized email.
    pub users: &'a HashMap<String, User>,
    pub signer: Signer<'a>,
    /// Bearer tokens verified recently (this `App`'s: a reload starts afresh).
    pub bearer_cache: &'a BearerCache,
}

impl Identifier<'_> {
    /// `Ok(None)`: no credentials, or none that holds. `Err`: the store
    /// could not answer (never treated as signed out).
    pub async fn identify(
        &self,
        credentials: &Credentials<'_>,
        now: u64,
    ) -> StoreResult<Option<Identity>> {
        if let Some(bearer) = credentials.bearer.filter(|t| self.signer.keys.holds(t)) {
            return self.identify_bearer(bearer, now).await;
        }
        // Of several session cookies, the first that is a live session wins.
        for token in &credentials.sessions {
            if let Some(identity) = self.identify_session(token.hash(), now).await? {
                return Ok(Some(identity));
            }
        }
        Ok(None)
    }

    /// The user behind a session or token's email: configured, else the
    /// stored record that came with the lookup.
    pub(super) fn current_user(&self, email: &str, stored: Option<&User>) -> Option<User> {
        match self.users.get(email) {
            Some(configured) => Some(configured.clone()),
            None => stored.cloned(),
        }
    }

    /// The live session under `hash`, joined with its user: from the
    /// session cache when it holds both (its idle end slid over the cache's
    /// channel when due), else from the store (and then kept in the cache,
    /// if nothing changed meanwhile).
    async fn identify_session(&self, hash: TokenHash, now: u64) -> StoreResult<Option<Identity>> {
        let idle = self.session.idle_timeout;
        let cached = match self.cache {
            Some(cache) => match cache.session(&hash, now, idle) {
                Lookup::Hit(s) => Some(s),
                Lookup::Due(due) => match due.slide(now, idle).await {
                    Slid::Live(slid) => Some(slid),
                    Slid::Gone => return Ok(None),
                    Slid::AskStore => None,
                },
                Lookup::Miss => None,
            },
            None => None,
        };
        let session = match cached {
            Some(s) => s,
            None => {
                let mark = self.cache.map(|c| c.mark_session(&hash));
                let Some((record, idle_end)) = self.store.touch_session(&hash, idle, now).await?
                else {
                    return Ok(None);
                };
                let found = Arc::new(CachedSession::new(record, idle_end));
                if let (Some(cache), Some(mark)) = (self.cache, mark) {
                    cache.put_session(mark, &hash, found.clone());
                }
                found
            }
        };
        let record = &*session;
        // A second round trip only for users kept in the store.
        let stored_user = match self.users.contains_key(&*record.email) {
            true => None,
            false => Some(self.stored_user(&record.user_id).await?),
        };
        let Some(mut user) = self.current_user(
            &record.email,
            stored_user.as_deref().and_then(Option::as_ref),
        ) else {
            return Ok(None);
        };
        // The provider's role_map roles of this sign-in, on top of the user's.
        for role in &record.extra_roles {
            if !user.roles.iter().any(|r| **r == **role) {
                user.roles.push(role.to_string());
            }
        }
        Ok(Some(Identity {
            user,
            session: Some(SessionRef {
                hash,
                created_at: record.created_at,
                expires_at: record.expires_at,
                idle_expires_at: record.idle_end,
                amr: record.amr.to_string(),
            }),
            token: None,
        }))
    }

    /// A user kept in the store, from the cache when it holds it.
    async fn stored_user(&self, id: &str) -> StoreResult<Arc<Option<User>>> {
        if let Some(hit) = self.cache.and_then(|c| c.user(id)) {
            return Ok(hit);
        }
        let mark = self.cache.map(|c| c.mark_user(id));
        let user = Arc::new(self.store.get_user(id).await?);
        if let (Some(cache), Some(mark)) = (self.cache, mark) {
            cache.put_user(mark, id, user.clone());
        }
        Ok(user)
    }
}
