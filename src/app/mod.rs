//! `App`: everything a request needs, built once from `Settings` and shared
//! as one `Arc<App>`. No global state: the store, the mail queue and the
//! upstream client live here. It is the composition root only: the layers
//! below get the narrow parts they use (`parts`: `Identifier`, `SignIn`),
//! never `App` itself; gate and server, above, hold the `Arc<App>`.
//!
//! A config reload (SIGHUP) builds a new `App` with
//! [`App::reconfigured`]: new settings, the same store, mail queue and
//! upstream pool (all cheap to share). The server swaps it in for new
//! requests; requests in flight keep the `Arc<App>` they started with.

mod parts;
pub mod settings;

use std::sync::Arc;

use crate::app::settings::Settings;
use crate::identity::cache::SessionCache;
use crate::obs::clock::Clock;
use crate::obs::mail_stats::MailStats;
use crate::obs::metrics::Metrics;
use crate::signin::mail::MailQueue;
use crate::store::{Backend, StoreError};
use crate::upstream::Proxy;

pub struct App {
    pub settings: Settings,
    pub store: Arc<Backend>,
    pub mail: Arc<MailQueue>,
    pub mail_stats: Arc<MailStats>,
    pub proxy: Proxy,
    /// Shared across reloads: counters never reset on SIGHUP.
    pub metrics: Arc<Metrics>,
    /// `session.local_cache`; `None` when off (the default).
    pub session_cache: Option<SessionCache>,
    /// Where "now" comes from (the system clock; tests move a manual one).
    pub clock: Clock,
}

impl App {
    /// Builds the runtime pieces. Must run inside the tokio runtime (the
    /// mail worker is spawned here). Does not wait for Redis: latchkey starts
    /// when the store is down and serves as soon as it is back.
    pub fn new(settings: Settings) -> Result<App, AppError> {
        let clock = Clock::system();
        let redis = settings.redis.as_ref().map(|r| r.open()).transpose()?;
        let store = Backend::open(redis, settings.store_path.as_deref(), &clock)?;
        let mail_stats = Arc::new(MailStats::default());
        let mail = MailQueue::spawn(settings.mailer.clone(), mail_stats.clone());
        let proxy = Proxy::new(settings.upstream_timeout)?;
        Ok(App {
            store: Arc::new(store),
            mail: Arc::new(mail),
            mail_stats,
            proxy,
            metrics: Arc::new(Metrics::new()),
            session_cache: settings.session.local_cache.map(SessionCache::new),
            clock,
            settings,
        })
    }

    /// An `App` on new `settings` that shares this one's store, upstream
    /// connection pool and (unless `new_mailer`) mail queue. With
    /// `new_mailer` a queue for the new `[mail]` settings is started; the
    /// old one sends what it holds and stops when the last request using it
    /// ends. Must run inside the tokio runtime.
    pub fn reconfigured(&self, settings: Settings, new_mailer: bool) -> App {
        let mail = if new_mailer {
            Arc::new(MailQueue::spawn(
                settings.mailer.clone(),
                self.mail_stats.clone(),
            ))
        } else {
            self.mail.clone()
        };
        App {
            proxy: self.proxy.with_timeout(settings.upstream_timeout),
            store: self.store.clone(),
            mail,
            mail_stats: self.mail_stats.clone(),
            metrics: self.metrics.clone(),
            session_cache: settings.session.local_cache.map(SessionCache::new),
            clock: self.clock.clone(),
            settings,
        }
    }
}

/// The runtime pieces could not be built.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("setting up the session store")]
    Store(#[from] StoreError),
    #[error("setting up TLS for upstreams")]
    Tls(#[from] crate::tls::TlsError),
}
