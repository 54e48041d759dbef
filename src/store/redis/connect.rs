//! Reaching Redis: the three targets (one URL, Sentinel, Cluster), the
//! timeouts, and the one connection every command runs on. A connection is
//! made on first use and kept; it is dropped after any error that means it
//! is dead or (Sentinel) no longer to the master, so the next call
//! connects again (asking the sentinels again). A health task PINGs it in
//! the background and reconnects while it is gone, and a command whose
//! connection died under it is repeated once on a new one (see `Conn` for
//! why that is safe for every command latchkey sends): once Redis accepts
//! connections again, no request fails. What runs on the connection is the
//! other files' job.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};

use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::sentinel::{SentinelClient, SentinelClientBuilder, SentinelServerType};
use redis::{
    AsyncConnectionConfig, Client, Cmd, ErrorKind, IntoConnectionInfo, Pipeline, RedisError,
    RedisFuture, ServerErrorKind, TlsCertificates, TlsMode, Value,
};

use crate::store::StoreResult;

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

/// How often the health task looks at a node link: a PING on the kept
/// connection, or a connection attempt while there is none.
const HEALTH_EVERY: Duration = Duration::from_millis(250);

/// How connections are made; each variant fills its slot on first use.
pub(super) enum Link {
    /// One URL or Sentinel: one multiplexed connection, kept in a slot.
    Node(Arc<Slot>),
    /// Boxed: the cluster client is large beside an `Arc`.
    Cluster(Box<ClusterLink>),
}

pub(super) struct ClusterLink {
    client: ClusterClient,
    conn: Mutex<Option<ClusterConnection>>,
}

/// Where a node link's connection comes from.
enum Source {
    Direct(Client),
    /// Asked of the sentinels on every (re)connect, so a failover is followed.
    Sentinel(tokio::sync::Mutex<SentinelClient>),
}

/// The connection to one node (the server, or the sentinels' master), made
/// on demand and watched: a health task started with the first call PINGs
/// it every `HEALTH_EVERY`, drops it when the link is gone and reconnects
/// in the background, so after an outage the connection is back before
/// the next request needs it. A request that finds no connection makes one
/// itself (one attempt at a time; callers that waited on a failed attempt
/// share its error instead of queuing their own).
pub(super) struct Slot {
    source: Source,
    config: AsyncConnectionConfig,
    current: Mutex<Option<MultiplexedConnection>>,
    /// Held while a connection is being made.
    connecting: tokio::sync::Mutex<()>,
    /// When the last connection attempt failed, and why.
    failed: Mutex<Option<(Instant, String)>>,
    watching: AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The link itself failed (refused, reset, closed): the command may be
/// repeated on a new connection. A timeout is not one: Redis may be alive
/// but slow, and repeating would only double the wait.
fn link_failed(e: &RedisError) -> bool {
    (e.is_io_error() || e.is_connection_dropped() || e.is_connection_refusal()) && !e.is_timeout()
}

impl Slot {
    fn new(source: Source, config: AsyncConnectionConfig) -> Arc<Slot> {
        Arc::new(Slot {
            source,
            config,
            current: Mutex::new(None),
            connecting: tokio::sync::Mutex::new(()),
            failed: Mutex::new(None),
            watching: AtomicBool::new(false),
        })
    }

    /// The kept connection, or a new one.
    async fn connect(self: &Arc<Self>) -> redis::RedisResult<MultiplexedConnection> {
        self.watch();
        if let Some(c) = lock(&self.current).clone() {
            return Ok(c);
        }
        let asked = Instant::now();
        let _one = self.connecting.lock().await;
        if let Some(c) = lock(&self.current).clone() {
            return Ok(c);
        }
        if let Some((at, why)) = lock(&self.failed).clone() {
            if at >= asked {
                // The attempt we waited for failed just now: share its answer.
                return Err(RedisError::from(std::io::Error::new(
                    std::io::ErrorKind::ConnectionRefused,
                    why,
                )));
            }
        }
        match self.open().await {
            Ok(fresh) => {
                *lock(&self.failed) = None;
                Ok(lock(&self.current).get_or_insert(fresh).clone())
            }
            Err(e) => {
                *lock(&self.failed) = Some((Instant::now(), e.to_string()));
                Err(e)
            }
        }
    }

    async fn open(&self) -> redis::RedisResult<MultiplexedConnection> {
        self.master_client()
            .await?
            .get_multiplexed_async_connection_with_config(&self.config)
            .await
    }

    /// Whether the node is the master the sentinels name.
    pub(super) fn is_sentinel(&self) -> bool {
        matches!(self.source, Source::Sentinel(_))
    }

    /// A client for the node: the configured one, or the master as the
    /// sentinels name it now (also what the session cache's invalidation
    /// channel connects with, `tracking.rs`).
    pub(super) async fn master_client(&self) -> redis::RedisResult<Client> {
        match &self.source {
            Source::Direct(client) => Ok(client.clone()),
            Source::Sentinel(sentinels) => {
                let ask = async { sentinels.lock().await.async_get_client().await };
                tokio::time::timeout(SENTINEL_TIMEOUT, ask)
                    .await
                    .map_err(|_| {
                        RedisError::from(std::io::Error::new(
                            std::io::ErrorKind::TimedOut,
                            "no sentinel answered in time",
                        ))
                    })?
            }
        }
    }

    /// After an error that means the connection is dead, or (Sentinel) no
    /// longer to the master, forget it: the next call, or the health task,
    /// connects again (asking the sentinels again).
    fn check(&self, e: &RedisError) {
        let stale = link_failed(e)
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
            tracing::debug!(error = %e, "dropping the connection to redis");
            *lock(&self.current) = None;
        }
    }

    /// Starts the health task, once, if there is a runtime to run it. It
    /// holds only a weak reference: it ends when the store is dropped.
    fn watch(self: &Arc<Self>) {
        if self.watching.swap(true, Ordering::AcqRel) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            self.watching.store(false, Ordering::Release);
            return;
        };
        let weak: Weak<Slot> = Arc::downgrade(self);
        runtime.spawn(async move {
            let mut tick = tokio::time::interval(HEALTH_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(slot) = weak.upgrade() else {
                    return;
                };
                slot.health().await;
            }
        });
    }

    /// One look: PING the kept connection (dropping it if the link is
    /// gone), or try to make one while there is none.
    async fn health(self: &Arc<Self>) {
        let kept = lock(&self.current).clone();
        match kept {
            Some(mut c) => {
                let pong = redis::cmd("PING").query_async::<String>(&mut c).await;
                if let Err(e) = pong {
                    self.check(&e);
                }
            }
            None => {
                if self.connect().await.is_ok() {
                    tracing::info!("redis is reachable again");
                }
            }
        }
    }
}

/// One connection, whatever the topology: scripts and commands run on it.
///
/// On a node link a command whose connection died under it (refused,
/// reset, closed; not a timeout) is sent once more on a new connection.
/// Every command latchkey sends is safe to repeat once: reads (GET, PTTL,
/// MGET, SMEMBERS, PING, the listing scripts, GET_TOKEN) change nothing;
/// SET PX, PEXPIRE, DEL, the index scripts, the revokes and the users'
/// MULTI reach the same state however often they run (a repeated revoke
/// may report "did not exist"); and the three that are not idempotent
/// can only come out stricter, never looser: a repeated GETDEL
/// (`take_link`) finds the link gone, a repeated CHECK_CODE counts one
/// more wrong code (it never matches twice: a match deletes the attempt),
/// a repeated HIT counts one more hit. The cluster client has its own
/// retries.
pub(super) enum Conn {
    Node(MultiplexedConnection, Arc<Slot>),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Cluster(c) => c.req_packed_command(cmd),
            Conn::Node(c, slot) => Box::pin(async move {
                let result = c.req_packed_command(cmd).await;
                match result {
                    Err(e) if link_failed(&e) => {
                        slot.check(&e);
                        *c = slot.connect().await?;
                        let again = c.req_packed_command(cmd).await;
                        if let Err(e) = &again {
                            slot.check(e);
                        }
                        again
                    }
                    Err(e) => {
                        slot.check(&e);
                        Err(e)
                    }
                    ok => ok,
                }
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
            Conn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Node(c, slot) => Box::pin(async move {
                let result = c.req_packed_commands(pipeline, offset, count).await;
                match result {
                    Err(e) if link_failed(&e) => {
                        slot.check(&e);
                        *c = slot.connect().await?;
                        let again = c.req_packed_commands(pipeline, offset, count).await;
                        if let Err(e) = &again {
                            slot.check(e);
                        }
                        again
                    }
                    Err(e) => {
                        slot.check(&e);
                        Err(e)
                    }
                    ok => ok,
                }
            }),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Node(c, _) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

impl Link {
    /// Checks the addresses and returns at once; does not contact Redis.
    pub(super) fn new(target: &Target, ca_pem: Option<&[u8]>) -> StoreResult<Link> {
        let certs = || TlsCertificates {
            client_tls: None,
            root_cert: ca_pem.map(<[u8]>::to_vec),
        };
        Ok(match target {
            Target::Url(url) => {
                let client = match ca_pem {
                    Some(_) => Client::build_with_tls(url.as_str(), certs())?,
                    None => Client::open(url.as_str())?,
                };
                Link::Node(Slot::new(Source::Direct(client), node_config()))
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
                let sentinels = tokio::sync::Mutex::new(b.build()?);
                Link::Node(Slot::new(Source::Sentinel(sentinels), node_config()))
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
                Link::Cluster(Box::new(ClusterLink {
                    client: b.build()?,
                    conn: Mutex::new(None),
                }))
            }
        })
    }

    pub(super) fn is_cluster(&self) -> bool {
        matches!(self, Link::Cluster(_))
    }

    /// The shared connection, made now if no call has reached Redis yet
    /// (or since it was lost). Concurrent first calls on a cluster may each
    /// connect; one connection is kept.
    pub(super) async fn conn(&self) -> StoreResult<Conn> {
        Ok(match self {
            Link::Node(slot) => Conn::Node(slot.connect().await?, slot.clone()),
            Link::Cluster(cluster) => {
                let existing = lock(&cluster.conn).clone();
                let c = match existing {
                    Some(c) => c,
                    None => {
                        let fresh = cluster.client.get_async_connection().await?;
                        lock(&cluster.conn).get_or_insert(fresh).clone()
                    }
                };
                Conn::Cluster(c)
            }
        })
    }
}

/// Timeouts of a node connection: a dead Redis is a quick error.
fn node_config() -> AsyncConnectionConfig {
    AsyncConnectionConfig::new()
        .set_connection_timeout(Some(CONNECTION_TIMEOUT))
        .set_response_timeout(Some(RESPONSE_TIMEOUT))
}
