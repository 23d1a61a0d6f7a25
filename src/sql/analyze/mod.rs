//! Statement analysis for routing: one full parse (sqlparser), then what the router needs —
//! the statement's kind, its tables and what the rules make of them, its sharding
//! conditions, INSERT rows, UPDATE assignments, hints and parameter count.
//!
//! [`analyze`] is the entry point. It does no I/O and knows nothing of routing itself:
//! where a condition cannot be read (NOT, expressions, column against column) it is left
//! out, so the router falls back to every node on that axis. See `conditions.rs` for the
//! condition rules and `scope.rs` for how columns are resolved to tables.

mod conditions;
mod dml;
mod error;
mod scope;
mod subqueries;
mod tables;
pub(crate) mod tokens;
mod value;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_dml;

use sqlparser::ast::{ObjectType, Statement, TableWithJoins, UpdateTableFromKind};
use sqlparser::dialect::{MySqlDialect, PostgreSqlDialect};
use sqlparser::parser::Parser;
use sqlparser::tokenizer::Tokenizer;

pub use conditions::{ColumnCondition, ConditionGroup};
pub use dml::{InsertInfo, UpdateSet, Upsert};
pub use error::AnalyzeError;
pub use tables::{TableRef, TableRole};
pub(crate) use tokens::Placeholders;
pub use value::ValueRef;

use super::hint::{parse_hint, Hint};
use crate::config::rules::ShardingRules;
use crate::config::BackendKind;
use scope::Walker;

/// The SQL dialect to parse with: the logical database's backend's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    MySql,
    Postgres,
}

impl From<BackendKind> for Dialect {
    fn from(kind: BackendKind) -> Self {
        match kind {
            BackendKind::Mysql => Dialect::MySql,
            BackendKind::Postgres => Dialect::Postgres,
        }
    }
}

/// What kind of statement it is, as routing sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SqlKind {
    /// A query; `locking` for `FOR UPDATE`, `FOR SHARE`, `LOCK IN SHARE MODE`.
    Select {
        locking: bool,
    },
    Insert,
    /// MySQL `REPLACE`.
    Replace,
    Update,
    Delete,
    Ddl(DdlKind),
    /// MySQL `DESCRIBE t` / `DESC t` / `EXPLAIN t` / `SHOW [FULL] COLUMNS FROM t`: one
    /// table's column metadata, the same on each of its actual tables (ORMs ask it to learn
    /// whether a table exists).
    DescribeTable,
    /// Anything else: the router decides by tables alone (or not at all).
    Other,
}

/// The DDL statements that name a table to fan out over its actual tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DdlKind {
    CreateTable,
    AlterTable,
    DropTable,
    TruncateTable,
    CreateIndex,
    DropIndex,
}

/// Everything routing and rewriting need from one statement.
#[derive(Debug, Clone)]
pub struct Analysis {
    /// The parsed statement; the rewriter mutates a clone. For a MySQL statement ending in
    /// `LOCK IN SHARE MODE` (which sqlparser cannot parse) that clause is *not* in it: see
    /// [`lock_in_share_mode`](Self::lock_in_share_mode).
    pub statement: Statement,
    pub kind: SqlKind,
    /// Every table reference, in the order met (FROM, joins, subqueries, targets).
    pub tables: Vec<TableRef>,
    /// The sharding conditions, one group per OR branch (see [`ConditionGroup`]); never
    /// empty: a statement without conditions has one empty group (route everywhere).
    pub conditions: Vec<ConditionGroup>,
    /// For INSERT and REPLACE.
    pub insert: Option<InsertInfo>,
    /// For UPDATE: the assigned columns, so the router can refuse a sharding-key change.
    pub update_sets: Vec<UpdateSet>,
    /// The `/* dbmesh: ... */` hint, if any.
    pub hint: Option<Hint>,
    /// How many parameters the client binds (MySQL `?`s, PostgreSQL's highest `$n`).
    pub param_count: usize,
    /// The statement ended with `LOCK IN SHARE MODE`, removed before parsing; the
    /// rewriter appends it again.
    pub lock_in_share_mode: bool,
    /// Where the positional parameters are, to bind values into the statement.
    pub(crate) placeholders: tokens::Placeholders,
}

impl Analysis {
    /// The distinct sharded logical tables, in order of appearance.
    pub fn sharded_tables(&self) -> Vec<&str> {
        self.distinct(TableRole::Sharded)
    }

    /// The distinct broadcast tables, in order of appearance.
    pub fn broadcast_tables(&self) -> Vec<&str> {
        self.distinct(TableRole::Broadcast)
    }

    /// Whether the statement names tables and all are broadcast tables.
    pub fn is_broadcast_only(&self) -> bool {
        !self.tables.is_empty() && self.tables.iter().all(|t| t.role == TableRole::Broadcast)
    }

    /// Whether no table is sharded or broadcast: the statement goes to the default data
    /// source as is.
    pub fn is_single_only(&self) -> bool {
        self.tables.iter().all(|t| t.role == TableRole::Single)
    }

    /// Whether all sharded tables are in one binding group (or there is at most one), so
    /// they can be routed together node by node.
    pub fn sharded_tables_are_bound(&self, rules: &ShardingRules) -> bool {
        let sharded = self.sharded_tables();
        match sharded.split_first() {
            None | Some((_, [])) => true,
            Some((first, rest)) => rules
                .binding_group(first)
                .is_some_and(|group| rest.iter().all(|t| group.iter().any(|g| g == t))),
        }
    }

    fn distinct(&self, role: TableRole) -> Vec<&str> {
        let mut names: Vec<&str> = Vec::new();
        for table in self.tables.iter().filter(|t| t.role == role) {
            if !names.contains(&table.name.as_str()) {
                names.push(&table.name);
            }
        }
        names
    }
}

/// Parses one statement of `sql` and extracts what routing needs under `rules`.
///
/// Errors: the text does not parse, holds no or several statements, or uses a construct
/// dbmesh cannot route (an INSERT into a sharded table without a column list, rows whose
/// width differs from the column list).
pub fn analyze(
    sql: &str,
    dialect: Dialect,
    rules: &ShardingRules,
) -> Result<Analysis, AnalyzeError> {
    analyze_with_columns(sql, dialect, rules, &|_| None)
}

/// [`analyze`], with the columns of tables in order (lower case) from `known_columns`, for
/// an INSERT into a sharded table that leaves its column list out (`INSERT INTO t_order
/// VALUES (...)`); without them that is [`AnalyzeError::NoColumnList`].
pub fn analyze_with_columns(
    sql: &str,
    dialect: Dialect,
    rules: &ShardingRules,
    known_columns: &dyn Fn(&str) -> Option<Vec<String>>,
) -> Result<Analysis, AnalyzeError> {
    let parser_dialect: &dyn sqlparser::dialect::Dialect = match dialect {
        Dialect::MySql => &MySqlDialect {},
        Dialect::Postgres => &PostgreSqlDialect {},
    };
    // Literals keep their escapes as written (`'a\'b'` stays so), so the rewritten SQL prints
    // them back byte for byte; MySQL's backslash escapes would otherwise be lost.
    let mut tokens = Tokenizer::new(parser_dialect, sql)
        .with_unescape(false)
        .tokenize_with_location()
        .map_err(|e| AnalyzeError::parse(e, sql))?;
    let lock_in_share_mode =
        dialect == Dialect::MySql && tokens::strip_lock_in_share_mode(&mut tokens);
    let placeholders = tokens::Placeholders::scan(&tokens);
    let mut statements = Parser::new(parser_dialect)
        .with_tokens_with_locations(tokens)
        .parse_statements()
        .map_err(|e| AnalyzeError::parse(e, sql))?;
    if statements.len() != 1 {
        return Err(AnalyzeError::statement_count(statements.len(), sql));
    }
    let statement = statements.remove(0);

    let mut walker = Walker::new(rules, &placeholders);
    let mut insert = None;
    let mut update_sets = Vec::new();
    let (kind, conditions) = match &statement {
        Statement::Query(query) => {
            let locking = lock_in_share_mode || !query.locks.is_empty();
            (SqlKind::Select { locking }, walker.query(query))
        }
        Statement::Insert(statement) => {
            // PostgreSQL fills the columns a VALUES row leaves out (with no column list, the
            // values are the table's first columns); MySQL wants every column.
            let partial_rows = dialect == Dialect::Postgres;
            let (info, conditions) =
                dml::insert(&mut walker, statement, known_columns, partial_rows)?;
            insert = Some(info);
            let kind = if statement.replace_into {
                SqlKind::Replace
            } else {
                SqlKind::Insert
            };
            (kind, conditions)
        }
        Statement::Update(update) => {
            let mut from: Vec<&TableWithJoins> = vec![&update.table];
            if let Some(
                UpdateTableFromKind::BeforeSet(more) | UpdateTableFromKind::AfterSet(more),
            ) = &update.from
            {
                from.extend(more);
            }
            let values = dml::assignment_values(&update.assignments);
            let conditions = walker.block(&from, update.selection.as_ref(), &values);
            update_sets = dml::update_sets(&update.assignments, &walker);
            (SqlKind::Update, conditions)
        }
        Statement::Delete(delete) => {
            let (sqlparser::ast::FromTable::WithFromKeyword(from)
            | sqlparser::ast::FromTable::WithoutKeyword(from)) = &delete.from;
            let mut from: Vec<&TableWithJoins> = from.iter().collect();
            from.extend(delete.using.iter().flatten());
            (
                SqlKind::Delete,
                walker.block(&from, delete.selection.as_ref(), &[]),
            )
        }
        other => {
            let (kind, names) = ddl(other);
            for name in names {
                walker.add_table(TableRef::new(name, None, rules));
            }
            (kind, conditions::unconstrained())
        }
    };
    let tables = walker.tables;
    Ok(Analysis {
        statement,
        kind,
        tables,
        conditions,
        insert,
        update_sets,
        hint: parse_hint(sql),
        param_count: placeholders.count(),
        lock_in_share_mode,
        placeholders,
    })
}

/// The kind and tables of a DDL or table-description statement (or `Other` with no
/// tables).
fn ddl(statement: &Statement) -> (SqlKind, Vec<&sqlparser::ast::ObjectName>) {
    let (kind, names) = match statement {
        Statement::ExplainTable { table_name, .. } => {
            return (SqlKind::DescribeTable, vec![table_name])
        }
        Statement::ShowColumns { show_options, .. } => {
            return match show_options
                .show_in
                .as_ref()
                .and_then(|s| s.parent_name.as_ref())
            {
                Some(name) => (SqlKind::DescribeTable, vec![name]),
                None => (SqlKind::Other, Vec::new()),
            };
        }
        Statement::CreateTable(create) => (DdlKind::CreateTable, vec![&create.name]),
        Statement::AlterTable(alter) => (DdlKind::AlterTable, vec![&alter.name]),
        Statement::Drop {
            object_type: ObjectType::Table,
            names,
            ..
        } => (DdlKind::DropTable, names.iter().collect()),
        Statement::Drop {
            object_type: ObjectType::Index,
            table,
            ..
        } => (DdlKind::DropIndex, table.iter().collect()),
        Statement::Truncate(truncate) => (
            DdlKind::TruncateTable,
            truncate.table_names.iter().map(|t| &t.name).collect(),
        ),
        Statement::CreateIndex(index) => (DdlKind::CreateIndex, vec![&index.table_name]),
        _ => return (SqlKind::Other, Vec::new()),
    };
    (SqlKind::Ddl(kind), names)
}
