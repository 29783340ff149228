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
}
