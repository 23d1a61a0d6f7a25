//! Rewrite: from one logical statement to the SQL one target (an actual data node) runs.
//!
//! The router decides which actual data nodes a statement touches; for each of them it hands
//! this stage a [`TargetRewrite`]: which actual table stands for each logical table, which
//! values of a sharding column's `IN (...)` list the target owns, which rows of a multi-row
//! INSERT go there, and the generated keys of those rows. [`rewrite`] applies the plan to a
//! copy of the parsed statement (always on sqlparser's AST, never by splicing strings) and
//! prints it with sqlparser's `Display`.
//!
//! What is rewritten, by concept:
//! - [`tables`]: every reference to a logical table (FROM/JOIN, DML targets, qualified
//!   columns and wildcards, subqueries, DDL names), dropping a schema qualifier that names the
//!   logical database;
//! - [`ddl`]: statements whose names the generic walk does not see: `DROP TABLE`, and index
//!   names, made unique per actual table as ShardingSphere does (`idx` → `idx_t_order_0`);
//! - [`in_list`]: `col IN (...)` pruned to the values the target owns;
//! - [`insert`]: multi-row INSERT split per target, generated key column added.
//!
//! Printing caveats (sqlparser's `Display`): identifiers keep their quote style (backticks,
//! double quotes), placeholders (`?`, `$1`) print as written, and keywords print upper case.
//! Whitespace, comments (including `/* dbmesh: ... */` hints) and optional keywords such as
//! `AS` may change. String literals print with quotes doubled; a MySQL string with backslash
//! escapes survives only if the statement was parsed with `unescape: false`.

mod aliases;
mod ddl;
mod error;
mod in_list;
mod insert;
mod tables;

use std::collections::HashMap;

use sqlparser::ast::Statement;

use crate::route::keygen::GeneratedKey;

pub use error::RewriteError;

/// The SQL dialect of the target's backend. The analysis stage has its own; the two will be
/// unified once both exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// MySQL (and MariaDB): `DROP INDEX` names its table.
    MySql,
    /// PostgreSQL: index names live in the schema, `DROP INDEX` names no table.
    Postgres,
}

/// What one target needs changed in the logical statement.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TargetRewrite {
    /// Logical table (lower case) → actual table on this target, as written in the rule's
    /// `nodes` (`t_order_1`, or `sales.t_order_1` for a PostgreSQL schema).
    pub tables: HashMap<String, String>,
    /// `IN` lists on sharding columns to prune to this target's values.
    pub in_lists: Vec<InListPrune>,
    /// For a multi-row `INSERT ... VALUES`: the rows (0-based, in this order) this target
    /// gets; `None` keeps every row.
    pub insert_rows: Option<Vec<usize>>,
    /// A key column the INSERT left out, with one generated key per kept row.
    pub generated_key: Option<GeneratedKeyColumn>,
}

/// Prune `column IN (v0, v1, ...)` on `table` to the values at `keep`.
///
/// The condition matches when its column is `column` unqualified, or qualified by `table`
/// or by an alias of `table` (case-insensitively). Every matching, non-negated `IN` list in
/// the statement is pruned; `NOT IN` lists are left alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InListPrune {
    /// The logical table of the sharding column (any case).
    pub table: String,
    /// The sharding column (any case).
    pub column: String,
    /// Indices into the `IN` list of the values this target owns; never empty (a target
    /// owning no value is not planned).
    pub keep: Vec<usize>,
}

/// A generated key column to add to an INSERT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedKeyColumn {
    /// The key column, as the rule names it.
    pub column: String,
    /// One key per kept row, in the order of the kept rows.
    pub values: Vec<GeneratedKey>,
}

/// The SQL text `target` runs for `statement`: one statement, no trailing semicolon.
///
/// `local_schemas` are the names a schema qualifier can give the database the client is
/// connected to: the logical database's (`shop.t_order`), and on MySQL the default data
/// source's physical database, which `SELECT DATABASE()` reports. Such a qualifier is
/// dropped, as every target's physical database is named differently. Errors name the construct the plan does not fit (an `IN` list or INSERT row
/// that is not there, a generated key the statement cannot take, ...).
pub fn rewrite(
    statement: &Statement,
    target: &TargetRewrite,
    dialect: Dialect,
    local_schemas: &[&str],
) -> Result<String, RewriteError> {
    let mut statement = statement.clone();
    if target.insert_rows.is_some() || target.generated_key.is_some() {
        insert::apply(
            &mut statement,
            target.insert_rows.as_deref(),
            target.generated_key.as_ref(),
        )?;
    }
    let aliases = aliases::Aliases::collect(&statement);
    for prune in &target.in_lists {
        in_list::apply(&mut statement, prune, &aliases)?;
    }
    let map = tables::TableMap::new(&target.tables, local_schemas);
    rename(&mut statement, &map, &aliases, dialect)?;
    Ok(statement.to_string())
}

/// [`rewrite`] for the common case where only table names change: single-route sharded
/// point selects and the DML/DDL that need no pruning. One statement clone, no other copies.
pub fn rename_only(
    statement: &Statement,
    tables: &HashMap<String, String>,
    dialect: Dialect,
    local_schemas: &[&str],
) -> Result<String, RewriteError> {
    let mut statement = statement.clone();
    let aliases = aliases::Aliases::collect(&statement);
    let map = tables::TableMap::new(tables, local_schemas);
    rename(&mut statement, &map, &aliases, dialect)?;
    Ok(statement.to_string())
}

/// Renames everything in place: statement-level names first (they need the logical table
/// names still in place), then the generic walk over relations and expressions.
fn rename(
    statement: &mut Statement,
    map: &tables::TableMap<'_>,
    aliases: &aliases::Aliases,
    dialect: Dialect,
) -> Result<(), RewriteError> {
    ddl::apply(statement, map, dialect)?;
    tables::apply(statement, map, aliases);
    Ok(())
}

#[cfg(test)]
pub(crate) mod test_support {
    //! Parsing and plan-building shorthands for the rewrite tests.

    use sqlparser::ast::Statement;
    use sqlparser::dialect::{MySqlDialect, PostgreSqlDialect};
    use sqlparser::parser::Parser;

    use super::{Dialect, TargetRewrite};

    /// Parses exactly one statement of `dialect`.
    pub fn parse(dialect: Dialect, sql: &str) -> Statement {
        let mut statements = match dialect {
            Dialect::MySql => Parser::parse_sql(&MySqlDialect {}, sql),
            Dialect::Postgres => Parser::parse_sql(&PostgreSqlDialect {}, sql),
        }
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
        assert_eq!(statements.len(), 1, "{sql}");
        statements.remove(0)
    }

    /// A plan renaming `pairs` (logical, actual) and nothing else.
    pub fn renames(pairs: &[(&str, &str)]) -> TargetRewrite {
        TargetRewrite {
            tables: pairs
                .iter()
                .map(|(l, a)| (l.to_string(), a.to_string()))
                .collect(),
            ..TargetRewrite::default()
        }
    }

    /// `sql` (MySQL) with `t_order` → `t_order_0` and `t_order_item` → `t_order_item_0`,
    /// logical database `shop`.
    pub fn mysql(sql: &str) -> String {
        let plan = renames(&[("t_order", "t_order_0"), ("t_order_item", "t_order_item_0")]);
        super::rename_only(
            &parse(Dialect::MySql, sql),
            &plan.tables,
            Dialect::MySql,
            &["shop"],
        )
        .unwrap()
    }

    /// `sql` (PostgreSQL) with the same renames as [`mysql`].
    pub fn postgres(sql: &str) -> String {
        let plan = renames(&[("t_order", "t_order_0"), ("t_order_item", "t_order_item_0")]);
        super::rename_only(
            &parse(Dialect::Postgres, sql),
            &plan.tables,
            Dialect::Postgres,
            &["shop"],
        )
        .unwrap()
    }
}

#[cfg(test)]
mod tests {
    //! What sqlparser's `Display` does to the statements dbmesh rewrites.

    use sqlparser::dialect::MySqlDialect;
    use sqlparser::parser::{Parser, ParserOptions};

    use super::test_support::{mysql, parse, postgres, renames};
    use super::{rename_only, rewrite, Dialect, TargetRewrite};

    #[test]
    fn prints_a_statement_without_logical_tables_unchanged() {
        assert_eq!(
            mysql("SELECT id, name FROM t_user WHERE id = ?"),
            "SELECT id, name FROM t_user WHERE id = ?"
        );
    }

    #[test]
    fn prints_no_trailing_semicolon() {
        assert_eq!(mysql("SELECT 1 FROM t_order;"), "SELECT 1 FROM t_order_0");
    }

    #[test]
    fn an_empty_plan_changes_nothing() {
        let statement = parse(
            Dialect::Postgres,
            "SELECT * FROM t_order WHERE user_id = $1",
        );
        let sql = rewrite(
            &statement,
            &TargetRewrite::default(),
            Dialect::Postgres,
            &[],
        );
        assert_eq!(sql.unwrap(), "SELECT * FROM t_order WHERE user_id = $1");
    }

    #[test]
    fn display_keeps_mysql_limit_offset_and_postgres_casts() {
        assert_eq!(
            mysql("SELECT * FROM t_order ORDER BY order_id DESC LIMIT 10, 20"),
            "SELECT * FROM t_order_0 ORDER BY order_id DESC LIMIT 10, 20"
        );
        assert_eq!(
            postgres("SELECT order_id::text FROM t_order WHERE created > $1::date"),
            "SELECT order_id::TEXT FROM t_order_0 WHERE created > $1::DATE"
        );
    }

    #[test]
    fn display_drops_comments_and_hints() {
        assert_eq!(
            mysql("/* dbmesh: sharding=1 */ SELECT * FROM t_order -- trailing"),
            "SELECT * FROM t_order_0"
        );
    }

    #[test]
    fn display_is_lossy_for_mysql_backslash_escapes_unless_parsed_raw() {
        let plan = renames(&[("t_order", "t_order_0")]);
        let sql = r"SELECT * FROM t_order WHERE note = 'a\\b\'c'";
        // Unescaped by default: `a\b'c` is printed `'a\b''c'`, which MySQL reads as `a<BS>'c`.
        let unescaped = parse(Dialect::MySql, sql);
        let printed = rename_only(&unescaped, &plan.tables, Dialect::MySql, &[]).unwrap();
        assert_eq!(printed, r"SELECT * FROM t_order_0 WHERE note = 'a\b''c'");
        // Parsed with `unescape: false`, the literal is printed as the client wrote it.
        let raw = Parser::new(&MySqlDialect {})
            .with_options(ParserOptions::new().with_unescape(false))
            .try_with_sql(sql)
            .and_then(|mut p| p.parse_statement())
            .unwrap();
        let printed = rename_only(&raw, &plan.tables, Dialect::MySql, &[]).unwrap();
        assert_eq!(printed, r"SELECT * FROM t_order_0 WHERE note = 'a\\b\'c'");
    }
}
