//! Planning a statement on a sharded database, learning a table's columns first when the
//! router needs them: an INSERT into a sharded table without a column list
//! (`INSERT INTO t_order VALUES (...)`) routes by the position of its sharding columns,
//! which dbmesh reads once from the table's first actual table (`information_schema.columns`,
//! in ordinal order) and keeps. The MySQL twin is `wire/mysql/table_columns.rs`.

use super::sharded::ShardedSession;
use crate::error::Error;
use crate::route::shard::{ColumnsQuery, PreparedRoute};

impl ShardedSession {
    /// [`ShardRouter::prepare`](crate::route::shard::ShardRouter::prepare), after reading
    /// the columns of the table of an INSERT without a column list when the router asks
    /// for them. The extended protocol must have settled its forwarded messages first:
    /// the listing runs as a simple query on a shard's connection.
    pub(super) async fn prepare_route(&mut self, sql: &str) -> Result<PreparedRoute, Error> {
        let first = self.router.prepare(sql);
        let Err(error) = first else {
            return first;
        };
        let Some(wanted) = self.router.columns_wanted(sql) else {
            return Err(error);
        };
        let columns = self.read_columns(&wanted).await?;
        if columns.is_empty() {
            return Err(error);
        }
        self.router.learn_columns(&wanted.table, columns);
        self.router.prepare(sql)
    }

    /// Runs the router's column listing on its data source.
    async fn read_columns(&mut self, wanted: &ColumnsQuery) -> Result<Vec<String>, Error> {
        let ds = wanted.unit.data_source.as_str();
        let sql = wanted.unit.sql.as_deref().unwrap_or_default();
        let conn = self.backends.open(ds, &self.session).await?;
        match conn.query_first_column(sql).await {
            Ok(Ok(columns)) => Ok(columns),
            Ok(Err((_, message))) => Err(Error::Unroutable(format!(
                "INSERT into sharded table `{}` without a column list: its columns could not be read on data source `{ds}`: {message}",
                wanted.table
            ))),
            Err(e) => {
                self.backends.drop_connection(ds);
                Err(Error::BackendLost {
                    data_source: ds.to_string(),
                    cause: e.to_string(),
                })
            }
        }
    }
}
