//! [`PgStore`] as a [`Lifecycle`]: the link's health and its recovery, the hooks other
//! nodes' changes are reported through, each user's published feed head, and the token
//! key (one row in `meta`).

use std::collections::HashMap;

use super::super::health::Failure;
use super::super::{CountHook, Lifecycle, PassHook, Reseed, RevokeHook, StoreError, TimeHook};
use super::{PgStore, col};
use crate::protocol::{Seq, UserId};

#[async_trait::async_trait]
impl Lifecycle for PgStore {
    fn describe(&self) -> String {
        format!("PostgreSQL at {}", self.where_)
    }

    fn failure(&self) -> Option<Failure> {
        self.health.failure()
    }

    async fn wait_failed(&self) {
        self.health.wait_failed().await;
    }

    /// Channels stay open through a lost link (`_reseed` is not needed): once the
    /// database answers, the catch-up publishes what they missed.
    fn recover(&self, _reseed: Reseed) -> Result<bool, StoreError> {
        tokio::runtime::Handle::current().block_on(self.recover_link())
    }

    /// Every answered write is committed already.
    async fn flush(&self) -> Result<(), StoreError> {
        Ok(())
    }

    fn on_commit(&self, observe: TimeHook) {
        let _ = self.commit_observer.set(observe);
    }

    fn on_notify_lag(&self, observe: TimeHook) {
        self.follow.on_lag(observe);
    }

    fn on_notify_overflow(&self, observe: CountHook) {
        self.follow.on_overflow(observe);
    }

    fn on_notify_read(&self, observe: CountHook) {
        self.follow.on_read(observe);
    }

    fn on_remote_revoke(&self, revoked: RevokeHook) {
        self.follow.on_revoke(revoked);
    }

    fn on_unwatched(&self, pass: PassHook) {
        self.follow.on_unwatched(pass);
    }

    async fn watch(&self, user: &UserId) -> Result<(), StoreError> {
        self.watch_user(user).await
    }

    async fn unwatch(&self, user: &UserId) {
        self.unwatch_user(user).await;
    }

    async fn size(&self) -> Result<u64, StoreError> {
        let rows = self
            .rows("SELECT pg_database_size(current_database())", &[])
            .await?;
        let bytes: i64 = rows
            .first()
            .map(|row| col(row, 0))
            .transpose()?
            .unwrap_or(0);
        Ok(u64::try_from(bytes).unwrap_or_default())
    }

    async fn last_seqs(&self) -> Result<HashMap<UserId, Seq>, StoreError> {
        Ok(self.follow.all())
    }

    fn durable_seq(&self, user: &UserId) -> Seq {
        self.follow.published(user)
    }

    async fn token_key(&self, fresh: [u8; 32]) -> Result<Vec<u8>, StoreError> {
        self.execute(
            "INSERT INTO meta (key, value) VALUES ('token_key', $1) ON CONFLICT (key) DO NOTHING",
            &[&fresh.as_slice()],
        )
        .await?;
        let rows = self
            .rows("SELECT value FROM meta WHERE key = 'token_key'", &[])
            .await?;
        rows.first()
            .map(|row| col(row, 0))
            .transpose()?
            .ok_or_else(|| StoreError::Corrupt("token key missing".to_owned()))
    }
}
