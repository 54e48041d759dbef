//! Users kept in Redis (those not in the config's `[[users]]`): one JSON
//! record per user and one set of every id. On one node the two change
//! together (`MULTI`); on a cluster they are written one by one, the
//! record first, so a listed id always has a record.

use super::RedisStore;
use crate::store::records::User;
use crate::store::StoreResult;

pub(super) async fn get(store: &RedisStore, id: &str) -> StoreResult<Option<User>> {
    store.get_json(store.user_key(id)).await
}

pub(super) async fn put(store: &RedisStore, user: &User) -> StoreResult<()> {
    let json = serde_json::to_string(user)?;
    let mut con = store.conn().await?;
    let mut pipe = redis::pipe();
    // MULTI cannot span slots: on a cluster the two writes go one by one
    // (record first, so a listed id always has a record).
    if !store.clustered() {
        pipe.atomic();
    }
    pipe.cmd("SET")
        .arg(store.user_key(&user.id))
        .arg(json)
        .ignore()
        .cmd("SADD")
        .arg(store.users_key())
        .arg(&user.id)
        .ignore();
    if store.clustered() {
        for cmd in pipe.cmd_iter() {
            cmd.exec_async(&mut con).await?;
        }
    } else {
        pipe.exec_async(&mut con).await?;
    }
    Ok(())
}

pub(super) async fn delete(store: &RedisStore, id: &str) -> StoreResult<bool> {
    let mut con = store.conn().await?;
    let (user, users) = (store.user_key(id), store.users_key());
    if store.clustered() {
        let deleted: u64 = redis::cmd("DEL").arg(user).query_async(&mut con).await?;
        redis::cmd("SREM")
            .arg(users)
            .arg(id)
            .exec_async(&mut con)
            .await?;
        return Ok(deleted > 0);
    }
    let (deleted, _): (u64, u64) = redis::pipe()
        .atomic()
        .cmd("DEL")
        .arg(user)
        .cmd("SREM")
        .arg(users)
        .arg(id)
        .query_async(&mut con)
        .await?;
    Ok(deleted > 0)
}

pub(super) async fn list(store: &RedisStore) -> StoreResult<Vec<User>> {
    let mut con = store.conn().await?;
    let ids: Vec<String> = redis::cmd("SMEMBERS")
        .arg(store.users_key())
        .query_async(&mut con)
        .await?;
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let keys: Vec<String> = ids.iter().map(|id| store.user_key(id)).collect();
    let raws: Vec<Option<String>> = redis::cmd("MGET").arg(keys).query_async(&mut con).await?;
    // A user deleted between the two reads is simply left out (DEL and
    // SREM happen together, so the set needs no tidying here).
    let mut users = Vec::with_capacity(raws.len());
    for raw in raws.into_iter().flatten() {
        users.push(serde_json::from_str::<User>(&raw)?);
    }
    users.sort_by(|a, b| (&a.email, &a.id).cmp(&(&b.email, &b.id)));
    Ok(users)
}
