//! Users, apps, devices, refresh tokens and subscriptions in PostgreSQL: one row each,
//! plain columns.
//!
//! Acks and "last seen" are frequent and advisory: they are gathered in memory and
//! written by one task, all pending devices in one statement, so a burst of acks costs
//! a few statements, not one connection each.
//!
//! The lookups every post and every delivered change make (the app, the UNSID's
//! subscription, whether a device is subscribed to a host) are answered from `recent`
//! when they were read lately, so a burst costs one query per key, not one per post.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;
use tokio_postgres::Row;

use super::super::StoreError;
use super::super::records::{
    AppRecord, DeviceRecord, RefreshRecord, SubscriptionRecord, UserRecord,
};
use super::{PgStore, REVOKED, col, seq_of, seq_sql, time_of};
use crate::protocol::{ClientId, DeviceId, Seq, Timestamp, Unsid, UserId};
use crate::sync::lock;

const USER: &str = "SELECT id, name, password_hash, created FROM users";
const APP: &str = "SELECT client_id, host, secret_hash, created FROM apps";
const DEVICE: &str = "SELECT id, user_id, name, platform, refresh_hash, revoked, acked_seq, \
     last_seen, created FROM devices";
const SUBSCRIPTION: &str = "SELECT unsid, user_id, device_id, host, expires FROM subscriptions";

/// Acks and contacts waiting to be written: device → (highest ack, latest contact).
#[derive(Default)]
pub(super) struct Acks {
    pending: Mutex<HashMap<DeviceId, (Seq, Timestamp)>>,
    wake: Notify,
}

impl Acks {
    fn note(&self, device: &DeviceId, seq: Seq, now: Timestamp) {
        let mut pending = lock(&self.pending);
        let entry = pending.entry(device.clone()).or_insert((seq, now));
        entry.0 = entry.0.max(seq);
        entry.1 = entry.1.max(now);
        drop(pending);
        self.wake.notify_one();
    }
}

/// Starts the task that writes acks; it ends when the store is dropped.
pub(super) fn start_ack_writer(store: &Arc<PgStore>) {
    let weak = Arc::downgrade(store);
    let stop = store.stop.clone();
    tokio::spawn(async move {
        loop {
            let Some(wake) = weak.upgrade() else { return };
            tokio::select! {
                () = stop.cancelled() => return,
                () = wake.acks.wake.notified() => {}
            }
            let batch = std::mem::take(&mut *lock(&wake.acks.pending));
            if let Err(e) = wake.write_acks(batch).await {
                tracing::debug!(error = %e, "acks not recorded");
            }
        }
    });
}

impl PgStore {
    async fn write_acks(
        &self,
        batch: HashMap<DeviceId, (Seq, Timestamp)>,
    ) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        let mut ids = Vec::with_capacity(batch.len());
        let mut acked = Vec::with_capacity(batch.len());
        let mut seen = Vec::with_capacity(batch.len());
        for (id, (seq, at)) in batch {
            ids.push(id.as_str().to_owned());
            acked.push(seq_sql(seq));
            seen.push(at.as_millis());
        }
        self.execute(
            "UPDATE devices d SET acked_seq = greatest(d.acked_seq, v.acked),
                 last_seen = greatest(coalesce(d.last_seen, 0), v.seen)
             FROM unnest($1::text[], $2::bigint[], $3::bigint[]) AS v(id, acked, seen)
             WHERE d.id = v.id",
            &[&ids, &acked, &seen],
        )
        .await?;
        Ok(())
    }

    /// Runs one statement on a pooled connection; returns the rows it changed.
    pub(super) async fn execute(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<u64, StoreError> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(sql)
            .await
            .map_err(|e| self.fault(e))?;
        client
            .execute(&statement, params)
            .await
            .map_err(|e| self.fault(e))
    }

    /// Runs one query on a pooled connection.
    pub(super) async fn rows(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Vec<Row>, StoreError> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(sql)
            .await
            .map_err(|e| self.fault(e))?;
        client
            .query(&statement, params)
            .await
            .map_err(|e| self.fault(e))
    }

    pub(super) async fn add_user(&self, user: UserRecord) -> Result<UserRecord, StoreError> {
        let added = self
            .execute(
                "INSERT INTO users (id, name, password_hash, created) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (name) DO NOTHING",
                &[
                    &user.id.as_str(),
                    &user.name,
                    &user.password_hash,
                    &user.created.as_millis(),
                ],
            )
            .await?;
        if added == 0 {
            return Err(StoreError::Conflict(format!(
                "a user named {:?} already exists",
                user.name
            )));
        }
        Ok(user)
    }

    pub(super) async fn set_password(
        &self,
        name: &str,
        password_hash: String,
    ) -> Result<Option<UserRecord>, StoreError> {
        let sql = "UPDATE users SET password_hash = $2 WHERE name = $1 \
                   RETURNING id, name, password_hash, created";
        let rows = self.rows(sql, &[&name, &password_hash]).await?;
        rows.first().map(user).transpose()
    }

    pub(super) async fn users(&self) -> Result<Vec<UserRecord>, StoreError> {
        let rows = self.rows(&format!("{USER} ORDER BY name"), &[]).await?;
        rows.iter().map(user).collect()
    }

    pub(super) async fn user_where(
        &self,
        column: &str,
        value: &str,
    ) -> Result<Option<UserRecord>, StoreError> {
        let rows = self
            .rows(&format!("{USER} WHERE {column} = $1"), &[&value])
            .await?;
        rows.first().map(user).transpose()
    }

    pub(super) async fn add_app(&self, app: AppRecord) -> Result<AppRecord, StoreError> {
        self.execute(
            "INSERT INTO apps (client_id, host, secret_hash, created) VALUES ($1, $2, $3, $4)",
            &[
                &app.client_id.as_str(),
                &app.host,
                &app.secret_hash,
                &app.created.as_millis(),
            ],
        )
        .await?;
        Ok(app)
    }

    pub(super) async fn apps(&self) -> Result<Vec<AppRecord>, StoreError> {
        let rows = self.rows(&format!("{APP} ORDER BY client_id"), &[]).await?;
        rows.iter().map(app).collect()
    }

    pub(super) async fn app(&self, client_id: &ClientId) -> Result<Option<AppRecord>, StoreError> {
        if let Some(app) = self.recent.app(client_id) {
            return Ok(Some(app));
        }
        let rows = self
            .rows(
                &format!("{APP} WHERE client_id = $1"),
                &[&client_id.as_str()],
            )
            .await?;
        let found = rows.first().map(app).transpose()?;
        if let Some(found) = &found {
            self.recent.put_app(found);
        }
        Ok(found)
    }

    pub(super) async fn add_device(&self, d: DeviceRecord) -> Result<DeviceRecord, StoreError> {
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

    /// Devices matching `filter` (a `WHERE` clause on `$1`, or none), by id.
    pub(super) async fn devices_where(
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

    pub(super) async fn revoke_device(
        &self,
        id: &DeviceId,
    ) -> Result<Option<DeviceRecord>, StoreError> {
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

    pub(super) fn note_contact(&self, id: &DeviceId, seq: Seq, now: Timestamp) {
        self.acks.note(id, seq, now);
    }

    pub(super) async fn refresh_record(&self, id: &DeviceId) -> Result<RefreshRecord, StoreError> {
        let rows = self
            .rows(
                "SELECT refresh_issued, retired_hashes FROM devices WHERE id = $1",
                &[&id.as_str()],
            )
            .await?;
        Ok(rows.first().map(refresh).transpose()?.unwrap_or_default())
    }

    pub(super) async fn rotate_refresh(
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

    pub(super) async fn subscribe(
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

    /// Subscriptions matching a `WHERE` clause on `$1` (and `$2`, `$3` when given).
    pub(super) async fn subscriptions_where(
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

    /// Whether `device` holds an unexpired subscription to `host` (see `recent`).
    pub(super) async fn is_subscribed(
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

    pub(super) async fn unsubscribe(
        &self,
        unsid: &Unsid,
    ) -> Result<Option<SubscriptionRecord>, StoreError> {
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

    pub(super) async fn token_key(&self, fresh: [u8; 32]) -> Result<Vec<u8>, StoreError> {
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

fn user(row: &Row) -> Result<UserRecord, StoreError> {
    Ok(UserRecord {
        id: UserId::new(col::<String>(row, 0)?),
        name: col(row, 1)?,
        password_hash: col(row, 2)?,
        created: time_of(col(row, 3)?),
    })
}

fn app(row: &Row) -> Result<AppRecord, StoreError> {
    Ok(AppRecord {
        client_id: ClientId::new(col::<String>(row, 0)?),
        host: col(row, 1)?,
        secret_hash: col(row, 2)?,
        created: time_of(col(row, 3)?),
    })
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

fn subscription(row: &Row) -> Result<SubscriptionRecord, StoreError> {
    Ok(SubscriptionRecord {
        unsid: Unsid::new(col::<String>(row, 0)?),
        user: UserId::new(col::<String>(row, 1)?),
        device: DeviceId::new(col::<String>(row, 2)?),
        host: col(row, 3)?,
        expires: time_of(col(row, 4)?),
    })
}
