//! The mail queue: a bounded queue in front of a `Mailer` and the worker
//! that drains it, so that `enqueue` never waits (the "check your email"
//! answer takes the same time whether or not a mail is sent). The worker
//! sends a few at once, retries with exponential backoff, counts everything
//! in `obs::mail_stats::MailStats` and turns `transport_down` on and off; a
//! probe notices when a down transport is back. What is sent, and how, is
//! `message`'s and `transport`'s.
//!
//! A queue ends when it is dropped (a reload replaced `[mail]` and the last
//! `App` and request holding the old queue are gone) or shut down: it takes
//! no new mail, its probe stops, it sends and retries what it already holds
//! on its own transport, then its worker ends and says so. From then on its
//! sends no longer speak for `transport_down`, which is about the transport
//! new mail goes to.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, Semaphore};
use tokio::task::{JoinHandle, JoinSet};

use super::message::{recipient_domain, Email};
use super::transport::Mailer;
use crate::obs::mail_stats::MailStats;

/// How the queue behaves; [`QueueSettings::default`] suits production.
#[derive(Debug, Clone)]
pub struct QueueSettings {
    /// Messages waiting to be sent before new ones are dropped.
    pub capacity: usize,
    /// Tries per message, the first included.
    pub attempts: u32,
    /// Wait after the first failure; each later wait is four times longer.
    pub base_delay: Duration,
    /// Messages being sent (or waiting to retry) at once.
    pub concurrency: usize,
    /// While the transport is down, how often to probe it.
    pub probe_every: Duration,
}

impl Default for QueueSettings {
    /// 1 024 waiting, 4 tries with waits of 1 s, 4 s and 16 s, 8 at once;
    /// a down transport probed every 5 s.
    fn default() -> Self {
        QueueSettings {
            capacity: 1024,
            attempts: 4,
            base_delay: Duration::from_secs(1),
            concurrency: 8,
            probe_every: Duration::from_secs(5),
        }
    }
}

/// A bounded queue in front of a [`Mailer`], drained by a background task.
#[derive(Debug)]
pub struct MailQueue {
    /// First, so it is dropped before the sender closes the channel.
    running: Running,
    tx: mpsc::Sender<Email>,
    stats: Arc<MailStats>,
    worker: JoinHandle<()>,
}

/// What dropping a queue ends at once: the probe, and its say over
/// `transport_down`. The worker ends by itself once the channel is closed
/// and what it held is sent.
#[derive(Debug)]
struct Running {
    prober: JoinHandle<()>,
    retired: Arc<AtomicBool>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.retired.store(true, Ordering::Relaxed);
        self.prober.abort();
    }
}

impl MailQueue {
    /// Starts the worker on the current tokio runtime, with default settings.
    pub fn spawn(mailer: Arc<Mailer>, stats: Arc<MailStats>) -> MailQueue {
        MailQueue::spawn_with(mailer, stats, QueueSettings::default())
    }

    /// Starts the worker on the current tokio runtime.
    pub fn spawn_with(
        mailer: Arc<Mailer>,
        stats: Arc<MailStats>,
        settings: QueueSettings,
    ) -> MailQueue {
        let (tx, rx) = mpsc::channel(settings.capacity.max(1));
        let retired = Arc::new(AtomicBool::new(false));
        let prober = tokio::spawn(probe(mailer.clone(), stats.clone(), settings.probe_every));
        let worker = tokio::spawn(run(mailer, rx, stats.clone(), settings, retired.clone()));
        MailQueue {
            running: Running { prober, retired },
            tx,
            stats,
            worker,
        }
    }

    /// Queues a message without waiting. When the queue is full the message
    /// is dropped, counted and logged.
    pub fn enqueue(&self, email: Email) {
        match self.tx.try_send(email) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(email)) => {
                self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    domain = %recipient_domain(&email.to),
                    "mail queue full; sign-in mail dropped"
                );
            }
            Err(mpsc::error::TrySendError::Closed(email)) => {
                self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                tracing::error!(
                    domain = %recipient_domain(&email.to),
                    "mail worker has stopped; sign-in mail dropped"
                );
            }
        }
    }

    /// Stops taking mail and waits until every queued message is sent or
    /// given up on (including retries; wrap in a timeout at shutdown).
    pub async fn shutdown(self) {
        let MailQueue {
            running,
            tx,
            worker,
            ..
        } = self;
        drop(running);
        drop(tx);
        if let Err(e) = worker.await {
            tracing::error!(error = %e, "mail worker failed");
        }
    }
}

/// While the transport is down, checks every `every` whether it is back.
async fn probe(mailer: Arc<Mailer>, stats: Arc<MailStats>, every: Duration) {
    loop {
        tokio::time::sleep(every).await;
        if stats.transport_down() {
            match mailer.probe().await {
                Ok(()) => stats.set_down(false),
                Err(e) => tracing::debug!(error = %e, "mail transport still unreachable"),
            }
        }
    }
}

async fn run(
    mailer: Arc<Mailer>,
    mut rx: mpsc::Receiver<Email>,
    stats: Arc<MailStats>,
    settings: QueueSettings,
    retired: Arc<AtomicBool>,
) {
    let slots = Arc::new(Semaphore::new(settings.concurrency.max(1)));
    let mut tasks = JoinSet::new();
    while let Some(email) = rx.recv().await {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            break;
        };
        while tasks.try_join_next().is_some() {}
        let (mailer, stats, settings, retired) = (
            mailer.clone(),
            stats.clone(),
            settings.clone(),
            retired.clone(),
        );
        tasks.spawn(async move {
            deliver(&mailer, &email, &stats, &settings, &retired).await;
            drop(slot);
        });
    }
    tracing::info!(
        transport = mailer.kind(),
        sending = tasks.len(),
        "mail queue closed to new mail ([mail] replaced, or stopping); finishing what it holds"
    );
    while tasks.join_next().await.is_some() {}
    tracing::info!(
        transport = mailer.kind(),
        "mail queue stopped: everything it held was sent or given up on"
    );
}

/// Sends one message, retrying with backoff. Once the queue is `retired`
/// its results no longer set `transport_down`.
async fn deliver(
    mailer: &Mailer,
    email: &Email,
    stats: &MailStats,
    settings: &QueueSettings,
    retired: &AtomicBool,
) {
    let current = || !retired.load(Ordering::Relaxed);
    let domain = recipient_domain(&email.to);
    let attempts = settings.attempts.max(1);
    let mut delay = settings.base_delay;
    for attempt in 1..=attempts {
        match mailer.send(email).await {
            Ok(()) => {
                stats.sent.fetch_add(1, Ordering::Relaxed);
                if current() {
                    stats.set_down(false);
                }
                tracing::info!(%domain, attempt, transport = mailer.kind(), "sign-in mail sent");
                return;
            }
            Err(e) => {
                stats.failed.fetch_add(1, Ordering::Relaxed);
                if e.is_transport_down() && current() {
                    stats.set_down(true);
                }
                // Server replies may quote the address; logs get the domain only.
                let error = e.to_string().replace(email.to.trim(), "<recipient>");
                if attempt == attempts || e.is_permanent() {
                    stats.abandoned.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(%domain, attempt, %error, "gave up sending sign-in mail");
                    return;
                }
                tracing::warn!(%domain, attempt, %error, retry_in = ?delay, "sign-in mail failed; will retry");
                tokio::time::sleep(delay).await;
                delay = delay.saturating_mul(4);
            }
        }
    }
}
