//! `Identity`: who is calling, once a session cookie or a bearer token
//! checked out, joined with the user's current record; and
//! `SessionSettings`, how long a session lives. The cookie that carries a
//! session is http's (`http::cookies`); storing sessions is the store's.

use std::time::Duration;

use crate::store::records::{TokenHash, TokenRecord, User};

/// Who is calling, once the session or bearer token checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub user: User,
    /// Present for cookie sessions: the session's hash and its ends.
    pub session: Option<SessionRef>,
    /// Present for bearer tokens: the token's record.
    pub token: Option<TokenRecord>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRef {
    pub hash: TokenHash,
    /// Unix milliseconds when the session was made.
    pub created_at: u64,
    pub expires_at: u64,
    pub idle_expires_at: u64,
    /// How the session was made: `email` or `oidc:ID`.
    pub amr: String,
}

impl Identity {
    /// How this caller signed in: the session's `amr`, or `token` for a
    /// bearer token.
    pub fn amr(&self) -> &str {
        match &self.session {
            Some(s) => &s.amr,
            None => "token",
        }
    }
}

/// `[session]`'s lifetimes, compiled.
pub struct SessionSettings {
    pub idle_timeout: Duration,
    pub max_lifetime: Duration,
    /// `session.cache`: how many sessions the cache holds; `None` when off.
    pub cache: Option<usize>,
    /// `session.local_cache` was given (replaced by `cache`; warned at start).
    pub local_cache_alias: bool,
}
