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

use std::sync::Arc;

use crate::config::rules::ShardingRules;
use crate::config::DatabaseConfig;
use crate::error::Error;
use crate::route::keygen::GeneratedKey;
use crate::sql::analyze::{Analysis, Dialect};

/// Plans statements for one logical database that has sharding rules. Built once per
/// configuration and shared by all sessions (key generators live here).
#[derive(Debug)]
pub struct ShardRouter {
    /// The logical database's name (a schema qualifier equal to it is dropped on rewrite).
    database: String,
    dialect: Dialect,
    /// Where statements naming no sharded table go.
    default_data_source: String,
    /// Every data source of the database, in name order (broadcast writes, DDL on
    /// broadcast tables).
    data_sources: Vec<String>,
    rules: Arc<ShardingRules>,
}

/// A statement parsed and analysed once, ready to be planned per execution.
#[derive(Debug, Clone)]
pub struct PreparedRoute {
    /// The client's SQL, as sent.
    pub sql: String,
    /// The analysis; `None` when the statement names no sharded or broadcast table (or
    /// could not be parsed but names none): it runs unchanged on the default data source.
    pub analysis: Option<Arc<Analysis>>,
    /// How many parameters the client binds.
    pub param_count: usize,
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
    /// The router of `database`, whose rules were validated at load.
    pub fn new(database: &DatabaseConfig, rules: Arc<ShardingRules>) -> ShardRouter {
        ShardRouter {
            database: database.name.clone(),
            dialect: database.backend.into(),
            default_data_source: database.default_data_source.clone(),
            data_sources: database.data_sources.keys().cloned().collect(),
            rules,
        }
    }

    /// The dialect statements are parsed with.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// Parses and analyses `sql` once. Errors: a statement that cannot be parsed (or
    /// routed) *and* names a sharded or broadcast table; the message names the construct
    /// and the table.
    pub fn prepare(&self, sql: &str) -> Result<PreparedRoute, Error> {
        // Stub until the planner lands: everything to the default data source.
        Ok(PreparedRoute {
            sql: sql.to_string(),
            analysis: None,
            param_count: 0,
        })
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
        let _ = (prepared, params, mode, &self.rules, &self.database, &self.data_sources);
        Ok(Plan {
            kind: PlanKind::Other,
            units: vec![Unit {
                data_source: self.default_data_source.clone(),
                sql: None,
            }],
            params: ParamMode::Keep,
            generated_keys: Vec::new(),
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
        let _ = prepared;
        Ok(Unit {
            data_source: self.default_data_source.clone(),
            sql: None,
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
