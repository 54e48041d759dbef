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
    pub expires_at: u64,
    pub idle_expires_at: u64,
}

/// `[session]`'s lifetimes, compiled.
pub struct SessionSettings {
    pub idle_timeout: Duration,
    pub max_lifetime: Duration,
    /// `session.local_cache`: at most one second, `None` when off.
    pub local_cache: Option<Duration>,
}
