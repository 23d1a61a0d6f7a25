//! Planning a statement on a sharded database, learning a table's columns first when the
//! router needs them: an INSERT into a sharded table without a column list
//! (`INSERT INTO t_order VALUES (...)`) routes by the position of its sharding columns,
//! which dbmesh reads from the table's first actual table (`SHOW COLUMNS`) once, and keeps.

use super::frontend::ClientConn;
use crate::error::Error;
use crate::execute::LogicalDatabase;
use crate::route::shard::{ColumnsQuery, PreparedRoute, ShardRouter};

impl ClientConn {
    /// [`ShardRouter::prepare`], after reading the columns of the table of an INSERT
    /// without a column list when the router asks for them.
    pub(crate) async fn prepare_route(
        &mut self,
        database: &LogicalDatabase,
        router: &ShardRouter,
        sql: &str,
    ) -> Result<PreparedRoute, Error> {
        let first = router.prepare(sql);
        let Err(error) = first else {
            return first;
        };
        let Some(wanted) = router.columns_wanted(sql) else {
            return Err(error);
        };
        let columns = self.read_columns(database, &wanted).await?;
        if columns.is_empty() {
            return Err(error);
        }
        router.learn_columns(&wanted.table, columns);
        router.prepare(sql)
    }

    /// Runs the router's column listing on its data source.
    async fn read_columns(
        &mut self,
        database: &LogicalDatabase,
        wanted: &ColumnsQuery,
    ) -> Result<Vec<String>, Error> {
        let index = self
            .backends_for_units(database, std::slice::from_ref(&wanted.unit), None)
            .await?[0];
        let sql = wanted.unit.sql.as_deref().unwrap_or_default();
        let held = &mut self.backends[index];
        match held.conn.query_first_column(sql).await {
            Ok(Ok(columns)) => Ok(columns),
            Ok(Err(e)) => Err(Error::Unroutable(format!(
                "INSERT into sharded table `{}` without a column list: its columns could not be read on data source `{}`: {}",
                wanted.table, held.ds.name, e.message
            ))),
            Err(e) => {
                let data_source = held.ds.name.clone();
                self.drop_unhealthy_backends();
                Err(Error::BackendLost {
                    data_source,
                    cause: e.to_string(),
                })
            }
        }
    }
}
