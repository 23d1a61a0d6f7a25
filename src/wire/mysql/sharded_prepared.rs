//! Prepared statements over sharded tables. The client's statement is analysed once
//! ([`ShardRouter::prepare`]) and prepared for real on one data node, the router's
//! [`describe_target`](ShardRouter::describe_target), which answers the client with the
//! parameter and column metadata. Each COM_STMT_EXECUTE is then planned with the bound
//! values:
//!
//! - SELECTs keep their placeholders ([`ParamMode::Keep`]): each unit's SQL is prepared on
//!   its data source's connection (once per connection, cached by SQL text) and executed
//!   with the client's parameter block, so rows come back in the binary protocol as the
//!   client expects;
//! - everything else gets its values written into the SQL ([`ParamMode::Inline`]) and runs
//!   as COM_QUERY, whose OK / ERR is what an execute returns. (A statement that returns
//!   rows but is planned inline is prepared and executed once per unit instead, so its
//!   rows are binary too.)
//!
//! Long data (COM_STMT_SEND_LONG_DATA) is buffered, up to `max_packet_size` per execution,
//! folded into the values the planner sees, and sent on to every backend statement that
//! runs with the client's parameters. Cursors (COM_STMT_FETCH) are not offered: executes
//! run without one, so drivers read the rows directly.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::BytesMut;

use super::concat::OkMerge;
use super::err::MysqlError;
use super::execute_packet::{
    decode_params, execute_template, execute_without_params, long_data_packet, parse_execute,
    with_statement_id,
};
use super::fanout::{query_payload, Dispatch};
use super::frontend::{ClientConn, Fatal, COM_STMT_PREPARE};
use super::prepared::PreparedStatement;
use super::response::ResponseKind;
use super::sharded::{ok_merge, template_sql};
use crate::error::Error;
use crate::execute::LogicalDatabase;
use crate::merge::sql_plan::SelectMerge;
use crate::route::shard::{ParamMode, ParamValue, PlanKind, PreparedRoute, ShardRouter};
use crate::sql::analyze::SqlKind;

/// What a prepared statement over sharded tables keeps besides the usual.
pub struct ShardedStatement {
    /// The logical database it was prepared in (a later `USE` does not move it).
    pub database: Arc<LogicalDatabase>,
    /// That database's planner.
    pub router: Arc<ShardRouter>,
    /// The analysis made at prepare time, planned again at each execute.
    pub route: PreparedRoute,
    /// A SELECT: executed with the client's parameters kept (binary rows).
    pub keep_params: bool,
    /// COM_STMT_SEND_LONG_DATA since the last execute, by parameter.
    pub long_data: BTreeMap<u16, Vec<u8>>,
    long_data_bytes: usize,
}

/// What one execution comes to.
enum Execution {
    /// Units to run, how their OKs merge, and how their rows merge (a SELECT over
    /// several shards that needs more than concatenation).
    Run(Vec<Dispatch>, OkMerge, Option<Arc<SelectMerge>>),
    /// A transaction-control statement (its kind and SQL).
    Control(PlanKind, String),
    /// An UPDATE that changes a sharding column, under XA: its rows move (`row_move.rs`).
    MoveRows(
        Arc<LogicalDatabase>,
        Arc<ShardRouter>,
        Box<PreparedRoute>,
        Vec<ParamValue>,
    ),
}

impl ClientConn {
    /// COM_STMT_PREPARE of a statement the router analysed (`route.analysis` is `Some`).
    pub(crate) async fn prepare_sharded(
        &mut self,
        database: Arc<LogicalDatabase>,
        router: Arc<ShardRouter>,
        route: PreparedRoute,
        payload: &[u8],
    ) -> Result<(), Fatal> {
        let target = match router.describe_target(&route) {
            Ok(t) => t,
            Err(e) => {
                self.send_error(&e);
                return Ok(());
            }
        };
        let indices = match self
            .backends_for_units(&database, std::slice::from_ref(&target), None)
            .await
        {
            Ok(i) => i,
            Err(e) => {
                self.send_error(&e);
                return Ok(());
            }
        };
        let index = indices[0];
        let sql = target.sql.clone().unwrap_or_else(|| route.sql.clone());
        let mut command = vec![COM_STMT_PREPARE];
        command.extend_from_slice(sql.as_bytes());
        let id = self.next_statement_id;
        let Some(tracker) = self
            .forward(index, &command, ResponseKind::Prepare, Some(id))
            .await?
        else {
            return Ok(());
        };
        let (Some(ok), false) = (tracker.prepare, tracker.error) else {
            return Ok(());
        };
        self.next_statement_id = self.next_statement_id.wrapping_add(1).max(1);
        let held = &mut self.backends[index];
        held.conn
            .unit_statements
            .entry(id)
            .or_default()
            .insert(sql, ok.statement_id);
        let keep_params = route
            .analysis
            .as_ref()
            .is_some_and(|a| matches!(a.kind, SqlKind::Select { .. }));
        self.statements.insert(
            id,
            PreparedStatement {
                sql: payload[1..].to_vec(),
                data_source: held.ds.clone(),
                params: ok.params,
                columns: ok.columns,
                param_types: None,
                sharded: Some(Box::new(ShardedStatement {
                    database,
                    router,
                    route,
                    keep_params,
                    long_data: BTreeMap::new(),
                    long_data_bytes: 0,
                })),
            },
        );
        Ok(())
    }

    /// Is statement `id` one over sharded tables?
    pub(crate) fn is_sharded_statement(&self, id: u32) -> bool {
        self.statements
            .get(&id)
            .is_some_and(|s| s.sharded.is_some())
    }

    /// COM_STMT_EXECUTE of a sharded statement: plan with the bound values, run the units.
    pub(crate) async fn execute_sharded(
        &mut self,
        id: u32,
        payload: BytesMut,
    ) -> Result<(), Fatal> {
        let result = self.plan_execute(id, &payload).await;
        if let Some(sh) = self
            .statements
            .get_mut(&id)
            .and_then(|s| s.sharded.as_mut())
        {
            // Long data is for one execution, as on a MySQL server.
            sh.long_data.clear();
            sh.long_data_bytes = 0;
        }
        let sources = match &result {
            Ok(Execution::Run(units, ..)) => self.held_sources(units.iter().map(|u| u.backend)),
            _ => Vec::new(),
        };
        match result {
            Ok(Execution::Run(units, _, Some(select_merge))) => {
                self.run_merged(units, select_merge).await?;
            }
            Ok(Execution::Run(units, merge, None)) => {
                self.run_dispatches(units, merge).await?;
            }
            Ok(Execution::Control(kind, sql)) => {
                self.transaction_control(kind, &sql).await?;
                self.after_sharded_commit(kind).await;
            }
            Ok(Execution::MoveRows(database, router, route, values)) => {
                self.update_moving_rows(&database, &router, &route, Some(&values))
                    .await?;
            }
            Err(e) => {
                self.drop_unhealthy_backends();
                self.send_mysql_error(&e);
            }
        }
        self.refresh_transaction_status();
        if !self.statement_failed && !sources.is_empty() {
            let sql = self.statements.get(&id).map(|s| s.sql.clone());
            self.note_writes(&sources, sql.as_deref().unwrap_or_default())
                .await;
        }
        Ok(())
    }

    /// Decodes, plans and prepares the units of one execution.
    async fn plan_execute(&mut self, id: u32, payload: &[u8]) -> Result<Execution, MysqlError> {
        let max_long_data = self.rt.config().server.max_packet_size as usize;
        let xa = self.xa_wanted();
        let stmt = self.statements.get_mut(&id).expect("a sharded statement");
        let params = usize::from(stmt.params);
        let malformed = |what: String| MysqlError::from(&Error::Malformed(what));
        let exec = parse_execute(payload, params)
            .ok_or_else(|| malformed("COM_STMT_EXECUTE is too short".into()))?;
        if let Some(types) = exec.types {
            if stmt.param_types.as_deref() != Some(types) {
                stmt.param_types = Some(types.to_vec());
            }
        }
        let types = stmt.param_types.clone().unwrap_or_default();
        let sh = stmt.sharded.as_ref().expect("a sharded statement");
        if sh.long_data_bytes > max_long_data {
            return Err(MysqlError::from(&Error::NotSupported(format!(
                "more than max_packet_size ({max_long_data} bytes) of long data for one execution of a statement over sharded tables"
            ))));
        }
        let values = decode_params(&exec, params, &types, &sh.long_data)
            .map_err(|e| malformed(format!("COM_STMT_EXECUTE: {e}")))?;
        let mode = if sh.keep_params {
            ParamMode::Keep
        } else {
            ParamMode::Inline
        };
        let plan = match sh.router.plan(&sh.route, Some(&values), mode) {
            Ok(plan) => plan,
            Err(Error::ShardingKeyChange { .. }) if xa => {
                return Ok(Execution::MoveRows(
                    sh.database.clone(),
                    sh.router.clone(),
                    Box::new(sh.route.clone()),
                    values,
                ));
            }
            Err(e) => return Err(MysqlError::from(&e)),
        };
        let database = sh.database.clone();
        let merge = ok_merge(&plan, &sh.route);
        let client_sql = sh.route.sql.clone();
        let long_data: Vec<(u16, Vec<u8>)> = match plan.params {
            ParamMode::Keep => sh.long_data.iter().map(|(k, v)| (*k, v.clone())).collect(),
            ParamMode::Inline => Vec::new(),
        };
        let returns_rows = stmt.columns > 0;
        let template = execute_template(payload, &exec, params, &types);
        self.route = crate::admin::metrics::RouteKind::of(&plan);

        if matches!(
            plan.kind,
            PlanKind::Begin | PlanKind::Commit | PlanKind::Rollback | PlanKind::Savepoint
        ) {
            let sql = template_sql(&plan, &client_sql).to_string();
            return Ok(Execution::Control(plan.kind, sql));
        }
        if let Some(e) = self.before_statement(plan.kind).await {
            return Err(e);
        }
        let indices = self
            .backends_for_units(&database, &plan.units, Some(client_sql.as_bytes()))
            .await
            .map_err(|e| MysqlError::from(&e))?;
        let mut units = Vec::with_capacity(plan.units.len());
        for (unit, &backend) in plan.units.iter().zip(&indices) {
            let sql = unit.sql.as_deref().unwrap_or(&client_sql);
            let prepared = match plan.params {
                ParamMode::Keep => {
                    self.unit_statement(backend, id, sql)
                        .await
                        .map(|stmt| Dispatch {
                            backend,
                            preamble: long_data
                                .iter()
                                .map(|(param, data)| long_data_packet(stmt, *param, data))
                                .collect(),
                            command: with_statement_id(&template, stmt),
                            close_after: None,
                            statement_sql: Some(sql.to_string()),
                        })
                }
                ParamMode::Inline if returns_rows => {
                    self.prepare_on(backend, sql).await.map(|stmt| Dispatch {
                        backend,
                        preamble: Vec::new(),
                        command: execute_without_params(stmt),
                        close_after: Some(stmt),
                        statement_sql: Some(sql.to_string()),
                    })
                }
                ParamMode::Inline => Ok(Dispatch {
                    backend,
                    preamble: Vec::new(),
                    command: query_payload(sql),
                    close_after: None,
                    statement_sql: None,
                }),
            };
            match prepared {
                Ok(d) => units.push(d),
                Err(e) => {
                    // Statements prepared for this execution only are closed again.
                    for d in &units {
                        if let Some(stmt) = d.close_after {
                            let mut close = vec![super::frontend::COM_STMT_CLOSE];
                            close.extend_from_slice(&stmt.to_le_bytes());
                            self.backends[d.backend].conn.queue_command(&close);
                        }
                    }
                    return Err(e);
                }
            }
        }
        Ok(Execution::Run(units, merge, plan.merge.clone()))
    }

    /// The backend statement for `sql` of client statement `id` on held connection
    /// `backend`, prepared there on first use.
    async fn unit_statement(
        &mut self,
        backend: usize,
        id: u32,
        sql: &str,
    ) -> Result<u32, MysqlError> {
        let cached = self.backends[backend]
            .conn
            .unit_statements
            .get(&id)
            .and_then(|m| m.get(sql));
        if let Some(&stmt) = cached {
            return Ok(stmt);
        }
        let stmt = self.prepare_on(backend, sql).await?;
        self.backends[backend]
            .conn
            .unit_statements
            .entry(id)
            .or_default()
            .insert(sql.to_string(), stmt);
        Ok(stmt)
    }

    /// Prepares `sql` on held connection `backend`; the backend's error as it sent it. A
    /// broken connection is marked for the caller to drop.
    async fn prepare_on(&mut self, backend: usize, sql: &str) -> Result<u32, MysqlError> {
        let mut command = vec![COM_STMT_PREPARE];
        command.extend_from_slice(sql.as_bytes());
        let held = &mut self.backends[backend];
        match held
            .conn
            .run_internal(&command, ResponseKind::Prepare)
            .await
        {
            Ok(Ok(t)) => t.prepare.map(|p| p.statement_id).ok_or_else(|| {
                MysqlError::from(&Error::Malformed(
                    "PREPARE_OK expected from the backend".into(),
                ))
            }),
            Ok(Err(e)) => Err(e),
            Err(e) => {
                held.conn.healthy = false;
                Err(MysqlError::from(&Error::BackendLost {
                    data_source: held.ds.name.clone(),
                    cause: e.to_string(),
                }))
            }
        }
    }

    /// COM_STMT_SEND_LONG_DATA of a sharded statement: buffered until the execute.
    pub(crate) fn long_data_sharded(&mut self, id: u32, payload: &[u8]) {
        let Some(sh) = self
            .statements
            .get_mut(&id)
            .and_then(|s| s.sharded.as_mut())
        else {
            return;
        };
        let (Some(param), Some(data)) = (payload.get(5..7), payload.get(7..)) else {
            return;
        };
        let param = u16::from_le_bytes([param[0], param[1]]);
        sh.long_data_bytes += data.len();
        let max = self.rt.config().server.max_packet_size as usize;
        if sh.long_data_bytes <= max {
            sh.long_data
                .entry(param)
                .or_default()
                .extend_from_slice(data);
        }
    }

    /// COM_STMT_RESET of a sharded statement: forgets its long data (there are no cursors).
    pub(crate) fn reset_sharded(&mut self, id: u32) {
        if let Some(sh) = self
            .statements
            .get_mut(&id)
            .and_then(|s| s.sharded.as_mut())
        {
            sh.long_data.clear();
            sh.long_data_bytes = 0;
        }
        self.send_ok();
    }
}
