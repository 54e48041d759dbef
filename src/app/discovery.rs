//! Finding each `[[login.providers]]` OpenID provider at start-up (and on
//! reload): one background task per provider runs discovery and loads its
//! keys, retrying with backoff (1 s doubling to a minute) while the
//! provider is unreachable, so a provider that is down never stops
//! latchkey. GitHub has nothing to discover: its client is ready at once.
//! Until its task succeeds the provider's slot is empty: its
//! button says it is unavailable and its `/start` answers a 502 page. A
//! task ends when it succeeds or when the `App` that owns the slot is gone
//! (a reload made a new one). The protocol is `identity::oidc`'s; the
//! slots are read by `signin::oauth`.

use std::sync::{Arc, Weak};
use std::time::Duration;

use tracing::Instrument as _;
use url::Url;

use super::AppError;
use crate::app::settings::Settings;
use crate::identity::oidc::{GitHubClient, OidcClient, Protocol, ProviderHttp};
use crate::obs::clock::Clock;
use crate::signin::oauth::{redirect_uri, ProviderSlot};

const FIRST_RETRY: Duration = Duration::from_secs(1);
const MAX_RETRY: Duration = Duration::from_secs(60);

/// One slot per provider, in the config's order; discovery runs in the
/// background. Must run inside the tokio runtime.
pub(super) fn spawn(
    settings: &Settings,
    clock: &Clock,
) -> Result<Vec<Arc<ProviderSlot>>, AppError> {
    if settings.providers.is_empty() {
        return Ok(Vec::new());
    }
    let http =
        ProviderHttp::new(None, settings.login.provider_timeout).map_err(AppError::ProviderTls)?;
    let mut slots = Vec::new();
    for p in &settings.providers {
        let slot = Arc::new(ProviderSlot::new(p.clone()));
        match (&p.protocol, redirect_uri(&settings.public_url, &p.id)) {
            (Protocol::OpenIdConnect { .. }, Some(uri)) => {
                let span = tracing::info_span!("discovery", provider = %p.id);
                let task = discover(Arc::downgrade(&slot), uri, http.clone(), clock.clone());
                tokio::spawn(task.instrument(span));
            }
            (Protocol::GitHub(_), Some(uri)) => {
                // OAuth 2 with fixed endpoints: nothing to discover.
                if let Some(c) = GitHubClient::new(p, uri, http.clone()) {
                    slot.set_client(c);
                }
            }
            (_, None) => tracing::warn!(
                provider = %p.id,
                "no redirect URI can be made from public_url; the button stays unavailable"
            ),
        }
        slots.push(slot);
    }
    Ok(slots)
}

async fn discover(slot: Weak<ProviderSlot>, redirect_uri: Url, http: ProviderHttp, clock: Clock) {
    let mut wait = FIRST_RETRY;
    loop {
        let Some(settings) = slot.upgrade().map(|s| s.settings.clone()) else {
            return;
        };
        match OidcClient::discover(&settings, redirect_uri.clone(), http.clone(), clock.clone())
            .await
        {
            Ok(client) => {
                if let Some(s) = slot.upgrade() {
                    s.set_client(client);
                }
                return;
            }
            Err(e) => tracing::warn!(
                error = %e,
                reason = e.label(),
                retry_in = ?wait,
                "provider discovery failed; its button says it is unavailable until it succeeds"
            ),
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(MAX_RETRY);
    }
}
