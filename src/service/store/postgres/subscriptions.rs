//! [`PgStore`] as [`Subscriptions`]: one row per subscription. The lookups every post
//! and every delivered change make (the UNSID's subscription, whether a device is
//! subscribed to a host) are answered from `recent` when they were read lately, so a
//! burst costs one query per key, not one per post.

use tokio_postgres::Row;

use super::super::records::SubscriptionRecord;
use super::super::{StoreError, Subscriptions};
use super::{PgStore, col, time_of};
use crate::protocol::{DeviceId, Timestamp, Unsid, UserId};

const SUBSCRIPTION: &str = "SELECT unsid, user_id, device_id, host, expires FROM subscriptions";

#[async_trait::async_trait]
impl Subscriptions for PgStore {
    async fn subscribe(
        &self,
        user: &UserId,
        device: &DeviceId,
        host: &str,
        expires: Timestamp,
        fresh: Unsid,
    ) -> Result<SubscriptionRecord, StoreError> {
        let rows = self
            .rows(
                "INSERT INTO subscriptions (unsid, user_id, device_id, host, expires)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (device_id, host) DO UPDATE SET expires = EXCLUDED.expires
                 RETURNING unsid, user_id, device_id, host, expires",
                &[
                    &fresh.as_str(),
                    &user.as_str(),
                    &device.as_str(),
                    &host,
                    &expires.as_millis(),
                ],
            )
            .await?;
        self.recent.forget(device);
        rows.first()
            .map(subscription)
            .transpose()?
            .ok_or_else(|| StoreError::Corrupt("a subscription upsert returned nothing".into()))
    }

    async fn subscription(&self, unsid: &Unsid) -> Result<Option<SubscriptionRecord>, StoreError> {
        if let Some(kept) = self.recent.subscription(unsid, Timestamp::now()) {
            return Ok(Some(kept));
        }
        let found = self
            .subscriptions_where("unsid = $1", &[&unsid.as_str()])
            .await?
            .into_iter()
            .next();
        if let Some(found) = &found {
            self.recent.put_subscription(found);
        }
        Ok(found)
    }

    /// Whether `device` holds an unexpired subscription to `host` (see `recent`).
    async fn is_subscribed(
        &self,
        device: &DeviceId,
        host: &str,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        if let Some(answer) = self.recent.get(device, host) {
            return Ok(answer.expires.is_some_and(|at| at > now));
        }
        let rows = self
            .rows(
                "SELECT expires FROM subscriptions WHERE device_id = $1 AND host = $2",
                &[&device.as_str(), &host],
            )
            .await?;
        let expires = rows
            .first()
            .map(|row| col(row, 0))
            .transpose()?
            .map(time_of);
        self.recent.put(device, host, expires);
        Ok(expires.is_some_and(|at| at > now))
    }

    async fn device_subscriptions(
        &self,
        device: &DeviceId,
    ) -> Result<Vec<SubscriptionRecord>, StoreError> {
        self.subscriptions_where("device_id = $1", &[&device.as_str()])
            .await
    }

    async fn unsubscribe(&self, unsid: &Unsid) -> Result<Option<SubscriptionRecord>, StoreError> {
        let rows = self
            .rows(
                "DELETE FROM subscriptions WHERE unsid = $1
                 RETURNING unsid, user_id, device_id, host, expires",
                &[&unsid.as_str()],
            )
            .await?;
        let ended = rows.first().map(subscription).transpose()?;
        if let Some(record) = &ended {
            self.recent.forget(&record.device);
        }
        Ok(ended)
    }
}

impl PgStore {
    /// Subscriptions matching a `WHERE` clause on `$1` (and `$2`, `$3` when given).
    async fn subscriptions_where(
        &self,
        clause: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Vec<SubscriptionRecord>, StoreError> {
        let rows = self
            .rows(
                &format!("{SUBSCRIPTION} WHERE {clause} ORDER BY host"),
                params,
            )
            .await?;
        rows.iter().map(subscription).collect()
    }
}

fn subscription(row: &Row) -> Result<SubscriptionRecord, StoreError> {
    Ok(SubscriptionRecord {
        unsid: Unsid::new(col::<String>(row, 0)?),
        user: UserId::new(col::<String>(row, 1)?),
        device: DeviceId::new(col::<String>(row, 2)?),
        host: col(row, 3)?,
        expires: time_of(col(row, 4)?),
    })
}
