//! Sharded routing: from one client statement against a logical database with sharding
//! rules to the statements each data source runs.
//!
//! The wire layers call [`ShardRouter`] and nothing below it. A statement is *prepared*
//! once ([`ShardRouter::prepare`]: one full parse and analysis, cached by prepared
//! statements) and *planned* per execution ([`ShardRouter::plan`]): the sharding
//! conditions are evaluated (with the bound parameters, if any), the algorithms pick the
//! actual data nodes, keys are generated, and each target's SQL is rewritten from the AST.
//!
//! The plan is protocol-neutral: data source names and SQL text. Executing it (one backend
//! connection per data source, fan-out, concatenating or merging results, transactions)
//! is the wire layer's business.

mod binding_join;
mod fallback;
mod insert;
mod nodes;
mod outer_rows;
mod params;
mod prune;
mod row_move;
pub mod saga_undo;
mod sharding_key;
mod table_columns;
mod targets;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_dml;
#[cfg(test)]
mod tests_params;

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use sqlparser::ast::Statement;

use crate::config::rules::ShardingRules;
use crate::config::DatabaseConfig;
use crate::error::Error;
use crate::merge::sql_plan::{plan_select, SelectMerge};
use crate::rewrite::{self, TargetRewrite};
use crate::route::keygen::{GeneratedKey, KeyGenerator, KeyGeneratorConfig};
use crate::sql::analyze::{analyze_with_columns, Analysis, Dialect, SqlKind, TableRole};

use nodes::Context;
use targets::Target;

pub use row_move::RowMove;
pub use table_columns::ColumnsQuery;

/// Plans statements for one logical database that has sharding rules. Built once per
/// configuration and shared by all sessions (key generators live here).
#[derive(Debug)]
pub struct ShardRouter {
    /// The logical database's name.
    database: String,
    /// Schema qualifiers that name the client's own database, dropped on rewrite: the
    /// logical database's name and, on MySQL, the default data source's physical database,
    /// which `SELECT DATABASE()` reports (SQLAlchemy qualifies `DESCRIBE` with it).
    local_schemas: Vec<String>,
    dialect: Dialect,
    /// Where statements naming no sharded table go.
    default_data_source: String,
    /// Every data source of the database, in name order (broadcast writes, DDL on
    /// broadcast tables).
    data_sources: Vec<String>,
    rules: Arc<ShardingRules>,
    /// Key generators by their name in the rule files, shared by all sessions so keys
    /// never repeat.
    key_generators: BTreeMap<String, Arc<dyn KeyGenerator>>,
    /// Whether multi-unit SELECTs are planned for merging ([`Plan::merge`]); off, their
    /// units run the client's statement and results are concatenated. On once the
    /// database's wire layer executes merges.
    merge_results: bool,
    /// Columns of sharded tables, learnt for INSERTs without a column list.
    columns: table_columns::TableColumns,
}

/// A statement parsed and analysed once, ready to be planned per execution.
#[derive(Debug, Clone)]
pub struct PreparedRoute {
    /// The client's SQL, as sent.
    pub sql: String,
    /// The analysis; `None` when the statement names no sharded or broadcast table (or
    /// could not be parsed but names none): it runs unchanged on the default data source.
    pub analysis: Option<Arc<Analysis>>,
    /// How many parameters the client binds (0 when the statement could not be parsed).
    pub param_count: usize,
    /// What the statement is, as plans of it will say.
    pub kind: PlanKind,
}

/// One bound parameter value, as the wire layer decoded it from the client's execute
/// (MySQL COM_STMT_EXECUTE binary values, PostgreSQL Bind text or binary values).
#[derive(Debug, Clone, PartialEq)]
pub enum ParamValue {
    Null,
    Int(i64),
    UInt(u64),
    Float(f64),
    /// Strings, decimals, dates and times, in their SQL text form.
    Text(String),
    /// Binary strings (MySQL BLOB params, PostgreSQL bytea).
    Bytes(Vec<u8>),
}

/// How the client's parameters reach the backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamMode {
    /// The units' SQL keeps the client's placeholders; run it as a prepared statement with
    /// the client's parameters, unchanged and in the same order. Only table names are
    /// rewritten (no IN pruning, no INSERT row splitting).
    Keep,
    /// The parameters are written into the units' SQL as literals: no placeholders remain,
    /// run it as a plain query. Every rewrite applies.
    Inline,
}

/// What kind of statement a plan runs, so the wire layer knows how to execute and answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlanKind {
    /// Returns rows (SELECT, SHOW, ...): results of several units are concatenated (the
    /// merge engine orders and aggregates them).
    Query,
    /// INSERT / UPDATE / DELETE / REPLACE: affected rows are summed over the units.
    Write,
    /// CREATE / ALTER / DROP / TRUNCATE TABLE, CREATE / DROP INDEX, fanned out.
    Ddl,
    /// `BEGIN` / `START TRANSACTION`: nothing runs now; each data source the transaction
    /// touches gets this statement (the unit's SQL) before its first statement.
    Begin,
    /// `COMMIT`: runs on every data source the transaction touched.
    Commit,
    /// `ROLLBACK`: runs on every data source the transaction touched.
    Rollback,
    /// `SAVEPOINT` / `RELEASE SAVEPOINT` / `ROLLBACK TO SAVEPOINT`: runs on every data
    /// source the transaction touched.
    Savepoint,
    /// Anything else (SET, SHOW, CALL, vendor statements): one unit, default data source.
    Other,
}

/// Where and what to run for one execution of a statement.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub kind: PlanKind,
    /// The statements to run, in result order. Units on the same data source run one after
    /// the other on the session's one connection to it. Never empty, except for the
    /// transaction-control kinds, whose single unit is a template (see [`PlanKind`]).
    pub units: Vec<Unit>,
    /// How parameters are passed (see [`ParamMode`]); `Inline` for a statement without
    /// parameters.
    pub params: ParamMode,
    /// Keys generated for an INSERT that left out its key column, in row order. A MySQL
    /// client gets the first as last-insert-id when it is a number.
    pub generated_keys: Vec<GeneratedKey>,
    /// For a SELECT on several units whose result needs more than concatenation (ORDER BY,
    /// GROUP BY, aggregates, DISTINCT, LIMIT, UNION): how to merge the units' rows. The
    /// units then run the merge's shard statement (derived columns appended, AVG split,
    /// LIMIT widened), with parameters written in ([`ParamMode::Inline`]).
    pub merge: Option<Arc<SelectMerge>>,
}

/// One statement on one data source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unit {
    /// The data source's name.
    pub data_source: String,
    /// The SQL to run there; `None` when it is the client's statement exactly as sent
    /// (no rewrite was needed), so the wire layer can forward the original bytes.
    pub sql: Option<String>,
}

impl ShardRouter {
    /// The router of `database`, whose rules were validated at load. `worker_id`
    /// (`[server] snowflake_worker_id`) replaces the rule files' SNOWFLAKE worker ids.
    pub fn new(
        database: &DatabaseConfig,
        rules: Arc<ShardingRules>,
        worker_id: Option<u16>,
    ) -> ShardRouter {
        let mut router = Self::build(
            &database.name,
            database.backend.into(),
            &database.default_data_source,
            database.data_sources.keys().cloned().collect(),
            rules.clone(),
        );
        let physical = database
            .data_sources
            .get(&database.default_data_source)
            .map(|ds| ds.url.database.clone());
        if let (Dialect::MySql, Some(physical)) = (router.dialect, physical) {
            if !router
                .local_schemas
                .iter()
                .any(|s| s.eq_ignore_ascii_case(&physical))
            {
                router.local_schemas.push(physical);
            }
        }
        if let Some(worker) = worker_id {
            router.key_generators = rules
                .key_generators
                .iter()
                .map(|(name, config)| {
                    let config = match config {
                        KeyGeneratorConfig::Snowflake {
                            max_tolerate_time_difference_ms,
                            max_vibration_offset,
                            ..
                        } => KeyGeneratorConfig::Snowflake {
                            worker_id: worker,
                            max_tolerate_time_difference_ms: *max_tolerate_time_difference_ms,
                            max_vibration_offset: *max_vibration_offset,
                        },
                        other => other.clone(),
                    };
                    (name.clone(), config.build())
                })
                .collect();
        }
        router
    }

    /// The router of logical database `name` with these data sources and rules.
    pub fn build(
        name: &str,
        dialect: Dialect,
        default_data_source: &str,
        data_sources: Vec<String>,
        rules: Arc<ShardingRules>,
    ) -> ShardRouter {
        ShardRouter {
            database: name.to_string(),
            local_schemas: vec![name.to_string()],
            dialect,
            default_data_source: default_data_source.to_string(),
            data_sources,
            key_generators: rules
                .key_generators
                .iter()
                .map(|(name, config)| (name.clone(), config.build()))
                .collect(),
            rules,
            merge_results: false,
            columns: table_columns::TableColumns::default(),
        }
    }

    /// Plans multi-unit SELECTs for merging (see [`Plan::merge`]): for wire layers that
    /// execute merge plans.
    pub fn with_merge(mut self, merge_results: bool) -> ShardRouter {
        self.merge_results = merge_results;
        self
    }

    /// The dialect statements are parsed with.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// Parses and analyses `sql` once. Errors: a statement that cannot be parsed (or
    /// routed) *and* names a sharded or broadcast table; the message names the construct
    /// and the table.
    pub fn prepare(&self, sql: &str) -> Result<PreparedRoute, Error> {
        match analyze_with_columns(sql, self.dialect, &self.rules, &|t| self.columns.get(t)) {
            Ok(analysis) => {
                let kind = plan_kind(&analysis);
                if analysis.kind == SqlKind::Other && analysis.tables.is_empty() {
                    // COPY, EXPLAIN, SHOW CREATE TABLE, CREATE VIEW, LOCK TABLES, ...: the
                    // analysis does not follow their table names; sending one that names a
                    // sharded table to the default data source would fail there obscurely.
                    if let Some(table) =
                        fallback::names_sharded_table(sql, self.dialect, &self.rules, false)
                    {
                        return Err(Error::Unroutable(format!(
                            "`{}` statements on sharded table `{table}` are not supported; dbmesh routes SELECT, INSERT, REPLACE, UPDATE, DELETE and table/index DDL (PREVIEW <statement> shows where one goes)",
                            statement_keyword(sql)
                        )));
                    }
                }
                let routed = !analysis.is_single_only()
                    || analysis
                        .hint
                        .as_ref()
                        .is_some_and(|h| h.data_source.is_some());
                Ok(PreparedRoute {
                    sql: sql.to_string(),
                    param_count: analysis.param_count,
                    kind,
                    analysis: routed.then(|| Arc::new(analysis)),
                })
            }
            Err(error) => match fallback::names_sharded_table(sql, self.dialect, &self.rules, true)
            {
                None => Ok(PreparedRoute {
                    sql: sql.to_string(),
                    analysis: None,
                    param_count: 0,
                    kind: PlanKind::Other,
                }),
                Some(table) => Err(Error::SqlParse(format!(
                    "cannot route this statement on sharded table `{table}`: {error}"
                ))),
            },
        }
    }

    /// Plans one execution. `params` are the bound values (`None` for a plain query);
    /// `mode` says how the wire layer wants them passed. [`ParamMode::Keep`] may come back
    /// as `Inline` when the statement cannot be routed without rewriting values (an INSERT
    /// whose rows go to different nodes, or that needs generated keys).
    pub fn plan(
        &self,
        prepared: &PreparedRoute,
        params: Option<&[ParamValue]>,
        mode: ParamMode,
    ) -> Result<Plan, Error> {
        let keep = mode == ParamMode::Keep && params.is_some();
        let Some(analysis) = &prepared.analysis else {
            return Ok(Plan {
                kind: prepared.kind,
                units: vec![Unit {
                    data_source: self.default_data_source.clone(),
                    sql: None,
                }],
                params: if keep {
                    ParamMode::Keep
                } else {
                    ParamMode::Inline
                },
                generated_keys: Vec::new(),
                merge: None,
            });
        };
        let ctx = Context {
            rules: &self.rules,
            params,
            hint: analysis.hint.as_ref(),
        };
        let sharded = analysis.sharded_tables();
        if sharded.is_empty() {
            return self.plan_unsharded(prepared, analysis, params, keep);
        }
        if analysis.kind == SqlKind::DescribeTable {
            // Every actual table has the logical table's columns: its first one answers.
            return Ok(Plan {
                kind: prepared.kind,
                units: vec![self.describe_target(prepared)?],
                params: ParamMode::Inline,
                generated_keys: Vec::new(),
                merge: None,
            });
        }
        if analysis.kind == SqlKind::Update {
            sharding_key::check_update(&ctx, analysis)?;
        }
        if let Some(insert) = analysis.insert.as_ref().filter(|i| !i.from_select) {
            if insert.table.role == TableRole::Sharded {
                return self.plan_insert_rows(prepared, analysis, &ctx, keep);
            }
        }
        if let Some(insert) = analysis.insert.as_ref().filter(|i| i.from_select) {
            self.check_insert_select(analysis, insert)?;
        }
        let is_ddl = matches!(analysis.kind, SqlKind::Ddl(_));
        if is_ddl {
            // CREATE / ALTER / DROP may change the columns learnt for the tables.
            for table in &sharded {
                self.columns.forget(table);
            }
        }
        if matches!(analysis.kind, SqlKind::Select { .. })
            && analysis.sharded_tables_are_bound(ctx.rules)
        {
            binding_join::check(ctx.rules, &analysis.statement)?;
        }
        let targets = targets::route(&ctx, analysis, &sharded, is_ddl)?;
        self.check_single_tables(analysis, &targets)?;
        if targets.len() > 1 && matches!(analysis.kind, SqlKind::Select { .. }) {
            outer_rows::check(ctx.rules, &analysis.statement)?;
        }
        let merge = if self.merge_results
            && targets.len() > 1
            && matches!(analysis.kind, SqlKind::Select { .. })
        {
            let statement = self.bound_statement(analysis, params)?;
            plan_select(&statement, self.dialect)?.map(Arc::new)
        } else {
            None
        };
        // A merged statement's values are written in: LIMIT and HAVING values must be known
        // to plan, and derived columns may copy expressions holding placeholders.
        let keep = keep && merge.is_none();
        let mut units = Vec::with_capacity(targets.len());
        if keep {
            for target in &targets {
                let sql = self.rename(&analysis.statement, analysis, target)?;
                units.push(Unit {
                    data_source: target.data_source.clone(),
                    sql: Some(sql),
                });
            }
        } else {
            let statement = match &merge {
                Some(merge) => Cow::Borrowed(&merge.shard_statement),
                None => self.bound_statement(analysis, params)?,
            };
            let lists = if is_ddl {
                Vec::new()
            } else {
                prune::prunable(&ctx, analysis)
            };
            for target in &targets {
                let plan = TargetRewrite {
                    tables: target_tables(target),
                    in_lists: prune::prunes_for(&ctx, &lists, target),
                    ..TargetRewrite::default()
                };
                let sql = self.rewrite(&statement, analysis, &plan)?;
                units.push(Unit {
                    data_source: target.data_source.clone(),
                    sql: Some(sql),
                });
            }
        }
        Ok(Plan {
            kind: prepared.kind,
            units,
            params: if keep {
                ParamMode::Keep
            } else {
                ParamMode::Inline
            },
            generated_keys: Vec::new(),
            merge,
        })
    }

    /// `prepare` then `plan` for a plain query.
    pub fn route_text(&self, sql: &str) -> Result<Plan, Error> {
        let prepared = self.prepare(sql)?;
        self.plan(&prepared, None, ParamMode::Inline)
    }

    /// Where to prepare (MySQL COM_STMT_PREPARE) or describe (PostgreSQL Describe) the
    /// statement to learn its parameter and result metadata before any parameters are
    /// bound: the first node of each table, placeholders kept.
    pub fn describe_target(&self, prepared: &PreparedRoute) -> Result<Unit, Error> {
        let Some(analysis) = &prepared.analysis else {
            return Ok(Unit {
                data_source: self.default_data_source.clone(),
                sql: None,
            });
        };
        let sharded = analysis.sharded_tables();
        if sharded.is_empty() {
            let data_source = match analysis.hint.as_ref().and_then(|h| h.data_source.clone()) {
                Some(ds) => self.known_data_source(&ds)?,
                None => self.default_data_source.clone(),
            };
            return Ok(Unit {
                data_source,
                sql: None,
            });
        }
        let ctx = Context {
            rules: &self.rules,
            params: None,
            hint: None,
        };
        let targets = targets::route(&ctx, analysis, &sharded, true)?;
        let target = targets.first().ok_or_else(|| {
            Error::Unroutable(format!(
                "no data node takes table `{}`",
                sharded.first().copied().unwrap_or_default()
            ))
        })?;
        Ok(Unit {
            data_source: target.data_source.clone(),
            sql: Some(self.rename(&analysis.statement, analysis, target)?),
        })
    }

    /// `PREVIEW <sql>`: the (data source, actual SQL) pairs the statement would run, without
    /// running it.
    pub fn preview(&self, sql: &str) -> Result<Vec<(String, String)>, Error> {
        let plan = self.route_text(sql)?;
        Ok(plan
            .units
            .into_iter()
            .map(|u| {
                let text = u.sql.unwrap_or_else(|| sql.to_string());
                (u.data_source, text)
            })
            .collect())
    }
}

impl ShardRouter {
    /// A statement naming broadcast and single tables only (or routed by a hint): the
    /// client's SQL unchanged, on one data source or, for writes to broadcast tables, on
    /// all of them.
    fn plan_unsharded(
        &self,
        prepared: &PreparedRoute,
        analysis: &Analysis,
        params: Option<&[ParamValue]>,
        keep: bool,
    ) -> Result<Plan, Error> {
        let hinted = analysis.hint.as_ref().and_then(|h| h.data_source.clone());
        let writes_broadcast = !matches!(
            analysis.kind,
            SqlKind::Select { .. } | SqlKind::DescribeTable
        ) && analysis
            .tables
            .first()
            .is_some_and(|t| t.role == TableRole::Broadcast);
        let sources: Vec<String> = match hinted {
            Some(ds) => vec![self.known_data_source(&ds)?],
            None if writes_broadcast => self.data_sources.clone(),
            None => vec![self.default_data_source.clone()],
        };
        let sql = if keep || params.is_none() || analysis.param_count == 0 {
            None
        } else {
            let statement = self.bound_statement(analysis, params)?;
            Some(self.print(&statement, analysis))
        };
        Ok(Plan {
            kind: prepared.kind,
            units: sources
                .into_iter()
                .map(|data_source| Unit {
                    data_source,
                    sql: sql.clone(),
                })
                .collect(),
            params: if keep {
                ParamMode::Keep
            } else {
                ParamMode::Inline
            },
            generated_keys: Vec::new(),
            merge: None,
        })
    }

    /// Single (unsharded) tables live on the default data source only: a statement that
    /// joins one with sharded tables routed elsewhere cannot run.
    fn check_single_tables(&self, analysis: &Analysis, targets: &[Target]) -> Result<(), Error> {
        let Some(single) = analysis
            .tables
            .iter()
            .find(|t| t.role == TableRole::Single && !is_system_table(t))
        else {
            return Ok(());
        };
        match targets
            .iter()
            .find(|t| t.data_source != self.default_data_source)
        {
            None => Ok(()),
            Some(elsewhere) => Err(Error::Unroutable(format!(
                "table `{}` is not sharded and lives on the default data source `{}`, but this statement's rows of sharded table `{}` are also on `{}`; a join across data sources is not supported (make `{}` a broadcast table, or shard it)",
                single.name,
                self.default_data_source,
                elsewhere.tables.keys().next().cloned().unwrap_or_default(),
                elsewhere.data_source,
                single.name
            ))),
        }
    }

    fn known_data_source(&self, name: &str) -> Result<String, Error> {
        if self.data_sources.iter().any(|ds| ds == name) {
            Ok(name.to_string())
        } else {
            Err(Error::Routing(format!(
                "hint names data source `{name}`, which database `{}` does not have; it has {}",
                self.database,
                self.data_sources.join(", ")
            )))
        }
    }

    /// The analysed statement with the bound values written in (a copy), or the statement
    /// itself when there are none: the rewriter copies it once more per target anyway.
    fn bound_statement<'a>(
        &self,
        analysis: &'a Analysis,
        params: Option<&[ParamValue]>,
    ) -> Result<Cow<'a, Statement>, Error> {
        let Some(params) = params.filter(|_| analysis.param_count > 0) else {
            return Ok(Cow::Borrowed(&analysis.statement));
        };
        let mut statement = analysis.statement.clone();
        {
            params::bind(&mut statement, &analysis.placeholders, params, self.dialect).map_err(
                |missing| {
                    Error::Malformed(format!(
                        "parameter {} of {} has no bound value",
                        missing + 1,
                        analysis.param_count
                    ))
                },
            )?;
        }
        Ok(Cow::Owned(statement))
    }

    fn local_schemas(&self) -> Vec<&str> {
        self.local_schemas.iter().map(String::as_str).collect()
    }

    fn rewrite_dialect(&self) -> rewrite::Dialect {
        match self.dialect {
            Dialect::MySql => rewrite::Dialect::MySql,
            Dialect::Postgres => rewrite::Dialect::Postgres,
        }
    }

    fn rename(
        &self,
        statement: &Statement,
        analysis: &Analysis,
        target: &Target,
    ) -> Result<String, Error> {
        let sql = rewrite::rename_only(
            statement,
            &target_tables(target),
            self.rewrite_dialect(),
            &self.local_schemas(),
        )
        .map_err(|e| Error::Unroutable(e.to_string()))?;
        Ok(with_lock_clause(sql, analysis))
    }

    fn rewrite(
        &self,
        statement: &Statement,
        analysis: &Analysis,
        plan: &TargetRewrite,
    ) -> Result<String, Error> {
        let sql = rewrite::rewrite(
            statement,
            plan,
            self.rewrite_dialect(),
            &self.local_schemas(),
        )
        .map_err(|e| Error::Unroutable(e.to_string()))?;
        Ok(with_lock_clause(sql, analysis))
    }

    fn print(&self, statement: &Statement, analysis: &Analysis) -> String {
        with_lock_clause(statement.to_string(), analysis)
    }
}

/// The rewrite's table map of a target.
fn target_tables(target: &Target) -> HashMap<String, String> {
    target
        .tables
        .iter()
        .map(|(l, a)| (l.clone(), a.clone()))
        .collect()
}

/// MySQL's `LOCK IN SHARE MODE` was cut before parsing; it goes back on every target.
fn with_lock_clause(mut sql: String, analysis: &Analysis) -> String {
    if analysis.lock_in_share_mode {
        sql.push_str(" LOCK IN SHARE MODE");
    }
    sql
}

/// Tables of the server's own schemas, and `dual`: never the default data source's alone.
fn is_system_table(table: &crate::sql::analyze::TableRef) -> bool {
    const SYSTEM: [&str; 5] = [
        "information_schema",
        "mysql",
        "performance_schema",
        "sys",
        "pg_catalog",
    ];
    table.name == "dual"
        || table
            .schema
            .as_deref()
            .is_some_and(|s| SYSTEM.iter().any(|sys| s.eq_ignore_ascii_case(sys)))
}

/// The statement's leading keyword(s), upper case, for messages (`COPY`, `SHOW CREATE`).
fn statement_keyword(sql: &str) -> String {
    let words: Vec<&str> = sql
        .split_whitespace()
        .take(2)
        .filter(|w| w.chars().all(|c| c.is_ascii_alphabetic()))
        .collect();
    match words.as_slice() {
        [first, second]
            if ["SHOW", "CREATE", "ALTER", "DROP"].contains(&first.to_uppercase().as_str()) =>
        {
            format!("{} {}", first.to_uppercase(), second.to_uppercase())
        }
        [first, ..] => first.to_uppercase(),
        [] => "this".to_string(),
    }
}

/// The plan kind of an analysed statement.
fn plan_kind(analysis: &Analysis) -> PlanKind {
    match analysis.kind {
        SqlKind::Select { .. } | SqlKind::DescribeTable => PlanKind::Query,
        SqlKind::Insert | SqlKind::Replace | SqlKind::Update | SqlKind::Delete => PlanKind::Write,
        SqlKind::Ddl(_) => PlanKind::Ddl,
        SqlKind::Other => match &analysis.statement {
            Statement::StartTransaction { .. } => PlanKind::Begin,
            Statement::Commit { .. } => PlanKind::Commit,
            Statement::Rollback {
                savepoint: None, ..
            } => PlanKind::Rollback,
            Statement::Rollback { .. }
            | Statement::Savepoint { .. }
            | Statement::ReleaseSavepoint { .. } => PlanKind::Savepoint,
            Statement::Query(_) => PlanKind::Query,
            Statement::ShowTables { .. }
            | Statement::ShowColumns { .. }
            | Statement::ShowVariable { .. }
            | Statement::ShowVariables { .. }
            | Statement::ShowStatus { .. }
            | Statement::ShowCreate { .. }
            | Statement::Explain { .. }
            | Statement::ExplainTable { .. } => PlanKind::Query,
            _ => PlanKind::Other,
        },
    }
}
