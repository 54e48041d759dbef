//! The accept loop of one listener: takes connections until shutdown
//! begins, closes new ones at once when `server.max_connections` are open
//! (rather than queue them without bound), and hands each to
//! `connection::serve`. When shutdown begins it drops the listener, so new
//! connections are refused while open ones drain (`serve`'s wait).
//!
//! A connection's place in the limit, and in the drain, is a `stream::Lease` that
//! travels with its byte stream: when hyper hands the stream on to a
//! WebSocket tunnel (`upstream::upgrade`), the lease goes with it, so an
//! upgraded connection still counts against `server.max_connections` and
//! shutdown still waits for it, until the tunnel ends.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch, Semaphore};

use super::connection;
use super::stopped;
use super::stream::Lease;
use super::{Live, Role};

/// What an accept loop needs; cloned for each listener.
#[derive(Clone)]
pub(super) struct Accepting {
    pub(super) live: Arc<Live>,
    pub(super) slots: Arc<Semaphore>,
    pub(super) stop: watch::Receiver<bool>,
    pub(super) done: mpsc::Sender<()>,
}

impl Accepting {
    pub(super) async fn run(mut self, listener: TcpListener, role: Role) {
        let mut warned_full: Option<Instant> = None;
        loop {
            let (stream, peer) = tokio::select! {
                biased;
                () = stopped(&mut self.stop) => break,
                accepted = listener.accept() => match accepted {
                    Ok(pair) => pair,
                    Err(e) => {
                        // Out of file descriptors and the like: back off, keep serving.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let Ok(permit) = self.slots.clone().try_acquire_owned() else {
                // Full: close at once rather than queue without bound.
                if warned_full.is_none_or(|t| t.elapsed() > Duration::from_secs(10)) {
                    tracing::warn!(
                        max = self.live.app.load().settings.conn.max_connections,
                        "server.max_connections reached; closing new connections"
                    );
                    warned_full = Some(Instant::now());
                }
                drop(stream);
                continue;
            };
            let lease = Lease::new(permit, self.done.clone());
            let (live, stop, role) = (self.live.clone(), self.stop.clone(), role.clone());
            tokio::spawn(connection::serve(stream, lease, peer, live, role, stop));
        }
        // Dropping the listener here refuses new connections at once.
        drop(listener);
    }
}
