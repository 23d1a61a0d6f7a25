//! SAGA transactions of a sharded MySQL session (see [`crate::txn::saga`]).
//!
//! Inside a saga each write runs, on every data source it reaches, as a local transaction
//! of its own: `START TRANSACTION`; the before-image read (`SELECT ... FOR UPDATE` with the
//! statement's WHERE, for UPDATE / DELETE); the compensations appended to the transaction
//! log (fsynced); the statement; `COMMIT`. An INSERT logs its compensation (the DELETE of
//! its keys) after it ran, still before the COMMIT: logged before, a failed INSERT (a
//! duplicate key) would have its compensation delete the row that holds the key. Reads
//! run as outside a transaction.
//!
//! A statement dbmesh cannot compensate is refused before anything runs (1235 `0A000`)
//! and the saga goes on. A statement that fails once it started (on any data source of a
//! fan-out) is rolled back locally, then every compensation so far runs in reverse order
//! and the saga is over; the client gets the statement's error, saying so. ROLLBACK runs
//! the compensations; COMMIT forgets them. A compensation that cannot run (its data
//! source is down) is left in the log, and recovery finishes it.

use std::sync::Arc;

use tracing::warn;

use super::err::MysqlError;
use super::frontend::{ClientConn, Fatal, COM_QUERY};
use super::ok::ok_payload;
use super::response::ResponseKind;
use super::sharded::ok_merge;
use super::sharded_txn::ShardedTxn;
use crate::config::TransactionType;
use crate::error::Error;
use crate::execute::LogicalDatabase;
use crate::route::shard::saga_undo::{plan_undo, TableShape, UndoPlan};
use crate::route::shard::{ParamMode, ParamValue, PlanKind, PreparedRoute, ShardRouter, Unit};
use crate::txn::failpoint;
use crate::txn::log::UndoStep;
use crate::txn::saga::SagaTxn;

/// Why a saga statement did not run to the end.
enum SagaFail {
    /// Refused before it changed anything: the saga goes on.
    Refused(MysqlError),
    /// It failed once started: the saga is compensated.
    Failed(MysqlError),
}

/// Whether a statement of `kind` (`sql`) inside a saga goes to [`ClientConn::saga_statement`]:
/// writes and DDL, and statements dbmesh could not parse that start like a write (they are
/// refused there: dbmesh could not compensate them).
pub(crate) fn saga_handles(kind: PlanKind, sql: &str) -> bool {
    match kind {
        PlanKind::Write | PlanKind::Ddl => true,
        PlanKind::Other => {
            let first = sql
                .trim_start()
                .split(|c: char| !c.is_ascii_alphabetic())
                .next()
                .unwrap_or("")
                .to_ascii_uppercase();
            matches!(
                first.as_str(),
                "INSERT"
                    | "UPDATE"
                    | "DELETE"
                    | "REPLACE"
                    | "CALL"
                    | "LOAD"
                    | "TRUNCATE"
                    | "ALTER"
                    | "CREATE"
                    | "DROP"
                    | "RENAME"
                    | "HANDLER"
                    | "LOCK"
            )
        }
        _ => false,
    }
}

impl ClientConn {
    /// The transaction type a BEGIN starts now: the session's `dbmesh_transaction_type`,
    /// else its database's `transaction` setting.
    pub(crate) fn transaction_type_wanted(&self) -> Option<TransactionType> {
        let configured = self.session.database.as_ref().and_then(|d| {
            self.rt
                .cluster()
                .databases
                .get(d)
                .map(|db| db.config.transaction)
        });
        self.session.transaction_type.or(configured)
    }

    /// Whether the session runs a saga now.
    pub(crate) fn saga_running(&self) -> bool {
        self.txn.as_ref().is_some_and(|t| t.saga.is_some())
    }

    /// Inside a saga, a prepared statement dbmesh did not analyse (it names no table of
    /// the sharding rules) runs as it is, so dbmesh could not compensate a write: only
    /// reads are let through. `None` to go on.
    pub(crate) fn saga_refuses_plain_execute(&self, id: u32) -> Option<Error> {
        if !self.saga_running() {
            return None;
        }
        let sql = self.statements.get(&id)?.sql.clone();
        let sql = String::from_utf8_lossy(&sql);
        let first = sql
            .trim_start()
            .split(|c: char| !c.is_ascii_alphabetic())
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();
        if matches!(
            first.as_str(),
            "SELECT" | "SHOW" | "DESCRIBE" | "DESC" | "EXPLAIN"
        ) {
            return None;
        }
        Some(Error::NotSupported(
            "a prepared statement other than a read on a table outside the sharding rules inside a SAGA transaction (dbmesh could not compensate it; send it as a plain query)".into(),
        ))
    }

    /// A saga for a BEGIN (or the first statement under `autocommit = 0`).
    pub(crate) fn begin_saga(&mut self, begin: &str) {
        let id = self.rt.xa.begin();
        self.txn = Some(ShardedTxn::with_saga(begin, SagaTxn::new(id)));
        self.session.in_transaction = true;
    }

    /// A write or DDL `route` (bound to `params` for COM_STMT_EXECUTE) inside a saga: runs
    /// it as described in the module documentation and answers OK or the error.
    pub(crate) async fn saga_statement(
        &mut self,
        database: &Arc<LogicalDatabase>,
        router: &ShardRouter,
        route: &PreparedRoute,
        params: Option<&[ParamValue]>,
    ) -> Result<(), Fatal> {
        match self.saga_run(database, router, route, params).await {
            Ok((affected, last_id)) => {
                self.refresh_transaction_status();
                let p = ok_payload(affected, last_id, self.status_flags(), 0);
                self.writer.write_packet(&mut self.seq, &p);
            }
            Err(SagaFail::Refused(e)) => {
                self.drop_unhealthy_backends();
                self.send_mysql_error(&e);
            }
            Err(SagaFail::Failed(e)) => {
                // A connection that broke is replaced for the compensations.
                self.drop_unhealthy_backends();
                let undone = match self.txn.take().and_then(|t| t.saga) {
                    Some(saga) => self.compensate(&saga).await,
                    None => Ok(()),
                };
                self.refresh_transaction_status();
                let whole = match undone {
                    Ok(()) => "the SAGA transaction was rolled back: every statement before it was compensated".to_string(),
                    Err(c) => format!("the SAGA transaction was rolled back, but a compensation failed ({}); recovery will finish it", c.message),
                };
                self.send_mysql_error(&MysqlError {
                    message: format!("{}; {whole}", e.message),
                    ..e
                });
            }
        }
        Ok(())
    }

    async fn saga_run(
        &mut self,
        database: &Arc<LogicalDatabase>,
        router: &ShardRouter,
        route: &PreparedRoute,
        params: Option<&[ParamValue]>,
    ) -> Result<(u64, u64), SagaFail> {
        let refused = |e: &Error| SagaFail::Refused(MysqlError::from(e));
        if route.kind == PlanKind::Ddl {
            return Err(refused(&Error::NotSupported(
                "DDL inside a SAGA transaction (it cannot be compensated; COMMIT or ROLLBACK first)"
                    .into(),
            )));
        }
        if route.kind != PlanKind::Write {
            return Err(refused(&Error::NotSupported(
                "a statement dbmesh cannot parse or compensate inside a SAGA transaction".into(),
            )));
        }
        let plan = router
            .plan(route, params, ParamMode::Inline)
            .map_err(|e| refused(&e))?;
        let logical = route
            .analysis
            .as_ref()
            .and_then(|a| a.sharded_tables().first().map(|t| t.to_string()));
        let mut undo: Vec<UndoPlan> = Vec::with_capacity(plan.units.len());
        for unit in &plan.units {
            let sql = unit.sql.as_deref().unwrap_or(&route.sql);
            undo.push(
                plan_undo(sql, crate::sql::analyze::Dialect::MySql).map_err(|e| refused(&e))?,
            );
        }
        let indices = self
            .backends_for_units(database, &plan.units, None)
            .await
            .map_err(|e| refused(&e))?;
        let mut shapes = Vec::with_capacity(undo.len());
        for (u, &i) in undo.iter().zip(&indices) {
            let shape = self.table_shape(i, u.table()).await?;
            u.check(&shape, logical.as_deref().unwrap_or(u.table()))
                .map_err(|e| refused(&e))?;
            shapes.push(shape);
        }

        // From here on the statement runs: failures compensate the saga.
        let mut begun: Vec<usize> = Vec::new();
        for &i in &indices {
            if !begun.contains(&i) {
                begun.push(i);
            }
        }
        let merge = ok_merge(&plan, route);
        let outcome = self
            .saga_apply(
                &plan.units,
                &route.sql,
                merge.copies,
                &undo,
                &shapes,
                &indices,
                &begun,
            )
            .await;
        let (affected, last_id) = match outcome {
            Ok(counts) => counts,
            Err(e) => {
                for &i in &begun {
                    let _ = self.backends[i].conn.query_internal("ROLLBACK").await;
                }
                return Err(SagaFail::Failed(e));
            }
        };
        let saga = self.txn.as_mut().and_then(|t| t.saga.as_mut());
        if let Some(saga) = saga {
            saga.statements += 1;
            failpoint::hit(&format!("saga_after_statement_{}", saga.statements));
        }
        Ok((affected, merge.last_insert_id.unwrap_or(last_id)))
    }

    /// Runs the statement's units, each data source in a local transaction, logging the
    /// compensations before anything commits. The affected rows and last insert id.
    #[allow(clippy::too_many_arguments)]
    async fn saga_apply(
        &mut self,
        units: &[Unit],
        client_sql: &str,
        copies: bool,
        undo: &[UndoPlan],
        shapes: &[TableShape],
        indices: &[usize],
        begun: &[usize],
    ) -> Result<(u64, u64), MysqlError> {
        for &i in begun {
            self.backend_sql(i, "START TRANSACTION").await?;
        }
        let mut steps = Vec::new();
        for ((u, shape), &i) in undo.iter().zip(shapes).zip(indices) {
            let ds = self.backends[i].ds.clone();
            let Some(select) = u.before_image_sql(shape) else {
                // An INSERT: its keys are logged once it ran (below), so a failed INSERT
                // (a duplicate key) never deletes the row that holds its key.
                continue;
            };
            let all: Vec<usize> = (0..shape.columns.len()).collect();
            let rows = self.backend_rows(i, &select, &all).await?;
            let sqls = u
                .undo_from_image(shape, &rows)
                .map_err(|e| MysqlError::from(&e))?;
            steps.extend(sqls.into_iter().map(|sql| UndoStep {
                database: ds.database.clone(),
                data_source: ds.name.clone(),
                sql,
            }));
        }
        self.saga_record(steps).await?;
        let (mut affected, mut last_id) = (0u64, 0u64);
        for (n, ((unit, u), &i)) in units.iter().zip(undo).zip(indices).enumerate() {
            let sql = unit.sql.as_deref().unwrap_or(client_sql);
            let (rows, id) = self.backend_write(i, sql).await?;
            if let UndoPlan::Insert { .. } = u {
                // Logged before this data source commits (step 5): a crash before that
                // rolls the INSERT back with the connection.
                let undo = match u
                    .inserted_keys(&shapes[n])
                    .map_err(|e| MysqlError::from(&e))?
                {
                    Some(keys) => u.undo_insert(&shapes[n], &keys),
                    None => u.undo_generated_insert(&shapes[n], id, rows),
                };
                if let Some(sql) = undo {
                    let ds = self.backends[i].ds.clone();
                    self.saga_record(vec![UndoStep {
                        database: ds.database.clone(),
                        data_source: ds.name.clone(),
                        sql,
                    }])
                    .await?;
                }
            }
            if !(copies && n > 0) {
                affected += rows;
            }
            if last_id == 0 {
                last_id = id;
            }
        }
        for &i in begun {
            self.backend_sql(i, "COMMIT").await?;
        }
        Ok((affected, last_id))
    }

    /// Appends `steps` to the log and to the session's saga.
    async fn saga_record(&mut self, steps: Vec<UndoStep>) -> Result<(), MysqlError> {
        if steps.is_empty() {
            return Ok(());
        }
        let Some(saga) = self.txn.as_mut().and_then(|t| t.saga.as_mut()) else {
            return Ok(());
        };
        let log = &saga.id.coordinator().log;
        if let Err(e) = log.record_saga(&saga.id.gtrid, &steps).await {
            return Err(MysqlError::from(&Error::XaRolledBack(e.to_string())));
        }
        saga.steps.extend(steps);
        Ok(())
    }

    /// The shape of `table` as connection `index` sees it, read once per saga.
    async fn table_shape(&mut self, index: usize, table: &str) -> Result<TableShape, SagaFail> {
        let key = (self.backends[index].ds.name.clone(), table.to_string());
        if let Some(shape) = self
            .txn
            .as_ref()
            .and_then(|t| t.saga.as_ref())
            .and_then(|s| s.shapes.get(&key))
        {
            return Ok(shape.clone());
        }
        let rows = self
            .backend_rows(index, &TableShape::show_columns_sql(table), &[0, 3, 5])
            .await
            .map_err(SagaFail::Refused)?;
        let shape = TableShape::from_show_columns(&rows);
        if let Some(saga) = self.txn.as_mut().and_then(|t| t.saga.as_mut()) {
            saga.shapes.insert(key, shape.clone());
        }
        Ok(shape)
    }

    /// Runs `sql` (no rows) on held connection `index`; errors name the data source.
    async fn backend_sql(&mut self, index: usize, sql: &str) -> Result<(), MysqlError> {
        self.backend_rows(index, sql, &[]).await.map(|_| ())
    }

    /// Runs `sql` on held connection `index`; the columns `columns` of each row. Errors
    /// name the data source; a broken connection is left unhealthy for the caller.
    pub(crate) async fn backend_rows(
        &mut self,
        index: usize,
        sql: &str,
        columns: &[usize],
    ) -> Result<Vec<Vec<Option<String>>>, MysqlError> {
        let held = &mut self.backends[index];
        let name = held.ds.name.clone();
        let answer = if columns.is_empty() {
            held.conn
                .query_internal(sql)
                .await
                .map(|r| r.map(|()| Vec::new()))
        } else {
            held.conn.query_columns(sql, columns).await
        };
        match answer {
            Ok(Ok(rows)) => Ok(rows),
            Ok(Err(e)) => Err(MysqlError {
                message: format!("data source '{name}': {}", e.message),
                ..e
            }),
            Err(e) => Err(MysqlError::from(&Error::BackendLost {
                data_source: name,
                cause: e.to_string(),
            })),
        }
    }

    /// Runs the write `sql` on held connection `index`: affected rows and last insert id.
    async fn backend_write(&mut self, index: usize, sql: &str) -> Result<(u64, u64), MysqlError> {
        let mut payload = Vec::with_capacity(sql.len() + 1);
        payload.push(COM_QUERY);
        payload.extend_from_slice(sql.as_bytes());
        let held = &mut self.backends[index];
        let name = held.ds.name.clone();
        match held.conn.run_internal(&payload, ResponseKind::Query).await {
            Ok(Ok(tracker)) => Ok(tracker.last_ok.unwrap_or((0, 0))),
            Ok(Err(e)) => Err(MysqlError {
                message: format!("data source '{name}': {}", e.message),
                ..e
            }),
            Err(e) => Err(MysqlError::from(&Error::BackendLost {
                data_source: name,
                cause: e.to_string(),
            })),
        }
    }

    /// Ends the saga: COMMIT forgets its compensations, ROLLBACK runs them. The error to
    /// report, if any.
    pub(crate) async fn finish_saga(&mut self, saga: SagaTxn, commit: bool) -> Option<MysqlError> {
        // Close what `autocommit = 0` may have opened on the connections (reads).
        let all: Vec<usize> = (0..self.backends.len()).collect();
        let verb = if commit { "COMMIT" } else { "ROLLBACK" };
        let _ = self.run_on_backends(&all, verb).await;
        if !commit {
            return self.compensate(&saga).await.err().map(|e| {
                MysqlError::from(&Error::XaRolledBack(format!(
                    "the SAGA transaction {} was not fully compensated ({}); recovery will finish it",
                    saga.id.gtrid, e.message
                )))
            });
        }
        if saga.steps.is_empty() {
            return None;
        }
        let log = &saga.id.coordinator().log;
        match log.forget(&[saga.id.gtrid.to_string()]).await {
            Ok(()) => None,
            Err(e) => {
                // Recovery would compensate what the log still holds: do it now, and say so.
                let undone = self.compensate(&saga).await;
                Some(MysqlError::from(&Error::XaRolledBack(format!(
                    "{e}; the SAGA transaction {} could not be committed, so it was {}",
                    saga.id.gtrid,
                    if undone.is_ok() {
                        "compensated"
                    } else {
                        "rolled back (recovery finishes the compensation)"
                    }
                ))))
            }
        }
    }

    /// Runs the compensations of `saga`, last first, each in a transaction of its own on
    /// the session's connection to its data source; then forgets the saga. The first
    /// failure stops it (the log keeps the saga, recovery runs it again).
    async fn compensate(&mut self, saga: &SagaTxn) -> Result<(), MysqlError> {
        for (n, step) in saga.compensation().iter().enumerate() {
            let database = self.rt.cluster().databases.get(&step.database).cloned();
            let Some(database) = database else {
                return Err(MysqlError::from(&Error::Routing(format!(
                    "database `{}` of a SAGA compensation is gone",
                    step.database
                ))));
            };
            let unit = Unit {
                data_source: step.data_source.clone(),
                sql: None,
            };
            let index = self
                .backends_for_units(&database, std::slice::from_ref(&unit), None)
                .await
                .map_err(|e| MysqlError::from(&e))?[0];
            let ran = async {
                self.backend_sql(index, "START TRANSACTION").await?;
                self.backend_sql(index, &step.sql).await?;
                self.backend_sql(index, "COMMIT").await
            }
            .await;
            if let Err(e) = ran {
                let _ = self.backends[index].conn.query_internal("ROLLBACK").await;
                self.drop_unhealthy_backends();
                warn!(gtrid = %saga.id.gtrid, "SAGA compensation failed (recovery retries it): {}", e.message);
                return Err(e);
            }
            if n == 0 {
                failpoint::hit("saga_after_first_undo");
            }
        }
        if !saga.steps.is_empty() {
            let log = &saga.id.coordinator().log;
            if let Err(e) = log.forget(&[saga.id.gtrid.to_string()]).await {
                warn!(gtrid = %saga.id.gtrid, "trimming the SAGA log failed (recovery compensates again, harmlessly): {e}");
            }
        }
        Ok(())
    }
}
