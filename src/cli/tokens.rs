//! `latchkey tokens issue|list|revoke`: long-lived bearer tokens for
//! scripts, managed in the configured store. `cli` parses the command line
//! and calls these; what a token is and how it is checked lives in
//! `identity::bearer`.
//!
//! A token's value is printed once, on standard output alone (so
//! `TOKEN=$(latchkey tokens issue ...)` works); everything else goes to
//! standard error.

use std::io::Write as _;

use crate::app::settings::Settings;
use crate::identity::bearer::IssueError;
use crate::obs::clock::Clock;
use crate::signin::time_text::rfc3339;
use crate::store::records::{normalize_email, user_id};
use crate::store::{Backend, Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("bearer tokens are kept in the store, and without [redis] the store lives only inside `latchkey serve`; configure [redis] to manage tokens from the command line")]
    NoRedis,
    #[error("no signing keys are configured; add [assertion] keys (make one with `latchkey keys generate`)")]
    NoKeys,
    #[error("{0:?} is not an email address")]
    BadEmail(String),
    #[error("no user {0} (expected one in [[users]] or added with `latchkey users add`)")]
    UnknownUser(String),
    #[error("--ttl {0:?}: expected a positive duration like \"90d\", \"30d\" or \"12h\"")]
    BadTtl(String),
    #[error("--name {0:?}: expected 1 to 64 letters, digits, '-', '_' or '.'")]
    BadName(String),
    #[error("no token {0} (already revoked, expired, or never issued)")]
    NoSuchToken(String),
    #[error("session store: {0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Issue(#[from] IssueError),
    #[error("generating a key failed: {0}")]
    Keygen(#[from] aws_lc_rs::error::Unspecified),
    #[error("writing {path}: {source}")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// The CLI's "now": a command runs once, on the system clock.
pub(crate) fn now_ms() -> u64 {
    Clock::system().now_ms()
}

fn open_store(settings: &Settings) -> Result<Backend, CliError> {
    let redis = settings.redis.as_ref().ok_or(CliError::NoRedis)?;
    Ok(Backend::Redis(redis.open()?))
}

/// `latchkey tokens issue --email E --ttl 30d --name ci`.
pub async fn issue(
    settings: &Settings,
    email: &str,
    ttl: &str,
    name: &str,
) -> Result<(), CliError> {
    if settings.keys.is_empty() {
        return Err(CliError::NoKeys);
    }
    let email = normalize_email(email).ok_or_else(|| CliError::BadEmail(email.to_owned()))?;
    let ttl_d = humantime::parse_duration(ttl)
        .ok()
        .filter(|d| d.as_secs() >= 1)
        .ok_or_else(|| CliError::BadTtl(ttl.to_owned()))?;
    let name_ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if !name_ok {
        return Err(CliError::BadName(name.to_owned()));
    }
    let store = open_store(settings)?;
    let user = match settings.users.get(&email) {
        Some(u) => u.clone(),
        None => store
            .get_user(&user_id(&email))
            .await?
            .ok_or_else(|| CliError::UnknownUser(email.clone()))?,
    };
    let (token, record) = settings
        .signer()
        .issue(&store, &user, name, None, ttl_d, now_ms())
        .await?;
    eprintln!(
        "Issued token {} ({}) for {}, valid until {}.\n\
         It is printed once, below; keep it like a password. Send it as\n  \
         Authorization: Bearer <token>\n\
         Revoke it with: latchkey tokens revoke {}",
        record.jti,
        record.name,
        record.email,
        rfc3339(record.expires_at),
        record.jti
    );
    println!("{token}");
    Ok(())
}

/// `latchkey tokens list [--email E]`.
pub async fn list(settings: &Settings, email: Option<&str>) -> Result<(), CliError> {
    let store = open_store(settings)?;
    let email = match email {
        Some(e) => Some(normalize_email(e).ok_or_else(|| CliError::BadEmail(e.to_owned()))?),
        None => None,
    };
    let all = store.list_tokens().await?;
    let shown: Vec<_> = all
        .iter()
        .filter(|t| email.as_deref().is_none_or(|e| t.email == e))
        .collect();
    if shown.is_empty() {
        eprintln!("no live tokens");
        return Ok(());
    }
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "{:<32}  {:<16}  {:<30}  {:<20}  EXPIRES",
        "ID", "NAME", "EMAIL", "CREATED"
    );
    for t in shown {
        let _ = writeln!(
            out,
            "{:<32}  {:<16}  {:<30}  {:<20}  {}",
            t.jti,
            t.name,
            t.email,
            rfc3339(t.created_at),
            rfc3339(t.expires_at)
        );
    }
    Ok(())
}

/// `latchkey tokens revoke ID`: the token stops working on its next request.
pub async fn revoke(settings: &Settings, jti: &str) -> Result<(), CliError> {
    let store = open_store(settings)?;
    if !store.revoke_token(jti).await? {
        return Err(CliError::NoSuchToken(jti.to_owned()));
    }
    eprintln!("revoked token {jti}");
    Ok(())
}
