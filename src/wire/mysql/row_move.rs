//! The row-moving UPDATE of a sharded MySQL session under XA (see
//! [`crate::route::shard::RowMove`]): over the session's own connections, inside the XA
//! transaction (one started for the statement alone under autocommit), read the table's
//! columns, `SELECT ... FOR UPDATE` the rows on their old nodes, `DELETE` them there and
//! `INSERT` them with the new values where the rules place them now.
//!
//! A failure half-way (a duplicate key on the new node, a lost connection) rolls back the
//! whole transaction on every data source, as a deadlock does in MySQL: dbmesh cannot undo
//! the part of one statement that ran, and a row deleted but not inserted must never
//! commit. The client gets the cause's error code with that said in the message.

use std::sync::Arc;

use super::err::MysqlError;
use super::frontend::{ClientConn, Fatal};
use super::ok::ok_payload;
use super::sharded_txn::ShardedTxn;
use crate::error::Error;
use crate::execute::LogicalDatabase;
use crate::route::shard::{ParamValue, PlanKind, PreparedRoute, RowMove, ShardRouter, Unit};
use crate::sql::analyze::Dialect;

impl ClientConn {
    /// An UPDATE of `route` that changes a sharding column, run with `params` (a
    /// COM_STMT_EXECUTE's, `None` for a plain query) in a session running XA: moves the
    /// rows and answers OK with their count, or the error.
    pub(crate) async fn update_moving_rows(
        &mut self,
        database: &Arc<LogicalDatabase>,
        router: &ShardRouter,
        route: &PreparedRoute,
        params: Option<&[ParamValue]>,
    ) -> Result<(), Fatal> {
        let mv = match router.plan_row_move(route, params) {
            Ok(mv) => mv,
            Err(e) => {
                self.send_error(&e);
                return Ok(());
            }
        };
        if let Some(e) = self.before_statement(PlanKind::Write).await {
            self.send_mysql_error(&e);
            return Ok(());
        }
        let implicit = self.txn.is_none();
        if implicit {
            // Autocommit: the move is a global transaction of its own.
            self.txn = Some(ShardedTxn::new("BEGIN", Some(self.rt.xa.begin())));
            self.session.in_transaction = true;
        }
        match self.move_rows(database, router, &mv).await {
            Ok(moved) => {
                if implicit {
                    if let Some(e) = self.finish_transaction(true, "COMMIT").await {
                        self.refresh_transaction_status();
                        self.send_mysql_error(&e);
                        return Ok(());
                    }
                }
                self.refresh_transaction_status();
                let p = ok_payload(moved, 0, self.status_flags(), 0);
                self.writer.write_packet(&mut self.seq, &p);
            }
            Err(e) => {
                let _ = self.finish_transaction(false, "ROLLBACK").await;
                self.refresh_transaction_status();
                let whole = if implicit {
                    "the row move was rolled back on every data source"
                } else {
                    "a row move that fails half-way cannot be undone alone, so the transaction was rolled back on every data source"
                };
                self.send_mysql_error(&MysqlError {
                    message: format!("{}; {whole}", e.message),
                    ..e
                });
            }
        }
        Ok(())
    }

    /// The three steps of the move, in the open transaction; the number of rows moved.
    async fn move_rows(
        &mut self,
        database: &LogicalDatabase,
        router: &ShardRouter,
        mv: &RowMove,
    ) -> Result<u64, MysqlError> {
        let columns = self.run_listing(database, &mv.columns.unit).await?;
        if columns.is_empty() {
            return Err(MysqlError::from(&Error::Unroutable(format!(
                "moving rows of `{}`: its columns could not be read on data source `{}`",
                mv.table, mv.columns.unit.data_source
            ))));
        }
        let select_sql = mv.select_sql(&columns, Dialect::MySql);
        let select = router
            .route_text(&select_sql)
            .map_err(|e| MysqlError::from(&e))?;
        let all: Vec<usize> = (0..columns.len()).collect();
        let mut rows = Vec::new();
        for unit in &select.units {
            let sql = unit.sql.as_deref().unwrap_or(&select_sql);
            rows.extend(self.run_rows(database, unit, sql, &all).await?);
        }
        let insert = mv
            .insert_sql(&columns, &rows, Dialect::MySql)
            .map_err(|e| MysqlError::from(&e))?;
        let Some(insert_sql) = insert else {
            return Ok(0);
        };
        let delete_sql = mv.delete_sql();
        let delete = router
            .route_text(&delete_sql)
            .map_err(|e| MysqlError::from(&e))?;
        for unit in &delete.units {
            let sql = unit.sql.as_deref().unwrap_or(&delete_sql);
            self.run_rows(database, unit, sql, &[]).await?;
        }
        let insert = router
            .route_text(&insert_sql)
            .map_err(|e| MysqlError::from(&e))?;
        for unit in &insert.units {
            let sql = unit.sql.as_deref().unwrap_or(&insert_sql);
            self.run_rows(database, unit, sql, &[]).await?;
        }
        Ok(rows.len() as u64)
    }

    /// The first column of each row of `unit` (a column listing).
    async fn run_listing(
        &mut self,
        database: &LogicalDatabase,
        unit: &Unit,
    ) -> Result<Vec<String>, MysqlError> {
        let sql = unit.sql.clone().unwrap_or_default();
        let rows = self.run_rows(database, unit, &sql, &[0]).await?;
        Ok(rows
            .into_iter()
            .filter_map(|mut r| r.pop().flatten())
            .collect())
    }

    /// Runs `sql` on the session's connection to `unit`'s data source (joining the
    /// transaction there first); the columns `columns` of each row, as text.
    async fn run_rows(
        &mut self,
        database: &LogicalDatabase,
        unit: &Unit,
        sql: &str,
        columns: &[usize],
    ) -> Result<Vec<Vec<Option<String>>>, MysqlError> {
        let index = self
            .backends_for_units(database, std::slice::from_ref(unit), None)
            .await
            .map_err(|e| MysqlError::from(&e))?[0];
        let answer = self.backend_rows(index, sql, columns).await;
        if answer.is_err() && !self.backends[index].conn.healthy {
            // The connection broke: the transaction lost its branch there.
            let name = self.backends[index].ds.name.clone();
            if let Some(txn) = self.txn.as_mut() {
                txn.lost(&name);
            }
            self.drop_unhealthy_backends();
        }
        answer
    }
}
