//! Sessions in Redis: creating one (record and its user's index),
//! touching it on every request (the hot path: plain reads, a write only
//! once per slide step), revoking one or all of a user's, and listing them.
//! On a cluster the index and the record live in different slots, so the
//! multi-key scripts are replaced by single-key steps here. The key names
//! and the scripts live in `mod.rs` and `scripts.rs`.

use std::time::Duration;

use super::{millis, Conn, RedisStore};
use crate::store::records::{SessionInfo, SessionRecord, TokenHash};
use crate::store::StoreResult;

pub(super) async fn create(
    store: &RedisStore,
    hash: &TokenHash,
    record: &SessionRecord,
    idle: Duration,
    now: u64,
) -> StoreResult<()> {
    let to_end = record.expires_at.saturating_sub(now);
    let ttl = millis(idle).min(to_end);
    if ttl == 0 {
        // Already over: storing it would only create a dead key.
        return Ok(());
    }
    let hex = hash.to_hex();
    let json = serde_json::to_string(record)?;
    let mut con = store.conn().await?;
    if store.clustered() {
        // Index first: a session never exists outside its user's index.
        store
            .scripts
            .index_session
            .key(store.index_key(&record.user_id))
            .arg(&hex)
            .arg(to_end)
            .arg(now)
            .arg(record.expires_at)
            .invoke_async::<()>(&mut con)
            .await?;
        redis::cmd("SET")
            .arg(store.session_key(&hex))
            .arg(json)
            .arg("PX")
            .arg(ttl)
            .exec_async(&mut con)
            .await?;
        return Ok(());
    }
    store
        .scripts
        .put_indexed
        .key(store.session_key(&hex))
        .key(store.index_key(&record.user_id))
        .arg(json)
        .arg(ttl)
        .arg(to_end)
        .arg(hex)
        .arg(now)
        .arg(record.expires_at)
        .invoke_async::<()>(&mut con)
        .await?;
    Ok(())
}

pub(super) async fn touch(
    store: &RedisStore,
    hash: &TokenHash,
    idle: Duration,
    now: u64,
) -> StoreResult<Option<(SessionRecord, u64)>> {
    let key = store.session_key(&hash.to_hex());
    let mut con = store.conn().await?;
    // Two plain reads in one round trip; no script: Redis spends a
    // fraction of an EVALSHA's time on them (see `slide_step`).
    let (raw, left): (Option<String>, i64) = redis::pipe()
        .get(&key)
        .pttl(&key)
        .query_async(&mut con)
        .await?;
    let Some(raw) = raw else {
        return Ok(None);
    };
    if left == -2 {
        return Ok(None); // expired between the two reads
    }
    let record: SessionRecord = serde_json::from_str(&raw)?;
    if now >= record.expires_at {
        redis::cmd("DEL").arg(&key).exec_async(&mut con).await?;
        return Ok(None);
    }
    // No TTL (-1) cannot happen; if it did, the slide below sets one.
    let stored_end = now.saturating_add(u64::try_from(left).unwrap_or(0));
    let idle_end = now.saturating_add(millis(idle)).min(record.expires_at);
    if idle_end.saturating_sub(stored_end) < millis(crate::store::slide_step(idle)) {
        return Ok(Some((record, stored_end.min(idle_end))));
    }
    // PEXPIRE on a key revoked meanwhile does nothing: no resurrection.
    redis::cmd("PEXPIRE")
        .arg(&key)
        .arg(idle_end - now)
        .exec_async(&mut con)
        .await?;
    Ok(Some((record, idle_end)))
}

pub(super) async fn revoke(store: &RedisStore, hash: &TokenHash) -> StoreResult<bool> {
    let hex = hash.to_hex();
    let mut con = store.conn().await?;
    if store.clustered() {
        let raw: Option<String> = redis::cmd("GETDEL")
            .arg(store.session_key(&hex))
            .query_async(&mut con)
            .await?;
        let Some(raw) = raw else {
            return Ok(false);
        };
        if let Ok(record) = serde_json::from_str::<SessionRecord>(&raw) {
            store
                .scripts
                .unindex
                .key(store.index_key(&record.user_id))
                .arg(&hex)
                .invoke_async::<()>(&mut con)
                .await?;
        }
        return Ok(true);
    }
    let existed: u64 = store
        .scripts
        .revoke_session
        .key(store.session_key(&hex))
        .arg(store.index_prefix())
        .arg(hex)
        .invoke_async(&mut con)
        .await?;
    Ok(existed == 1)
}

pub(super) async fn list(
    store: &RedisStore,
    user_id: &str,
    now: u64,
) -> StoreResult<Vec<SessionInfo>> {
    let mut con = store.conn().await?;
    let flat: Vec<String> = if store.clustered() {
        list_split(store, &mut con, user_id).await?
    } else {
        store
            .scripts
            .list_sessions
            .key(store.index_key(user_id))
            .arg(store.session_prefix())
            .invoke_async(&mut con)
            .await?
    };
    let mut out = Vec::with_capacity(flat.len() / 3);
    for triple in flat.chunks_exact(3) {
        let record: SessionRecord = serde_json::from_str(&triple[1])?;
        // PTTL is -1 for a key without expiry; the absolute end still holds.
        let idle_expires_at = match triple[2].parse::<u64>() {
            Ok(left) => now.saturating_add(left).min(record.expires_at),
            Err(_) => record.expires_at,
        };
        out.push(SessionInfo {
            id: triple[0].clone(),
            record,
            idle_expires_at,
        });
    }
    out.sort_by(|a, b| (a.record.created_at, &a.id).cmp(&(b.record.created_at, &b.id)));
    Ok(out)
}

pub(super) async fn revoke_user(store: &RedisStore, user_id: &str) -> StoreResult<u64> {
    let mut con = store.conn().await?;
    if store.clustered() {
        let index = store.index_key(user_id);
        let hashes: Vec<String> = store
            .scripts
            .index_members
            .key(&index)
            .invoke_async(&mut con)
            .await?;
        let mut n = 0;
        for h in hashes {
            let gone: u64 = redis::cmd("DEL")
                .arg(store.session_key(&h))
                .query_async(&mut con)
                .await?;
            n += gone;
        }
        redis::cmd("DEL").arg(index).exec_async(&mut con).await?;
        return Ok(n);
    }
    Ok(store
        .scripts
        .revoke_user_sessions
        .key(store.index_key(user_id))
        .arg(store.session_prefix())
        .invoke_async(&mut con)
        .await?)
}

/// `LIST_SESSIONS` in single-key steps, for a cluster.
async fn list_split(store: &RedisStore, con: &mut Conn, user_id: &str) -> StoreResult<Vec<String>> {
    let index = store.index_key(user_id);
    let hashes: Vec<String> = store
        .scripts
        .index_members
        .key(&index)
        .invoke_async(con)
        .await?;
    let mut out = Vec::with_capacity(hashes.len() * 3);
    for h in hashes {
        let key = store.session_key(&h);
        let raw: Option<String> = redis::cmd("GET").arg(&key).query_async(con).await?;
        match raw {
            Some(raw) => {
                let left: i64 = redis::cmd("PTTL").arg(&key).query_async(con).await?;
                out.extend([h, raw, left.to_string()]);
            }
            None => {
                redis::cmd("ZREM")
                    .arg(&index)
                    .arg(&h)
                    .exec_async(con)
                    .await?;
            }
        }
    }
    Ok(out)
}
