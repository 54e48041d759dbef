//! The production store: Redis, shared by every latchkey instance, so a
//! logout or a role change made on one is seen by all on their very next
//! request. Three ways to reach it ([`Target`]): one URL (`redis://`, or
//! `rediss://` for TLS), Redis Sentinel (a master name and the sentinels'
//! addresses) or Redis Cluster (some of the cluster's nodes).
//!
//! Start-up never waits for Redis: `RedisStore::open` only parses addresses.
//! The connection is made on first use and retried on every call until it
//! succeeds. Short connection and response timeouts turn a dead Redis into a
//! quick error (latchkey answers 503) instead of a hung request; no call
//! retries inside a request, the next request simply tries again.
//!
//! - One URL: a `ConnectionManager` reconnects by itself.
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
//! | `{p}us:{user_id}` | set of that user's session hashes | latest absolute end among them |
//! | `{p}u:{user_id}` | user JSON | none |
//! | `{p}users` | set of user ids | none |
//! | `{p}l:{hash}` | link JSON | link TTL |
//! | `{p}a:{hash}` | attempt JSON (failures counted in place by `CHECK_CODE`) | attempt TTL, kept on failures |
//! | `{p}rl:{key}` | hit counter | the window, from its first hit |
//! | `{p}t:{jti}` | bearer token JSON (no token, only its record) | the token's `exp` |
//! | `{p}tokens` | set of token jtis | latest `exp` among them |
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
//! single-key steps (see `clustered()` below), and no hash tags are needed.
//! The cost: creating, revoking and listing sessions or users are no longer
//! atomic (the index is written before the session, so a session can never
//! exist outside its user's index).

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use redis::aio::{
    ConnectionLike, ConnectionManager, ConnectionManagerConfig, MultiplexedConnection,
};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::sentinel::{SentinelClient, SentinelClientBuilder, SentinelServerType};
use redis::{
    AsyncConnectionConfig, Client, Cmd, ErrorKind, IntoConnectionInfo, Pipeline, RedisError,
    RedisFuture, Script, ServerErrorKind, TlsCertificates, TlsMode, Value,
};

use super::{CodeCheck, Store, StoreResult};
use crate::store::records::{
    AttemptRecord, LinkRecord, SessionInfo, SessionRecord, TokenHash, TokenRecord, User,
};

/// Time allowed to open a TCP connection (and handshake) to Redis.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(1);
/// Time allowed for one command's answer.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(1);
/// Time allowed to ask the sentinels where the master is.
const SENTINEL_TIMEOUT: Duration = Duration::from_secs(2);

/// Where the Redis data lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// One server: `redis://host:port/db`, `rediss://...` for TLS.
    Url(String),
    /// Redis Sentinel: the master's name and the sentinels' URLs
    /// (`redis://` or `rediss://`; TLS to the sentinels means TLS to the
    /// master too). `password` is the master's (and replicas') password.
    Sentinel {
        master: String,
        nodes: Vec<String>,
        password: Option<String>,
    },
    /// Redis Cluster: the URLs of some of its nodes (the rest are found).
    Cluster(Vec<String>),
}

/// A Redis-backed `Store`. Cheap to share: calls clone the multiplexed
/// connection, never hold a lock across a round trip.
pub struct RedisStore {
    link: Link,
    prefix: String,
    /// Boxed to keep `Backend`'s variants of similar size.
    scripts: Box<Scripts>,
}

/// How connections are made; each variant fills its slot on first use.
enum Link {
    Single {
        client: Client,
        config: ConnectionManagerConfig,
        manager: Mutex<Option<ConnectionManager>>,
    },
    Sentinel(Arc<SentinelLink>),
    Cluster {
        client: ClusterClient,
        conn: Mutex<Option<ClusterConnection>>,
    },
}

struct SentinelLink {
    sentinels: tokio::sync::Mutex<SentinelClient>,
    config: AsyncConnectionConfig,
    current: Mutex<Option<MultiplexedConnection>>,
}

impl SentinelLink {
    fn slot(&self) -> MutexGuard<'_, Option<MultiplexedConnection>> {
        self.current.lock().unwrap_or_else(PoisonError::into_inner)
    }

    async fn connect(&self) -> redis::RedisResult<MultiplexedConnection> {
        let existing = self.slot().clone();
        if let Some(c) = existing {
            return Ok(c);
        }
        let ask = async { self.sentinels.lock().await.async_get_client().await };
        let client = tokio::time::timeout(SENTINEL_TIMEOUT, ask)
            .await
            .map_err(|_| {
                RedisError::from(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "no sentinel answered in time",
                ))
            })??;
        let fresh = client
            .get_multiplexed_async_connection_with_config(&self.config)
            .await?;
        Ok(self.slot().get_or_insert(fresh).clone())
    }

    /// After an error that means "this may no longer be the master",
    /// forget the connection so the next call asks the sentinels again.
    fn check(&self, e: &RedisError) {
        let stale = e.is_io_error()
            || e.is_connection_dropped()
            || e.is_timeout()
            || e.is_unrecoverable_error()
            || matches!(
                e.kind(),
                ErrorKind::Server(
                    ServerErrorKind::ReadOnly
                        | ServerErrorKind::MasterDown
                        | ServerErrorKind::BusyLoading
                )
            );
        if stale {
            tracing::debug!(error = %e, "dropping the connection to the sentinel's master");
            *self.slot() = None;
        }
    }
}

/// One connection, whatever the topology: scripts and commands run on it.
enum Conn {
    Manager(ConnectionManager),
    Sentinel(MultiplexedConnection, Arc<SentinelLink>),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Manager(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
            Conn::Sentinel(c, link) => Box::pin(async move {
                let result = c.req_packed_command(cmd).await;
                if let Err(e) = &result {
                    link.check(e);
                }
                result
            }),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Manager(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Sentinel(c, link) => Box::pin(async move {
                let result = c.req_packed_commands(pipeline, offset, count).await;
                if let Err(e) = &result {
                    link.check(e);
                }
                result
            }),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Manager(c) => c.get_db(),
            Conn::Sentinel(c, _) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

struct Scripts {
    put_indexed: Script,
    index_session: Script,
    revoke_session: Script,
    list_sessions: Script,
    revoke_user_sessions: Script,
    check_code: Script,
    hit: Script,
    get_token: Script,
    revoke_token: Script,
    list_tokens: Script,
}

/// KEYS[1] a record, KEYS[2] the set indexing it; ARGV: record JSON, its
/// TTL ms, how long it may live at most (ms), its member name in the index.
/// The index lives at least as long as its longest-lived member. Stores
/// sessions (in their user's index) and API tokens (in the token index).
const PUT_INDEXED: &str = r"
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('SADD', KEYS[2], ARGV[4])
local left = redis.call('PTTL', KEYS[2])
if left < tonumber(ARGV[3]) then
  redis.call('PEXPIRE', KEYS[2], ARGV[3])
end
return 1
";

/// KEYS[1] user index; ARGV: session hash, ms until its absolute end. The
/// cluster's half of `PUT_INDEXED` (run before the record is stored).
const INDEX_SESSION: &str = r"
redis.call('SADD', KEYS[1], ARGV[1])
local left = redis.call('PTTL', KEYS[1])
if left < tonumber(ARGV[2]) then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 1
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

/// KEYS[1] attempt; ARGV: the typed code's hash (hex, "" for no code),
/// the most failures allowed. Compares, counts and deletes in one atomic
/// step (one key, so a cluster runs it too). Returns {verdict, tries left,
/// attempt JSON or false}: 0 no attempt, 1 right (deleted), 2 wrong
/// (counted, KEEPTTL keeps the attempt's remaining lifetime), 3 voided
/// (deleted: the limit is reached). The comparison reads every byte of the
/// typed hash whatever matches (constant time, like `TokenHash`'s). The
/// record is rewritten by cjson, which keeps 14 significant digits of
/// numbers: fine for its fields (strings and a small count), worth knowing
/// before adding more.
const CHECK_CODE: &str = r"
local raw = redis.call('GET', KEYS[1])
if not raw then return {0, 0, false} end
local rec = cjson.decode(raw)
local max = tonumber(ARGV[2])
local failures = tonumber(rec.failures) or 0
if failures >= max then
  redis.call('DEL', KEYS[1])
  return {3, 0, raw}
end
local typed = ARGV[1]
local stored = type(rec.code) == 'string' and rec.code or ''
local diff = 0
if #typed ~= #stored or #typed == 0 then diff = 1 end
for i = 1, #typed do
  diff = bit.bor(diff, bit.bxor(string.byte(typed, i), string.byte(stored, i) or 0))
end
if diff == 0 then
  redis.call('DEL', KEYS[1])
  return {1, 0, raw}
end
failures = failures + 1
if failures >= max then
  redis.call('DEL', KEYS[1])
  rec.failures = failures
  return {3, 0, cjson.encode(rec)}
end
rec.failures = failures
redis.call('SET', KEYS[1], cjson.encode(rec), 'KEEPTTL')
return {2, max - failures, false}
";

/// KEYS[1] token; ARGV: user key prefix. Returns nil, or {token JSON, user
/// JSON or nil}. The user key is not declared in KEYS: on a cluster the
/// prefix is empty and the caller reads the user itself. A record that does
/// not decode is returned as is for the caller to report.
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
        let certs = || TlsCertificates {
            client_tls: None,
            root_cert: ca_pem.map(<[u8]>::to_vec),
        };
        let link = match target {
            Target::Url(url) => {
                let client = match ca_pem {
                    Some(_) => Client::build_with_tls(url.as_str(), certs())?,
                    None => Client::open(url.as_str())?,
                };
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(CONNECTION_TIMEOUT))
                    .set_response_timeout(Some(RESPONSE_TIMEOUT))
                    // No retry loop inside a request: one attempt, then the
                    // error (503). The next call tries again.
                    .set_number_of_retries(0);
                Link::Single {
                    client,
                    config,
                    manager: Mutex::new(None),
                }
            }
            Target::Sentinel {
                master,
                nodes,
                password,
            } => {
                let mut addrs = Vec::with_capacity(nodes.len());
                let mut tls = false;
                let mut sentinel_auth = None;
                for node in nodes {
                    let info = node.as_str().into_connection_info()?;
                    tls |= matches!(info.addr(), redis::ConnectionAddr::TcpTls { .. });
                    let r = info.redis_settings();
                    if let Some(p) = r.password() {
                        sentinel_auth = Some((r.username().map(str::to_owned), p.to_owned()));
                    }
                    addrs.push(info.addr().clone());
                }
                let mut b = SentinelClientBuilder::new(addrs, master, SentinelServerType::Master)?;
                if tls {
                    b = b.set_client_to_redis_tls_mode(TlsMode::Secure);
                }
                if ca_pem.is_some() {
                    b = b
                        .set_client_to_redis_certificates(certs())
                        .set_client_to_sentinel_certificates(certs());
                }
                if let Some(p) = password {
                    b = b.set_client_to_redis_password(p);
                }
                if let Some((user, p)) = sentinel_auth {
                    if let Some(u) = user {
                        b = b.set_client_to_sentinel_username(u);
                    }
                    b = b.set_client_to_sentinel_password(p);
                }
                Link::Sentinel(Arc::new(SentinelLink {
                    sentinels: tokio::sync::Mutex::new(b.build()?),
                    config: AsyncConnectionConfig::new()
                        .set_connection_timeout(Some(CONNECTION_TIMEOUT))
                        .set_response_timeout(Some(RESPONSE_TIMEOUT)),
                    current: Mutex::new(None),
                }))
            }
            Target::Cluster(nodes) => {
                let mut b = ClusterClient::builder(nodes.iter().map(String::as_str))
                    .connection_timeout(CONNECTION_TIMEOUT)
                    .response_timeout(RESPONSE_TIMEOUT)
                    // A few quick retries let a request ride over MOVED
                    // answers and a slot map refresh.
                    .retries(2);
                if ca_pem.is_some() {
                    b = b.certs(certs());
                }
                Link::Cluster {
                    client: b.build()?,
                    conn: Mutex::new(None),
                }
            }
        };
        Ok(RedisStore {
            link,
            prefix: key_prefix.to_owned(),
            scripts: Box::new(Scripts {
                put_indexed: Script::new(PUT_INDEXED),
                index_session: Script::new(INDEX_SESSION),
                revoke_session: Script::new(REVOKE_SESSION),
                list_sessions: Script::new(LIST_SESSIONS),
                revoke_user_sessions: Script::new(REVOKE_USER_SESSIONS),
                check_code: Script::new(CHECK_CODE),
                hit: Script::new(HIT),
                get_token: Script::new(GET_TOKEN),
                revoke_token: Script::new(REVOKE_TOKEN),
                list_tokens: Script::new(LIST_TOKENS),
            }),
        })
    }

    /// Keys of one operation may live in different slots: split it.
    fn clustered(&self) -> bool {
        matches!(self.link, Link::Cluster { .. })
    }

    /// The shared connection, made now if no call has reached Redis yet.
    /// Concurrent first calls may each connect; one connection is kept.
    async fn conn(&self) -> StoreResult<Conn> {
        fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
            m.lock().unwrap_or_else(PoisonError::into_inner)
        }
        Ok(match &self.link {
            Link::Single {
                client,
                config,
                manager,
            } => {
                let existing = lock(manager).clone();
                let m = match existing {
                    Some(m) => m,
                    None => {
                        let fresh =
                            ConnectionManager::new_with_config(client.clone(), config.clone())
                                .await?;
                        lock(manager).get_or_insert(fresh).clone()
                    }
                };
                Conn::Manager(m)
            }
            Link::Sentinel(link) => Conn::Sentinel(link.connect().await?, link.clone()),
            Link::Cluster { client, conn } => {
                let existing = lock(conn).clone();
                let c = match existing {
                    Some(c) => c,
                    None => {
                        let fresh = client.get_async_connection().await?;
                        lock(conn).get_or_insert(fresh).clone()
                    }
                };
                Conn::Cluster(c)
            }
        })
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

    /// `LIST_SESSIONS` in single-key steps, for a cluster.
    async fn list_sessions_split(&self, con: &mut Conn, user_id: &str) -> StoreResult<Vec<String>> {
        let index = self.index_key(user_id);
        let hashes: Vec<String> = redis::cmd("SMEMBERS").arg(&index).query_async(con).await?;
        let mut out = Vec::with_capacity(hashes.len() * 3);
        for h in hashes {
            let key = self.session_key(&h);
            let raw: Option<String> = redis::cmd("GET").arg(&key).query_async(con).await?;
            match raw {
                Some(raw) => {
                    let left: i64 = redis::cmd("PTTL").arg(&key).query_async(con).await?;
                    out.extend([h, raw, left.to_string()]);
                }
                None => {
                    redis::cmd("SREM")
                        .arg(&index)
                        .arg(&h)
                        .exec_async(con)
                        .await?;
                }
            }
        }
        Ok(out)
    }

    /// `LIST_TOKENS` in single-key steps, for a cluster.
    async fn list_tokens_split(&self, con: &mut Conn) -> StoreResult<Vec<String>> {
        let index = self.tokens_key();
        let jtis: Vec<String> = redis::cmd("SMEMBERS").arg(&index).query_async(con).await?;
        let mut out = Vec::with_capacity(jtis.len());
        for jti in jtis {
            let raw: Option<String> = redis::cmd("GET")
                .arg(self.token_key(&jti))
                .query_async(con)
                .await?;
            match raw {
                Some(raw) => out.push(raw),
                None => {
                    redis::cmd("SREM")
                        .arg(&index)
                        .arg(&jti)
                        .exec_async(con)
                        .await?;
                }
            }
        }
        Ok(out)
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
        if self.clustered() {
            // Index first: a session never exists outside its user's index.
            self.scripts
                .index_session
                .key(self.index_key(&record.user_id))
                .arg(&hex)
                .arg(to_end)
                .invoke_async::<()>(&mut con)
                .await?;
            redis::cmd("SET")
                .arg(self.session_key(&hex))
                .arg(json)
                .arg("PX")
                .arg(ttl)
                .exec_async(&mut con)
                .await?;
            return Ok(());
        }
        self.scripts
            .put_indexed
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
    ) -> StoreResult<Option<(SessionRecord, u64)>> {
        let key = self.session_key(&hash.to_hex());
        let mut con = self.conn().await?;
        // Two plain reads in one round trip; no script: Redis spends a
        // fraction of an EVALSHA's time on them (see `slide_step`).
        let (raw, left): (Option<String>, i64) = redis::pipe()
            .get(&key)
            .pttl(&key)
            .query_async(&mut con)
            .await?;
        let Some(raw) = raw else {
            return Ok(None);
        };
        if left == -2 {
            return Ok(None); // expired between the two reads
        }
        let record: SessionRecord = serde_json::from_str(&raw)?;
        if now >= record.expires_at {
            redis::cmd("DEL").arg(&key).exec_async(&mut con).await?;
            return Ok(None);
        }
        // No TTL (-1) cannot happen; if it did, the slide below sets one.
        let stored_end = now.saturating_add(u64::try_from(left).unwrap_or(0));
        let idle_end = now.saturating_add(millis(idle)).min(record.expires_at);
        if idle_end.saturating_sub(stored_end) < millis(super::slide_step(idle)) {
            return Ok(Some((record, stored_end.min(idle_end))));
        }
        // PEXPIRE on a key revoked meanwhile does nothing: no resurrection.
        redis::cmd("PEXPIRE")
            .arg(&key)
            .arg(idle_end - now)
            .exec_async(&mut con)
            .await?;
        Ok(Some((record, idle_end)))
    }

    async fn revoke_session(&self, hash: &TokenHash) -> StoreResult<bool> {
        let hex = hash.to_hex();
        let mut con = self.conn().await?;
        if self.clustered() {
            let raw: Option<String> = redis::cmd("GETDEL")
                .arg(self.session_key(&hex))
                .query_async(&mut con)
                .await?;
            let Some(raw) = raw else {
                return Ok(false);
            };
            if let Ok(record) = serde_json::from_str::<SessionRecord>(&raw) {
                redis::cmd("SREM")
                    .arg(self.index_key(&record.user_id))
                    .arg(&hex)
                    .exec_async(&mut con)
                    .await?;
            }
            return Ok(true);
        }
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

    async fn list_sessions(&self, user_id: &str, now: u64) -> StoreResult<Vec<SessionInfo>> {
        let mut con = self.conn().await?;
        let flat: Vec<String> = if self.clustered() {
            self.list_sessions_split(&mut con, user_id).await?
        } else {
            self.scripts
                .list_sessions
                .key(self.index_key(user_id))
                .arg(self.session_prefix())
                .invoke_async(&mut con)
                .await?
        };
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
        if self.clustered() {
            let index = self.index_key(user_id);
            let hashes: Vec<String> = redis::cmd("SMEMBERS")
                .arg(&index)
                .query_async(&mut con)
                .await?;
            let mut n = 0;
            for h in hashes {
                let gone: u64 = redis::cmd("DEL")
                    .arg(self.session_key(&h))
                    .query_async(&mut con)
                    .await?;
                n += gone;
            }
            redis::cmd("DEL").arg(index).exec_async(&mut con).await?;
            return Ok(n);
        }
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

    async fn check_code(
        &self,
        hash: &TokenHash,
        code: Option<&TokenHash>,
        max: u32,
    ) -> StoreResult<CodeCheck> {
        let mut con = self.conn().await?;
        let (verdict, left, raw): (u8, u32, Option<String>) = self
            .scripts
            .check_code
            .key(self.attempt_key(hash))
            .arg(code.map(TokenHash::to_hex).unwrap_or_default())
            .arg(max)
            .invoke_async(&mut con)
            .await?;
        let record = || -> StoreResult<AttemptRecord> {
            let raw = raw.as_deref().unwrap_or("");
            Ok(serde_json::from_str(raw)?)
        };
        Ok(match verdict {
            1 => CodeCheck::Match(record()?),
            2 => CodeCheck::Wrong { left },
            3 => CodeCheck::Voided(record()?),
            _ => CodeCheck::Missing,
        })
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
        let mut pipe = redis::pipe();
        // MULTI cannot span slots: on a cluster the two writes go one by one
        // (record first, so a listed id always has a record).
        if !self.clustered() {
            pipe.atomic();
        }
        pipe.cmd("SET")
            .arg(self.user_key(&user.id))
            .arg(json)
            .ignore()
            .cmd("SADD")
            .arg(self.users_key())
            .arg(&user.id)
            .ignore();
        if self.clustered() {
            for cmd in pipe.cmd_iter() {
                cmd.exec_async(&mut con).await?;
            }
        } else {
            pipe.exec_async(&mut con).await?;
        }
        Ok(())
    }

    async fn delete_user(&self, id: &str) -> StoreResult<bool> {
        let mut con = self.conn().await?;
        let (user, users) = (self.user_key(id), self.users_key());
        if self.clustered() {
            let deleted: u64 = redis::cmd("DEL").arg(user).query_async(&mut con).await?;
            redis::cmd("SREM")
                .arg(users)
                .arg(id)
                .exec_async(&mut con)
                .await?;
            return Ok(deleted > 0);
        }
        let (deleted, _): (u64, u64) = redis::pipe()
            .atomic()
            .cmd("DEL")
            .arg(user)
            .cmd("SREM")
            .arg(users)
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
        if self.clustered() {
            // Index first, as for sessions: a token is never outside it.
            self.scripts
                .index_session
                .key(self.tokens_key())
                .arg(&record.jti)
                .arg(ttl)
                .invoke_async::<()>(&mut con)
                .await?;
            redis::cmd("SET")
                .arg(self.token_key(&record.jti))
                .arg(json)
                .arg("PX")
                .arg(ttl)
                .exec_async(&mut con)
                .await?;
            return Ok(());
        }
        self.scripts
            .put_indexed
            .key(self.token_key(&record.jti))
            .key(self.tokens_key())
            .arg(json)
            .arg(ttl)
            .arg(ttl)
            .arg(&record.jti)
            .invoke_async::<()>(&mut con)
            .await?;
        Ok(())
    }

    async fn get_token(&self, jti: &str) -> StoreResult<Option<(TokenRecord, Option<User>)>> {
        if self.clustered() {
            // The token and its user live in different slots: two reads.
            let Some(record) = self.get_json::<TokenRecord>(self.token_key(jti)).await? else {
                return Ok(None);
            };
            let user = self
                .get_json::<User>(self.user_key(&record.user_id))
                .await?;
            return Ok(Some((record, user)));
        }
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
        if self.clustered() {
            let existed: u64 = redis::cmd("DEL")
                .arg(self.token_key(jti))
                .query_async(&mut con)
                .await?;
            redis::cmd("SREM")
                .arg(self.tokens_key())
                .arg(jti)
                .exec_async(&mut con)
                .await?;
            return Ok(existed == 1);
        }
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
        let raws: Vec<String> = if self.clustered() {
            self.list_tokens_split(&mut con).await?
        } else {
            self.scripts
                .list_tokens
                .key(self.tokens_key())
                .arg(self.token_prefix())
                .invoke_async(&mut con)
                .await?
        };
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
