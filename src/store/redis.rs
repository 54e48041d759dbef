//! The production store: Redis (single node or behind sentinel), shared by
//! every latchkey instance, so a logout or a role change made on one is seen
//! by all on their very next request.
//!
//! Start-up never waits for Redis: `RedisStore::new` only parses the URL.
//! The connection is made on first use and retried on every call until it
//! succeeds; after that the `ConnectionManager` reconnects by itself. Short
//! connection and response timeouts turn a dead Redis into a quick error
//! (latchkey answers 503) instead of a hung request.
//!
//! Key layout (`{p}` is the prefix, `latchkey:` by default; hashes are
//! lower-case hex, a raw token never reaches Redis):
//!
//! | key | value | expiry |
//! |---|---|---|
//! | `{p}s:{hash}` | session JSON | idle end, never past `expires_at` |
//! | `{p}us:{user_id}` | set of that user's session hashes | latest absolute end among them |
//! | `{p}u:{user_id}` | user JSON | none |
//! | `{p}users` | set of user ids | none |
//! | `{p}l:{hash}` | link JSON | link TTL |
//! | `{p}a:{hash}` | attempt JSON (failures counted in place) | attempt TTL, kept on failures |
//! | `{p}rl:{key}` | hit counter | the window, from its first hit |
//! | `{p}t:{jti}` | bearer token JSON (no token, only its record) | the token's `exp` |
//! | `{p}tokens` | set of token jtis | latest `exp` among them |
//!
//! Expiries are set relative (PEXPIRE/PX) from the caller's `now`, so
//! clock skew between latchkey and Redis does not move them. Needs Redis
//! 6.2 or later (GETDEL, SET KEEPTTL).
//!
//! Some scripts build keys from data (`touch_session` reads
//! `{p}u:{user_id}`, the list and revoke-all scripts read `{p}s:{hash}`
//! from the index); those keys are not declared, which is fine on one
//! node or behind sentinel but would need hash tags for Redis Cluster.

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, Script};

use super::{Store, StoreResult};
use crate::session::{
    AttemptRecord, LinkRecord, SessionInfo, SessionRecord, TokenHash, TokenRecord, User,
};

/// Time allowed to open a TCP connection (and handshake) to Redis.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(1);
/// Time allowed for one command's answer.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(1);

/// A Redis-backed `Store`. Cheap to share: calls clone the multiplexed
/// connection, never hold a lock across a round trip.
pub struct RedisStore {
    client: Client,
    config: ConnectionManagerConfig,
    /// Filled by the first call that reaches Redis.
    manager: Mutex<Option<ConnectionManager>>,
    prefix: String,
    /// Boxed to keep `Backend`'s variants of similar size.
    scripts: Box<Scripts>,
}

struct Scripts {
    create_session: Script,
    touch_session: Script,
    revoke_session: Script,
    list_sessions: Script,
    revoke_user_sessions: Script,
    fail_attempt: Script,
    hit: Script,
    put_token: Script,
    get_token: Script,
    revoke_token: Script,
    list_tokens: Script,
}

/// KEYS[1] session, KEYS[2] user index; ARGV: session JSON, idle TTL ms,
/// ms until the absolute end, session hash. The index lives at least as
/// long as its longest-lived session.
const CREATE_SESSION: &str = r"
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('SADD', KEYS[2], ARGV[4])
local left = redis.call('PTTL', KEYS[2])
if left < tonumber(ARGV[3]) then
  redis.call('PEXPIRE', KEYS[2], ARGV[3])
end
return 1
";

/// KEYS[1] session; ARGV: now ms, idle ms, user key prefix. Returns nil,
/// or {session JSON, new idle end, user JSON or nil}. The user key is not
/// declared in KEYS (another cluster slot): single node or sentinel only. A record that does
/// not decode is returned as is for the caller to report as corrupt.
const TOUCH_SESSION: &str = r"
local raw = redis.call('GET', KEYS[1])
if not raw then return nil end
local ok, rec = pcall(cjson.decode, raw)
if not ok or type(rec) ~= 'table' or type(rec.user_id) ~= 'string'
   or type(rec.expires_at) ~= 'number' then
  return {raw, 0, false}
end
local now = tonumber(ARGV[1])
if now >= rec.expires_at then
  redis.call('DEL', KEYS[1])
  return nil
end
local idle_end = math.min(now + tonumber(ARGV[2]), rec.expires_at)
redis.call('PEXPIRE', KEYS[1], idle_end - now)
return {raw, idle_end, redis.call('GET', ARGV[3] .. rec.user_id)}
";

/// KEYS[1] session; ARGV: user index prefix, session hash. Returns 1 if
/// the session existed.
const REVOKE_SESSION: &str = r"
local raw = redis.call('GET', KEYS[1])
if not raw then return 0 end
redis.call('DEL', KEYS[1])
local ok, rec = pcall(cjson.decode, raw)
if ok and type(rec) == 'table' and type(rec.user_id) == 'string' then
  redis.call('SREM', ARGV[1] .. rec.user_id, ARGV[2])
end
return 1
";

/// KEYS[1] user index; ARGV: session key prefix. Returns a flat list of
/// {hash, session JSON, PTTL} and drops dead hashes from the index.
const LIST_SESSIONS: &str = r"
local out = {}
for _, h in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local k = ARGV[1] .. h
  local raw = redis.call('GET', k)
  if raw then
    out[#out + 1] = h
    out[#out + 1] = raw
    out[#out + 1] = tostring(redis.call('PTTL', k))
  else
    redis.call('SREM', KEYS[1], h)
  end
end
return out
";

/// KEYS[1] user index; ARGV: session key prefix. Atomic, so a session
/// created meanwhile cannot slip out of the index and survive.
const REVOKE_USER_SESSIONS: &str = r"
local n = 0
for _, h in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  n = n + redis.call('DEL', ARGV[1] .. h)
end
redis.call('DEL', KEYS[1])
return n
";

/// KEYS[1] attempt. Returns the new failure count, 0 if gone; KEEPTTL
/// keeps the attempt's remaining lifetime. The record is rewritten by
/// cjson, which keeps 14 significant digits of numbers: fine for its
/// fields (strings and a small count), worth knowing before adding more.
const FAIL_ATTEMPT: &str = r"
local raw = redis.call('GET', KEYS[1])
if not raw then return 0 end
local rec = cjson.decode(raw)
rec.failures = (tonumber(rec.failures) or 0) + 1
redis.call('SET', KEYS[1], cjson.encode(rec), 'KEEPTTL')
return rec.failures
";

/// KEYS[1] token, KEYS[2] token index; ARGV: token JSON, ms until its
/// end, jti. The index lives as long as its longest-lived token.
const PUT_TOKEN: &str = r"
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('SADD', KEYS[2], ARGV[3])
local left = redis.call('PTTL', KEYS[2])
if left < tonumber(ARGV[2]) then
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
end
return 1
";

/// KEYS[1] token; ARGV: user key prefix. Returns nil, or {token JSON, user
/// JSON or nil}. The user key is not declared (see `TOUCH_SESSION`). A
/// record that does not decode is returned as is for the caller to report.
const GET_TOKEN: &str = r"
local raw = redis.call('GET', KEYS[1])
if not raw then return nil end
local ok, rec = pcall(cjson.decode, raw)
if not ok or type(rec) ~= 'table' or type(rec.user_id) ~= 'string' then
  return {raw, false}
end
return {raw, redis.call('GET', ARGV[1] .. rec.user_id)}
";

/// KEYS[1] token, KEYS[2] token index; ARGV: jti. Returns 1 if it existed.
const REVOKE_TOKEN: &str = r"
local n = redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[2], ARGV[1])
return n
";

/// KEYS[1] token index; ARGV: token key prefix. Returns every live token's
/// JSON and drops dead jtis from the index.
const LIST_TOKENS: &str = r"
local out = {}
for _, j in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local raw = redis.call('GET', ARGV[1] .. j)
  if raw then
    out[#out + 1] = raw
  else
    redis.call('SREM', KEYS[1], j)
  end
end
return out
";

/// KEYS[1] counter; ARGV: window ms. Returns {count, ms left}. A counter
/// found without a TTL (it cannot happen, but would block forever) gets one.
const HIT: &str = r"
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
local left = redis.call('PTTL', KEYS[1])
if left < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  left = tonumber(ARGV[1])
end
return {n, left}
";

impl RedisStore {
    /// Checks the URL and returns at once; does not contact Redis.
    pub fn new(url: &str, key_prefix: &str) -> StoreResult<RedisStore> {
        let client = Client::open(url)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECTION_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            // No retry loop inside a request: one attempt, then the error
            // (503). The next call tries again, so service resumes by itself.
            .set_number_of_retries(0);
        Ok(RedisStore {
            client,
            config,
            manager: Mutex::new(None),
            prefix: key_prefix.to_owned(),
            scripts: Box::new(Scripts {
                create_session: Script::new(CREATE_SESSION),
                touch_session: Script::new(TOUCH_SESSION),
                revoke_session: Script::new(REVOKE_SESSION),
                list_sessions: Script::new(LIST_SESSIONS),
                revoke_user_sessions: Script::new(REVOKE_USER_SESSIONS),
                fail_attempt: Script::new(FAIL_ATTEMPT),
                hit: Script::new(HIT),
                put_token: Script::new(PUT_TOKEN),
                get_token: Script::new(GET_TOKEN),
                revoke_token: Script::new(REVOKE_TOKEN),
                list_tokens: Script::new(LIST_TOKENS),
            }),
        })
    }

    fn slot(&self) -> MutexGuard<'_, Option<ConnectionManager>> {
        self.manager.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The shared connection, made now if no call has reached Redis yet.
    /// Concurrent first calls may each connect; one connection is kept.
    async fn conn(&self) -> StoreResult<ConnectionManager> {
        let existing = self.slot().clone();
        if let Some(manager) = existing {
            return Ok(manager);
        }
        let fresh =
            ConnectionManager::new_with_config(self.client.clone(), self.config.clone()).await?;
        Ok(self.slot().get_or_insert(fresh).clone())
    }

    fn session_key(&self, hash: &str) -> String {
        format!("{}s:{hash}", self.prefix)
    }
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
    fn attempt_key(&self, hash: &TokenHash) -> String {
        format!("{}a:{}", self.prefix, hash.to_hex())
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
        let to_end = record.expires_at.saturating_sub(now);
        let ttl = millis(idle).min(to_end);
        if ttl == 0 {
            // Already over: storing it would only create a dead key.
            return Ok(());
        }
        let hex = hash.to_hex();
        let json = serde_json::to_string(record)?;
        let mut con = self.conn().await?;
        self.scripts
            .create_session
            .key(self.session_key(&hex))
            .key(self.index_key(&record.user_id))
            .arg(json)
            .arg(ttl)
            .arg(to_end)
            .arg(hex)
            .invoke_async::<()>(&mut con)
            .await?;
        Ok(())
    }

    async fn touch_session(
        &self,
        hash: &TokenHash,
        idle: Duration,
        now: u64,
    ) -> StoreResult<Option<(SessionRecord, u64, Option<User>)>> {
        let mut con = self.conn().await?;
        let found: Option<(String, u64, Option<String>)> = self
            .scripts
            .touch_session
            .key(self.session_key(&hash.to_hex()))
            .arg(now)
            .arg(millis(idle))
            .arg(self.user_prefix())
            .invoke_async(&mut con)
            .await?;
        let Some((raw, idle_end, user)) = found else {
            return Ok(None);
        };
        let record: SessionRecord = serde_json::from_str(&raw)?;
        if idle_end == 0 {
            // The script could not read what serde could: treat it as corrupt.
            let why = "session record not readable by the touch script";
            return Err(<serde_json::Error as serde::de::Error>::custom(why).into());
        }
        Ok(Some((record, idle_end, decode(user)?)))
    }

    async fn revoke_session(&self, hash: &TokenHash) -> StoreResult<bool> {
        let hex = hash.to_hex();
        let mut con = self.conn().await?;
        let existed: u64 = self
            .scripts
            .revoke_session
            .key(self.session_key(&hex))
            .arg(self.index_prefix())
            .arg(hex)
            .invoke_async(&mut con)
            .await?;
        Ok(existed == 1)
    }

    async fn list_sessions(&self, user_id: &str) -> StoreResult<Vec<SessionInfo>> {
        let mut con = self.conn().await?;
        let flat: Vec<String> = self
            .scripts
            .list_sessions
            .key(self.index_key(user_id))
            .arg(self.session_prefix())
            .invoke_async(&mut con)
            .await?;
        let now = crate::unix_ms(SystemTime::now());
        let mut out = Vec::with_capacity(flat.len() / 3);
        for triple in flat.chunks_exact(3) {
            let record: SessionRecord = serde_json::from_str(&triple[1])?;
            // PTTL is -1 for a key without expiry; the absolute end still holds.
            let idle_expires_at = match triple[2].parse::<u64>() {
                Ok(left) => now.saturating_add(left).min(record.expires_at),
                Err(_) => record.expires_at,
            };
            out.push(SessionInfo {
                id: triple[0].clone(),
                record,
                idle_expires_at,
            });
        }
        out.sort_by(|a, b| (a.record.created_at, &a.id).cmp(&(b.record.created_at, &b.id)));
        Ok(out)
    }

    async fn revoke_user_sessions(&self, user_id: &str) -> StoreResult<u64> {
        let mut con = self.conn().await?;
        Ok(self
            .scripts
            .revoke_user_sessions
            .key(self.index_key(user_id))
            .arg(self.session_prefix())
            .invoke_async(&mut con)
            .await?)
    }

    async fn put_link(
        &self,
        hash: &TokenHash,
        link: &LinkRecord,
        ttl: Duration,
    ) -> StoreResult<()> {
        let json = serde_json::to_string(link)?;
        self.set_px(self.link_key(hash), json, ttl).await
    }

    async fn peek_link(&self, hash: &TokenHash) -> StoreResult<Option<LinkRecord>> {
        self.get_json(self.link_key(hash)).await
    }

    async fn take_link(&self, hash: &TokenHash) -> StoreResult<Option<LinkRecord>> {
        let mut con = self.conn().await?;
        let raw: Option<String> = redis::cmd("GETDEL")
            .arg(self.link_key(hash))
            .query_async(&mut con)
            .await?;
        decode(raw)
    }

    async fn put_attempt(
        &self,
        hash: &TokenHash,
        attempt: &AttemptRecord,
        ttl: Duration,
    ) -> StoreResult<()> {
        let json = serde_json::to_string(attempt)?;
        self.set_px(self.attempt_key(hash), json, ttl).await
    }

    async fn get_attempt(&self, hash: &TokenHash) -> StoreResult<Option<AttemptRecord>> {
        self.get_json(self.attempt_key(hash)).await
    }

    async fn fail_attempt(&self, hash: &TokenHash) -> StoreResult<u32> {
        let mut con = self.conn().await?;
        Ok(self
            .scripts
            .fail_attempt
            .key(self.attempt_key(hash))
            .invoke_async(&mut con)
            .await?)
    }

    async fn delete_attempt(&self, hash: &TokenHash) -> StoreResult<()> {
        let mut con = self.conn().await?;
        redis::cmd("DEL")
            .arg(self.attempt_key(hash))
            .exec_async(&mut con)
            .await?;
        Ok(())
    }

    async fn get_user(&self, id: &str) -> StoreResult<Option<User>> {
        self.get_json(self.user_key(id)).await
    }

    async fn put_user(&self, user: &User) -> StoreResult<()> {
        let json = serde_json::to_string(user)?;
        let mut con = self.conn().await?;
        redis::pipe()
            .atomic()
            .cmd("SET")
            .arg(self.user_key(&user.id))
            .arg(json)
            .ignore()
            .cmd("SADD")
            .arg(self.users_key())
            .arg(&user.id)
            .ignore()
            .exec_async(&mut con)
            .await?;
        Ok(())
    }

    async fn delete_user(&self, id: &str) -> StoreResult<bool> {
        let mut con = self.conn().await?;
        let (deleted, _): (u64, u64) = redis::pipe()
            .atomic()
            .cmd("DEL")
            .arg(self.user_key(id))
            .cmd("SREM")
            .arg(self.users_key())
            .arg(id)
            .query_async(&mut con)
            .await?;
        Ok(deleted > 0)
    }

    async fn list_users(&self) -> StoreResult<Vec<User>> {
        let mut con = self.conn().await?;
        let ids: Vec<String> = redis::cmd("SMEMBERS")
            .arg(self.users_key())
            .query_async(&mut con)
            .await?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = ids.iter().map(|id| self.user_key(id)).collect();
        let raws: Vec<Option<String>> = redis::cmd("MGET").arg(keys).query_async(&mut con).await?;
        // A user deleted between the two reads is simply left out (DEL and
        // SREM happen together, so the set needs no tidying here).
        let mut users = Vec::with_capacity(raws.len());
        for raw in raws.into_iter().flatten() {
            users.push(serde_json::from_str::<User>(&raw)?);
        }
        users.sort_by(|a, b| (&a.email, &a.id).cmp(&(&b.email, &b.id)));
        Ok(users)
    }

    async fn put_token(&self, record: &TokenRecord, now: u64) -> StoreResult<()> {
        let ttl = record.expires_at.saturating_sub(now);
        if ttl == 0 {
            return Ok(());
        }
        let json = serde_json::to_string(record)?;
        let mut con = self.conn().await?;
        self.scripts
            .put_token
            .key(self.token_key(&record.jti))
            .key(self.tokens_key())
            .arg(json)
            .arg(ttl)
            .arg(&record.jti)
            .invoke_async::<()>(&mut con)
            .await?;
        Ok(())
    }

    async fn get_token(&self, jti: &str) -> StoreResult<Option<(TokenRecord, Option<User>)>> {
        let mut con = self.conn().await?;
        let found: Option<(String, Option<String>)> = self
            .scripts
            .get_token
            .key(self.token_key(jti))
            .arg(self.user_prefix())
            .invoke_async(&mut con)
            .await?;
        let Some((raw, user)) = found else {
            return Ok(None);
        };
        let record: TokenRecord = serde_json::from_str(&raw)?;
        Ok(Some((record, decode(user)?)))
    }

    async fn revoke_token(&self, jti: &str) -> StoreResult<bool> {
        let mut con = self.conn().await?;
        let existed: u64 = self
            .scripts
            .revoke_token
            .key(self.token_key(jti))
            .key(self.tokens_key())
            .arg(jti)
            .invoke_async(&mut con)
            .await?;
        Ok(existed == 1)
    }

    async fn list_tokens(&self) -> StoreResult<Vec<TokenRecord>> {
        let mut con = self.conn().await?;
        let raws: Vec<String> = self
            .scripts
            .list_tokens
            .key(self.tokens_key())
            .arg(self.token_prefix())
            .invoke_async(&mut con)
            .await?;
        let mut out = Vec::with_capacity(raws.len());
        for raw in raws {
            out.push(serde_json::from_str::<TokenRecord>(&raw)?);
        }
        out.sort_by(|a, b| (a.created_at, &a.jti).cmp(&(b.created_at, &b.jti)));
        Ok(out)
    }

    async fn hit(&self, key: &str, window: Duration) -> StoreResult<(u64, Duration)> {
        let mut con = self.conn().await?;
        let (count, left): (u64, u64) = self
            .scripts
            .hit
            .key(self.hit_key(key))
            .arg(millis(window).max(1))
            .invoke_async(&mut con)
            .await?;
        Ok((count, Duration::from_millis(left)))
    }

    async fn ping(&self) -> StoreResult<()> {
        let mut con = self.conn().await?;
        redis::cmd("PING").query_async::<String>(&mut con).await?;
        Ok(())
    }
}
