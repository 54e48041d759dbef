//! Reaching Redis: the three targets (one URL, Sentinel, Cluster), the
//! timeouts, and the one connection every command runs on. A connection is
//! made on first use and kept; a sentinel's is dropped after any error
//! that means the master may have moved, so the next call asks the
//! sentinels again. What runs on the connection is the other files' job.

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

/// How connections are made; each variant fills its slot on first use.
pub(super) enum Link {
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

pub(super) struct SentinelLink {
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
pub(super) enum Conn {
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
        })
    }

    pub(super) fn is_cluster(&self) -> bool {
        matches!(self, Link::Cluster { .. })
    }

    /// The shared connection, made now if no call has reached Redis yet.
    /// Concurrent first calls may each connect; one connection is kept.
    pub(super) async fn conn(&self) -> StoreResult<Conn> {
        fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
            m.lock().unwrap_or_else(PoisonError::into_inner)
        }
        Ok(match self {
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
}
