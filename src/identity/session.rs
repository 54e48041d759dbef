//! `Identity`: who is calling, once a session cookie or a bearer token
//! checked out, joined with the user's current record.

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
