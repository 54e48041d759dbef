//! The session cache's invalidation channel: one dedicated RESP3
//! connection per instance on which Redis reports every change to
//! latchkey's session and user keys (`CLIENT TRACKING on BCAST PREFIX
//! {p}s: PREFIX {p}u:`), so an instance that keeps sessions in memory hears
//! of a logout, a revocation or a role change made anywhere as soon as
//! Redis has made it. What is cached, and how it is checked, is identity's
//! (`identity::cache`); this file only turns Redis's push messages into
//! [`Invalidation`]s and says when the channel is up ([`CacheSink`]).
//!
//! BCAST rather than default tracking with `REDIRECT`: the data connection
//! stays an ordinary RESP2 `ConnectionManager` (or sentinel or cluster
//! connection) that knows nothing of tracking, and reconnecting one side
//! never needs the other's client id. The cost: every instance hears of
//! every change to those keys (a session created, revoked, or slid once
//! per `store::slide_step`), not only of the keys it read.
//!
//! The channel is down from the start until `CLIENT TRACKING` answered,
//! and again from the moment the connection drops (the client library's
//! `Disconnection` push, delivered before any later reply), a heartbeat
//! `PING` fails (a silent network loss is found within
//! `HEARTBEAT + RESPONSE_TIMEOUT`), or, behind Sentinel, the server it is
//! on is no longer the master. Every time it comes up the sink is told, and
//! flushes: anything Redis might have changed meanwhile is forgotten. A
//! failover therefore flushes the cache (the new master is reached through
//! the sentinels on reconnect). Redis Cluster is not tracked (no channel
//! would see a resharded slot's writes): [`RedisStore::track`] says so and
//! the caller answers from Redis alone.
//!
//! Tracking is on with `NOLOOP`, and the channel's connection does one
//! write of its own: sliding a cached session's idle end ([`Slider`]).
//! Redis then tells every other instance of the slide, but not this one, so
//! the entry this instance holds stays, with the end it set itself. Over
//! the data connection the same `PEXPIRE` came back as an invalidation and
//! cost one more read of the session per slide step.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, ProtocolVersion, PushInfo, PushKind, Value};
use tokio::sync::Notify;

use super::connect::Link;
use super::RedisStore;
use crate::store::records::TokenHash;

/// How often the channel proves it is alive.
const HEARTBEAT: Duration = Duration::from_millis(500);
/// Time allowed for the channel's commands (and to connect).
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(1);
/// First and longest wait between two attempts to bring the channel up.
const RETRY_FIRST: Duration = Duration::from_millis(50);
const RETRY_MAX: Duration = Duration::from_secs(1);
/// `CLIENT LIST` shows the channel under this name.
pub const CONNECTION_NAME: &str = "latchkey-tracking";

/// A key Redis says has changed (or is gone).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invalidation<'a> {
    /// `{p}s:{hash}`: a session created, slid, revoked or expired.
    Session(TokenHash),
    /// `{p}u:{id}`: a user written or removed.
    User(&'a str),
    /// `FLUSHDB`/`FLUSHALL`, or a key this file cannot read: everything.
    All,
}

/// Slides a session's idle end over the channel's own connection (see the
/// module doc). Only `PEXPIRE` goes this way, and a session's record never
/// changes once made (it is created, slid, revoked), so the one write this
/// instance does not hear of is the new end it set and knows.
#[derive(Clone)]
pub struct Slider {
    /// The channel's connection while it is up.
    conn: Arc<Mutex<Option<MultiplexedConnection>>>,
    /// The store's key prefix.
    prefix: String,
}

impl Slider {
    /// Moves the session's idle end to `ttl_ms` from now. `Some(true)`:
    /// done; `Some(false)`: no such session (revoked or ended meanwhile; a
    /// `PEXPIRE` never brings one back); `None`: the channel is down or did
    /// not answer, so the caller asks the store instead.
    pub async fn slide(&self, hash: &TokenHash, ttl_ms: u64) -> Option<bool> {
        let mut conn = self.conn.lock().ok()?.clone()?;
        let key = super::session_key(&self.prefix, &hash.to_hex());
        let slid: i64 = redis::cmd("PEXPIRE")
            .arg(key)
            .arg(ttl_ms.max(1))
            .query_async(&mut conn)
            .await
            .ok()?;
        Some(slid == 1)
    }
}

/// What hears the channel: the session cache.
pub trait CacheSink: Send + Sync + 'static {
    /// Forget what `what` names. Called on the connection's reader, in
    /// the order Redis sent the messages; must not block.
    fn invalidate(&self, what: Invalidation<'_>);
    /// `false`: the channel is down, answer nothing from memory. `true`:
    /// it is up (again): forget everything, then answer from memory.
    fn channel(&self, up: bool);
}

/// Where the channel's connection goes.
enum Source {
    Url(Arc<super::connect::Slot>),
    Sentinel(Arc<super::connect::Slot>),
}

impl RedisStore {
    /// Starts the invalidation channel for `sink` (a task on the current
    /// tokio runtime, for the life of the process) and returns what slides
    /// over it. `None`, and nothing started, for Redis Cluster: the sink
    /// then never hears `up`.
    pub fn track(&self, sink: Arc<dyn CacheSink>) -> Option<Slider> {
        let source = match &self.link {
            Link::Node(slot) if slot.is_sentinel() => Source::Sentinel(slot.clone()),
            Link::Node(slot) => Source::Url(slot.clone()),
            Link::Cluster(_) => return None,
        };
        let prefixes = [self.session_prefix(), self.user_prefix()];
        let slider = Slider {
            conn: Arc::default(),
            prefix: self.prefix.clone(),
        };
        tokio::spawn(run(source, prefixes, sink, slider.conn.clone()));
        Some(slider)
    }
}

async fn run(
    source: Source,
    prefixes: [String; 2],
    sink: Arc<dyn CacheSink>,
    up: Arc<Mutex<Option<MultiplexedConnection>>>,
) {
    let set = |conn: Option<&MultiplexedConnection>| {
        if let Ok(mut slot) = up.lock() {
            *slot = conn.cloned();
        }
    };
    let mut wait = RETRY_FIRST;
    let mut was_up = false;
    loop {
        sink.channel(false);
        let dropped = Arc::new(Notify::new());
        match open(&source, &prefixes, &sink, &dropped).await {
            Ok(mut conn) => {
                set(Some(&conn));
                sink.channel(true);
                tracing::info!("session cache: invalidation channel up (cache flushed)");
                was_up = true;
                wait = RETRY_FIRST;
                let why = watch(&mut conn, &source, &dropped).await;
                set(None);
                sink.channel(false);
                tracing::warn!(
                    why,
                    "session cache: invalidation channel lost; every request asks Redis until it is back"
                );
            }
            Err(e) => {
                // Quiet while Redis is down from the start; the store's
                // own errors already say so.
                if was_up {
                    tracing::warn!(error = %e, "session cache: invalidation channel cannot reconnect yet");
                } else {
                    tracing::debug!(error = %e, "session cache: invalidation channel not up yet");
                }
            }
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(RETRY_MAX);
    }
}

/// A RESP3 connection with tracking on, its pushes going to `sink`.
async fn open(
    source: &Source,
    prefixes: &[String; 2],
    sink: &Arc<dyn CacheSink>,
    dropped: &Arc<Notify>,
) -> redis::RedisResult<MultiplexedConnection> {
    let base = match source {
        Source::Url(slot) | Source::Sentinel(slot) => slot.master_client().await?,
    };
    let info = base.get_connection_info().clone();
    let settings = info
        .redis_settings()
        .clone()
        .set_protocol(ProtocolVersion::RESP3);
    let client = Client::open(info.set_redis_settings(settings))?;
    let (pushes, gone) = (sink.clone(), dropped.clone());
    let prefix_list = prefixes.clone();
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(RESPONSE_TIMEOUT))
        .set_response_timeout(Some(RESPONSE_TIMEOUT))
        .set_push_sender(move |push: PushInfo| -> Result<(), ()> {
            match push.kind {
                PushKind::Invalidate => deliver(&*pushes, &prefix_list, &push.data),
                PushKind::Disconnection => {
                    pushes.channel(false);
                    gone.notify_one();
                }
                _ => {}
            }
            Ok(())
        });
    let mut conn = client
        .get_multiplexed_async_connection_with_config(&config)
        .await?;
    redis::cmd("CLIENT")
        .arg("SETNAME")
        .arg(CONNECTION_NAME)
        .exec_async(&mut conn)
        .await?;
    let mut tracking = redis::cmd("CLIENT");
    tracking
        .arg("TRACKING")
        .arg("on")
        .arg("BCAST")
        .arg("NOLOOP");
    for p in prefixes {
        tracking.arg("PREFIX").arg(p);
    }
    tracking.exec_async(&mut conn).await?;
    Ok(conn)
}

/// Waits until the channel is no longer to be trusted; says why.
async fn watch(
    conn: &mut MultiplexedConnection,
    source: &Source,
    dropped: &Notify,
) -> &'static str {
    loop {
        tokio::select! {
            () = dropped.notified() => return "the connection closed",
            () = tokio::time::sleep(HEARTBEAT) => {}
        }
        match source {
            Source::Url(_) => {
                if redis::cmd("PING")
                    .query_async::<String>(conn)
                    .await
                    .is_err()
                {
                    return "no answer to the heartbeat";
                }
            }
            Source::Sentinel(_) => {
                let role: redis::RedisResult<Vec<Value>> =
                    redis::cmd("ROLE").query_async(conn).await;
                match role.as_deref() {
                    Ok([Value::BulkString(r), ..]) if r.as_slice() == b"master" => {}
                    Ok([Value::SimpleString(r), ..]) if r == "master" => {}
                    Ok(_) => return "the server is no longer the master",
                    Err(_) => return "no answer to the heartbeat",
                }
            }
        }
    }
}

/// One `invalidate` push: `[keys]`, or `[nil]` after a flush.
fn deliver(sink: &dyn CacheSink, prefixes: &[String; 2], data: &[Value]) {
    let [session_prefix, user_prefix] = prefixes;
    let keys = match data.first() {
        Some(Value::Array(keys)) => keys,
        _ => return sink.invalidate(Invalidation::All),
    };
    for key in keys {
        let key = match key {
            Value::BulkString(b) => std::str::from_utf8(b).ok(),
            Value::SimpleString(s) => Some(s.as_str()),
            _ => None,
        };
        let what = match key {
            Some(k) => match (
                k.strip_prefix(session_prefix.as_str()),
                k.strip_prefix(user_prefix.as_str()),
            ) {
                (Some(hex), _) => TokenHash::from_hex(hex).map(Invalidation::Session),
                (_, Some(id)) => Some(Invalidation::User(id)),
                _ => None,
            },
            None => None,
        };
        // A key under our prefixes we cannot read: forget everything.
        sink.invalidate(what.unwrap_or(Invalidation::All));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    #[derive(Default)]
    struct Seen(Mutex<Vec<String>>);
    impl CacheSink for Seen {
        fn invalidate(&self, what: Invalidation<'_>) {
            self.0.lock().unwrap().push(format!("{what:?}"));
        }
        fn channel(&self, _: bool) {}
    }

    #[test]
    fn pushes_name_sessions_users_or_everything() {
        let prefixes = ["lk:s:".to_owned(), "lk:u:".to_owned()];
        let seen = Seen::default();
        let hex = "ab".repeat(32);
        let keys = Value::Array(vec![
            Value::BulkString(format!("lk:s:{hex}").into_bytes()),
            Value::BulkString(b"lk:u:42".to_vec()),
            Value::BulkString(b"lk:s:nothex".to_vec()),
        ]);
        deliver(&seen, &prefixes, &[keys]);
        deliver(&seen, &prefixes, &[Value::Nil]);
        let seen = seen.0.into_inner().unwrap();
        assert_eq!(
            seen,
            [
                format!("{:?}", Invalidation::Session(TokenHash([0xab; 32]))),
                "User(\"42\")".to_owned(),
                "All".to_owned(),
                "All".to_owned(),
            ]
        );
    }
}
