//! The production store: Redis, shared by every latchkey instance, so a
//! logout or a role change made on one is seen by all on their very next
//! request. Three ways to reach it ([`Target`]): one URL (`redis://`, or
//! `rediss://` for TLS), Redis Sentinel (a master name and the sentinels'
//! addresses) or Redis Cluster (some of the cluster's nodes).
//!
//! Start-up never waits for Redis: `RedisStore::open` only parses addresses.
//! The connection is made on first use and retried on every call until it
//! succeeds. Short connection and response timeouts turn a dead Redis into a
//! quick error (latchkey answers 503) instead of a hung request. A command
//! whose connection died under it is sent once more on a new connection
//! (never after a timeout), and a health task PINGs every 250 ms and
//! reconnects in the background, so the first request after Redis is back
//! does not fail (`connect.rs`).
//!
//! - One URL: one multiplexed connection is kept, dropped when it dies.
//! - Sentinel: the sentinels are asked for the master, and one multiplexed
//!   connection to it is kept. A connection-level error, a timeout or a
//!   `READONLY` answer (the master was demoted) drops it, so the next call
//!   asks the sentinels again and follows a failover.
//! - Cluster: redis-rs's cluster connection routes each command by its
//!   key's slot and follows `MOVED`/`ASK` and topology changes.
//!
//! Key layout (`{p}` is the prefix, `latchkey:` by default; hashes are
//! lower-case hex, a raw token never reaches Redis):
//!
//! | key | value | expiry |
//! |---|---|---|
//! | `{p}s:{hash}` | session JSON | idle end, never past `expires_at` |
//! | `{p}us:{user_id}` | sorted set of that user's session hashes, scored by absolute end | latest absolute end among them |
//! | `{p}u:{user_id}` | user JSON | none |
//! | `{p}users` | set of user ids | none |
//! | `{p}l:{hash}` | link JSON | link TTL |
//! | `{p}o:{hash}` | provider sign-in in flight JSON (used up by `GETDEL`) | 10 minutes |
//! | `{p}a:{hash}` | attempt JSON (failures counted in place by `CHECK_CODE`) | attempt TTL, kept on failures |
//! | `{p}rl:{key}` | hit counter | the window, from its first hit |
//! | `{p}t:{jti}` | bearer token JSON (no token, only its record) | the token's `exp` |
//! | `{p}tokens` | sorted set of token jtis, scored by `exp` | latest `exp` among them |
//!
//! Indexes shrink as well as grow: adding a member first drops every
//! member whose score (absolute end, Unix ms) is not past the caller's
//! `now` (ZREMRANGEBYSCORE), so an index holds the live members plus
//! those that ended since its last write, whatever the rate of issue.
//! A session is scored by its absolute end, not its sliding idle end (a
//! slide would otherwise cost a second write): an idle-expired session
//! leaves its user's index when listed or at its absolute end. Indexes
//! written as plain sets by older versions are converted on first touch
//! (`scripts::SORTED`).
//!
//! Expiries are set relative (PEXPIRE/PX) from the caller's `now`, so
//! clock skew between latchkey and Redis does not move them. Needs Redis
//! 6.2 or later (GETDEL, SET KEEPTTL).
//!
//! The hot path, `touch_session`, uses no script: one pipelined round trip
//! of `GET` and `PTTL` on the session key, and a `PEXPIRE` only when the
//! idle end has to move by at least `store::slide_step` (a write a minute
//! per busy session, not one per request). Plain reads cost Redis a
//! fraction of an `EVALSHA` that decodes JSON. A user kept in Redis (not
//! in `[[users]]`) is read in a second round trip.
//!
//! Elsewhere, on one node (URL or sentinel) the scripts below do a whole
//! operation in one atomic round trip, and some of them build keys from
//! data they read (reading a token reads its user's record, revoking reads
//! the index). In a cluster a script may only touch keys of its declared
//! slot, and a session's keys (its record, its user's index, its user's
//! record) cannot share a slot: the session is found by its token's hash
//! alone, the index and user by the user id. So on a cluster no command
//! spans two keys of different slots: those operations are split into
//! single-key steps (see `clustered()`), and no hash tags are needed.
//! The cost: creating, revoking and listing sessions or users are no longer
//! atomic (the index is written before the session, so a session can never
//! exist outside its user's index).
//!
//! The files, one job each: `connect.rs` (the targets and the connection),
//! `scripts.rs` (the Lua), `tracking.rs` (the session cache's invalidation
//! channel), `sessions.rs`, `links.rs` (links, attempts and
//! their codes), `users.rs`, `tokens.rs`, `counters.rs` (rate limits).
//! This one holds the store itself, its key names and the `Store` impl,
//! which only says which file does what.

mod connect;
mod counters;
mod links;
mod passkeys;
mod scripts;
mod sessions;
mod tokens;
pub mod tracking;
mod users;

use std::time::Duration;

use super::{CodeCheck, Store, StoreResult};
use crate::store::records::{
    AttemptRecord, LinkRecord, OAuthRecord, PasskeyRecord, SessionInfo, SessionRecord, TokenHash,
    TokenRecord, User,
};
use connect::{Conn, Link};
use scripts::Scripts;

pub use connect::Target;

/// A Redis-backed `Store`. Cheap to share: calls clone the multiplexed
/// connection, never hold a lock across a round trip.
pub struct RedisStore {
    link: Link,
    prefix: String,
    /// Boxed to keep `Backend`'s variants of similar size.
    scripts: Box<Scripts>,
}

impl RedisStore {
    /// One server at `url`; see [`RedisStore::open`].
    pub fn new(url: &str, key_prefix: &str) -> StoreResult<RedisStore> {
        RedisStore::open(&Target::Url(url.to_owned()), key_prefix, None)
    }

    /// Checks the addresses and returns at once; does not contact Redis.
    /// `ca_pem`: the certificates (PEM) to trust for `rediss://` instead of
    /// the system's roots.
    pub fn open(
        target: &Target,
        key_prefix: &str,
        ca_pem: Option<&[u8]>,
    ) -> StoreResult<RedisStore> {
        Ok(RedisStore {
            link: Link::new(target, ca_pem)?,
            prefix: key_prefix.to_owned(),
            scripts: Box::new(Scripts::new()),
        })
    }

    /// Keys of one operation may live in different slots: split it.
    fn clustered(&self) -> bool {
        self.link.is_cluster()
    }

    /// The shared connection, made now if no call has reached Redis yet.
    async fn conn(&self) -> StoreResult<Conn> {
        self.link.conn().await
    }

    fn session_key(&self, hash: &str) -> String {
        session_key(&self.prefix, hash)
    }
    /// The prefix of every session key (what tracking watches).
    fn session_prefix(&self) -> String {
        format!("{}s:", self.prefix)
    }
    fn index_key(&self, user_id: &str) -> String {
        format!("{}us:{user_id}", self.prefix)
    }
    fn index_prefix(&self) -> String {
        format!("{}us:", self.prefix)
    }
    fn user_key(&self, id: &str) -> String {
        format!("{}u:{id}", self.prefix)
    }
    fn user_prefix(&self) -> String {
        format!("{}u:", self.prefix)
    }
    fn users_key(&self) -> String {
        format!("{}users", self.prefix)
    }
    fn link_key(&self, hash: &TokenHash) -> String {
        format!("{}l:{}", self.prefix, hash.to_hex())
    }
    fn oauth_key(&self, hash: &TokenHash) -> String {
        format!("{}o:{}", self.prefix, hash.to_hex())
    }
    fn attempt_key(&self, hash: &TokenHash) -> String {
        format!("{}a:{}", self.prefix, hash.to_hex())
    }
    fn passkeys_key(&self, user_id: &str) -> String {
        format!("{}pk:{user_id}", self.prefix)
    }
    fn device_key(&self, user_id: &str, device: &TokenHash) -> String {
        format!("{}dev:{user_id}:{}", self.prefix, device.to_hex())
    }
    fn hit_key(&self, key: &str) -> String {
        format!("{}rl:{key}", self.prefix)
    }
    fn token_key(&self, jti: &str) -> String {
        format!("{}t:{jti}", self.prefix)
    }
    fn token_prefix(&self) -> String {
        format!("{}t:", self.prefix)
    }
    fn tokens_key(&self) -> String {
        format!("{}tokens", self.prefix)
    }

    /// SET with a TTL; a zero TTL means the value is already gone.
    async fn set_px(&self, key: String, json: String, ttl: Duration) -> StoreResult<()> {
        let ms = millis(ttl);
        let mut con = self.conn().await?;
        if ms == 0 {
            redis::cmd("DEL").arg(key).exec_async(&mut con).await?;
        } else {
            redis::cmd("SET")
                .arg(key)
                .arg(json)
                .arg("PX")
                .arg(ms)
                .exec_async(&mut con)
                .await?;
        }
        Ok(())
    }

    async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        key: String,
    ) -> StoreResult<Option<T>> {
        let mut con = self.conn().await?;
        let raw: Option<String> = redis::cmd("GET").arg(key).query_async(&mut con).await?;
        decode(raw)
    }
}

fn decode<T: serde::de::DeserializeOwned>(raw: Option<String>) -> StoreResult<Option<T>> {
    Ok(raw.map(|r| serde_json::from_str(&r)).transpose()?)
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl Store for RedisStore {
    async fn create_session(
        &self,
        hash: &TokenHash,
        record: &SessionRecord,
        idle: Duration,
        now: u64,
    ) -> StoreResult<()> {
        sessions::create(self, hash, record, idle, now).await
    }
    async fn touch_session(
        &self,
        hash: &TokenHash,
        idle: Duration,
        now: u64,
    ) -> StoreResult<Option<(SessionRecord, u64)>> {
        sessions::touch(self, hash, idle, now).await
    }
    async fn revoke_session(&self, hash: &TokenHash) -> StoreResult<bool> {
        sessions::revoke(self, hash).await
    }
    async fn list_sessions(&self, user_id: &str, now: u64) -> StoreResult<Vec<SessionInfo>> {
        sessions::list(self, user_id, now).await
    }
    async fn revoke_user_sessions(&self, user_id: &str) -> StoreResult<u64> {
        sessions::revoke_user(self, user_id).await
    }
    async fn put_link(
        &self,
        hash: &TokenHash,
        link: &LinkRecord,
        ttl: Duration,
    ) -> StoreResult<()> {
        links::put_link(self, hash, link, ttl).await
    }
    async fn peek_link(&self, hash: &TokenHash) -> StoreResult<Option<LinkRecord>> {
        links::peek_link(self, hash).await
    }
    async fn take_link(&self, hash: &TokenHash) -> StoreResult<Option<LinkRecord>> {
        links::take_link(self, hash).await
    }
    async fn put_oauth(
        &self,
        hash: &TokenHash,
        record: &OAuthRecord,
        ttl: Duration,
    ) -> StoreResult<()> {
        links::put_oauth(self, hash, record, ttl).await
    }
    async fn take_oauth(&self, hash: &TokenHash) -> StoreResult<Option<OAuthRecord>> {
        links::take_oauth(self, hash).await
    }
    async fn put_attempt(
        &self,
        hash: &TokenHash,
        attempt: &AttemptRecord,
        ttl: Duration,
    ) -> StoreResult<()> {
        links::put_attempt(self, hash, attempt, ttl).await
    }
    async fn get_attempt(&self, hash: &TokenHash) -> StoreResult<Option<AttemptRecord>> {
        links::get_attempt(self, hash).await
    }
    async fn check_code(
        &self,
        hash: &TokenHash,
        code: Option<&TokenHash>,
        max: u32,
    ) -> StoreResult<CodeCheck> {
        links::check_code(self, hash, code, max).await
    }
    async fn delete_attempt(&self, hash: &TokenHash) -> StoreResult<()> {
        links::delete_attempt(self, hash).await
    }
    async fn get_user(&self, id: &str) -> StoreResult<Option<User>> {
        users::get(self, id).await
    }
    async fn put_user(&self, user: &User) -> StoreResult<()> {
        users::put(self, user).await
    }
    async fn delete_user(&self, id: &str) -> StoreResult<bool> {
        users::delete(self, id).await
    }
    async fn list_users(&self) -> StoreResult<Vec<User>> {
        users::list(self).await
    }
    async fn put_token(&self, record: &TokenRecord, now: u64) -> StoreResult<()> {
        tokens::put(self, record, now).await
    }
    async fn get_token(&self, jti: &str) -> StoreResult<Option<(TokenRecord, Option<User>)>> {
        tokens::get(self, jti).await
    }
    async fn revoke_token(&self, jti: &str) -> StoreResult<bool> {
        tokens::revoke(self, jti).await
    }
    async fn list_tokens(&self) -> StoreResult<Vec<TokenRecord>> {
        tokens::list(self).await
    }
    async fn put_passkey(&self, record: &PasskeyRecord) -> StoreResult<()> {
        passkeys::put(self, record).await
    }
    async fn list_passkeys(&self, user_id: &str) -> StoreResult<Vec<PasskeyRecord>> {
        passkeys::list(self, user_id).await
    }
    async fn get_passkey(&self, user_id: &str, id: &str) -> StoreResult<Option<PasskeyRecord>> {
        passkeys::get(self, user_id, id).await
    }
    async fn delete_passkey(&self, user_id: &str, id: &str) -> StoreResult<bool> {
        passkeys::delete(self, user_id, id).await
    }
    async fn note_device(
        &self,
        user_id: &str,
        device: &TokenHash,
        ttl: Duration,
    ) -> StoreResult<bool> {
        // SET ... GET answers the old value: nil when the browser was new.
        let mut con = self.conn().await?;
        let old: Option<String> = redis::cmd("SET")
            .arg(self.device_key(user_id, device))
            .arg("1")
            .arg("PX")
            .arg(millis(ttl).max(1))
            .arg("GET")
            .query_async(&mut con)
            .await?;
        Ok(old.is_none())
    }

    async fn hit(&self, key: &str, window: Duration) -> StoreResult<(u64, Duration)> {
        counters::hit(self, key, window).await
    }
    async fn ping(&self) -> StoreResult<()> {
        let mut con = self.conn().await?;
        redis::cmd("PING").query_async::<String>(&mut con).await?;
        Ok(())
    }
}

/// A session's key under `prefix`: the one spelling, for the store and for
/// the session cache's slides (`tracking::Slider`).
pub(super) fn session_key(prefix: &str, hash: &str) -> String {
    format!("{prefix}s:{hash}")
}
