//! The embedded store: one durable file for a single instance
//! (`[store] path`, no `[redis]`), so sessions, users, tokens and the rest
//! survive a restart and a `kill -9`. Built on `redb`: pure Rust (no C
//! library to build), ACID with copy-on-write pages and a checksummed
//! commit, one file, and an exclusive lock on that file, so a second
//! latchkey opening it gets [`StoreError::Locked`] instead of two writers
//! corrupting it. Every write is one transaction committed with
//! `Durability::Immediate` (fsync) before the call returns: a sign-in that
//! answered is on disk.
//!
//! redb's calls block (file I/O, fsync), so each runs on tokio's blocking
//! pool. Write transactions are serialized by redb, which makes every
//! operation atomic (`take_link`, `check_code`, `hit` included) without a
//! lock of our own; reads run beside writes on a snapshot.
//!
//! Time as in the memory store: sessions and `put_token` end by the
//! caller's `now`, everything else (links, attempts, windows, token reads,
//! the sweep) by the [`Clock`] the store was built with. Ended records are
//! never returned; each write transaction also removes a batch of them
//! (`tables::sweep`), index entries included, so the file stays the size
//! of what is live. The tables and their encoding live in `tables.rs`.

mod compile;
mod passkeys;
mod tables;

pub use compile::compile;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use redb::{Database, ReadTransaction, ReadableTable, WriteTransaction};

use super::{slide_step, CodeCheck, Store, StoreError, StoreResult};
use crate::obs::clock::Clock;
use crate::store::records::{
    AttemptRecord, LinkRecord, OAuthRecord, PasskeyRecord, SessionInfo, SessionRecord, TokenHash,
    TokenRecord, User,
};
use tables::{
    decode, encode, get_stored, put_for, take_stored, Stored, StoredSession, ATTEMPT, ATTEMPTS,
    BY_USER, DEVICE, DEVICES, LINK, LINKS, OAUTH, OAUTH_KIND, SESSION, SESSIONS, TOKEN, TOKENS,
    USERS, WINDOW, WINDOWS,
};

/// Pages redb keeps in memory at most (its default is 1 GiB).
const CACHE_BYTES: usize = 32 * 1024 * 1024;

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> StoreError {
                StoreError::Embedded(Box::new(redb::Error::from(e)))
            }
        }
    )*};
}
from_redb!(
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

/// The `Store` on a redb file. Cheap to share (an `Arc` inside).
pub struct EmbeddedStore {
    db: Arc<Database>,
    clock: Clock,
    path: PathBuf,
}

impl EmbeddedStore {
    /// Opens the store file at `path`, creating it (and its directory) if
    /// it does not exist. Fails with [`StoreError::Locked`] while another
    /// process (or another `EmbeddedStore` in this one) has it open.
    pub fn open(path: &Path, clock: Clock) -> StoreResult<EmbeddedStore> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::Dir {
                path: dir.to_owned(),
                source,
            })?;
        }
        let db = Database::builder()
            .set_cache_size(CACHE_BYTES)
            .create(path)
            .map_err(|e| match e {
                redb::DatabaseError::DatabaseAlreadyOpen => StoreError::Locked {
                    path: path.to_owned(),
                },
                source => StoreError::Open {
                    path: path.to_owned(),
                    source: Box::new(source),
                },
            })?;
        let txn = db.begin_write()?;
        tables::create_all(&txn)?;
        txn.commit()?;
        Ok(EmbeddedStore {
            db: Arc::new(db),
            clock,
            path: path.to_owned(),
        })
    }

    /// The file this store lives in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Records held now (sessions, users, links, attempts, OAuth states,
    /// counters, tokens), ended ones not yet swept included.
    pub async fn records(&self) -> StoreResult<u64> {
        self.read(|txn, _| tables::records(txn)).await
    }

    /// Runs `f` in a read transaction on the blocking pool; `f` gets the
    /// store clock's "now".
    async fn read<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&ReadTransaction, u64) -> StoreResult<T> + Send + 'static,
    {
        let (db, clock) = (self.db.clone(), self.clock.clone());
        tokio::task::spawn_blocking(move || {
            let txn = db.begin_read()?;
            f(&txn, clock.now_ms())
        })
        .await?
    }

    /// Runs `f` in a write transaction on the blocking pool, sweeps a batch
    /// of ended records, and commits (durably) if `f` succeeded.
    async fn write<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&WriteTransaction, u64) -> StoreResult<T> + Send + 'static,
    {
        let (db, clock) = (self.db.clone(), self.clock.clone());
        tokio::task::spawn_blocking(move || {
            let now = clock.now_ms();
            let txn = db.begin_write()?;
            let out = f(&txn, now)?;
            tables::sweep(&txn, now)?;
            txn.commit()?;
            Ok(out)
        })
        .await?
    }
}

pub(super) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The `BY_USER` keys of one user: every session hash is 32 bytes, so
/// `[0xff; 33]` sorts after all of them.
const AFTER_ANY_HASH: [u8; 33] = [0xff; 33];

fn session_in(txn: &WriteTransaction, hash: &[u8; 32]) -> StoreResult<Option<StoredSession>> {
    let sessions = txn.open_table(SESSIONS)?;
    let raw = sessions.get(&hash[..])?;
    raw.map(|r| decode(r.value())).transpose()
}

impl Store for EmbeddedStore {
    async fn create_session(
        &self,
        hash: &TokenHash,
        record: &SessionRecord,
        idle: Duration,
        now: u64,
    ) -> StoreResult<()> {
        let idle_end = now.saturating_add(millis(idle)).min(record.expires_at);
        if idle_end <= now {
            return Ok(()); // already over: nothing to keep
        }
        let (hash, record) = (hash.0, record.clone());
        self.write(move |txn, _| {
            txn.open_table(BY_USER)?
                .insert((record.user_id.as_str(), &hash[..]), ())?;
            let json = encode(&StoredSession { record, idle_end })?;
            txn.open_table(SESSIONS)?
                .insert(&hash[..], json.as_slice())?;
            tables::expires(txn, SESSION, &hash, idle_end)
        })
        .await
    }

    async fn touch_session(
        &self,
        hash: &TokenHash,
        idle: Duration,
        now: u64,
    ) -> StoreResult<Option<(SessionRecord, u64)>> {
        let hash = hash.0;
        let found = self
            .read(move |txn, _| {
                let sessions = txn.open_table(SESSIONS)?;
                let raw = sessions.get(&hash[..])?;
                raw.map(|r| decode::<StoredSession>(r.value())).transpose()
            })
            .await?;
        let Some(s) = found.filter(|s| s.is_live(now)) else {
            return Ok(None);
        };
        let idle_end = now.saturating_add(millis(idle)).min(s.record.expires_at);
        if idle_end.saturating_sub(s.idle_end) < millis(slide_step(idle)) {
            return Ok(Some((s.record, s.idle_end.min(idle_end))));
        }
        // Slide it, unless it was revoked (or ended) since the read.
        self.write(move |txn, _| {
            let Some(mut s) = session_in(txn, &hash)?.filter(|s| s.is_live(now)) else {
                return Ok(None);
            };
            tables::unexpires(txn, SESSION, &hash, s.idle_end)?;
            s.idle_end = s.idle_end.max(idle_end);
            tables::expires(txn, SESSION, &hash, s.idle_end)?;
            let json = encode(&s)?;
            txn.open_table(SESSIONS)?
                .insert(&hash[..], json.as_slice())?;
            Ok(Some((s.record, s.idle_end)))
        })
        .await
    }

    async fn revoke_session(&self, hash: &TokenHash) -> StoreResult<bool> {
        let hash = hash.0;
        self.write(move |txn, now| {
            let Some(s) = session_in(txn, &hash)? else {
                return Ok(false);
            };
            txn.open_table(SESSIONS)?.remove(&hash[..])?;
            txn.open_table(BY_USER)?
                .remove((s.record.user_id.as_str(), &hash[..]))?;
            Ok(s.is_live(now))
        })
        .await
    }

    async fn list_sessions(&self, user_id: &str, now: u64) -> StoreResult<Vec<SessionInfo>> {
        let user_id = user_id.to_owned();
        let mut out = self
            .read(move |txn, _| {
                let index = txn.open_table(BY_USER)?;
                let sessions = txn.open_table(SESSIONS)?;
                let mut out = Vec::new();
                let range = (user_id.as_str(), &[][..])..(user_id.as_str(), &AFTER_ANY_HASH[..]);
                for entry in index.range(range)? {
                    let (key, _) = entry?;
                    let (_, hash) = key.value();
                    let Some(raw) = sessions.get(hash)? else {
                        continue;
                    };
                    let s: StoredSession = decode(raw.value())?;
                    if s.is_live(now) {
                        let id = TokenHash(hash.try_into().unwrap_or([0; 32])).to_hex();
                        out.push(SessionInfo {
                            id,
                            record: s.record,
                            idle_expires_at: s.idle_end,
                        });
                    }
                }
                Ok(out)
            })
            .await?;
        out.sort_by(|a, b| (a.record.created_at, &a.id).cmp(&(b.record.created_at, &b.id)));
        Ok(out)
    }

    async fn revoke_user_sessions(&self, user_id: &str) -> StoreResult<u64> {
        let user_id = user_id.to_owned();
        self.write(move |txn, now| {
            let mut index = txn.open_table(BY_USER)?;
            let mut sessions = txn.open_table(SESSIONS)?;
            let range = (user_id.as_str(), &[][..])..(user_id.as_str(), &AFTER_ANY_HASH[..]);
            let mut hashes = Vec::new();
            for entry in index.range(range)? {
                let (key, _) = entry?;
                hashes.push(key.value().1.to_vec());
            }
            let mut count = 0;
            for hash in hashes {
                index.remove((user_id.as_str(), hash.as_slice()))?;
                let raw = sessions.remove(hash.as_slice())?;
                let s: Option<StoredSession> = raw.map(|r| decode(r.value())).transpose()?;
                if s.is_some_and(|s| s.is_live(now)) {
                    count += 1;
                }
            }
            Ok(count)
        })
        .await
    }

    async fn put_link(
        &self,
        hash: &TokenHash,
        link: &LinkRecord,
        ttl: Duration,
    ) -> StoreResult<()> {
        let (hash, link) = (hash.0, link.clone());
        self.write(move |txn, now| put_for(txn, LINKS, LINK, (&hash, &link), (ttl, now)))
            .await
    }

    async fn peek_link(&self, hash: &TokenHash) -> StoreResult<Option<LinkRecord>> {
        let hash = hash.0;
        self.read(move |txn, now| get_stored(txn, LINKS, &hash, now))
            .await
    }

    async fn take_link(&self, hash: &TokenHash) -> StoreResult<Option<LinkRecord>> {
        let hash = hash.0;
        self.write(move |txn, now| take_stored(txn, LINKS, &hash, now))
            .await
    }

    async fn put_oauth(
        &self,
        hash: &TokenHash,
        record: &OAuthRecord,
        ttl: Duration,
    ) -> StoreResult<()> {
        let (hash, record) = (hash.0, record.clone());
        self.write(move |txn, now| put_for(txn, OAUTH, OAUTH_KIND, (&hash, &record), (ttl, now)))
            .await
    }

    async fn take_oauth(&self, hash: &TokenHash) -> StoreResult<Option<OAuthRecord>> {
        let hash = hash.0;
        self.write(move |txn, now| take_stored(txn, OAUTH, &hash, now))
            .await
    }

    async fn put_attempt(
        &self,
        hash: &TokenHash,
        attempt: &AttemptRecord,
        ttl: Duration,
    ) -> StoreResult<()> {
        let (hash, attempt) = (hash.0, attempt.clone());
        self.write(move |txn, now| put_for(txn, ATTEMPTS, ATTEMPT, (&hash, &attempt), (ttl, now)))
            .await
    }

    async fn get_attempt(&self, hash: &TokenHash) -> StoreResult<Option<AttemptRecord>> {
        let hash = hash.0;
        self.read(move |txn, now| get_stored(txn, ATTEMPTS, &hash, now))
            .await
    }

    async fn check_code(
        &self,
        hash: &TokenHash,
        code: Option<&TokenHash>,
        max: u32,
    ) -> StoreResult<CodeCheck> {
        let (hash, code) = (hash.0, code.copied());
        self.write(move |txn, now| {
            let mut attempts = txn.open_table(ATTEMPTS)?;
            let raw = attempts.get(&hash[..])?;
            let stored: Option<Stored<AttemptRecord>> =
                raw.map(|r| decode(r.value())).transpose()?;
            let Some(mut stored) = stored.filter(|s| now < s.until) else {
                return Ok(CodeCheck::Missing);
            };
            let attempt = &mut stored.value;
            // `TokenHash` compares in constant time.
            let right = code
                .zip(TokenHash::from_hex(&attempt.code))
                .is_some_and(|(typed, stored)| typed == stored);
            if attempt.failures < max && right {
                attempts.remove(&hash[..])?;
                return Ok(CodeCheck::Match(stored.value));
            }
            if attempt.failures < max {
                attempt.failures += 1;
                if attempt.failures < max {
                    let left = max - attempt.failures;
                    // Rewritten with the same end: a wrong code does not extend it.
                    attempts.insert(&hash[..], encode(&stored)?.as_slice())?;
                    return Ok(CodeCheck::Wrong { left });
                }
            }
            attempts.remove(&hash[..])?;
            Ok(CodeCheck::Voided(stored.value))
        })
        .await
    }

    async fn delete_attempt(&self, hash: &TokenHash) -> StoreResult<()> {
        let hash = hash.0;
        self.write(move |txn, _| {
            txn.open_table(ATTEMPTS)?.remove(&hash[..])?;
            Ok(())
        })
        .await
    }

    async fn get_user(&self, id: &str) -> StoreResult<Option<User>> {
        let id = id.to_owned();
        self.read(move |txn, _| {
            let users = txn.open_table(USERS)?;
            let raw = users.get(id.as_str())?;
            raw.map(|r| decode(r.value())).transpose()
        })
        .await
    }

    async fn put_user(&self, user: &User) -> StoreResult<()> {
        let user = user.clone();
        self.write(move |txn, _| {
            let json = encode(&user)?;
            txn.open_table(USERS)?
                .insert(user.id.as_str(), json.as_slice())?;
            Ok(())
        })
        .await
    }

    async fn delete_user(&self, id: &str) -> StoreResult<bool> {
        let id = id.to_owned();
        self.write(move |txn, _| Ok(txn.open_table(USERS)?.remove(id.as_str())?.is_some()))
            .await
    }

    async fn list_users(&self) -> StoreResult<Vec<User>> {
        let mut users = self
            .read(|txn, _| {
                let mut out = Vec::new();
                for entry in txn.open_table(USERS)?.iter()? {
                    let (_, raw) = entry?;
                    out.push(decode::<User>(raw.value())?);
                }
                Ok(out)
            })
            .await?;
        users.sort_by(|a, b| (&a.email, &a.id).cmp(&(&b.email, &b.id)));
        Ok(users)
    }

    async fn put_token(&self, record: &TokenRecord, now: u64) -> StoreResult<()> {
        if now >= record.expires_at {
            return Ok(());
        }
        let record = record.clone();
        self.write(move |txn, _| {
            let json = encode(&record)?;
            txn.open_table(TOKENS)?
                .insert(record.jti.as_str(), json.as_slice())?;
            tables::expires(txn, TOKEN, record.jti.as_bytes(), record.expires_at)
        })
        .await
    }

    async fn get_token(&self, jti: &str) -> StoreResult<Option<(TokenRecord, Option<User>)>> {
        let jti = jti.to_owned();
        self.read(move |txn, now| {
            let tokens = txn.open_table(TOKENS)?;
            let Some(raw) = tokens.get(jti.as_str())? else {
                return Ok(None);
            };
            let record: TokenRecord = decode(raw.value())?;
            if now >= record.expires_at {
                return Ok(None);
            }
            let users = txn.open_table(USERS)?;
            let user = users.get(record.user_id.as_str())?;
            let user = user.map(|r| decode::<User>(r.value())).transpose()?;
            Ok(Some((record, user)))
        })
        .await
    }

    async fn revoke_token(&self, jti: &str) -> StoreResult<bool> {
        let jti = jti.to_owned();
        self.write(move |txn, now| {
            let mut tokens = txn.open_table(TOKENS)?;
            let raw = tokens.remove(jti.as_str())?;
            let record: Option<TokenRecord> = raw.map(|r| decode(r.value())).transpose()?;
            Ok(record.is_some_and(|t| now < t.expires_at))
        })
        .await
    }

    async fn list_tokens(&self) -> StoreResult<Vec<TokenRecord>> {
        let mut out = self
            .read(|txn, now| {
                let mut out = Vec::new();
                for entry in txn.open_table(TOKENS)?.iter()? {
                    let (_, raw) = entry?;
                    let t: TokenRecord = decode(raw.value())?;
                    if now < t.expires_at {
                        out.push(t);
                    }
                }
                Ok(out)
            })
            .await?;
        out.sort_by(|a, b| (a.created_at, &a.jti).cmp(&(b.created_at, &b.jti)));
        Ok(out)
    }

    async fn put_passkey(&self, record: &PasskeyRecord) -> StoreResult<()> {
        let record = record.clone();
        self.write(move |txn, _| passkeys::put(txn, &record)).await
    }

    async fn list_passkeys(&self, user_id: &str) -> StoreResult<Vec<PasskeyRecord>> {
        let user_id = user_id.to_owned();
        self.read(move |txn, _| passkeys::list(txn, &user_id)).await
    }

    async fn get_passkey(&self, user_id: &str, id: &str) -> StoreResult<Option<PasskeyRecord>> {
        let (user_id, id) = (user_id.to_owned(), id.to_owned());
        self.read(move |txn, _| passkeys::get(txn, &user_id, &id))
            .await
    }

    async fn delete_passkey(&self, user_id: &str, id: &str) -> StoreResult<bool> {
        let (user_id, id) = (user_id.to_owned(), id.to_owned());
        self.write(move |txn, _| passkeys::delete(txn, &user_id, &id))
            .await
    }

    async fn note_device(
        &self,
        user_id: &str,
        device: &TokenHash,
        ttl: Duration,
    ) -> StoreResult<bool> {
        let key = format!("{user_id}:{}", device.to_hex()).into_bytes();
        self.write(move |txn, now| tables::note(txn, (DEVICES, DEVICE), &key, (ttl, now)))
            .await
    }

    async fn hit(&self, key: &str, window: Duration) -> StoreResult<(u64, Duration)> {
        let key = key.to_owned();
        self.write(move |txn, now| {
            let mut windows = txn.open_table(WINDOWS)?;
            let raw = windows.get(key.as_str())?;
            let found: Option<Stored<u64>> = raw.map(|r| decode(r.value())).transpose()?;
            let (stored, fresh) = match found.filter(|w| now < w.until) {
                Some(w) => (
                    Stored {
                        until: w.until,
                        value: w.value + 1,
                    },
                    false,
                ),
                None => (
                    Stored {
                        until: now.saturating_add(millis(window)),
                        value: 1,
                    },
                    true,
                ),
            };
            windows.insert(key.as_str(), encode(&stored)?.as_slice())?;
            drop(windows);
            if fresh {
                tables::expires(txn, WINDOW, key.as_bytes(), stored.until)?;
            }
            Ok((stored.value, Duration::from_millis(stored.until - now)))
        })
        .await
    }

    async fn ping(&self) -> StoreResult<()> {
        self.read(|_, _| Ok(())).await
    }
}

#[cfg(test)]
mod tests;
