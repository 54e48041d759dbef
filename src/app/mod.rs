//! `App`: everything a request needs, built once from `Settings` and shared
//! as one `Arc<App>`. No global state: the store, the mail queue and the
//! upstream client live here. It is the composition root only: the layers
//! below get the narrow parts they use (`parts`: `Identifier`, `SignIn`),
//! never `App` itself; gate and server, above, hold the `Arc<App>`.
//!
//! A config reload (SIGHUP) builds a new `App` with
//! [`App::reconfigured`]: new settings, the same store, mail queue and
//! upstream pool (all cheap to share), and providers discovered afresh. The server swaps it in for new
//! requests; requests in flight keep the `Arc<App>` they started with.

mod discovery;
mod parts;
pub mod settings;

use std::sync::Arc;

use crate::app::settings::Settings;
use crate::identity::assertion_cache::AssertionCache;
use crate::identity::bearer_cache::BearerCache;
use crate::identity::cache::SessionCache;
use crate::obs::clock::Clock;
use crate::obs::mail_stats::MailStats;
use crate::obs::metrics::Metrics;
use crate::signin::mail::MailQueue;
use crate::signin::oauth::ProviderSlot;
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
    /// `session.cache` (on by default with Redis, one URL or Sentinel);
    /// `None` when off. Shared across reloads: its invalidation channel
    /// runs for the life of the process.
    pub session_cache: Option<Arc<SessionCache>>,
    /// Assertions signed recently, reused for a sixth of their life. Not
    /// shared across reloads (new keys or ttl start afresh).
    pub assertions: AssertionCache,
    /// Bearer tokens whose signature was verified recently. Not shared
    /// across reloads: a key rotated away takes its tokens with it.
    pub bearer_cache: BearerCache,
    /// Where "now" comes from (the system clock; tests move a manual one).
    pub clock: Clock,
    /// `[[login.providers]]`, each discovered in the background (`discovery`).
    pub providers: Vec<Arc<ProviderSlot>>,
    /// When these settings began to serve (Unix ms): start-up, or the
    /// reload that built this `App`.
    pub loaded_at_ms: u64,
}

impl App {
    /// Builds the runtime pieces. Must run inside the tokio runtime (the
    /// mail worker is spawned here). Does not wait for Redis: latchkey starts
    /// when the store is down and serves as soon as it is back.
    pub fn new(settings: Settings) -> Result<App, AppError> {
        let clock = Clock::system();
        let redis = settings.redis.as_ref().map(|r| r.open()).transpose()?;
        let store = Backend::open(redis, settings.store_path.as_deref(), &clock)?;
        let session_cache = session_cache(&settings, &store);
        let mail_stats = Arc::new(MailStats::default());
        let mail = MailQueue::spawn(settings.mailer.clone(), mail_stats.clone());
        let proxy = Proxy::new(settings.upstream_timeout)?;
        let providers = discovery::spawn(&settings, &clock)?;
        Ok(App {
            store: Arc::new(store),
            mail: Arc::new(mail),
            mail_stats,
            proxy,
            metrics: Arc::new(Metrics::new()),
            session_cache,
            assertions: AssertionCache::default(),
            bearer_cache: BearerCache::default(),
            loaded_at_ms: clock.now_ms(),
            clock,
            providers,
            settings,
        })
    }

    /// An `App` on new `settings` that shares this one's store, upstream
    /// connection pool and (unless `new_mailer`) mail queue. With
    /// `new_mailer` a queue for the new `[mail]` settings is started; the
    /// old one takes no new mail once the last `App` and request holding it
    /// are gone, sends (and retries) what it holds, and stops (see
    /// `MailQueue`). Must run inside the tokio runtime.
    pub fn reconfigured(&self, settings: Settings, new_mailer: bool) -> Result<App, AppError> {
        let mail = if new_mailer {
            // "Down" was said of the old transport; the new one is unknown
            // until it fails (or its first send succeeds).
            self.mail_stats
                .down
                .store(false, std::sync::atomic::Ordering::Relaxed);
            Arc::new(MailQueue::spawn(
                settings.mailer.clone(),
                self.mail_stats.clone(),
            ))
        } else {
            self.mail.clone()
        };
        let providers = discovery::spawn(&settings, &self.clock)?;
        Ok(App {
            proxy: self.proxy.with_timeout(settings.upstream_timeout),
            store: self.store.clone(),
            mail,
            mail_stats: self.mail_stats.clone(),
            metrics: self.metrics.clone(),
            session_cache: match settings.session.cache {
                Some(_) => self.session_cache.clone(),
                None => None,
            },
            assertions: AssertionCache::default(),
            bearer_cache: BearerCache::default(),
            clock: self.clock.clone(),
            providers,
            loaded_at_ms: self.clock.now_ms(),
            settings,
        })
    }
}

/// The session cache `settings` ask for, its invalidation channel started:
/// only on Redis (the memory store is memory already), and not on a
/// cluster, where no one channel hears every slot's writes. Turning it on
/// by a reload needs a restart.
fn session_cache(settings: &Settings, store: &Backend) -> Option<Arc<SessionCache>> {
    let s = &settings.session;
    if s.local_cache_alias {
        tracing::warn!(
            "session.local_cache is replaced by session.cache (on by default, kept coherent by Redis); its duration is ignored: remove it"
        );
    }
    let (entries, Backend::Redis(redis)) = (s.cache?, store) else {
        return None;
    };
    let cache = Arc::new(SessionCache::new(entries));
    let Some(slider) = redis.track(cache.clone()) else {
        tracing::info!("session.cache is not used with redis.cluster: every request asks Redis");
        return None;
    };
    cache.slide_with(slider);
    Some(cache)
}

/// The runtime pieces could not be built.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("setting up the session store")]
    Store(#[from] StoreError),
    #[error("setting up TLS for upstreams")]
    Tls(#[from] crate::tls::TlsError),
    #[error("setting up TLS for identity providers")]
    ProviderTls(#[source] crate::tls::TlsError),
}
