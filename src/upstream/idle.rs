//! Idle HTTP/1.1 connections to plain-HTTP upstreams, one set per runtime
//! worker thread (plus one for threads outside the runtime). latchkey runs
//! on tokio's multi-thread runtime: every connection is a task spawned from
//! the accept loop, and a task spawned (or woken) on a worker runs on that
//! worker's queue. A proxied request takes an idle connection from the set
//! of the worker it runs on; a new connection belongs to that set, and goes
//! back to it (its home) when its response body has been read to its end,
//! whichever worker read it. So each worker mostly reuses its own
//! connections, no lock is shared by every request, and the sets stay
//! balanced: tokio's work stealing moves tasks between workers, and putting
//! a connection back where its body ended would fill one worker's set
//! while the other opened new connections (measured: 280 connections for
//! 64 in flight, most closed again over `MAX_IDLE`). Only when a worker's
//! set is empty does it look in the others before connecting. The sets
//! belong to `client::Proxy` (shared by the `App`s a reload makes), never
//! to the process.
//!
//! Only connections known good are kept: a connection comes here when its
//! response was read to the end and said nothing against reuse (`send`
//! decides), and leaves it for good when it has been idle past its time
//! (ours, or the upstream's own `Keep-Alive: timeout`) or its driver has
//! seen the upstream close it. A connection that dies between the check
//! and its use is `send`'s retry rule.

use std::sync::Mutex;
use std::time::Duration;

use http::uri::Authority;
use hyper::client::conn::http1::SendRequest;
use tokio::time::Instant;

use super::up_body::UpBody;

/// At most this many idle connections per upstream in one worker's set;
/// one more is closed rather than kept.
const MAX_IDLE: usize = 256;

/// An idle connection and when it stops being usable.
struct Idle {
    send: SendRequest<UpBody>,
    until: Instant,
}

/// One worker's idle connections, by upstream (`host:port`). Few upstreams
/// per process: a list beats a map.
#[derive(Default)]
struct Set {
    by_upstream: Vec<(Authority, Vec<Idle>)>,
}

/// Every worker's idle connections.
pub(super) struct IdleSets {
    sets: Box<[Mutex<Set>]>,
    idle_timeout: Duration,
}

impl IdleSets {
    /// One set per worker of the runtime this is called on (or per core
    /// outside one), plus one for threads that are no worker; connections
    /// are kept at most `idle_timeout`.
    pub(super) fn new(idle_timeout: Duration) -> IdleSets {
        let workers = tokio::runtime::Handle::try_current()
            .map(|h| h.metrics().num_workers())
            .unwrap_or_else(|_| std::thread::available_parallelism().map_or(1, |n| n.get()));
        IdleSets {
            sets: (0..=workers).map(|_| Mutex::default()).collect(),
            idle_timeout,
        }
    }

    /// The index of the set of the worker this runs on: a new connection's
    /// home.
    pub(super) fn here(&self) -> usize {
        let others = self.sets.len() - 1;
        tokio::runtime::worker_index().map_or(others, |i| i % others.max(1))
    }

    /// An idle connection to `upstream` and its home: from this worker's
    /// set, else from another's.
    pub(super) fn take(&self, upstream: &Authority) -> Option<(SendRequest<UpBody>, usize)> {
        let here = self.here();
        let n = self.sets.len();
        (0..n)
            .map(|k| (here + k) % n)
            .find_map(|i| self.take_from(i, upstream).map(|c| (c, i)))
    }

    /// The most recently used idle connection to `upstream` in set `i` that
    /// is neither past its time nor seen closed; those that are go (and
    /// close).
    fn take_from(&self, i: usize, upstream: &Authority) -> Option<SendRequest<UpBody>> {
        let now = Instant::now();
        let mut dead = Vec::new();
        let found = {
            let mut set = self.sets[i].lock().unwrap_or_else(|p| p.into_inner());
            let list = set
                .by_upstream
                .iter_mut()
                .find(|(a, _)| a == upstream)
                .map(|(_, list)| list)?;
            loop {
                match list.pop() {
                    None => break None,
                    Some(c) if c.until > now && !c.send.is_closed() => break Some(c.send),
                    Some(c) => dead.push(c),
                }
            }
        };
        // Closed outside the lock.
        drop(dead);
        found
    }

    /// Keeps `send` in its `home` set for the next request to `upstream`,
    /// for our idle timeout or `upstream_keep` (what the upstream said it
    /// keeps idle connections), whichever is shorter.
    pub(super) fn put(
        &self,
        home: usize,
        upstream: &Authority,
        send: SendRequest<UpBody>,
        upstream_keep: Option<Duration>,
    ) {
        let now = Instant::now();
        let keep = upstream_keep.map_or(self.idle_timeout, |k| k.min(self.idle_timeout));
        if keep.is_zero() || send.is_closed() {
            return;
        }
        let idle = Idle {
            send,
            until: now + keep,
        };
        let mut expired = Vec::new();
        let Some(set) = self.sets.get(home) else {
            return;
        };
        let mut set = set.lock().unwrap_or_else(|p| p.into_inner());
        let list = match set.by_upstream.iter().position(|(a, _)| a == upstream) {
            Some(i) => &mut set.by_upstream[i].1,
            None => {
                set.by_upstream.push((upstream.clone(), Vec::new()));
                let last = set.by_upstream.len() - 1;
                &mut set.by_upstream[last].1
            }
        };
        // The oldest are first: sweep when the first is past its time, so
        // an upstream that gets fewer requests does not keep dead ones.
        if list.first().is_some_and(|c| c.until <= now) {
            let (live, old): (Vec<Idle>, Vec<Idle>) = std::mem::take(list)
                .into_iter()
                .partition(|c| c.until > now && !c.send.is_closed());
            *list = live;
            expired = old;
        }
        if list.len() < MAX_IDLE {
            list.push(idle);
        }
        drop(set);
        drop(expired);
    }

    /// How many idle connections this worker's set holds for `upstream`
    /// (for the tests).
    #[cfg(test)]
    fn count(&self, upstream: &Authority) -> usize {
        let set = self.sets[self.here()]
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        set.by_upstream
            .iter()
            .find(|(a, _)| a == upstream)
            .map_or(0, |(_, l)| l.len())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use hyper_util::rt::TokioIo;

    /// A connection to a listener that accepts and holds it.
    async fn conn(
        listener: &tokio::net::TcpListener,
    ) -> (SendRequest<UpBody>, tokio::net::TcpStream) {
        let addr = listener.local_addr().unwrap();
        let (client, server) =
            tokio::join!(tokio::net::TcpStream::connect(addr), listener.accept());
        let (send, driver) = hyper::client::conn::http1::handshake(TokioIo::new(client.unwrap()))
            .await
            .unwrap();
        tokio::spawn(driver);
        (send, server.unwrap().0)
    }

    #[tokio::test]
    async fn keeps_live_connections_only_for_their_time() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let up: Authority = "127.0.0.1:1".parse().unwrap();
        let other: Authority = "127.0.0.1:2".parse().unwrap();
        let sets = IdleSets::new(Duration::from_millis(300));
        let ms = Duration::from_millis;
        let h = sets.here();

        let (a, _held_a) = conn(&listener).await;
        sets.put(h, &up, a, None);
        assert_eq!(sets.count(&up), 1);
        assert!(sets.take(&other).is_none(), "another upstream's");
        assert!(sets.take(&up).is_some());
        assert!(sets.take(&up).is_none(), "taken once");

        // The upstream's Keep-Alive is shorter than ours: it wins.
        let (b, _held_b) = conn(&listener).await;
        sets.put(h, &up, b, Some(ms(20)));
        tokio::time::sleep(ms(60)).await;
        assert!(sets.take(&up).is_none(), "past the upstream's keep-alive");

        // Closed by the upstream while idle.
        let (c, held_c) = conn(&listener).await;
        sets.put(h, &up, c, None);
        drop(held_c);
        tokio::time::sleep(ms(50)).await;
        assert!(sets.take(&up).is_none(), "closed by the upstream");

        // Past our own idle timeout; the sweep on the next put drops it.
        let (d, _held_d) = conn(&listener).await;
        sets.put(h, &up, d, None);
        tokio::time::sleep(ms(400)).await;
        let (e, _held_e) = conn(&listener).await;
        sets.put(h, &up, e, None);
        assert_eq!(sets.count(&up), 1, "the expired one swept");
        assert!(sets.take(&up).is_some());
        assert!(sets.take(&up).is_none(), "past our idle timeout");
    }
}
