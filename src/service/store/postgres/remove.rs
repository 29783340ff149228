//! Removing a user for good (`tidings admin user remove`) from PostgreSQL: one
//! transaction deletes their notifications, feed head, subscriptions, devices (with
//! their refresh histories, which live in the device rows) and the user row. The
//! caller revokes the devices first, which closes their channels on every node.

use super::super::records::UserRecord;
use super::super::{Removed, StoreError};
use super::PgStore;

impl PgStore {
    pub(super) async fn remove_user(&self, user: &UserRecord) -> Result<Removed, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| self.fault(e))?;
        let id = user.id.as_str();
        let mut counts = [0; 2];
        let statements = [
            "DELETE FROM notifications WHERE user_id = $1",
            "DELETE FROM devices WHERE user_id = $1",
            "DELETE FROM subscriptions WHERE user_id = $1",
            "DELETE FROM feed_heads WHERE user_id = $1",
            "DELETE FROM users WHERE id = $1",
        ];
        for (n, sql) in statements.iter().enumerate() {
            let rows = tx.execute(*sql, &[&id]).await.map_err(|e| self.fault(e))?;
            if let Some(count) = counts.get_mut(n) {
                *count = rows;
            }
        }
        tx.commit().await.map_err(|e| self.fault(e))?;
        Ok(Removed {
            notifications: counts[0],
            devices: counts[1],
        })
    }
}
