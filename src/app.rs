//! `App`: everything a request needs, built once from `Settings` and shared
//! as one `Arc<App>`. No global state: the store, the mail queue and the
//! upstream client live here.

use std::sync::Arc;

use crate::mail::{MailQueue, MailStats};
use crate::proxy::Proxy;
use crate::settings::Settings;
use crate::store::{Backend, MemoryStore, RedisStore, StoreError};

pub struct App {
    pub settings: Settings,
    pub store: Backend,
    pub mail: MailQueue,
    pub mail_stats: Arc<MailStats>,
    pub proxy: Proxy,
}

impl App {
    /// Builds the runtime pieces. Must run inside the tokio runtime (the
    /// mail worker is spawned here). Does not wait for Redis: latchkey starts
    /// when the store is down and serves as soon as it is back.
    pub fn new(settings: Settings) -> Result<App, StoreError> {
        let store = match &settings.redis {
            Some(r) => Backend::Redis(RedisStore::open(
                &r.target,
                &r.key_prefix,
                r.ca_pem.as_deref(),
            )?),
            None => {
                tracing::warn!(
                    "no [redis] configured: using the in-memory store (one instance only; sessions are lost on restart)"
                );
                Backend::Memory(MemoryStore::new())
            }
        };
        let mail_stats = Arc::new(MailStats::default());
        let mail = MailQueue::spawn(settings.mailer.clone(), mail_stats.clone());
        let proxy = Proxy::new(settings.upstream_timeout);
        Ok(App {
            settings,
            store,
            mail,
            mail_stats,
            proxy,
        })
    }
}
