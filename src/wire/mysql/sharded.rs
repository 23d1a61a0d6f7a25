//! COM_QUERY on a logical database with sharding rules: the statement is planned by the
//! database's [`ShardRouter`], and the plan's units run where it says (`fanout.rs`), or
//! the plan is a transaction-control statement (`sharded_txn.rs`). Also `PREVIEW <sql>`,
//! which shows a plan without running it.
//!
//! Databases without rules never come here: their statements are forwarded without being
//! parsed.

use std::borrow::Cow;
use std::sync::Arc;

use super::concat::OkMerge;
use super::fanout::{query_payload, Dispatch};
use super::frontend::{ClientConn, Fatal};
use super::replica_retry::ReadCommand;
use super::resultset::{write_text_resultset, ColumnDef};
use crate::admin::metrics::RouteKind;
use crate::config::BackendKind;
use crate::error::Error;
use crate::execute::{DataSource, LogicalDatabase};
use crate::route::keygen::GeneratedKey;
use crate::route::shard::{ParamMode, Plan, PlanKind, PreparedRoute, ShardRouter, Unit};

impl ClientConn {
    /// `PREVIEW <sql>`: a result set of (`data_source_name`, `actual_sql`), one row per
    /// statement `<sql>` would run. On a database without sharding rules that is the
    /// default data source and the statement unchanged.
    pub(crate) fn preview(&mut self, sql: &str) {
        let route = match crate::route::plan(&self.session, &self.cluster, BackendKind::Mysql) {
            Ok(r) => r,
            Err(e) => return self.send_error(&e),
        };
        let pairs = match &route.database.router {
            Some(router) => match router.preview(sql) {
                Ok(pairs) => pairs,
                Err(e) => return self.send_error(&e),
            },
            None => vec![(route.data_source.name.clone(), sql.to_string())],
        };
        let rows: Vec<Vec<Option<String>>> = pairs
            .into_iter()
            .map(|(ds, sql)| vec![Some(ds), Some(sql)])
            .collect();
        let status = self.status_flags();
        let format = self.result_format();
        write_text_resultset(
            &mut self.writer,
            &mut self.seq,
            format,
            status,
            &[
                ColumnDef::text("data_source_name", 64),
                ColumnDef::text("actual_sql", 16_383),
            ],
            &rows,
        );
    }

    /// A statement on a database with sharding rules. Errors of planning reach the client
    /// as ERR packets; the connection stays usable.
    pub(crate) async fn query_sharded(
        &mut self,
        database: Arc<LogicalDatabase>,
        router: Arc<ShardRouter>,
        payload: &[u8],
    ) -> Result<(), Fatal> {
        let text = String::from_utf8_lossy(&payload[1..]);
        if self.answer_last_insert_id(&text) {
            return Ok(());
        }
        if let Some(e) = self.refuse_raw_xa(&database, &text) {
            self.send_error(&e);
            return Ok(());
        }
        let planned = match self.prepare_route(&database, &router, &text).await {
            Ok(route) => match router.plan(&route, None, ParamMode::Inline) {
                Ok(plan) => Ok((plan, route)),
                Err(Error::ShardingKeyChange { .. }) if self.xa_wanted() => {
                    // Under XA the UPDATE moves its rows instead (`row_move.rs`).
                    return self
                        .update_moving_rows(&database, &router, &route, None)
                        .await;
                }
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        let (plan, route) = match planned {
            Ok(p) => {
                self.route = RouteKind::of(&p.0);
                p
            }
            Err(e) => {
                self.send_error(&e);
                return Ok(());
            }
        };
        if matches!(text, Cow::Owned(_)) && plan.units.iter().any(|u| u.sql.is_some()) {
            // Rewriting would mangle the bytes that are not UTF-8.
            self.send_error(&Error::NotSupported(
                "a statement that is not valid UTF-8 and must be rewritten for its data nodes"
                    .into(),
            ));
            return Ok(());
        }
        if self
            .transaction_control(plan.kind, template_sql(&plan, &text))
            .await?
        {
            self.after_sharded_commit(plan.kind).await;
            return Ok(());
        }
        if let Some(e) = self.before_statement(plan.kind).await {
            self.send_mysql_error(&e);
            return Ok(());
        }
        let merge = ok_merge(&plan, &route);
        if let ([unit], None) = (&plan.units[..], merge.last_insert_id) {
            // The common case, one data node: relayed like any statement (a read on a
            // replica of it when the session may), and the client's bytes go as they are
            // when no rewrite was needed.
            let rewritten;
            let command = match &unit.sql {
                None => payload,
                Some(sql) => {
                    rewritten = query_payload(sql);
                    &rewritten[..]
                }
            };
            let primary = match unit_source(&database, unit) {
                Ok(ds) => ds.clone(),
                Err(e) => {
                    self.send_error(&e);
                    self.refresh_transaction_status();
                    return Ok(());
                }
            };
            let ran = self
                .run_routed(&primary, text.as_bytes(), ReadCommand::Payload(command))
                .await?;
            if let Some((index, false, tracker)) = ran {
                if !tracker.error {
                    self.note_write(index, &primary, text.as_bytes()).await;
                }
            }
        } else {
            let read = Some(text.as_bytes());
            let indices = match self.backends_for_units(&database, &plan.units, read).await {
                Ok(i) => i,
                Err(e) => {
                    self.send_error(&e);
                    self.refresh_transaction_status();
                    return Ok(());
                }
            };
            let sources = self.held_sources(indices.iter().copied());
            let units = plan
                .units
                .iter()
                .zip(&indices)
                .map(|(unit, &backend)| Dispatch {
                    backend,
                    preamble: Vec::new(),
                    command: match &unit.sql {
                        None => payload.to_vec(),
                        Some(sql) => query_payload(sql),
                    },
                    close_after: None,
                    statement_sql: None,
                })
                .collect();
            match plan.merge.clone() {
                Some(select_merge) => self.run_merged(units, select_merge).await?,
                None => self.run_dispatches(units, merge).await?,
            }
            if !self.statement_failed {
                self.note_writes(&sources, text.as_bytes()).await;
            }
        }
        self.refresh_transaction_status();
        Ok(())
    }

    /// After a transaction-control statement: a COMMIT wrote on every primary that took
    /// part, so read-your-writes notes each one's GTID.
    pub(crate) async fn after_sharded_commit(&mut self, kind: PlanKind) {
        if kind == PlanKind::Commit && !self.statement_failed && self.txn.is_none() {
            let held = self.held_sources(0..self.backends.len());
            self.note_writes(&held, b"COMMIT").await;
        }
    }

    /// The held connection for each unit's data source, opened (and joined to the
    /// transaction) as needed. With `read` (the client's SQL), a data source with replicas
    /// serves a read from one of them when the session may read there (`read_write.rs`):
    /// each shard decides for itself, all units of one data source on the same connection.
    pub(crate) async fn backends_for_units(
        &mut self,
        database: &LogicalDatabase,
        units: &[Unit],
        read: Option<&[u8]>,
    ) -> Result<Vec<usize>, Error> {
        let mut sources: Vec<Arc<DataSource>> = Vec::new();
        for unit in units {
            let ds = unit_source(database, unit)?;
            if !sources.iter().any(|s| Arc::ptr_eq(s, ds)) {
                sources.push(ds.clone());
            }
        }
        // Per data source, the one whose connection runs its units: it or a replica.
        let mut runs_on: Vec<Arc<DataSource>> = Vec::with_capacity(sources.len());
        for ds in &sources {
            let index = match read {
                Some(sql) if !ds.replicas.is_empty() => {
                    self.backend_for_statement(ds, sql).await?.0
                }
                _ => self.backend_for(ds).await?,
            };
            runs_on.push(self.backends[index].ds.clone());
        }
        // Opening one connection can move another in the list: look them up at the end.
        units
            .iter()
            .map(|unit| {
                let ds = &database.data_sources[&unit.data_source];
                let at = sources.iter().position(|s| Arc::ptr_eq(s, ds)).unwrap_or(0);
                self.backends
                    .iter()
                    .position(|h| Arc::ptr_eq(&h.ds, &runs_on[at]))
                    .ok_or_else(|| Error::BackendLost {
                        data_source: runs_on[at].name.clone(),
                        cause: "the connection broke while others were being opened".into(),
                    })
            })
            .collect()
    }
}

/// The data source of `unit` in `database`.
fn unit_source<'a>(
    database: &'a LogicalDatabase,
    unit: &Unit,
) -> Result<&'a Arc<DataSource>, Error> {
    database.data_sources.get(&unit.data_source).ok_or_else(|| {
        Error::Routing(format!(
            "the plan names data source `{}`, which database `{}` does not have",
            unit.data_source, database.config.name
        ))
    })
}

/// The SQL of a transaction-control plan's template unit.
pub(crate) fn template_sql<'a>(plan: &'a Plan, client_sql: &'a str) -> &'a str {
    plan.units
        .first()
        .and_then(|u| u.sql.as_deref())
        .unwrap_or(client_sql)
}

/// How the OKs of a plan's units become one: the first generated key of an INSERT, when
/// it is a number, is the client's last-insert-id (the backends know nothing of it); a
/// write to broadcast tables counts its rows once; a multi-row INSERT reports its records.
pub(crate) fn ok_merge(plan: &Plan, route: &PreparedRoute) -> OkMerge {
    let last_insert_id = match plan.generated_keys.first() {
        Some(GeneratedKey::Int(id)) if plan.kind == PlanKind::Write => u64::try_from(*id).ok(),
        _ => None,
    };
    let analysis = route.analysis.as_ref();
    OkMerge {
        last_insert_id,
        copies: analysis.is_some_and(|a| a.is_broadcast_only()),
        insert_rows: analysis
            .and_then(|a| a.insert.as_ref())
            .map_or(0, |insert| insert.rows.len()),
    }
}
