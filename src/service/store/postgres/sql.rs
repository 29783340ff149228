//! One statement on a pooled connection, its failure judged by [`PgStore::fault`].

use deadpool_postgres::Object;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Row, Statement};

use super::super::StoreError;
use super::PgStore;

impl PgStore {
    /// Runs one statement on a pooled connection; returns the rows it changed.
    pub(super) async fn execute(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, StoreError> {
        let (client, statement) = self.prepared(sql).await?;
        client
            .execute(&statement, params)
            .await
            .map_err(|e| self.fault(e))
    }

    /// Runs one query on a pooled connection.
    pub(super) async fn rows(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, StoreError> {
        let (client, statement) = self.prepared(sql).await?;
        client
            .query(&statement, params)
            .await
            .map_err(|e| self.fault(e))
    }

    /// A pooled connection and `sql` prepared on it (once per connection: cached).
    async fn prepared(&self, sql: &str) -> Result<(Object, Statement), StoreError> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(sql)
            .await
            .map_err(|e| self.fault(e))?;
        Ok((client, statement))
    }
}
