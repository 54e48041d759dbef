//! (placeholder: filled in by its owner)
#![allow(unused_variables)]
use std::time::Duration;

use super::{Store, StoreResult};
use crate::session::{AttemptRecord, LinkRecord, SessionInfo, SessionRecord, TokenHash, User};

pub struct RedisStore;

impl Store for RedisStore {
    async fn create_session(
        &self,
        hash: &TokenHash,
        record: &SessionRecord,
        idle: Duration,
        now: u64,
    ) -> StoreResult<()> {
        todo!()
    }
    async fn touch_session(
        &self,
        hash: &TokenHash,
        idle: Duration,
        now: u64,
    ) -> StoreResult<Option<(SessionRecord, u64, Option<User>)>> {
        todo!()
    }
    async fn revoke_session(&self, hash: &TokenHash) -> StoreResult<bool> {
        todo!()
    }
    async fn list_sessions(&self, user_id: &str) -> StoreResult<Vec<SessionInfo>> {
        todo!()
    }
    async fn revoke_user_sessions(&self, user_id: &str) -> StoreResult<u64> {
        todo!()
    }
    async fn put_link(&self, hash: &TokenHash, link: &LinkRecord, ttl: Duration) -> StoreResult<()> {
        todo!()
    }
    async fn peek_link(&self, hash: &TokenHash) -> StoreResult<Option<LinkRecord>> {
        todo!()
    }
    async fn take_link(&self, hash: &TokenHash) -> StoreResult<Option<LinkRecord>> {
        todo!()
    }
    async fn put_attempt(
        &self,
        hash: &TokenHash,
        attempt: &AttemptRecord,
        ttl: Duration,
    ) -> StoreResult<()> {
        todo!()
    }
    async fn get_attempt(&self, hash: &TokenHash) -> StoreResult<Option<AttemptRecord>> {
        todo!()
    }
    async fn fail_attempt(&self, hash: &TokenHash) -> StoreResult<u32> {
        todo!()
    }
    async fn delete_attempt(&self, hash: &TokenHash) -> StoreResult<()> {
        todo!()
    }
    async fn get_user(&self, id: &str) -> StoreResult<Option<User>> {
        todo!()
    }
    async fn put_user(&self, user: &User) -> StoreResult<()> {
        todo!()
    }
    async fn delete_user(&self, id: &str) -> StoreResult<bool> {
        todo!()
    }
    async fn list_users(&self) -> StoreResult<Vec<User>> {
        todo!()
    }
    async fn hit(&self, key: &str, window: Duration) -> StoreResult<(u64, Duration)> {
        todo!()
    }
    async fn ping(&self) -> StoreResult<()> {
        todo!()
    }
}
