//! Bearer-token records in Redis: one key per token (its record, never
//! the token) that expires at the token's `exp`, and one index of the
//! live jtis (a sorted set by `exp`, trimmed of ended ones on every put). Reading a token reads its user's record in the same script on one
//! node, in a second read on a cluster (different slots).

use super::{decode, Conn, RedisStore};
use crate::store::records::{TokenRecord, User};
use crate::store::StoreResult;

pub(super) async fn put(store: &RedisStore, record: &TokenRecord, now: u64) -> StoreResult<()> {
    let ttl = record.expires_at.saturating_sub(now);
    if ttl == 0 {
        return Ok(());
    }
    let json = serde_json::to_string(record)?;
    let mut con = store.conn().await?;
    if store.clustered() {
        // Index first, as for sessions: a token is never outside it.
        store
            .scripts
            .index_session
            .key(store.tokens_key())
            .arg(&record.jti)
            .arg(ttl)
            .arg(now)
            .arg(record.expires_at)
            .invoke_async::<()>(&mut con)
            .await?;
        redis::cmd("SET")
            .arg(store.token_key(&record.jti))
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
        .key(store.token_key(&record.jti))
        .key(store.tokens_key())
        .arg(json)
        .arg(ttl)
        .arg(ttl)
        .arg(&record.jti)
        .arg(now)
        .arg(record.expires_at)
        .invoke_async::<()>(&mut con)
        .await?;
    Ok(())
}

pub(super) async fn get(
    store: &RedisStore,
    jti: &str,
) -> StoreResult<Option<(TokenRecord, Option<User>)>> {
    if store.clustered() {
        // The token and its user live in different slots: two reads.
        let Some(record) = store.get_json::<TokenRecord>(store.token_key(jti)).await? else {
            return Ok(None);
        };
        let user = store
            .get_json::<User>(store.user_key(&record.user_id))
            .await?;
        return Ok(Some((record, user)));
    }
    let mut con = store.conn().await?;
    let found: Option<(String, Option<String>)> = store
        .scripts
        .get_token
        .key(store.token_key(jti))
        .arg(store.user_prefix())
        .invoke_async(&mut con)
        .await?;
    let Some((raw, user)) = found else {
        return Ok(None);
    };
    let record: TokenRecord = serde_json::from_str(&raw)?;
    Ok(Some((record, decode(user)?)))
}

pub(super) async fn revoke(store: &RedisStore, jti: &str) -> StoreResult<bool> {
    let mut con = store.conn().await?;
    if store.clustered() {
        let existed: u64 = redis::cmd("DEL")
            .arg(store.token_key(jti))
            .query_async(&mut con)
            .await?;
        store
            .scripts
            .unindex
            .key(store.tokens_key())
            .arg(jti)
            .invoke_async::<()>(&mut con)
            .await?;
        return Ok(existed == 1);
    }
    let existed: u64 = store
        .scripts
        .revoke_token
        .key(store.token_key(jti))
        .key(store.tokens_key())
        .arg(jti)
        .invoke_async(&mut con)
        .await?;
    Ok(existed == 1)
}

pub(super) async fn list(store: &RedisStore) -> StoreResult<Vec<TokenRecord>> {
    let mut con = store.conn().await?;
    let raws: Vec<String> = if store.clustered() {
        list_split(store, &mut con).await?
    } else {
        store
            .scripts
            .list_tokens
            .key(store.tokens_key())
            .arg(store.token_prefix())
            .invoke_async(&mut con)
            .await?
    };
    let mut out = Vec::with_capacity(raws.len());
    for raw in raws {
        out.push(serde_json::from_str::<TokenRecord>(&raw)?);
    }
    out.sort_by(|a, b| (a.created_at, &a.jti).cmp(&(b.created_at, &b.jti)));
    Ok(out)
}

/// `LIST_TOKENS` in single-key steps, for a cluster.
async fn list_split(store: &RedisStore, con: &mut Conn) -> StoreResult<Vec<String>> {
    let index = store.tokens_key();
    let jtis: Vec<String> = store
        .scripts
        .index_members
        .key(&index)
        .invoke_async(con)
        .await?;
    let mut out = Vec::with_capacity(jtis.len());
    for jti in jtis {
        let raw: Option<String> = redis::cmd("GET")
            .arg(store.token_key(&jti))
            .query_async(con)
            .await?;
        match raw {
            Some(raw) => out.push(raw),
            None => {
                redis::cmd("ZREM")
                    .arg(&index)
                    .arg(&jti)
                    .exec_async(con)
                    .await?;
            }
        }
    }
    Ok(out)
}
