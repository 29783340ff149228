//! [`PgStore`] as [`Accounts`]: users and apps, one row each, plain columns.

use tokio_postgres::Row;

use super::super::records::{AppRecord, UserRecord};
use super::super::{Accounts, Removed, StoreError};
use super::{PgStore, col, time_of};
use crate::protocol::{ClientId, UserId};

const USER: &str = "SELECT id, name, password_hash, created FROM users";
const APP: &str = "SELECT client_id, host, secret_hash, created FROM apps";

#[async_trait::async_trait]
impl Accounts for PgStore {
    async fn add_user(&self, user: UserRecord) -> Result<UserRecord, StoreError> {
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

    /// One transaction deletes their notifications, feed head, subscriptions, devices
    /// (with their refresh histories, which live in the device rows) and the user row.
    /// The caller revokes the devices first, which closes their channels on every node.
    async fn remove_user(&self, user: &UserRecord) -> Result<Removed, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| self.fault(e))?;
        let id = user.id.as_str();
        let mut counts = [0; 2];
        // The feed head first: a batch of feed writes locks it before the user's
        // notifications, so taking them in the same order cannot deadlock.
        let statements = [
            "DELETE FROM feed_heads WHERE user_id = $1",
            "DELETE FROM notifications WHERE user_id = $1",
            "DELETE FROM devices WHERE user_id = $1",
            "DELETE FROM subscriptions WHERE user_id = $1",
            "DELETE FROM users WHERE id = $1",
        ];
        for (n, sql) in statements.iter().enumerate() {
            let rows = tx.execute(*sql, &[&id]).await.map_err(|e| self.fault(e))?;
            if let Some(count) = n.checked_sub(1).and_then(|n| counts.get_mut(n)) {
                *count = rows;
            }
        }
        tx.commit().await.map_err(|e| self.fault(e))?;
        self.recent.forget_user(&user.id);
        Ok(Removed {
            notifications: counts[0],
            devices: counts[1],
        })
    }

    async fn set_password(
        &self,
        name: &str,
        password_hash: String,
    ) -> Result<Option<UserRecord>, StoreError> {
        let sql = "UPDATE users SET password_hash = $2 WHERE name = $1 \
                   RETURNING id, name, password_hash, created";
        let rows = self.rows(sql, &[&name, &password_hash]).await?;
        rows.first().map(user).transpose()
    }

    async fn users(&self) -> Result<Vec<UserRecord>, StoreError> {
        let rows = self.rows(&format!("{USER} ORDER BY name"), &[]).await?;
        rows.iter().map(user).collect()
    }

    async fn user_by_name(&self, name: &str) -> Result<Option<UserRecord>, StoreError> {
        self.user_where("name", name).await
    }

    async fn user_by_id(&self, id: &UserId) -> Result<Option<UserRecord>, StoreError> {
        self.user_where("id", id.as_str()).await
    }

    async fn add_app(&self, app: AppRecord) -> Result<AppRecord, StoreError> {
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

    async fn apps(&self) -> Result<Vec<AppRecord>, StoreError> {
        let rows = self.rows(&format!("{APP} ORDER BY client_id"), &[]).await?;
        rows.iter().map(app).collect()
    }

    async fn app(&self, client_id: &ClientId) -> Result<Option<AppRecord>, StoreError> {
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
}

impl PgStore {
    /// The user whose `column` is `value`.
    async fn user_where(
        &self,
        column: &str,
        value: &str,
    ) -> Result<Option<UserRecord>, StoreError> {
        let rows = self
            .rows(&format!("{USER} WHERE {column} = $1"), &[&value])
            .await?;
        rows.first().map(user).transpose()
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
