//! Who is calling: the session cookie, looked up in the store (one round
//! trip that also slides the idle timeout), joined with the user's current
//! record. Users from `[[users]]` win over stored ones; a session whose user
//! no longer exists is no identity at all, so removing a user or changing
//! their roles takes effect on the very next request.

use http::HeaderMap;

use crate::app::App;
use crate::request::cookie;
use crate::session::{Identity, Secret, SessionRef};
use crate::store::{Store, StoreResult};

impl App {
    /// `Ok(None)`: no cookie, or no live session behind it. `Err`: the store
    /// could not answer (never treated as signed out).
    pub async fn identify(&self, headers: &HeaderMap, now: u64) -> StoreResult<Option<Identity>> {
        let s = &self.settings;
        let Some(token) = cookie(headers, &s.session.cookie_name).and_then(Secret::parse) else {
            return Ok(None);
        };
        let hash = token.hash();
        let Some((record, idle_end, stored_user)) = self
            .store
            .touch_session(&hash, s.session.idle_timeout, now)
            .await?
        else {
            return Ok(None);
        };
        let user = match s.users.get(&record.email) {
            Some(configured) => configured.clone(),
            None => match stored_user {
                Some(u) => u,
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
        }))
    }
}
