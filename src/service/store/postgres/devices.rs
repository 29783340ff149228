//! [`PgStore`] as [`Devices`]: one row per device, which also holds its refresh-token
//! history. Acks and "last seen" go to the ack writer (`acks.rs`).

use tokio_postgres::Row;

use super::super::records::{DeviceRecord, RefreshRecord};
use super::super::{Devices, StoreError};
use super::{PgStore, REVOKED, col, seq_of, seq_sql, time_of};
use crate::protocol::{DeviceId, Seq, Timestamp, UserId};

const DEVICE: &str = "SELECT id, user_id, name, platform, refresh_hash, revoked, acked_seq, \
     last_seen, created FROM devices";

#[async_trait::async_trait]
impl Devices for PgStore {
    async fn add_device(&self, d: DeviceRecord) -> Result<DeviceRecord, StoreError> {
        self.execute(
            "INSERT INTO devices (id, user_id, name, platform, refresh_hash, revoked, acked_seq,
                 last_seen, created) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            &[
                &d.id.as_str(),
                &d.user.as_str(),
                &d.name,
                &d.platform.as_str(),
                &d.refresh_hash,
                &d.revoked,
                &seq_sql(d.acked_seq),
                &d.last_seen.map(Timestamp::as_millis),
                &d.created.as_millis(),
            ],
        )
        .await?;
        Ok(d)
    }

    async fn devices(&self) -> Result<Vec<DeviceRecord>, StoreError> {
        self.devices_where(None).await
    }

    async fn device(&self, id: &DeviceId) -> Result<Option<DeviceRecord>, StoreError> {
        Ok(self
            .devices_where(Some(("id = $1", id.as_str())))
            .await?
            .pop())
    }

    async fn user_devices(&self, user: &UserId) -> Result<Vec<DeviceRecord>, StoreError> {
        self.devices_where(Some(("user_id = $1 AND NOT revoked", user.as_str())))
            .await
    }

    async fn revoke_device(&self, id: &DeviceId) -> Result<Option<DeviceRecord>, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| self.fault(e))?;
        let revoked = tx
            .execute(
                "UPDATE devices SET revoked = true, revoked_at = coalesce(revoked_at, $2)
                 WHERE id = $1",
                &[&id.as_str(), &Timestamp::now().as_millis()],
            )
            .await
            .map_err(|e| self.fault(e))?;
        if revoked == 0 {
            return Ok(None);
        }
        tx.execute(
            "DELETE FROM subscriptions WHERE device_id = $1",
            &[&id.as_str()],
        )
        .await
        .map_err(|e| self.fault(e))?;
        // Every node closes the device's channels (this one's hub does it itself).
        tx.execute("SELECT pg_notify($1, $2)", &[&REVOKED, &id.as_str()])
            .await
            .map_err(|e| self.fault(e))?;
        tx.commit().await.map_err(|e| self.fault(e))?;
        drop(client);
        self.recent.forget(id);
        Ok(self
            .devices_where(Some(("id = $1", id.as_str())))
            .await?
            .pop())
    }

    fn record_ack(&self, id: &DeviceId, seq: Seq, now: Timestamp) {
        self.acks.note(id, seq, now);
    }

    fn touch_device(&self, id: &DeviceId, now: Timestamp) {
        self.acks.note(id, Seq::ZERO, now);
    }

    async fn refresh_record(&self, id: &DeviceId) -> Result<RefreshRecord, StoreError> {
        let rows = self
            .rows(
                "SELECT refresh_issued, retired_hashes FROM devices WHERE id = $1",
                &[&id.as_str()],
            )
            .await?;
        Ok(rows.first().map(refresh).transpose()?.unwrap_or_default())
    }

    async fn rotate_refresh(
        &self,
        id: &DeviceId,
        current: &[u8],
        fresh: Vec<u8>,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| self.fault(e))?;
        let row = tx
            .query_opt(
                "SELECT refresh_hash, refresh_issued, retired_hashes FROM devices
                 WHERE id = $1 FOR UPDATE",
                &[&id.as_str()],
            )
            .await
            .map_err(|e| self.fault(e))?;
        let Some(row) = row else { return Ok(false) };
        let hash: Vec<u8> = col(&row, 0)?;
        if hash != current {
            return Ok(false);
        }
        let mut history = RefreshRecord {
            issued: col::<Option<i64>>(&row, 1)?.map(time_of),
            retired: col(&row, 2)?,
        };
        history.retire(hash, now);
        tx.execute(
            "UPDATE devices SET refresh_hash = $2, refresh_issued = $3, retired_hashes = $4
             WHERE id = $1",
            &[&id.as_str(), &fresh, &now.as_millis(), &history.retired],
        )
        .await
        .map_err(|e| self.fault(e))?;
        tx.commit().await.map_err(|e| self.fault(e))?;
        Ok(true)
    }
}

impl PgStore {
    /// Devices matching `filter` (a `WHERE` clause on `$1`, or none), by id.
    async fn devices_where(
        &self,
        filter: Option<(&str, &str)>,
    ) -> Result<Vec<DeviceRecord>, StoreError> {
        let rows = match filter {
            Some((clause, value)) => {
                self.rows(&format!("{DEVICE} WHERE {clause} ORDER BY id"), &[&value])
                    .await?
            }
            None => self.rows(&format!("{DEVICE} ORDER BY id"), &[]).await?,
        };
        rows.iter().map(device).collect()
    }
}

fn device(row: &Row) -> Result<DeviceRecord, StoreError> {
    let platform: String = col(row, 3)?;
    Ok(DeviceRecord {
        id: DeviceId::new(col::<String>(row, 0)?),
        user: UserId::new(col::<String>(row, 1)?),
        name: col(row, 2)?,
        platform: platform
            .parse()
            .map_err(|e| StoreError::Corrupt(format!("device platform: {e}")))?,
        refresh_hash: col(row, 4)?,
        revoked: col(row, 5)?,
        acked_seq: seq_of(col(row, 6)?),
        last_seen: col::<Option<i64>>(row, 7)?.map(time_of),
        created: time_of(col(row, 8)?),
    })
}

fn refresh(row: &Row) -> Result<RefreshRecord, StoreError> {
    Ok(RefreshRecord {
        issued: col::<Option<i64>>(row, 0)?.map(time_of),
        retired: col(row, 1)?,
    })
}
