//! The embedded store's tables and how records sit in them: every record
//! is JSON, wrapped with the Unix-ms time it ends (`Stored`); one more
//! table, `expiry`, lists `(end, what)` pairs so a sweep finds what has
//! ended without reading everything. An `expiry` entry may be stale (its
//! record was taken, revoked or rewritten with a later end): the sweep
//! checks the record's own end before deleting it. Reads never trust the
//! sweep: they compare ends with "now" themselves.

use std::time::Duration;

use redb::{ReadTransaction, ReadableTable, TableDefinition, WriteTransaction};
use serde::de::{DeserializeOwned, IgnoredAny};
use serde::{Deserialize, Serialize};

use crate::store::records::{SessionRecord, TokenRecord};
use crate::store::StoreResult;

/// Session token hash → `StoredSession`.
pub(super) const SESSIONS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("sessions");
/// (user id, session token hash) → nothing: each user's sessions.
pub(super) const BY_USER: TableDefinition<(&str, &[u8]), ()> = TableDefinition::new("by_user");
/// User id → `User` JSON. Users never expire.
pub(super) const USERS: TableDefinition<&str, &[u8]> = TableDefinition::new("users");
/// Link token hash → `Stored<LinkRecord>`.
pub(super) const LINKS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("links");
/// Attempt cookie hash → `Stored<AttemptRecord>`.
pub(super) const ATTEMPTS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("attempts");
/// Pending provider sign-ins (`OAuthRecord`) under the hash of their cookie.
pub(super) const OAUTH: TableDefinition<&[u8], &[u8]> = TableDefinition::new("oauth");
/// Rate-limit key → `Stored<u64>` (the count in the window).
pub(super) const WINDOWS: TableDefinition<&str, &[u8]> = TableDefinition::new("windows");
/// Bearer token jti → `TokenRecord` JSON (it ends at its `expires_at`).
pub(super) const TOKENS: TableDefinition<&str, &[u8]> = TableDefinition::new("tokens");
/// "user id:device hash (hex)" → `Stored<()>`: the browsers each user
/// signed in on.
pub(super) const DEVICES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("devices");
/// (user id, credential id) → `PasskeyRecord` JSON; never expires.
pub(super) const PASSKEYS: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("passkeys");
/// (end, kind byte + key) → nothing: what may have ended by when.
pub(super) const EXPIRY: TableDefinition<(u64, &[u8]), ()> = TableDefinition::new("expiry");

/// The kind bytes of `EXPIRY` keys.
pub(super) const SESSION: u8 = b's';
pub(super) const LINK: u8 = b'l';
pub(super) const ATTEMPT: u8 = b'a';
pub(super) const OAUTH_KIND: u8 = b'o';
pub(super) const WINDOW: u8 = b'w';
pub(super) const TOKEN: u8 = b't';
pub(super) const DEVICE: u8 = b'd';

/// Expired records removed per write transaction at most: more than one
/// write adds, so the sweep keeps up, and a write never stalls on a
/// backlog.
const SWEEP_BATCH: usize = 64;

/// A record with the Unix ms at which it ends (by the store's clock).
#[derive(Serialize, Deserialize)]
pub(super) struct Stored<T> {
    pub(super) until: u64,
    pub(super) value: T,
}

/// A session with the end it has if left idle (never past
/// `record.expires_at`).
#[derive(Serialize, Deserialize)]
pub(super) struct StoredSession {
    pub(super) record: SessionRecord,
    pub(super) idle_end: u64,
}

impl StoredSession {
    pub(super) fn is_live(&self, now: u64) -> bool {
        now < self.idle_end && now < self.record.expires_at
    }
}

pub(super) fn decode<T: DeserializeOwned>(raw: &[u8]) -> StoreResult<T> {
    Ok(serde_json::from_slice(raw)?)
}

/// For the sweep: a record that does not decode is left where it is (a
/// read reports it as corrupt) rather than failing every write after it.
fn readable<T: DeserializeOwned>(raw: &[u8]) -> Option<T> {
    match serde_json::from_slice(raw) {
        Ok(v) => Some(v),
        Err(e) => {
            tracing::warn!(error = %e, "embedded store: a record does not decode; the sweep leaves it");
            None
        }
    }
}

pub(super) fn encode<T: Serialize>(value: &T) -> StoreResult<Vec<u8>> {
    Ok(serde_json::to_vec(value)?)
}

fn tagged(kind: u8, key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(key.len() + 1);
    out.push(kind);
    out.extend_from_slice(key);
    out
}

/// Notes that the `kind` record under `key` ends at `until`.
pub(super) fn expires(txn: &WriteTransaction, kind: u8, key: &[u8], until: u64) -> StoreResult<()> {
    txn.open_table(EXPIRY)?
        .insert((until, tagged(kind, key).as_slice()), ())?;
    Ok(())
}

/// Forgets an `expires` note (a session's idle end moved).
pub(super) fn unexpires(
    txn: &WriteTransaction,
    kind: u8,
    key: &[u8],
    until: u64,
) -> StoreResult<()> {
    txn.open_table(EXPIRY)?
        .remove((until, tagged(kind, key).as_slice()))?;
    Ok(())
}

/// Opens every table once, so later read transactions find them all.
pub(super) fn create_all(txn: &WriteTransaction) -> StoreResult<()> {
    txn.open_table(SESSIONS)?;
    txn.open_table(BY_USER)?;
    txn.open_table(USERS)?;
    txn.open_table(LINKS)?;
    txn.open_table(ATTEMPTS)?;
    txn.open_table(OAUTH)?;
    txn.open_table(WINDOWS)?;
    txn.open_table(TOKENS)?;
    txn.open_table(DEVICES)?;
    txn.open_table(PASSKEYS)?;
    txn.open_table(EXPIRY)?;
    Ok(())
}

/// How many records the tables hold (the indexes not counted).
pub(super) fn records(txn: &ReadTransaction) -> StoreResult<u64> {
    use redb::ReadableTableMetadata as _;
    let mut n = 0;
    for t in [SESSIONS, LINKS, ATTEMPTS, OAUTH] {
        n += txn.open_table(t)?.len()?;
    }
    for t in [USERS, WINDOWS, TOKENS] {
        n += txn.open_table(t)?.len()?;
    }
    Ok(n)
}

/// Removes up to `SWEEP_BATCH` records that have ended by `now`, with
/// their index entries. Returns how many `expiry` notes it handled.
pub(super) fn sweep(txn: &WriteTransaction, now: u64) -> StoreResult<usize> {
    let due: Vec<(u64, Vec<u8>)> = {
        let expiry = txn.open_table(EXPIRY)?;
        let mut due = Vec::new();
        for entry in expiry.range(..(now.saturating_add(1), &[][..]))? {
            let (key, _) = entry?;
            let (until, what) = key.value();
            due.push((until, what.to_vec()));
            if due.len() == SWEEP_BATCH {
                break;
            }
        }
        due
    };
    let mut expiry = txn.open_table(EXPIRY)?;
    for (until, what) in &due {
        expiry.remove((*until, what.as_slice()))?;
        let Some((&kind, key)) = what.split_first() else {
            continue;
        };
        match kind {
            SESSION => {
                let mut sessions = txn.open_table(SESSIONS)?;
                let found = match sessions.get(key)? {
                    Some(raw) => readable::<StoredSession>(raw.value()),
                    None => None,
                };
                if let Some(s) = found.filter(|s| !s.is_live(now)) {
                    sessions.remove(key)?;
                    txn.open_table(BY_USER)?
                        .remove((s.record.user_id.as_str(), key))?;
                }
            }
            LINK => sweep_stored(txn, LINKS, key, now)?,
            ATTEMPT => sweep_stored(txn, ATTEMPTS, key, now)?,
            OAUTH_KIND => sweep_stored(txn, OAUTH, key, now)?,
            DEVICE => sweep_stored(txn, DEVICES, key, now)?,
            WINDOW => {
                if let Ok(name) = std::str::from_utf8(key) {
                    let mut windows = txn.open_table(WINDOWS)?;
                    let ended = match windows.get(name)? {
                        Some(raw) => {
                            readable::<Stored<u64>>(raw.value()).is_some_and(|w| w.until <= now)
                        }
                        None => false,
                    };
                    if ended {
                        windows.remove(name)?;
                    }
                }
            }
            TOKEN => {
                if let Ok(jti) = std::str::from_utf8(key) {
                    let mut tokens = txn.open_table(TOKENS)?;
                    let ended = match tokens.get(jti)? {
                        Some(raw) => readable::<TokenRecord>(raw.value())
                            .is_some_and(|t| t.expires_at <= now),
                        None => false,
                    };
                    if ended {
                        tokens.remove(jti)?;
                    }
                }
            }
            _ => {}
        }
    }
    Ok(due.len())
}

/// Removes the `Stored` record under `key` if it has ended by `now`.
fn sweep_stored(
    txn: &WriteTransaction,
    table: TableDefinition<&[u8], &[u8]>,
    key: &[u8],
    now: u64,
) -> StoreResult<()> {
    let mut t = txn.open_table(table)?;
    let ended = match t.get(key)? {
        Some(raw) => readable::<Stored<IgnoredAny>>(raw.value()).is_some_and(|r| r.until <= now),
        None => false,
    };
    if ended {
        t.remove(key)?;
    }
    Ok(())
}

// --- records with an end, kept as `Stored<T>` --------------------------------

/// Removes a `Stored` record under `key` of `table`, returning it if it
/// was live at `now`.
pub(super) fn take_stored<T: serde::de::DeserializeOwned>(
    txn: &WriteTransaction,
    table: redb::TableDefinition<&[u8], &[u8]>,
    key: &[u8],
    now: u64,
) -> StoreResult<Option<T>> {
    let mut t = txn.open_table(table)?;
    let raw = t.remove(key)?;
    let stored: Option<Stored<T>> = raw.map(|r| decode(r.value())).transpose()?;
    Ok(stored.filter(|s| now < s.until).map(|s| s.value))
}

pub(super) fn get_stored<T: serde::de::DeserializeOwned>(
    txn: &ReadTransaction,
    table: redb::TableDefinition<&[u8], &[u8]>,
    key: &[u8],
    now: u64,
) -> StoreResult<Option<T>> {
    let t = txn.open_table(table)?;
    let raw = t.get(key)?;
    let stored: Option<Stored<T>> = raw.map(|r| decode(r.value())).transpose()?;
    Ok(stored.filter(|s| now < s.until).map(|s| s.value))
}

/// Puts an empty `Stored` record under `key` for `ttl`; `true` when none
/// was live there before (the known-browser notes).
pub(super) fn note(
    txn: &WriteTransaction,
    (table, kind): (redb::TableDefinition<&[u8], &[u8]>, u8),
    key: &[u8],
    (ttl, now): (Duration, u64),
) -> StoreResult<bool> {
    let known = is_stored(txn, table, key, now)?;
    put_for(txn, table, kind, (key, &()), (ttl, now))?;
    Ok(!known)
}

/// Whether a live `Stored` record is under `key` of `table`, read in a
/// write transaction.
fn is_stored(
    txn: &WriteTransaction,
    table: redb::TableDefinition<&[u8], &[u8]>,
    key: &[u8],
    now: u64,
) -> StoreResult<bool> {
    let t = txn.open_table(table)?;
    let raw = t.get(key)?;
    let stored: Option<Stored<IgnoredAny>> = raw.map(|r| decode(r.value())).transpose()?;
    Ok(stored.is_some_and(|s| now < s.until))
}

/// `put_stored` for `ttl` from now; a zero `ttl` removes the record.
pub(super) fn put_for<T: serde::Serialize>(
    txn: &WriteTransaction,
    table: redb::TableDefinition<&[u8], &[u8]>,
    kind: u8,
    (key, value): (&[u8], &T),
    (ttl, now): (Duration, u64),
) -> StoreResult<()> {
    if ttl.is_zero() {
        txn.open_table(table)?.remove(key)?;
        return Ok(());
    }
    put_stored(
        txn,
        table,
        kind,
        key,
        value,
        now.saturating_add(super::millis(ttl)),
    )
}

pub(super) fn put_stored<T: serde::Serialize>(
    txn: &WriteTransaction,
    table: redb::TableDefinition<&[u8], &[u8]>,
    kind: u8,
    key: &[u8],
    value: &T,
    until: u64,
) -> StoreResult<()> {
    let json = encode(&Stored { until, value })?;
    txn.open_table(table)?.insert(key, json.as_slice())?;
    expires(txn, kind, key, until)
}
