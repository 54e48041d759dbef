//! The narrow views `App` hands out, so that no layer below it needs to
//! know `App`: an `Identifier` (identity's lookup), a `SignIn` (sign-in's
//! handlers), and the task that runs a link request off the request path
//! (`signin::Detached`). Each is references into this `App`; the structs
//! are defined by the layer that uses them.

use std::sync::Arc;

use tracing::Instrument as _;

use crate::app::App;
use crate::identity::identify::Identifier;
use crate::signin::link::PendingLink;
use crate::signin::{Detached, SignIn};

impl App {
    /// What identity needs to say who is calling.
    pub fn identifier(&self) -> Identifier<'_> {
        let s = &self.settings;
        Identifier {
            store: &self.store,
            cache: self.session_cache.as_deref(),
            session: &s.session,
            users: &s.users,
            signer: s.signer(),
            bearer_cache: &self.bearer_cache,
        }
    }

    /// What sign-in's handlers need, for one request. On an `Arc<App>`, so
    /// that a link request's task can hold on to this `App`.
    pub fn sign_in(self: &Arc<App>) -> SignIn<'_> {
        let s = &self.settings;
        SignIn {
            login: &s.login,
            limits: &s.limits,
            cookies: &s.cookies,
            users: &s.users,
            public_url: &s.public_url,
            return_policy: &s.return_policy,
            pages: &s.pages,
            token_ttl: s.token_ttl,
            store: &self.store,
            session_cache: self.session_cache.as_deref(),
            mail: &self.mail,
            mail_stats: &self.mail_stats,
            metrics: &self.metrics,
            identifier: self.identifier(),
            detached: self,
            providers: &self.providers,
        }
    }
}

impl Detached for Arc<App> {
    fn prepare_link(&self, pending: PendingLink) {
        let app = self.clone();
        // The request's span goes along: the task's lines carry its id.
        tokio::spawn(
            async move { pending.send(&app.sign_in()).await }.instrument(tracing::Span::current()),
        );
    }
}
