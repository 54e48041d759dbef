//! Passkeys in Redis: one hash per user, `pk:{user id}`, credential id →
//! the record's JSON. One key per user, so every operation is a single
//! command on one slot (a cluster too), and passkeys never expire.

use redis::AsyncCommands as _;

use super::RedisStore;
use crate::store::records::PasskeyRecord;
use crate::store::StoreResult;

pub(super) async fn put(store: &RedisStore, record: &PasskeyRecord) -> StoreResult<()> {
    let json = serde_json::to_string(record)?;
    let mut con = store.conn().await?;
    let _: () = con
        .hset(store.passkeys_key(&record.user_id), &record.id, json)
        .await?;
    Ok(())
}

pub(super) async fn list(store: &RedisStore, user_id: &str) -> StoreResult<Vec<PasskeyRecord>> {
    let mut con = store.conn().await?;
    let all: Vec<String> = con.hvals(store.passkeys_key(user_id)).await?;
    let mut out = all
        .iter()
        .map(|j| serde_json::from_str(j))
        .collect::<Result<Vec<PasskeyRecord>, _>>()?;
    out.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
    Ok(out)
}

pub(super) async fn get(
    store: &RedisStore,
    user_id: &str,
    id: &str,
) -> StoreResult<Option<PasskeyRecord>> {
    let mut con = store.conn().await?;
    let raw: Option<String> = con.hget(store.passkeys_key(user_id), id).await?;
    Ok(raw.map(|j| serde_json::from_str(&j)).transpose()?)
}

pub(super) async fn delete(store: &RedisStore, user_id: &str, id: &str) -> StoreResult<bool> {
    let mut con = store.conn().await?;
    let n: u64 = con.hdel(store.passkeys_key(user_id), id).await?;
    Ok(n > 0)
}
