//! Rate-limit counters in Redis: one counter per key, counted and given
//! its window's TTL in one atomic script (`HIT`), so concurrent hits each
//! get their own count and a window ends by Redis's clock, from its first
//! hit.

use std::time::Duration;

use super::{millis, RedisStore};
use crate::store::StoreResult;

pub(super) async fn hit(
    store: &RedisStore,
    key: &str,
    window: Duration,
) -> StoreResult<(u64, Duration)> {
    let mut con = store.conn().await?;
    let (count, left): (u64, u64) = store
        .scripts
        .hit
        .key(store.hit_key(key))
        .arg(millis(window).max(1))
        .invoke_async(&mut con)
        .await?;
    Ok((count, Duration::from_millis(left)))
}
