//! An opt-in cache of session lookups on one instance
//! (`session.local_cache`, at most one second, off by default).
//!
//! Every authenticated request normally costs one store round trip (read,
//! slide the idle timeout, read the user). With the cache on, a session
//! looked up less than `local_cache` ago is answered from memory. The price
//! is bounded staleness, never more than `local_cache`: a session revoked,
//! a user removed or given other roles on any instance takes effect here
//! within that time instead of on the very next request; a logout on this
//! instance takes effect at once. The idle timeout slides on the next
//! lookup that reaches the store, at most `local_cache` later. Entries are
//! only ever as old as `local_cache`, so memory stays bounded by the number
//! of sessions active in that window (and by `MAX_ENTRIES`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::store::records::{SessionRecord, TokenHash, User};

/// More than this many sessions in one window: start again from empty.
const MAX_ENTRIES: usize = 100_000;

/// What the store answered for a session: its record, its idle end and its
/// stored user (if any).
pub type Lookup = (SessionRecord, u64, Option<User>);

pub struct SessionCache {
    ttl_ms: u64,
    entries: Mutex<HashMap<[u8; 32], Entry>>,
}

struct Entry {
    lookup: Arc<Lookup>,
    /// Unix ms when the store answered.
    fetched: u64,
}

impl SessionCache {
    pub fn new(ttl: Duration) -> SessionCache {
        SessionCache {
            ttl_ms: u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX),
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// A lookup made less than the cache's lifetime ago, whose session has
    /// not ended since.
    pub fn get(&self, hash: &TokenHash, now: u64) -> Option<Arc<Lookup>> {
        let entries = self.entries.lock().ok()?;
        let e = entries.get(&hash.0)?;
        let (record, idle_end, _) = &*e.lookup;
        let fresh = now < e.fetched.saturating_add(self.ttl_ms);
        let live = now < (*idle_end).min(record.expires_at);
        (fresh && live).then(|| e.lookup.clone())
    }

    pub fn put(&self, hash: &TokenHash, lookup: Arc<Lookup>, now: u64) {
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        if entries.len() >= MAX_ENTRIES {
            let ttl = self.ttl_ms;
            entries.retain(|_, e| now < e.fetched.saturating_add(ttl));
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(
            hash.0,
            Entry {
                lookup,
                fetched: now,
            },
        );
    }

    /// Drops a session (logout on this instance).
    pub fn forget(&self, hash: &TokenHash) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.remove(&hash.0);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn lookup(idle_end: u64, expires_at: u64) -> Arc<Lookup> {
        let record = SessionRecord {
            user_id: "u".into(),
            email: "a@example.com".into(),
            created_at: 0,
            expires_at,
            ip: String::new(),
            user_agent: String::new(),
        };
        Arc::new((record, idle_end, None))
    }

    #[test]
    fn entries_live_no_longer_than_the_ttl_or_the_session() {
        let cache = SessionCache::new(Duration::from_secs(1));
        let h = TokenHash([7; 32]);
        cache.put(&h, lookup(10_000, 20_000), 1_000);
        assert!(cache.get(&h, 1_999).is_some());
        assert!(cache.get(&h, 2_000).is_none(), "older than the ttl");
        cache.put(&h, lookup(1_500, 20_000), 1_000);
        assert!(cache.get(&h, 1_600).is_none(), "the session went idle");
        cache.put(&h, lookup(10_000, 1_200), 1_000);
        assert!(cache.get(&h, 1_300).is_none(), "past the absolute end");
        cache.put(&h, lookup(10_000, 20_000), 1_000);
        cache.forget(&h);
        assert!(cache.get(&h, 1_001).is_none(), "forgotten at logout");
    }
}
