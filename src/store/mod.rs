//! Where sessions, magic links, sign-in attempts, users, their passkeys,
//! the browsers each user signed in on, and rate-limit counters live. One contract (`Store`), three implementations: Redis for
//! production (`redis/`), an embedded durable file for a single instance
//! (`embedded/`, `[store] path`) and memory for a single instance that may
//! lose everything on restart (`memory.rs`). `Backend::open` picks one at
//! start-up; the rest of latchkey sees only `Backend`.
//!
//! Times are Unix milliseconds. Where a record's end is an absolute time
//! (sessions, tokens) the caller passes `now`; TTLs (links, attempts,
//! rate-limit windows) run from the moment of the call: Redis counts them
//! itself, the memory store reads the [`Clock`](crate::obs::clock::Clock)
//! it was built with, the one the `App` gives its callers. So a test on the
//! memory store moves time by moving that clock. Every secret arrives
//! already hashed.

pub mod embedded;
pub mod memory;
pub mod records;
pub mod redis;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::obs::clock::Clock;

use crate::store::records::{
    AttemptRecord, LinkRecord, OAuthRecord, PasskeyRecord, SessionInfo, SessionRecord, TokenHash,
    TokenRecord, User,
};

pub use embedded::EmbeddedStore;
pub use memory::MemoryStore;
pub use redis::RedisStore;

/// The store could not answer. Never means "not found": that is `Ok(None)`.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("redis: {0}")]
    Redis(#[from] ::redis::RedisError),
    #[error("stored record is corrupt: {0}")]
    Corrupt(#[from] serde_json::Error),
    /// Boxed: redb's errors are large, and this one travels on every path.
    #[error("embedded store: {0}")]
    Embedded(Box<redb::Error>),
    #[error(
        "embedded store {}: already open in another process; one latchkey per store file (stop the other one, or give this one its own [store] path)",
        path.display()
    )]
    Locked { path: PathBuf },
    #[error("embedded store {}: cannot open it: {source}", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: Box<redb::DatabaseError>,
    },
    #[error("embedded store: cannot create the directory {}: {source}", path.display())]
    Dir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("embedded store: its worker stopped: {0}")]
    Worker(#[from] tokio::task::JoinError),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// What [`Store::check_code`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeCheck {
    /// The right code, within the limit: the attempt is used up (deleted)
    /// and returned, so its link can be taken.
    Match(AttemptRecord),
    /// A wrong code, counted; `left` more may be tried.
    Wrong { left: u32 },
    /// The limit is reached: the attempt is deleted (and returned, so its
    /// link can be voided too). The code was not accepted, right or not.
    Voided(AttemptRecord),
    /// No such attempt: never made, expired, used, or voided.
    Missing,
}

/// How far a session's idle end must move before a touch writes it: 1% of
/// the idle timeout, at most a minute. A session then ends at most that
/// much earlier than `idle` after its last request (9 s of 15 min), and a
/// busy session costs Redis, its replicas and its AOF one write a minute
/// instead of one per request.
pub fn slide_step(idle: Duration) -> Duration {
    (idle / 100).min(Duration::from_secs(60))
}

/// The storage contract. Every implementation passes the same conformance
/// suite (`tests/it/store.rs`).
pub trait Store: Send + Sync {
    // --- sessions -------------------------------------------------------

    /// Stores a new session; it ends after `idle` without use, and at
    /// `record.expires_at` at the latest. Adds it to the user's index.
    fn create_session(
        &self,
        hash: &TokenHash,
        record: &SessionRecord,
        idle: Duration,
        now: u64,
    ) -> impl Future<Output = StoreResult<()>> + Send;

    /// The hot path: looks the session up and slides its idle end to
    /// `min(now + idle, expires_at)`, in one round trip of plain reads
    /// where the backend allows. A backend may skip the slide while it
    /// would move the end by less than [`slide_step`] (a write saved).
    /// `Ok(None)`: no such live session. The returned `u64` is the idle
    /// end, as it now stands.
    fn touch_session(
        &self,
        hash: &TokenHash,
        idle: Duration,
        now: u64,
    ) -> impl Future<Output = StoreResult<Option<(SessionRecord, u64)>>> + Send;

    /// Ends one session. `Ok(false)` if it did not exist.
    fn revoke_session(&self, hash: &TokenHash) -> impl Future<Output = StoreResult<bool>> + Send;

    /// Every live session of a user at `now`, with its idle end.
    fn list_sessions(
        &self,
        user_id: &str,
        now: u64,
    ) -> impl Future<Output = StoreResult<Vec<SessionInfo>>> + Send;

    /// Ends every session of a user; returns how many there were.
    fn revoke_user_sessions(&self, user_id: &str) -> impl Future<Output = StoreResult<u64>> + Send;

    // --- magic links and sign-in attempts -------------------------------

    /// Stores a link until `ttl` passes.
    fn put_link(
        &self,
        hash: &TokenHash,
        link: &LinkRecord,
        ttl: Duration,
    ) -> impl Future<Output = StoreResult<()>> + Send;

    /// Reads a link without using it up (confirm pages, scanners).
    fn peek_link(
        &self,
        hash: &TokenHash,
    ) -> impl Future<Output = StoreResult<Option<LinkRecord>>> + Send;

    /// Uses a link up: atomically returns and deletes it. Of two concurrent
    /// takes, exactly one gets `Some`.
    fn take_link(
        &self,
        hash: &TokenHash,
    ) -> impl Future<Output = StoreResult<Option<LinkRecord>>> + Send;

    /// Stores a provider sign-in in flight until `ttl` passes.
    fn put_oauth(
        &self,
        hash: &TokenHash,
        record: &OAuthRecord,
        ttl: Duration,
    ) -> impl Future<Output = StoreResult<()>> + Send;

    /// Uses one up: atomically returns and deletes it. Of two concurrent
    /// takes, exactly one gets `Some`.
    fn take_oauth(
        &self,
        hash: &TokenHash,
    ) -> impl Future<Output = StoreResult<Option<OAuthRecord>>> + Send;

    fn put_attempt(
        &self,
        hash: &TokenHash,
        attempt: &AttemptRecord,
        ttl: Duration,
    ) -> impl Future<Output = StoreResult<()>> + Send;

    fn get_attempt(
        &self,
        hash: &TokenHash,
    ) -> impl Future<Output = StoreResult<Option<AttemptRecord>>> + Send;

    /// Judges one typed code against the attempt, in one atomic step:
    /// compares it (constant time) with the stored code hash, and either
    /// uses the attempt up (right code), counts the failure (wrong code,
    /// keeping the attempt's remaining TTL) or deletes the attempt (the
    /// wrong code that reaches `max` failures, or any code once `max` is
    /// reached). `code` is `None` for input that is no code at all: it
    /// counts as wrong. Of any number of concurrent calls, at most `max`
    /// are judged; the rest find the attempt gone.
    fn check_code(
        &self,
        hash: &TokenHash,
        code: Option<&TokenHash>,
        max: u32,
    ) -> impl Future<Output = StoreResult<CodeCheck>> + Send;

    fn delete_attempt(&self, hash: &TokenHash) -> impl Future<Output = StoreResult<()>> + Send;

    // --- users ----------------------------------------------------------

    fn get_user(&self, id: &str) -> impl Future<Output = StoreResult<Option<User>>> + Send;

    /// Creates or replaces a user (keyed by `user.id`).
    fn put_user(&self, user: &User) -> impl Future<Output = StoreResult<()>> + Send;

    /// Removes a user; `Ok(false)` if absent. Does not touch sessions:
    /// callers revoke those too (`revoke_user_sessions`).
    fn delete_user(&self, id: &str) -> impl Future<Output = StoreResult<bool>> + Send;

    /// Every stored user, ordered by email.
    fn list_users(&self) -> impl Future<Output = StoreResult<Vec<User>>> + Send;

    // --- bearer tokens ----------------------------------------------------

    /// Stores a token's record until `record.expires_at` (Unix ms; `now` is
    /// the caller's clock). `record.jti` is `[A-Za-z0-9_-]`, at most 64.
    fn put_token(
        &self,
        record: &TokenRecord,
        now: u64,
    ) -> impl Future<Output = StoreResult<()>> + Send;

    /// The hot path of a bearer request: the token's record (`None` once
    /// revoked or expired) with its user's stored record (`None` when the
    /// user is not in the store), in one round trip where the backend allows.
    fn get_token(
        &self,
        jti: &str,
    ) -> impl Future<Output = StoreResult<Option<(TokenRecord, Option<User>)>>> + Send;

    /// Ends one token. `Ok(false)` if it did not exist (or had expired).
    fn revoke_token(&self, jti: &str) -> impl Future<Output = StoreResult<bool>> + Send;

    /// Every live token, oldest first.
    fn list_tokens(&self) -> impl Future<Output = StoreResult<Vec<TokenRecord>>> + Send;

    // --- passkeys ----------------------------------------------------------

    /// Creates or replaces a passkey (keyed by `user_id` and `id`).
    fn put_passkey(&self, record: &PasskeyRecord) -> impl Future<Output = StoreResult<()>> + Send;

    /// Every passkey of a user, oldest first.
    fn list_passkeys(
        &self,
        user_id: &str,
    ) -> impl Future<Output = StoreResult<Vec<PasskeyRecord>>> + Send;

    /// One passkey of a user, by credential id.
    fn get_passkey(
        &self,
        user_id: &str,
        id: &str,
    ) -> impl Future<Output = StoreResult<Option<PasskeyRecord>>> + Send;

    /// Removes one passkey; `Ok(false)` if it was not there.
    fn delete_passkey(
        &self,
        user_id: &str,
        id: &str,
    ) -> impl Future<Output = StoreResult<bool>> + Send;

    // --- known browsers (the new-device email) ---------------------------

    /// Notes that the user signed in on the browser whose device cookie
    /// hashes to `device`, remembered for `ttl` from now (each sign-in
    /// there renews it). `Ok(true)`: the browser was not known for this
    /// user (never seen, or forgotten after `ttl`): a new device.
    fn note_device(
        &self,
        user_id: &str,
        device: &TokenHash,
        ttl: Duration,
    ) -> impl Future<Output = StoreResult<bool>> + Send;

    // --- rate limits and health -----------------------------------------

    /// Counts one hit on `key` in a fixed window of `window` starting at
    /// the first hit; returns the count so far and the time left in the
    /// window. Atomic: of `n` concurrent hits in one window each gets its
    /// own count, 1 to `n`, so a cap compared against it holds.
    fn hit(
        &self,
        key: &str,
        window: Duration,
    ) -> impl Future<Output = StoreResult<(u64, Duration)>> + Send;

    /// Cheap round trip for readiness checks.
    fn ping(&self) -> impl Future<Output = StoreResult<()>> + Send;
}

/// The store latchkey runs on, chosen from config at start-up. One value
/// per process, behind an `Arc`: its variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
pub enum Backend {
    Memory(MemoryStore),
    Redis(RedisStore),
    Embedded(EmbeddedStore),
}

impl Backend {
    /// The store the config names: Redis when `[redis]` is given (`redis`,
    /// opened lazily), else the embedded store at `[store] path`, else
    /// memory. The config never names both (`check` refuses that). Opening
    /// the embedded store takes its file's lock: a second process fails
    /// here with [`StoreError::Locked`].
    pub fn open(
        redis: Option<RedisStore>,
        path: Option<&Path>,
        clock: &Clock,
    ) -> StoreResult<Backend> {
        Ok(match (redis, path) {
            (Some(r), _) => Backend::Redis(r),
            (None, Some(path)) => {
                let store = EmbeddedStore::open(path, clock.clone())?;
                tracing::info!(path = %path.display(), "using the embedded store (one instance; survives restarts)");
                Backend::Embedded(store)
            }
            (None, None) => {
                tracing::warn!(
                    "no [redis] or [store] configured: using the in-memory store (one instance only; sessions are lost on restart)"
                );
                Backend::Memory(MemoryStore::new(clock.clone()))
            }
        })
    }
}

macro_rules! delegate {
    ($self:ident . $method:ident ( $($arg:expr),* )) => {
        match $self {
            Backend::Memory(s) => s.$method($($arg),*).await,
            Backend::Redis(s) => s.$method($($arg),*).await,
            Backend::Embedded(s) => s.$method($($arg),*).await,
        }
    };
}

impl Store for Backend {
    async fn create_session(
        &self,
        hash: &TokenHash,
        record: &SessionRecord,
        idle: Duration,
        now: u64,
    ) -> StoreResult<()> {
        delegate!(self.create_session(hash, record, idle, now))
    }
    async fn touch_session(
        &self,
        hash: &TokenHash,
        idle: Duration,
        now: u64,
    ) -> StoreResult<Option<(SessionRecord, u64)>> {
        delegate!(self.touch_session(hash, idle, now))
    }
    async fn revoke_session(&self, hash: &TokenHash) -> StoreResult<bool> {
        delegate!(self.revoke_session(hash))
    }
    async fn list_sessions(&self, user_id: &str, now: u64) -> StoreResult<Vec<SessionInfo>> {
        delegate!(self.list_sessions(user_id, now))
    }
    async fn revoke_user_sessions(&self, user_id: &str) -> StoreResult<u64> {
        delegate!(self.revoke_user_sessions(user_id))
    }
    async fn put_link(
        &self,
        hash: &TokenHash,
        link: &LinkRecord,
        ttl: Duration,
    ) -> StoreResult<()> {
        delegate!(self.put_link(hash, link, ttl))
    }
    async fn peek_link(&self, hash: &TokenHash) -> StoreResult<Option<LinkRecord>> {
        delegate!(self.peek_link(hash))
    }
    async fn take_link(&self, hash: &TokenHash) -> StoreResult<Option<LinkRecord>> {
        delegate!(self.take_link(hash))
    }
    async fn put_oauth(
        &self,
        hash: &TokenHash,
        record: &OAuthRecord,
        ttl: Duration,
    ) -> StoreResult<()> {
        delegate!(self.put_oauth(hash, record, ttl))
    }
    async fn take_oauth(&self, hash: &TokenHash) -> StoreResult<Option<OAuthRecord>> {
        delegate!(self.take_oauth(hash))
    }
    async fn put_attempt(
        &self,
        hash: &TokenHash,
        attempt: &AttemptRecord,
        ttl: Duration,
    ) -> StoreResult<()> {
        delegate!(self.put_attempt(hash, attempt, ttl))
    }
    async fn get_attempt(&self, hash: &TokenHash) -> StoreResult<Option<AttemptRecord>> {
        delegate!(self.get_attempt(hash))
    }
    async fn check_code(
        &self,
        hash: &TokenHash,
        code: Option<&TokenHash>,
        max: u32,
    ) -> StoreResult<CodeCheck> {
        delegate!(self.check_code(hash, code, max))
    }
    async fn delete_attempt(&self, hash: &TokenHash) -> StoreResult<()> {
        delegate!(self.delete_attempt(hash))
    }
    async fn get_user(&self, id: &str) -> StoreResult<Option<User>> {
        delegate!(self.get_user(id))
    }
    async fn put_user(&self, user: &User) -> StoreResult<()> {
        delegate!(self.put_user(user))
    }
    async fn delete_user(&self, id: &str) -> StoreResult<bool> {
        delegate!(self.delete_user(id))
    }
    async fn list_users(&self) -> StoreResult<Vec<User>> {
        delegate!(self.list_users())
    }
    async fn put_token(&self, record: &TokenRecord, now: u64) -> StoreResult<()> {
        delegate!(self.put_token(record, now))
    }
    async fn get_token(&self, jti: &str) -> StoreResult<Option<(TokenRecord, Option<User>)>> {
        delegate!(self.get_token(jti))
    }
    async fn revoke_token(&self, jti: &str) -> StoreResult<bool> {
        delegate!(self.revoke_token(jti))
    }
    async fn list_tokens(&self) -> StoreResult<Vec<TokenRecord>> {
        delegate!(self.list_tokens())
    }
    async fn put_passkey(&self, record: &PasskeyRecord) -> StoreResult<()> {
        delegate!(self.put_passkey(record))
    }
    async fn list_passkeys(&self, user_id: &str) -> StoreResult<Vec<PasskeyRecord>> {
        delegate!(self.list_passkeys(user_id))
    }
    async fn get_passkey(&self, user_id: &str, id: &str) -> StoreResult<Option<PasskeyRecord>> {
        delegate!(self.get_passkey(user_id, id))
    }
    async fn delete_passkey(&self, user_id: &str, id: &str) -> StoreResult<bool> {
        delegate!(self.delete_passkey(user_id, id))
    }
    async fn note_device(
        &self,
        user_id: &str,
        device: &TokenHash,
        ttl: Duration,
    ) -> StoreResult<bool> {
        delegate!(self.note_device(user_id, device, ttl))
    }
    async fn hit(&self, key: &str, window: Duration) -> StoreResult<(u64, Duration)> {
        delegate!(self.hit(key, window))
    }
    async fn ping(&self) -> StoreResult<()> {
        delegate!(self.ping())
    }
}
