//! The session cache (`session.cache`, on by default with Redis): each
//! instance keeps the sessions it recently looked up, and the stored user
//! records they need, in a bounded in-memory cache (`quick_cache`, at most
//! `session.cache_entries` of each), kept coherent by Redis's invalidation
//! channel (`store::redis::tracking`, which calls this cache's
//! [`CacheSink`] methods).
//!
//! What it guarantees:
//! - A change Redis makes to a session or user key (logout, revocation,
//!   user removed or given new roles, on any instance or from the CLI) is
//!   forgotten here as soon as Redis's push message arrives: on loopback or
//!   a LAN, well under 10 ms after the change returned to whoever made it.
//! - While the channel is down (not yet up, dropped, reconnecting) nothing
//!   is answered from memory and nothing is stored; when it comes up again
//!   everything is forgotten first. A lookup that started before an
//!   invalidation or a change of the channel's state is not stored (its
//!   answer may predate the change): every insert carries the [`Mark`]
//!   taken before its store round trip, and is undone if its key (or the
//!   whole cache) moved on. Keys move in [`SLOTS`] epochs, not one: with
//!   one, every slide another instance made undid every insert in flight
//!   here.
//! - An entry is never served past the session's absolute end or its idle
//!   end. The idle end still slides, once per `store::slide_step` as
//!   without the cache: a hit that would move the idle end by a step or
//!   more is [`Lookup::Due`], and [`Due::slide`] writes the new end
//!   (`PEXPIRE`) over the invalidation channel's own connection, which
//!   Redis does not tell of its own writes (`NOLOOP`): the entry stays, with
//!   its new end, and every other instance hears of the slide and forgets
//!   its copy. `PEXPIRE` answers whether the session still exists, so a
//!   slide is also a check that it was not revoked meanwhile. One request
//!   slides a due session; others that come while it does (a page's burst
//!   of requests) are hits, not more slides of the same end. Without the
//!   channel (down, or no answer) a due entry is a miss: the store reads and
//!   slides.
//! - A store error is never turned into anything else: a miss goes to the
//!   store, and its error goes up as before (503, cookie kept).

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use quick_cache::sync::Cache;

use crate::store::records::{SessionRecord, TokenHash, User};
use crate::store::redis::tracking::{CacheSink, Invalidation, Slider};

/// What the hot path needs of a session, as the store last answered it:
/// the record without what only pages and the CLI show (the IP and the
/// browser it was made from), its strings boxed without spare capacity.
/// About 250 bytes an entry, so the default bound of 100,000 sessions
/// stays near 25 MB.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedSession {
    pub user_id: Box<str>,
    pub email: Box<str>,
    /// Unix ms.
    pub created_at: u64,
    /// Unix ms: the absolute end.
    pub expires_at: u64,
    /// Unix ms: the idle end as it stood then.
    pub idle_end: u64,
    pub amr: Box<str>,
    /// The provider's `role_map` roles of this sign-in.
    pub extra_roles: Box<[Box<str>]>,
}

impl CachedSession {
    pub fn new(record: SessionRecord, idle_end: u64) -> CachedSession {
        CachedSession {
            user_id: record.user_id.into(),
            email: record.email.into(),
            created_at: record.created_at,
            expires_at: record.expires_at,
            idle_end,
            amr: record.amr.into(),
            extra_roles: record.extra_roles.into_iter().map(Into::into).collect(),
        }
    }
}

/// What the cache holds for a session.
pub enum Lookup<'a> {
    /// Live, and its idle end needs no write yet (or another request is
    /// writing it): serve it.
    Hit(Arc<CachedSession>),
    /// Live, but its idle end is a slide step or more behind: serve it once
    /// [`Due::slide`] has moved the end.
    Due(Due<'a>),
    /// Not held, ended, or the channel is down: ask the store.
    Miss,
}

/// A due entry, and the one turn to slide it: while it is held, other
/// lookups of the session are hits. Dropped (slid, or the request gone),
/// the turn is free again.
pub struct Due<'a> {
    cache: &'a SessionCache,
    hash: TokenHash,
    session: Arc<CachedSession>,
}

/// What sliding a due entry came to (see [`Due::slide`]).
#[derive(Debug)]
pub enum Slid {
    /// The idle end moved: serve this (kept, unless something moved).
    Live(Arc<CachedSession>),
    /// The session no longer exists (revoked or ended meanwhile).
    Gone,
    /// No channel to slide over, or no answer: ask the store.
    AskStore,
}

/// How many epochs keys are spread over (a power of two). An invalidation
/// undoes the inserts in flight of its own slot only, about 1 in 4,096 of
/// the others; 32 KB.
pub const SLOTS: usize = 4096;

/// The cache's state when a store round trip began (see
/// [`SessionCache::mark_session`]): the whole cache's epoch and the key's.
#[derive(Debug, Clone, Copy)]
pub struct Mark {
    all: u64,
    slot: usize,
    key: u64,
}

pub struct SessionCache {
    sessions: Cache<[u8; 32], Arc<CachedSession>>,
    /// Stored users by id; `None`: no such stored user.
    users: Cache<String, Arc<Option<User>>>,
    /// Moves on every flush and every change of the channel's state.
    epoch: AtomicU64,
    /// Moves on every invalidation of a key in the slot (see [`slot_of`]).
    slots: Box<[AtomicU64]>,
    /// The invalidation channel is up: entries may be served and stored.
    up: AtomicBool,
    /// Writes a due entry's new idle end over the channel's connection.
    slider: OnceLock<Slider>,
    /// The sessions a request is sliding now (each held by a [`Due`]).
    sliding: Mutex<HashSet<[u8; 32]>>,
}

impl SessionCache {
    /// At most `entries` sessions and as many users. Down until the
    /// channel says it is up.
    pub fn new(entries: usize) -> SessionCache {
        let entries = entries.max(1);
        SessionCache {
            sessions: Cache::new(entries),
            users: Cache::new(entries),
            epoch: AtomicU64::new(0),
            slots: (0..SLOTS).map(|_| AtomicU64::new(0)).collect(),
            up: AtomicBool::new(false),
            slider: OnceLock::new(),
            sliding: Mutex::new(HashSet::new()),
        }
    }

    /// Due entries slide over `slider` from now on (set once, when the
    /// channel is started; until then they are misses).
    pub fn slide_with(&self, slider: Slider) {
        let _ = self.slider.set(slider);
    }

    /// Taken before a store round trip whose answer about session `hash`
    /// will be stored.
    pub fn mark_session(&self, hash: &TokenHash) -> Mark {
        self.mark(Key::Session(hash))
    }

    /// Taken before a store round trip whose answer about user `id` will be
    /// stored.
    pub fn mark_user(&self, id: &str) -> Mark {
        self.mark(Key::User(id))
    }

    fn mark(&self, key: Key<'_>) -> Mark {
        let slot = slot_of(key);
        Mark {
            all: self.epoch.load(Ordering::SeqCst),
            slot,
            key: self.slots[slot].load(Ordering::SeqCst),
        }
    }

    /// Moves `key`'s epoch: inserts of it in flight are undone.
    fn moved(&self, key: Key<'_>) {
        self.slots[slot_of(key)].fetch_add(1, Ordering::SeqCst);
    }

    /// The cached session under `hash`, if the channel is up and the
    /// session has ended neither way; [`Lookup::Due`] if serving it would
    /// hold its idle end back by a slide step or more and no other request
    /// is sliding it.
    pub fn session(&self, hash: &TokenHash, now: u64, idle: Duration) -> Lookup<'_> {
        if !self.up.load(Ordering::SeqCst) {
            return Lookup::Miss;
        }
        let Some(s) = self.sessions.get(&hash.0) else {
            return Lookup::Miss;
        };
        if now >= s.expires_at.min(s.idle_end) {
            return Lookup::Miss;
        }
        let due = wanted_end(&s, now, idle).saturating_sub(s.idle_end)
            >= millis(crate::store::slide_step(idle));
        match due && self.sliding().insert(hash.0) {
            true => Lookup::Due(Due {
                cache: self,
                hash: *hash,
                session: s,
            }),
            false => Lookup::Hit(s),
        }
    }

    fn sliding(&self) -> std::sync::MutexGuard<'_, HashSet<[u8; 32]>> {
        self.sliding.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The cached stored user `id` (`Some(None)`: known not to be stored).
    pub fn user(&self, id: &str) -> Option<Arc<Option<User>>> {
        if !self.up.load(Ordering::SeqCst) {
            return None;
        }
        self.users.get(id)
    }

    /// Stores what the store answered after `mark`, unless something moved.
    pub fn put_session(
        &self,
        mark: Mark,
        hash: &TokenHash,
        session: impl Into<Arc<CachedSession>>,
    ) {
        let value = session.into();
        self.sessions.insert(hash.0, value.clone());
        if !self.still(mark) {
            self.sessions.remove_if(&hash.0, |v| Arc::ptr_eq(v, &value));
        }
    }

    pub fn put_user(&self, mark: Mark, id: &str, user: impl Into<Arc<Option<User>>>) {
        let value = user.into();
        self.users.insert(id.to_owned(), value.clone());
        if !self.still(mark) {
            self.users.remove_if(id, |v| Arc::ptr_eq(v, &value));
        }
    }

    /// Drops a session (logout on this instance: at once, before Redis's
    /// message comes back).
    pub fn forget(&self, hash: &TokenHash) {
        self.moved(Key::Session(hash));
        self.sessions.remove(&hash.0);
    }

    /// How many sessions are held (the bound is `session.cache_entries`).
    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    /// Nothing moved since `mark` and the channel is up: an insert made
    /// after `mark` holds. Checked after inserting, so an invalidation
    /// racing the insert either sees the entry or moves the epoch first.
    fn still(&self, mark: Mark) -> bool {
        self.up.load(Ordering::SeqCst)
            && self.epoch.load(Ordering::SeqCst) == mark.all
            && self.slots[mark.slot].load(Ordering::SeqCst) == mark.key
    }

    fn flush(&self) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        self.sessions.clear();
        self.users.clear();
    }
}

impl Due<'_> {
    /// Slides the entry's idle end to `now + idle` (at most its absolute
    /// end) and keeps it with that end, unless something moved meanwhile.
    pub async fn slide(self, now: u64, idle: Duration) -> Slid {
        let (cache, hash) = (self.cache, &self.hash);
        let Some(slider) = cache.slider.get() else {
            return Slid::AskStore;
        };
        let mark = cache.mark_session(hash);
        let end = wanted_end(&self.session, now, idle);
        match slider.slide(hash, end.saturating_sub(now)).await {
            None => Slid::AskStore,
            Some(false) => {
                cache.forget(hash);
                Slid::Gone
            }
            Some(true) => {
                let slid = Arc::new(CachedSession {
                    idle_end: end,
                    ..(*self.session).clone()
                });
                cache.put_session(mark, hash, slid.clone());
                Slid::Live(slid)
            }
        }
        // `self` drops here, after the put: the next lookup finds the new end.
    }
}

impl Drop for Due<'_> {
    fn drop(&mut self) {
        self.cache.sliding().remove(&self.hash.0);
    }
}

impl CacheSink for SessionCache {
    fn invalidate(&self, what: Invalidation<'_>) {
        match what {
            Invalidation::Session(hash) => {
                self.moved(Key::Session(&hash));
                self.sessions.remove(&hash.0);
            }
            Invalidation::User(id) => {
                self.moved(Key::User(id));
                self.users.remove(id);
            }
            Invalidation::All => self.flush(),
        }
    }

    fn channel(&self, up: bool) {
        if up {
            self.flush();
            self.up.store(true, Ordering::SeqCst);
        } else {
            self.up.store(false, Ordering::SeqCst);
            self.flush();
        }
    }
}

/// A key whose inserts an invalidation undoes.
#[derive(Clone, Copy)]
enum Key<'a> {
    Session(&'a TokenHash),
    User(&'a str),
}

/// `key`'s slot: a session's from its hash (already uniform), a user's
/// from FNV-1a of its id (ids are short; this runs on inserts and
/// invalidations only). A collision only undoes an insert needlessly.
fn slot_of(key: Key<'_>) -> usize {
    let n = match key {
        Key::Session(h) => u64::from(u16::from_le_bytes([h.0[0], h.0[1]])),
        Key::User(id) => id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        }),
    };
    (n as usize) & (SLOTS - 1)
}

/// Where a request at `now` puts the idle end: `idle` on, at most the
/// absolute end.
fn wanted_end(s: &CachedSession, now: u64, idle: Duration) -> u64 {
    now.saturating_add(millis(idle)).min(s.expires_at)
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const IDLE: Duration = Duration::from_secs(900);

    fn kind(l: Lookup<'_>) -> &'static str {
        match l {
            Lookup::Hit(_) => "hit",
            Lookup::Due(_) => "due",
            Lookup::Miss => "miss",
        }
    }

    fn session(idle_end: u64, expires_at: u64) -> CachedSession {
        let record = SessionRecord {
            user_id: "u".into(),
            email: "a@example.com".into(),
            created_at: 0,
            expires_at,
            ip: "192.0.2.1".into(),
            user_agent: "Mozilla/5.0".into(),
            amr: "email".into(),
            extra_roles: vec!["ops".into()],
        };
        CachedSession::new(record, idle_end)
    }

    /// Stores `s` as a lookup that nothing overtook.
    fn put(c: &SessionCache, h: &TokenHash, s: CachedSession) {
        c.put_session(c.mark_session(h), h, s);
    }

    fn up() -> SessionCache {
        let c = SessionCache::new(100);
        c.channel(true);
        c
    }

    #[test]
    fn entries_never_outlive_either_end_and_leave_the_slide_to_the_store() {
        let c = up();
        let h = TokenHash([7; 32]);
        let now = 1_000_000;
        put(&c, &h, session(now + 900_000, now + 10_000_000));
        assert!(kind(c.session(&h, now, IDLE)) == "hit");
        // 9 s (the slide step of 15 min) later the end is due to move.
        assert!(kind(c.session(&h, now + 8_999, IDLE)) == "hit");
        assert!(kind(c.session(&h, now + 9_000, IDLE)) == "due", "slide due");
        put(&c, &h, session(now + 500, now + 10_000_000));
        assert!(
            kind(c.session(&h, now + 500, Duration::from_secs(1))) == "miss",
            "idle end"
        );
        put(&c, &h, session(now + 900_000, now + 200));
        assert!(kind(c.session(&h, now + 100, IDLE)) == "hit");
        assert!(
            kind(c.session(&h, now + 200, IDLE)) == "miss",
            "absolute end"
        );
    }

    #[test]
    fn invalidations_and_a_channel_down_leave_nothing_to_serve() {
        let c = up();
        let (h, now) = (TokenHash([1; 32]), 1_000);
        put(&c, &h, session(now + 900_000, now + 9_000_000));
        c.put_user(c.mark_user("u"), "u", None);
        c.invalidate(Invalidation::Session(h));
        assert!(kind(c.session(&h, now, IDLE)) == "miss");
        assert!(c.user("u").is_some());
        c.invalidate(Invalidation::User("u"));
        assert!(c.user("u").is_none());

        put(&c, &h, session(now + 900_000, now + 9_000_000));
        c.channel(false);
        assert!(
            kind(c.session(&h, now, IDLE)) == "miss",
            "down: nothing served"
        );
        put(&c, &h, session(now + 900_000, now + 9_000_000));
        c.channel(true);
        assert!(
            kind(c.session(&h, now, IDLE)) == "miss",
            "nothing stored while down"
        );
    }

    #[test]
    fn a_lookup_overtaken_by_an_invalidation_is_not_stored() {
        let c = up();
        let (h, now) = (TokenHash([2; 32]), 1_000);
        let mark = c.mark_session(&h);
        // The store answered, then (before the insert) Redis's message came.
        c.invalidate(Invalidation::Session(h));
        c.put_session(mark, &h, session(now + 900_000, now + 9_000_000));
        assert!(kind(c.session(&h, now, IDLE)) == "miss");
        let mark = c.mark_user("u");
        c.channel(false);
        c.channel(true);
        c.put_user(mark, "u", None);
        assert!(c.user("u").is_none(), "a reconnect came between");
    }

    #[test]
    fn a_due_session_is_slid_by_one_request_at_a_time() {
        let c = up();
        let (h, now) = (TokenHash([5; 32]), 1_000_000);
        put(&c, &h, session(now + 900_000, now + 10_000_000));
        let first = c.session(&h, now + 9_000, IDLE);
        assert!(matches!(first, Lookup::Due(_)));
        // While the first slides, the rest are served as they are.
        assert!(kind(c.session(&h, now + 9_001, IDLE)) == "hit");
        assert!(kind(c.session(&h, now + 9_002, IDLE)) == "hit");
        // Another session is not held up by it.
        let other = TokenHash([6; 32]);
        put(&c, &other, session(now + 900_000, now + 10_000_000));
        assert!(kind(c.session(&other, now + 9_000, IDLE)) == "due");
        // The first request gone without sliding: the next one slides.
        drop(first);
        assert!(kind(c.session(&h, now + 9_003, IDLE)) == "due");
    }

    #[test]
    fn an_invalidation_of_another_key_leaves_an_insert_in_flight() {
        let c = up();
        let (a, b, now) = (TokenHash([3; 32]), TokenHash([4; 32]), 1_000);
        let (mark_a, mark_u) = (c.mark_session(&a), c.mark_user("u"));
        // Another instance slid b, and changed user "v", meanwhile.
        c.invalidate(Invalidation::Session(b));
        c.invalidate(Invalidation::User("v"));
        c.put_session(mark_a, &a, session(now + 900_000, now + 9_000_000));
        c.put_user(mark_u, "u", None);
        assert!(kind(c.session(&a, now, IDLE)) == "hit");
        assert!(c.user("u").is_some());
        // A flush still undoes every insert in flight.
        let mark_a = c.mark_session(&a);
        c.invalidate(Invalidation::All);
        c.put_session(mark_a, &a, session(now + 900_000, now + 9_000_000));
        assert!(kind(c.session(&a, now, IDLE)) == "miss");
    }

    #[test]
    fn the_cache_stays_within_its_bound() {
        let c = SessionCache::new(1_000);
        c.channel(true);
        for i in 0..20_000u32 {
            let mut h = [0u8; 32];
            h[..4].copy_from_slice(&i.to_le_bytes());
            let h = TokenHash(h);
            put(&c, &h, session(u64::MAX, u64::MAX));
        }
        assert!(c.len() <= 1_000, "{}", c.len());
        assert!(c.len() >= 500, "{}", c.len());
    }
}
