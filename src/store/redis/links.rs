//! Magic links, sign-in attempts and provider sign-ins in flight in Redis: each one key with a TTL
//! (`SET PX`), a link used up atomically (`GETDEL`), an attempt's code
//! judged in one script (`CHECK_CODE`: compare, count, delete), which keeps
//! the attempt's remaining TTL. All single-key, so a cluster runs them
//! unchanged.

use std::time::Duration;

use super::{decode, RedisStore};
use crate::store::records::{AttemptRecord, LinkRecord, OAuthRecord, TokenHash};
use crate::store::{CodeCheck, StoreResult};

pub(super) async fn put_link(
    store: &RedisStore,
    hash: &TokenHash,
    link: &LinkRecord,
    ttl: Duration,
) -> StoreResult<()> {
    let json = serde_json::to_string(link)?;
    store.set_px(store.link_key(hash), json, ttl).await
}

pub(super) async fn peek_link(
    store: &RedisStore,
    hash: &TokenHash,
) -> StoreResult<Option<LinkRecord>> {
    store.get_json(store.link_key(hash)).await
}

pub(super) async fn take_link(
    store: &RedisStore,
    hash: &TokenHash,
) -> StoreResult<Option<LinkRecord>> {
    let mut con = store.conn().await?;
    let raw: Option<String> = redis::cmd("GETDEL")
        .arg(store.link_key(hash))
        .query_async(&mut con)
        .await?;
    decode(raw)
}

pub(super) async fn put_oauth(
    store: &RedisStore,
    hash: &TokenHash,
    record: &OAuthRecord,
    ttl: Duration,
) -> StoreResult<()> {
    let json = serde_json::to_string(record)?;
    store.set_px(store.oauth_key(hash), json, ttl).await
}

pub(super) async fn take_oauth(
    store: &RedisStore,
    hash: &TokenHash,
) -> StoreResult<Option<OAuthRecord>> {
    let mut con = store.conn().await?;
    let raw: Option<String> = redis::cmd("GETDEL")
        .arg(store.oauth_key(hash))
        .query_async(&mut con)
        .await?;
    decode(raw)
}

pub(super) async fn put_attempt(
    store: &RedisStore,
    hash: &TokenHash,
    attempt: &AttemptRecord,
    ttl: Duration,
) -> StoreResult<()> {
    let json = serde_json::to_string(attempt)?;
    store.set_px(store.attempt_key(hash), json, ttl).await
}

pub(super) async fn get_attempt(
    store: &RedisStore,
    hash: &TokenHash,
) -> StoreResult<Option<AttemptRecord>> {
    store.get_json(store.attempt_key(hash)).await
}

pub(super) async fn check_code(
    store: &RedisStore,
    hash: &TokenHash,
    code: Option<&TokenHash>,
    max: u32,
) -> StoreResult<CodeCheck> {
    let mut con = store.conn().await?;
    let (verdict, left, raw): (u8, u32, Option<String>) = store
        .scripts
        .check_code
        .key(store.attempt_key(hash))
        .arg(code.map(TokenHash::to_hex).unwrap_or_default())
        .arg(max)
        .invoke_async(&mut con)
        .await?;
    let record = || -> StoreResult<AttemptRecord> {
        let raw = raw.as_deref().unwrap_or("");
        Ok(serde_json::from_str(raw)?)
    };
    Ok(match verdict {
        1 => CodeCheck::Match(record()?),
        2 => CodeCheck::Wrong { left },
        3 => CodeCheck::Voided(record()?),
        _ => CodeCheck::Missing,
    })
}

pub(super) async fn delete_attempt(store: &RedisStore, hash: &TokenHash) -> StoreResult<()> {
    let mut con = store.conn().await?;
    redis::cmd("DEL")
        .arg(store.attempt_key(hash))
        .exec_async(&mut con)
        .await?;
    Ok(())
}
