//! The in-memory store: one process, lost on restart (`latchkey demo`, or a
//! single instance without Redis). Everything sits in plain maps behind one
//! `std::sync::Mutex`; no method awaits, so the lock is never held across an
//! await, and every operation (`take_link` included) is atomic under it.
//!
//! Time comes from two places that are one in practice: sessions and
//! `put_token` expire by the caller's `now` (Unix ms, as the contract
//! says), and everything that gets no `now` (links, attempts, rate-limit
//! windows, token reads, the sweep) reads the store's [`Clock`], the same
//! one the `App` hands its callers. A test moves that clock instead of
//! sleeping. Expired entries are never returned, and a sweep every
//! `SWEEP_EVERY` writes drops them so memory stays bounded by what is live.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use super::{CodeCheck, Store, StoreResult};
use crate::obs::clock::Clock;
use crate::store::records::{
    AttemptRecord, LinkRecord, OAuthRecord, PasskeyRecord, SessionInfo, SessionRecord, TokenHash,
    TokenRecord, User,
};

/// How many writes pass between two sweeps of expired entries.
const SWEEP_EVERY: u64 = 256;

/// Sessions, links and the rest, each keyed by the raw bytes of its hash.
pub struct MemoryStore {
    inner: Mutex<Inner>,
    clock: Clock,
}

#[derive(Default)]
struct Inner {
    sessions: HashMap<[u8; 32], LiveSession>,
    /// user id → hashes of that user's sessions.
    by_user: HashMap<String, HashSet<[u8; 32]>>,
    users: HashMap<String, User>,
    links: HashMap<[u8; 32], Expiring<LinkRecord>>,
    attempts: HashMap<[u8; 32], Expiring<AttemptRecord>>,
    oauth: HashMap<[u8; 32], Expiring<OAuthRecord>>,
    windows: HashMap<String, Expiring<u64>>,
    /// user id → credential id → passkey.
    passkeys: HashMap<String, BTreeMap<String, PasskeyRecord>>,
    /// "user id:device hash (hex)" of each browser a user signed in on.
    devices: HashMap<String, Expiring<()>>,
    /// Bearer tokens by jti; each ends at its `expires_at` (Unix ms).
    tokens: HashMap<String, TokenRecord>,
    writes: u64,
}

struct LiveSession {
    record: SessionRecord,
    /// Unix ms: the end if left idle, never past `record.expires_at`.
    idle_end: u64,
}

impl LiveSession {
    fn is_live(&self, now: u64) -> bool {
        now < self.idle_end && now < self.record.expires_at
    }
}

struct Expiring<T> {
    value: T,
    /// Unix ms by the store's clock.
    until: u64,
}

impl<T> Expiring<T> {
    fn new(value: T, ttl: Duration, now: u64) -> Expiring<T> {
        Expiring {
            value,
            until: now.saturating_add(millis(ttl)),
        }
    }

    fn is_live(&self, now: u64) -> bool {
        now < self.until
    }
}

/// The value under `key` if it has not expired at `now`; an expired one is
/// removed.
fn live<'a, K, T>(map: &'a mut HashMap<K, Expiring<T>>, key: &K, now: u64) -> Option<&'a mut T>
where
    K: std::hash::Hash + Eq,
{
    if map.get(key).is_some_and(|e| !e.is_live(now)) {
        map.remove(key);
    }
    map.get_mut(key).map(|e| &mut e.value)
}

impl Inner {
    /// Counts a write, sweeping what has expired at `now` every
    /// `SWEEP_EVERY` of them.
    fn wrote(&mut self, now: u64) {
        self.writes = self.writes.wrapping_add(1);
        if self.writes.is_multiple_of(SWEEP_EVERY) {
            self.sweep(now);
        }
    }

    fn sweep(&mut self, now: u64) {
        self.sessions.retain(|_, s| s.is_live(now));
        let sessions = &self.sessions;
        self.by_user.retain(|_, hashes| {
            hashes.retain(|h| sessions.contains_key(h));
            !hashes.is_empty()
        });
        self.links.retain(|_, e| e.is_live(now));
        self.attempts.retain(|_, e| e.is_live(now));
        self.oauth.retain(|_, e| e.is_live(now));
        self.windows.retain(|_, e| e.is_live(now));
        self.tokens.retain(|_, t| now < t.expires_at);
    }

    fn remove_session(&mut self, hash: &[u8; 32]) -> Option<LiveSession> {
        let session = self.sessions.remove(hash)?;
        if let Some(hashes) = self.by_user.get_mut(&session.record.user_id) {
            hashes.remove(hash);
            if hashes.is_empty() {
                self.by_user.remove(&session.record.user_id);
            }
        }
        Some(session)
    }
}

impl MemoryStore {
    /// An empty store whose TTLs run on `clock` (give it the `App`'s).
    pub fn new(clock: Clock) -> MemoryStore {
        MemoryStore {
            inner: Mutex::new(Inner::default()),
            clock,
        }
    }

    /// The maps are consistent after every statement that could panic, so a
    /// poisoned lock is still safe to use.
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// How many sessions are live at `now` (for the metrics gauge): one pass
    /// over the map, under the lock, at scrape time only.
    pub fn live_sessions(&self, now: u64) -> u64 {
        let inner = self.lock();
        inner.sessions.values().filter(|s| s.is_live(now)).count() as u64
    }

    /// Records held now (sessions, users, links, attempts, OAuth states,
    /// counters, tokens), ended ones not yet swept included: what the
    /// store's size is made of.
    pub fn records(&self) -> u64 {
        let i = self.lock();
        let n = i.sessions.len()
            + i.users.len()
            + i.links.len()
            + i.attempts.len()
            + i.oauth.len()
            + i.windows.len()
            + i.tokens.len();
        n as u64
    }
}

impl Default for MemoryStore {
    /// An empty store on the system clock.
    fn default() -> MemoryStore {
        MemoryStore::new(Clock::system())
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl Store for MemoryStore {
    async fn create_session(
        &self,
        hash: &TokenHash,
        record: &SessionRecord,
        idle: Duration,
        now: u64,
    ) -> StoreResult<()> {
        let mut inner = self.lock();
        let idle_end = now.saturating_add(millis(idle)).min(record.expires_at);
        inner
            .by_user
            .entry(record.user_id.clone())
            .or_default()
            .insert(hash.0);
        let session = LiveSession {
            record: record.clone(),
            idle_end,
        };
        inner.sessions.insert(hash.0, session);
        inner.wrote(now);
        Ok(())
    }

    async fn touch_session(
        &self,
        hash: &TokenHash,
        idle: Duration,
        now: u64,
    ) -> StoreResult<Option<(SessionRecord, u64)>> {
        let mut inner = self.lock();
        let Some(session) = inner.sessions.get_mut(&hash.0) else {
            return Ok(None);
        };
        if !session.is_live(now) {
            inner.remove_session(&hash.0);
            return Ok(None);
        }
        session.idle_end = now
            .saturating_add(millis(idle))
            .min(session.record.expires_at);
        Ok(Some((session.record.clone(), session.idle_end)))
    }

    async fn revoke_session(&self, hash: &TokenHash) -> StoreResult<bool> {
        let mut inner = self.lock();
        let removed = inner.remove_session(&hash.0).is_some();
        inner.wrote(self.clock.now_ms());
        Ok(removed)
    }

    async fn list_sessions(&self, user_id: &str, now: u64) -> StoreResult<Vec<SessionInfo>> {
        let mut inner = self.lock();
        let hashes: Vec<[u8; 32]> = match inner.by_user.get(user_id) {
            Some(hashes) => hashes.iter().copied().collect(),
            None => return Ok(Vec::new()),
        };
        let mut out = Vec::with_capacity(hashes.len());
        for hash in hashes {
            match inner.sessions.get(&hash) {
                Some(s) if s.is_live(now) => out.push(SessionInfo {
                    id: TokenHash(hash).to_hex(),
                    record: s.record.clone(),
                    idle_expires_at: s.idle_end,
                }),
                _ => {
                    inner.remove_session(&hash);
                }
            }
        }
        out.sort_by(|a, b| (a.record.created_at, &a.id).cmp(&(b.record.created_at, &b.id)));
        Ok(out)
    }

    async fn revoke_user_sessions(&self, user_id: &str) -> StoreResult<u64> {
        let mut inner = self.lock();
        let hashes = inner.by_user.remove(user_id).unwrap_or_default();
        let mut count = 0;
        for hash in hashes {
            if inner.sessions.remove(&hash).is_some() {
                count += 1;
            }
        }
        inner.wrote(self.clock.now_ms());
        Ok(count)
    }

    async fn put_link(
        &self,
        hash: &TokenHash,
        link: &LinkRecord,
        ttl: Duration,
    ) -> StoreResult<()> {
        let now = self.clock.now_ms();
        let mut inner = self.lock();
        inner
            .links
            .insert(hash.0, Expiring::new(link.clone(), ttl, now));
        inner.wrote(now);
        Ok(())
    }

    async fn peek_link(&self, hash: &TokenHash) -> StoreResult<Option<LinkRecord>> {
        let now = self.clock.now_ms();
        let mut inner = self.lock();
        Ok(live(&mut inner.links, &hash.0, now).map(|l| l.clone()))
    }

    async fn take_link(&self, hash: &TokenHash) -> StoreResult<Option<LinkRecord>> {
        let now = self.clock.now_ms();
        let mut inner = self.lock();
        Ok(inner
            .links
            .remove(&hash.0)
            .filter(|e| e.is_live(now))
            .map(|e| e.value))
    }

    async fn put_oauth(
        &self,
        hash: &TokenHash,
        record: &OAuthRecord,
        ttl: Duration,
    ) -> StoreResult<()> {
        let now = self.clock.now_ms();
        let mut inner = self.lock();
        inner
            .oauth
            .insert(hash.0, Expiring::new(record.clone(), ttl, now));
        inner.wrote(now);
        Ok(())
    }

    async fn take_oauth(&self, hash: &TokenHash) -> StoreResult<Option<OAuthRecord>> {
        let now = self.clock.now_ms();
        let mut inner = self.lock();
        Ok(inner
            .oauth
            .remove(&hash.0)
            .filter(|e| e.is_live(now))
            .map(|e| e.value))
    }

    async fn put_attempt(
        &self,
        hash: &TokenHash,
        attempt: &AttemptRecord,
        ttl: Duration,
    ) -> StoreResult<()> {
        let now = self.clock.now_ms();
        let mut inner = self.lock();
        inner
            .attempts
            .insert(hash.0, Expiring::new(attempt.clone(), ttl, now));
        inner.wrote(now);
        Ok(())
    }

    async fn get_attempt(&self, hash: &TokenHash) -> StoreResult<Option<AttemptRecord>> {
        let now = self.clock.now_ms();
        let mut inner = self.lock();
        Ok(live(&mut inner.attempts, &hash.0, now).map(|a| a.clone()))
    }

    async fn check_code(
        &self,
        hash: &TokenHash,
        code: Option<&TokenHash>,
        max: u32,
    ) -> StoreResult<CodeCheck> {
        let now = self.clock.now_ms();
        let mut inner = self.lock();
        let Some(attempt) = live(&mut inner.attempts, &hash.0, now) else {
            return Ok(CodeCheck::Missing);
        };
        // `TokenHash` compares in constant time.
        let right = code
            .zip(TokenHash::from_hex(&attempt.code))
            .is_some_and(|(typed, stored)| *typed == stored);
        let verdict: fn(AttemptRecord) -> CodeCheck = if attempt.failures < max && right {
            CodeCheck::Match
        } else {
            if attempt.failures < max {
                attempt.failures += 1;
                if attempt.failures < max {
                    let left = max - attempt.failures;
                    return Ok(CodeCheck::Wrong { left });
                }
            }
            CodeCheck::Voided
        };
        let taken = inner.attempts.remove(&hash.0);
        Ok(taken.map_or(CodeCheck::Missing, |e| verdict(e.value)))
    }

    async fn delete_attempt(&self, hash: &TokenHash) -> StoreResult<()> {
        self.lock().attempts.remove(&hash.0);
        Ok(())
    }

    async fn get_user(&self, id: &str) -> StoreResult<Option<User>> {
        Ok(self.lock().users.get(id).cloned())
    }

    async fn put_user(&self, user: &User) -> StoreResult<()> {
        self.lock().users.insert(user.id.clone(), user.clone());
        Ok(())
    }

    async fn delete_user(&self, id: &str) -> StoreResult<bool> {
        Ok(self.lock().users.remove(id).is_some())
    }

    async fn list_users(&self) -> StoreResult<Vec<User>> {
        let mut users: Vec<User> = self.lock().users.values().cloned().collect();
        users.sort_by(|a, b| (&a.email, &a.id).cmp(&(&b.email, &b.id)));
        Ok(users)
    }

    async fn put_token(&self, record: &TokenRecord, now: u64) -> StoreResult<()> {
        let mut inner = self.lock();
        if now < record.expires_at {
            inner.tokens.insert(record.jti.clone(), record.clone());
        }
        inner.wrote(now);
        Ok(())
    }

    async fn get_token(&self, jti: &str) -> StoreResult<Option<(TokenRecord, Option<User>)>> {
        let now = self.clock.now_ms();
        let mut inner = self.lock();
        let Some(record) = inner.tokens.get(jti) else {
            return Ok(None);
        };
        if now >= record.expires_at {
            inner.tokens.remove(jti);
            return Ok(None);
        }
        let record = record.clone();
        let user = inner.users.get(&record.user_id).cloned();
        Ok(Some((record, user)))
    }

    async fn revoke_token(&self, jti: &str) -> StoreResult<bool> {
        let now = self.clock.now_ms();
        let mut inner = self.lock();
        let removed = inner.tokens.remove(jti);
        inner.wrote(now);
        Ok(removed.is_some_and(|t| now < t.expires_at))
    }

    async fn list_tokens(&self) -> StoreResult<Vec<TokenRecord>> {
        let now = self.clock.now_ms();
        let mut inner = self.lock();
        inner.tokens.retain(|_, t| now < t.expires_at);
        let mut out: Vec<TokenRecord> = inner.tokens.values().cloned().collect();
        out.sort_by(|a, b| (a.created_at, &a.jti).cmp(&(b.created_at, &b.jti)));
        Ok(out)
    }

    async fn put_passkey(&self, record: &PasskeyRecord) -> StoreResult<()> {
        let now = self.clock.now_ms();
        let mut inner = self.lock();
        inner
            .passkeys
            .entry(record.user_id.clone())
            .or_default()
            .insert(record.id.clone(), record.clone());
        inner.wrote(now);
        Ok(())
    }

    async fn list_passkeys(&self, user_id: &str) -> StoreResult<Vec<PasskeyRecord>> {
        let mut out: Vec<PasskeyRecord> = self
            .lock()
            .passkeys
            .get(user_id)
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default();
        out.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(out)
    }

    async fn get_passkey(&self, user_id: &str, id: &str) -> StoreResult<Option<PasskeyRecord>> {
        Ok(self
            .lock()
            .passkeys
            .get(user_id)
            .and_then(|m| m.get(id))
            .cloned())
    }

    async fn delete_passkey(&self, user_id: &str, id: &str) -> StoreResult<bool> {
        let mut inner = self.lock();
        let Some(mine) = inner.passkeys.get_mut(user_id) else {
            return Ok(false);
        };
        let gone = mine.remove(id).is_some();
        if mine.is_empty() {
            inner.passkeys.remove(user_id);
        }
        Ok(gone)
    }

    async fn note_device(
        &self,
        user_id: &str,
        device: &TokenHash,
        ttl: Duration,
    ) -> StoreResult<bool> {
        let now = self.clock.now_ms();
        let key = format!("{user_id}:{}", device.to_hex());
        let mut inner = self.lock();
        let known = live(&mut inner.devices, &key, now).is_some();
        inner.devices.insert(key, Expiring::new((), ttl, now));
        inner.wrote(now);
        Ok(!known)
    }

    async fn hit(&self, key: &str, window: Duration) -> StoreResult<(u64, Duration)> {
        let now = self.clock.now_ms();
        let mut inner = self.lock();
        let entry = match inner.windows.get_mut(key) {
            Some(e) if e.is_live(now) => {
                e.value += 1;
                (e.value, Duration::from_millis(e.until - now))
            }
            _ => {
                inner
                    .windows
                    .insert(key.to_owned(), Expiring::new(1, window, now));
                (1, window)
            }
        };
        inner.wrote(now);
        Ok(entry)
    }

    async fn ping(&self) -> StoreResult<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(user_id: &str, expires_at: u64) -> SessionRecord {
        SessionRecord {
            user_id: user_id.into(),
            email: format!("{user_id}@example.com"),
            created_at: 0,
            expires_at,
            ip: "127.0.0.1".into(),
            user_agent: "test".into(),
            amr: "email".into(),
            extra_roles: Vec::new(),
        }
    }

    fn hash(i: u32) -> TokenHash {
        let mut h = [0u8; 32];
        h[..4].copy_from_slice(&i.to_be_bytes());
        TokenHash(h)
    }

    fn link() -> LinkRecord {
        LinkRecord {
            email: "a@example.com".into(),
            return_to: String::new(),
            attempt: String::new(),
            created_at: 0,
            expires_at: 0,
            ip: String::new(),
            user_agent: String::new(),
        }
    }

    #[tokio::test]
    async fn expired_sessions_and_their_index_are_swept() {
        let clock = Clock::manual(1_000);
        let store = MemoryStore::new(clock.clone());
        let idle = Duration::from_millis(100);
        for i in 0..1000 {
            let user = format!("u{}", i % 10);
            store
                .create_session(&hash(i), &record(&user, 1_000_000), idle, 1_000)
                .await
                .ok();
        }
        assert_eq!(store.lock().sessions.len(), 1000);
        // Much later, every one of them is idle-expired; new writes sweep.
        clock.advance(Duration::from_millis(9_000));
        for i in 0..SWEEP_EVERY as u32 {
            store
                .create_session(&hash(5000 + i), &record("fresh", 1_000_000), idle, 10_000)
                .await
                .ok();
        }
        let inner = store.lock();
        assert!(
            inner.sessions.len() <= SWEEP_EVERY as usize,
            "{}",
            inner.sessions.len()
        );
        assert!(inner.sessions.values().all(|s| s.record.user_id == "fresh"));
        assert_eq!(inner.by_user.len(), 1);
    }

    #[tokio::test]
    async fn expired_links_windows_and_attempts_are_swept() {
        let store = MemoryStore::new(Clock::manual(1_000));
        for i in 0..500 {
            store.put_link(&hash(i), &link(), Duration::ZERO).await.ok();
            store.hit(&format!("k{i}"), Duration::ZERO).await.ok();
        }
        let inner = store.lock();
        assert!(
            inner.links.len() < SWEEP_EVERY as usize,
            "{}",
            inner.links.len()
        );
        assert!(
            inner.windows.len() < SWEEP_EVERY as usize,
            "{}",
            inner.windows.len()
        );
    }

    #[tokio::test]
    async fn expired_entries_are_never_returned() {
        let store = MemoryStore::new(Clock::manual(1_000));
        store.put_link(&hash(1), &link(), Duration::ZERO).await.ok();
        assert!(matches!(store.peek_link(&hash(1)).await, Ok(None)));
        store.put_link(&hash(2), &link(), Duration::ZERO).await.ok();
        assert!(matches!(store.take_link(&hash(2)).await, Ok(None)));
        let attempt = AttemptRecord {
            link: String::new(),
            code: String::new(),
            failures: 0,
        };
        store
            .put_attempt(&hash(3), &attempt, Duration::ZERO)
            .await
            .ok();
        assert!(matches!(
            store.check_code(&hash(3), None, 3).await,
            Ok(CodeCheck::Missing)
        ));
        assert!(matches!(store.get_attempt(&hash(3)).await, Ok(None)));
    }
}
