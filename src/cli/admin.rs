//! `latchkey users` (with `users passkeys`) and `latchkey sessions`: ops change the configured
//! store directly, and every running instance sees the change on its next
//! request (identity reads the user's record and the session on each one).
//!
//! This module owns the subcommands' arguments (clap) and what they do;
//! `main.rs` loads the config and hands the compiled `Settings` here. Users
//! from `[[users]]` in the config win over stored ones, so they are listed
//! but never changed from here: the config is their source of truth. With
//! no `[redis]` there is nothing to reach: a running instance's memory is
//! its own.

use std::fmt::Write as _;
use std::time::{Duration, UNIX_EPOCH};

use clap::Subcommand;

use super::tokens::now_ms;
use crate::app::settings::Settings;
use crate::policy::check_role_name;
use crate::store::records::{normalize_email, user_id, TokenHash, User};
use crate::store::{RedisStore, Store, StoreError};

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Add a user who may then sign in (also when signup is closed).
    Add {
        email: String,
        /// Comma-separated roles [default: login.default_roles]
        #[arg(long)]
        roles: Option<String>,
    },
    /// List users: those from the config file, then those in the store.
    List,
    /// Remove a stored user and end all their sessions.
    Remove { email: String },
    /// Replace a stored user's roles (comma-separated; "" for none). Takes
    /// effect on their next request, on every instance.
    SetRoles { email: String, roles: String },
    /// A person's passkeys: list, remove.
    Passkeys {
        #[command(subcommand)]
        command: PasskeysCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum SessionsCommand {
    /// List live sessions (every user's, or one user's).
    List {
        #[arg(long)]
        user: Option<String>,
    },
    /// End one session by its id (from `sessions list`), or all of a user's.
    Revoke {
        /// The session's id.
        #[arg(required_unless_present = "user", conflicts_with = "user")]
        id: Option<String>,
        /// End every session of this user instead.
        #[arg(long)]
        user: Option<String>,
    },
}

/// What went wrong; shown to the operator as one line.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("no [redis] is configured: the users and sessions of a running latchkey live in its own memory, which this command cannot reach. Configure [redis] to manage them from here.")]
    NoStore,
    #[error("could not set up the store: {0}")]
    Open(#[source] StoreError),
    #[error("the store did not answer: {0}")]
    Store(#[from] StoreError),
    #[error("{0:?} is not an email address")]
    BadEmail(String),
    #[error("{0:?} is not a role name; expected words without spaces, separated by commas")]
    BadRole(String),
    #[error(
        "{0} is defined in the config file ([[users]]), which wins over the store; change it there"
    )]
    ConfigUser(String),
    #[error("{0} is already a stored user; use `latchkey users set-roles` to change their roles")]
    Exists(String),
    #[error("{0} is not a stored user")]
    NoSuchUser(String),
    #[error(
        "{0:?} is not a session id; expected the 64-character id shown by `latchkey sessions list`"
    )]
    BadSessionId(String),
    #[error("no live session has the id {0}")]
    NoSuchSession(String),
    #[error("{1} has no passkey with the id {0:?} (see `latchkey users passkeys list`)")]
    NoSuchPasskey(String, String),
}

fn store(settings: &Settings) -> Result<RedisStore, AdminError> {
    let r = settings.redis.as_ref().ok_or(AdminError::NoStore)?;
    r.open().map_err(AdminError::Open)
}

fn email(raw: &str) -> Result<String, AdminError> {
    normalize_email(raw).ok_or_else(|| AdminError::BadEmail(raw.to_owned()))
}

fn roles(raw: &str) -> Result<Vec<String>, AdminError> {
    let mut out: Vec<String> = Vec::new();
    for r in raw.split(',').map(str::trim).filter(|r| !r.is_empty()) {
        if check_role_name(r).is_err() {
            return Err(AdminError::BadRole(r.to_owned()));
        }
        if !out.iter().any(|o| o == r) {
            out.push(r.to_owned());
        }
    }
    Ok(out)
}

/// A stored user that the CLI may change: not one from the config.
fn changeable(settings: &Settings, raw: &str) -> Result<String, AdminError> {
    let email = email(raw)?;
    if settings.users.contains_key(&email) {
        return Err(AdminError::ConfigUser(email));
    }
    Ok(email)
}

fn time(ms: u64) -> String {
    let t = UNIX_EPOCH + Duration::from_millis(ms);
    humantime::format_rfc3339_seconds(t).to_string()
}

/// Runs one `latchkey users` command; returns what to print.
pub async fn users(settings: &Settings, cmd: UsersCommand) -> Result<String, AdminError> {
    let store = store(settings)?;
    match cmd {
        UsersCommand::Add { email, roles: r } => {
            let email = changeable(settings, &email)?;
            let roles = match r {
                Some(r) => roles(&r)?,
                None => settings.login.default_roles.clone(),
            };
            let id = user_id(&email);
            if store.get_user(&id).await?.is_some() {
                return Err(AdminError::Exists(email));
            }
            let user = User {
                id,
                email,
                roles,
                created_at: now_ms(),
            };
            store.put_user(&user).await?;
            Ok(format!(
                "added {} (roles: {})\n",
                user.email,
                show_roles(&user.roles)
            ))
        }
        UsersCommand::List => {
            let mut out = String::new();
            let mut configured: Vec<&User> = settings.users.values().collect();
            configured.sort_by(|a, b| a.email.cmp(&b.email));
            let stored = store.list_users().await?;
            let _ = writeln!(out, "{:<40} {:<8} {:<24} ROLES", "EMAIL", "SOURCE", "ID");
            for u in configured {
                let _ = writeln!(
                    out,
                    "{:<40} {:<8} {:<24} {}",
                    u.email,
                    "config",
                    u.id,
                    show_roles(&u.roles)
                );
            }
            for u in stored
                .iter()
                .filter(|u| !settings.users.contains_key(&u.email))
            {
                let _ = writeln!(
                    out,
                    "{:<40} {:<8} {:<24} {}",
                    u.email,
                    "store",
                    u.id,
                    show_roles(&u.roles)
                );
            }
            Ok(out)
        }
        UsersCommand::Remove { email } => {
            let email = changeable(settings, &email)?;
            let id = user_id(&email);
            if !store.delete_user(&id).await? {
                return Err(AdminError::NoSuchUser(email));
            }
            let ended = store.revoke_user_sessions(&id).await?;
            // Their passkeys too, for the same reason as their tokens.
            for k in store.list_passkeys(&id).await? {
                store.delete_passkey(&id, &k.id).await?;
            }
            // Their API tokens too: the id is derived from the address, so
            // re-adding it later must not bring old tokens back to life.
            let mut tokens = 0;
            for t in store.list_tokens().await? {
                if t.user_id == id && store.revoke_token(&t.jti).await? {
                    tokens += 1;
                }
            }
            audit_revoked(&id);
            Ok(format!(
                "removed {email}; ended {ended} session(s) and {tokens} API token(s)\n"
            ))
        }
        UsersCommand::Passkeys { command } => passkeys(settings, command).await,
        UsersCommand::SetRoles { email, roles: r } => {
            let email = changeable(settings, &email)?;
            let roles = roles(&r)?;
            let Some(mut user) = store.get_user(&user_id(&email)).await? else {
                return Err(AdminError::NoSuchUser(email));
            };
            user.roles = roles;
            store.put_user(&user).await?;
            Ok(format!(
                "{} now has roles: {}\n",
                user.email,
                show_roles(&user.roles)
            ))
        }
    }
}

// --- users passkeys: see and remove a person's passkeys (a lost or
// stolen authenticator). Config users have passkeys too: those live in the
// store whoever defines the user.

#[derive(Debug, Subcommand)]
pub enum PasskeysCommand {
    /// List a person's passkeys: id, name, created, last used.
    List { email: String },
    /// Remove one passkey (`--id`, from the list) or all of a person's.
    Remove {
        email: String,
        #[arg(long, required_unless_present = "all", conflicts_with = "all")]
        id: Option<String>,
        #[arg(long)]
        all: bool,
    },
}

/// Runs one `latchkey users passkeys` command; returns what to print.
async fn passkeys(settings: &Settings, cmd: PasskeysCommand) -> Result<String, AdminError> {
    let store = store(settings)?;
    match cmd {
        PasskeysCommand::List { email: raw } => {
            let email = email(&raw)?;
            let keys = store.list_passkeys(&user_id(&email)).await?;
            if keys.is_empty() {
                return Ok(format!("{email} has no passkeys\n"));
            }
            let mut out = format!("{:<44} {:<24} {:<22} LAST USED\n", "ID", "NAME", "CREATED");
            for k in keys {
                let last = match k.last_used {
                    0 => "never".to_owned(),
                    ms => time(ms),
                };
                let _ = writeln!(
                    out,
                    "{:<44} {:<24} {:<22} {last}",
                    k.id,
                    k.name,
                    time(k.created_at)
                );
            }
            Ok(out)
        }
        PasskeysCommand::Remove {
            email: raw,
            id,
            all,
        } => {
            let email = email(&raw)?;
            let uid = user_id(&email);
            let targets: Vec<String> = match (id, all) {
                (Some(id), _) => vec![id],
                (None, _) => store
                    .list_passkeys(&uid)
                    .await?
                    .into_iter()
                    .map(|k| k.id)
                    .collect(),
            };
            let mut removed = 0;
            for id in &targets {
                if store.delete_passkey(&uid, id).await? {
                    removed += 1;
                } else if !all {
                    return Err(AdminError::NoSuchPasskey(id.clone(), email));
                }
            }
            Ok(format!("removed {removed} passkey(s) of {email}\n"))
        }
    }
}

fn show_roles(roles: &[String]) -> String {
    if roles.is_empty() {
        "(none)".into()
    } else {
        roles.join(",")
    }
}

/// Runs one `latchkey sessions` command; returns what to print.
pub async fn sessions(settings: &Settings, cmd: SessionsCommand) -> Result<String, AdminError> {
    let store = store(settings)?;
    match cmd {
        SessionsCommand::List { user } => {
            let ids: Vec<String> = match user {
                Some(raw) => vec![user_id(&email(&raw)?)],
                None => {
                    let mut ids: Vec<String> =
                        settings.users.values().map(|u| u.id.clone()).collect();
                    for u in store.list_users().await? {
                        if !ids.contains(&u.id) {
                            ids.push(u.id);
                        }
                    }
                    ids
                }
            };
            let mut out = String::new();
            let _ = writeln!(
                out,
                "{:<64} {:<32} {:<20} {:<20} {:<20} {:<15} USER AGENT",
                "ID", "EMAIL", "CREATED", "IDLE END", "ENDS", "IP"
            );
            let mut all = Vec::new();
            for id in ids {
                all.extend(store.list_sessions(&id, now_ms()).await?);
            }
            all.sort_by(|a, b| {
                (&a.record.email, a.record.created_at).cmp(&(&b.record.email, b.record.created_at))
            });
            for s in all {
                let r = &s.record;
                let _ = writeln!(
                    out,
                    "{:<64} {:<32} {:<20} {:<20} {:<20} {:<15} {}",
                    s.id,
                    r.email,
                    time(r.created_at),
                    time(s.idle_expires_at),
                    time(r.expires_at),
                    r.ip,
                    crate::http::pages::describe_user_agent(&r.user_agent)
                );
            }
            Ok(out)
        }
        SessionsCommand::Revoke {
            user: Some(raw), ..
        } => {
            let email = email(&raw)?;
            let id = user_id(&email);
            let ended = store.revoke_user_sessions(&id).await?;
            audit_revoked(&id);
            Ok(format!("ended {ended} session(s) of {email}\n"))
        }
        SessionsCommand::Revoke { id, user: None } => {
            let id = id.unwrap_or_default();
            let hash = TokenHash::from_hex(&id.to_ascii_lowercase())
                .ok_or_else(|| AdminError::BadSessionId(id.clone()))?;
            if !store.revoke_session(&hash).await? {
                return Err(AdminError::NoSuchSession(id));
            }
            audit_revoked("");
            Ok(format!("ended session {id}\n"))
        }
    }
}

/// The audit line for a revocation made from the command line.
fn audit_revoked(user_id: &str) {
    crate::obs::audit::record(
        &crate::obs::metrics::Metrics::new(),
        crate::obs::audit::AuditEvent::SessionsRevoked,
        crate::obs::audit::Actor {
            user_id,
            ip: "",
            user_agent: "latchkey admin command",
        },
    );
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_split_trimmed_and_deduplicated() {
        assert_eq!(roles("admin, member,admin").unwrap(), ["admin", "member"]);
        assert!(roles("").unwrap().is_empty());
        assert!(matches!(roles("a b"), Err(AdminError::BadRole(r)) if r == "a b"));
    }
}
