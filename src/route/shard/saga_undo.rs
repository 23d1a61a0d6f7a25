//! Undo planning for SAGA transactions: what compensates one statement that is about to
//! commit on one data node.
//!
//! Planning works on the statement as it runs on the node (a unit's SQL, actual table
//! names and parameters written in), so the before-image is read from exactly the rows
//! that statement touches, and the compensation names the actual table: no routing is
//! needed to compensate, which is why recovery can run it over a plain connection.
//!
//! Every compensation is idempotent, so running a saga's compensations again (recovery
//! after a crash half-way through them) ends in the same state:
//!
//! - UPDATE: the before-image is read (`SELECT ... FOR UPDATE`, same WHERE); its undo sets
//!   every column back, by primary key;
//! - DELETE: same read; its undo is `REPLACE INTO` the rows as they were;
//! - INSERT: its undo deletes the inserted primary keys, given in the statement or (an
//!   AUTO_INCREMENT key left out) `LAST_INSERT_ID()` and the affected-row count.
//!
//! What cannot be undone this way is refused before it runs (see [`plan_undo`]).
//!
//! PostgreSQL (the same plans, `Dialect::Postgres`): the before-image is read as text,
//! with the session's `DateStyle`, `IntervalStyle` and `TimeZone`; each value goes back as
//! an escaped literal cast to its column's type (`format_type`), under those same settings
//! (`SET LOCAL` in the compensation's own transaction), so numeric, timestamptz, bytea,
//! json, arrays and NULLs come back exactly. A DELETE is undone by `INSERT ... ON CONFLICT
//! (key) DO UPDATE`; an INSERT runs with `RETURNING` its key columns, and its undo deletes
//! the keys it returned (generated ones, serial and identity, included).

use sqlparser::ast::{
    AssignmentTarget, Expr, FromTable, ObjectName, SetExpr, Statement, TableFactor, TableObject,
    TableWithJoins,
};
use sqlparser::dialect::{MySqlDialect, PostgreSqlDialect};
use sqlparser::parser::Parser;

mod postgres;

use super::row_move::{literal, quote_ident};
use crate::error::Error;
use crate::sql::analyze::Dialect;
use postgres::PG_SETTINGS;

/// A table's columns as dbmesh needs them to compensate writes to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableShape {
    /// Writable columns, in table order (generated columns left out).
    pub columns: Vec<String>,
    /// The primary key's columns (empty: no primary key, refused).
    pub primary_key: Vec<String>,
    /// The AUTO_INCREMENT column, if any.
    pub auto_increment: Option<String>,
    /// PostgreSQL: each column's type (`format_type`), the cast of its literal; empty on
    /// MySQL.
    pub types: Vec<String>,
    /// PostgreSQL: columns `GENERATED ALWAYS AS IDENTITY` (an undo INSERT overrides them,
    /// an undo UPDATE leaves them).
    pub identity_always: Vec<String>,
    /// The server's dialect: how the before-image is read and the undo written.
    pub dialect: Dialect,
}

impl TableShape {
    /// `SHOW COLUMNS FROM <table>` (MySQL): the statement whose columns 0 (Field),
    /// 3 (Key) and 5 (Extra) [`from_show_columns`](Self::from_show_columns) reads.
    pub fn show_columns_sql(table: &str) -> String {
        let quoted: Vec<String> = table
            .split('.')
            .map(|p| quote_ident(p.trim_matches('`'), Dialect::MySql))
            .collect();
        format!("SHOW COLUMNS FROM {}", quoted.join("."))
    }

    pub fn from_show_columns(rows: &[Vec<Option<String>>]) -> TableShape {
        let mut shape = TableShape::empty(Dialect::MySql);
        for row in rows {
            let Some(Some(name)) = row.first() else {
                continue;
            };
            let key = row.get(1).cloned().flatten().unwrap_or_default();
            let extra = row
                .get(2)
                .cloned()
                .flatten()
                .unwrap_or_default()
                .to_ascii_lowercase();
            if key == "PRI" {
                shape.primary_key.push(name.clone());
            }
            if extra.contains("auto_increment") {
                shape.auto_increment = Some(name.clone());
            }
            if !extra.contains("generated") {
                shape.columns.push(name.clone());
            }
        }
        shape
    }

    fn empty(dialect: Dialect) -> TableShape {
        TableShape {
            columns: Vec::new(),
            primary_key: Vec::new(),
            auto_increment: None,
            types: Vec::new(),
            identity_always: Vec::new(),
            dialect,
        }
    }
}

/// What one statement on one data node does, as far as undoing it goes.
#[derive(Debug, Clone, PartialEq)]
pub enum UndoPlan {
    /// UPDATE of `table`; `assigned` are the lower-case columns it sets.
    Update {
        table: String,
        selection: Option<String>,
        assigned: Vec<String>,
    },
    /// DELETE from `table`.
    Delete {
        table: String,
        selection: Option<String>,
    },
    /// INSERT ... VALUES into `table`: its column list (lower case) and each row's values
    /// as SQL.
    Insert {
        table: String,
        columns: Vec<String>,
        rows: Vec<Vec<Expr>>,
    },
}

fn refuse(why: impl std::fmt::Display) -> Error {
    Error::NotSupported(format!(
        "{why} inside a SAGA transaction (dbmesh could not compensate it)"
    ))
}

/// Plans the undo of `sql` (in `dialect`), a write as it runs on one node. Refused:
/// anything but a single-table INSERT / UPDATE / DELETE without LIMIT or RETURNING, and
/// INSERT IGNORE / REPLACE / ON DUPLICATE KEY UPDATE / ON CONFLICT (which may touch rows
/// the INSERT does not name). MySQL also needs an INSERT's column list and VALUES (its
/// keys are read from them); PostgreSQL's keys come back from `RETURNING`.
pub fn plan_undo(sql: &str, dialect: Dialect) -> Result<UndoPlan, Error> {
    let parsed = match dialect {
        Dialect::MySql => Parser::parse_sql(&MySqlDialect {}, sql),
        Dialect::Postgres => Parser::parse_sql(&PostgreSqlDialect {}, sql),
    };
    let mut statements = parsed.map_err(|e| refuse(format!("`{sql}` ({e})")))?;
    if statements.len() != 1 {
        return Err(refuse("more than one statement at once"));
    }
    let pg = dialect == Dialect::Postgres;
    match statements.remove(0) {
        Statement::Update(u) => {
            if u.from.is_some() || !u.table.joins.is_empty() {
                return Err(refuse("an UPDATE of several tables"));
            }
            if u.returning.is_some() || u.limit.is_some() || !u.order_by.is_empty() {
                return Err(refuse("an UPDATE with ORDER BY, LIMIT or RETURNING"));
            }
            let table = single_table(&u.table)
                .ok_or_else(|| refuse("an UPDATE of a table alias or derived table"))?;
            let mut assigned = Vec::new();
            for a in &u.assignments {
                match &a.target {
                    AssignmentTarget::ColumnName(c) => assigned.push(last_part(c)),
                    AssignmentTarget::Tuple(_) => {
                        return Err(refuse("an UPDATE assigning a tuple"))
                    }
                }
            }
            Ok(UndoPlan::Update {
                table,
                selection: u.selection.as_ref().map(|s| s.to_string()),
                assigned,
            })
        }
        Statement::Delete(d) => {
            if !d.tables.is_empty() || d.using.is_some() {
                return Err(refuse("a DELETE of several tables"));
            }
            if d.returning.is_some() || d.limit.is_some() || !d.order_by.is_empty() {
                return Err(refuse("a DELETE with ORDER BY, LIMIT or RETURNING"));
            }
            let (FromTable::WithFromKeyword(from) | FromTable::WithoutKeyword(from)) = &d.from;
            let [from] = &from[..] else {
                return Err(refuse("a DELETE of several tables"));
            };
            let table =
                single_table(from).ok_or_else(|| refuse("a DELETE with a table alias or join"))?;
            Ok(UndoPlan::Delete {
                table,
                selection: d.selection.as_ref().map(|s| s.to_string()),
            })
        }
        Statement::Insert(i) => {
            if pg && (i.on.is_some() || i.returning.is_some()) {
                return Err(refuse("INSERT ... ON CONFLICT or INSERT ... RETURNING"));
            }
            if i.ignore || i.replace_into || i.on.is_some() || i.or.is_some() {
                return Err(refuse(
                    "INSERT IGNORE, REPLACE or INSERT ... ON DUPLICATE KEY UPDATE",
                ));
            }
            let TableObject::TableName(name) = &i.table else {
                return Err(refuse("an INSERT into a table function"));
            };
            if pg {
                // The keys come back from RETURNING: any source will do.
                return Ok(UndoPlan::Insert {
                    table: name.to_string(),
                    columns: i.columns.iter().map(last_part).collect(),
                    rows: Vec::new(),
                });
            }
            if i.columns.is_empty() {
                return Err(refuse("an INSERT without a column list"));
            }
            let rows = match i.source.as_deref().map(|q| q.body.as_ref()) {
                Some(SetExpr::Values(v)) => v.rows.iter().map(|r| r.content.clone()).collect(),
                _ => return Err(refuse("INSERT ... SELECT or INSERT ... SET")),
            };
            Ok(UndoPlan::Insert {
                table: name.to_string(),
                columns: i.columns.iter().map(last_part).collect(),
                rows,
            })
        }
        other => Err(refuse(format!(
            "`{}`",
            other
                .to_string()
                .split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        ))),
    }
}

fn last_part(name: &ObjectName) -> String {
    name.0
        .last()
        .map(|p| p.to_string())
        .unwrap_or_default()
        .trim_matches(['`', '"'])
        .to_lowercase()
}

fn single_table(t: &TableWithJoins) -> Option<String> {
    if !t.joins.is_empty() {
        return None;
    }
    match &t.relation {
        TableFactor::Table {
            name, alias: None, ..
        } => Some(name.to_string()),
        _ => None,
    }
}

fn has(list: &[String], column: &str) -> bool {
    list.iter().any(|c| c.eq_ignore_ascii_case(column))
}

impl UndoPlan {
    pub fn table(&self) -> &str {
        match self {
            UndoPlan::Update { table, .. }
            | UndoPlan::Delete { table, .. }
            | UndoPlan::Insert { table, .. } => table,
        }
    }

    /// Refuses what `shape` makes impossible to undo: no primary key, an UPDATE of a
    /// primary key column (its undo could not find the row again), an INSERT whose keys
    /// are not values.
    pub fn check(&self, shape: &TableShape, logical: &str) -> Result<(), Error> {
        if shape.primary_key.is_empty() {
            return Err(refuse(format!(
                "a write to table `{logical}`, which has no primary key,"
            )));
        }
        if let UndoPlan::Update { assigned, .. } = self {
            if let Some(k) = shape.primary_key.iter().find(|k| has(assigned, k)) {
                return Err(refuse(format!(
                    "an UPDATE of primary key column `{k}` of `{logical}`"
                )));
            }
        }
        // An INSERT's keys must be readable from it (or generated); PostgreSQL returns
        // them.
        if shape.dialect == Dialect::Postgres {
            return Ok(());
        }
        self.inserted_keys(shape).map(|_| ())
    }

    /// The before-image read (UPDATE / DELETE): every column of the touched rows,
    /// hex-encoded (binary values come back exactly), locked until the statement commits.
    pub fn before_image_sql(&self, shape: &TableShape) -> Option<String> {
        let (table, selection) = match self {
            UndoPlan::Update {
                table, selection, ..
            }
            | UndoPlan::Delete { table, selection } => (table, selection),
            UndoPlan::Insert { .. } => return None,
        };
        let filter = selection
            .as_ref()
            .map(|s| format!(" WHERE {s}"))
            .unwrap_or_default();
        if shape.dialect == Dialect::Postgres {
            // Text values, and the settings they were written under.
            let list: Vec<String> = shape
                .columns
                .iter()
                .map(|c| quote_ident(c, Dialect::Postgres))
                .chain(
                    PG_SETTINGS
                        .iter()
                        .map(|s| format!("current_setting('{s}')")),
                )
                .collect();
            return Some(format!(
                "SELECT {} FROM {table}{filter} FOR UPDATE",
                list.join(", ")
            ));
        }
        let list: Vec<String> = shape
            .columns
            .iter()
            .map(|c| format!("HEX(CAST({} AS BINARY))", quote_ident(c, Dialect::MySql)))
            .collect();
        Some(format!(
            "SELECT {} FROM {table}{filter} FOR UPDATE",
            list.join(", ")
        ))
    }

    /// The compensation of an UPDATE / DELETE whose before-image is `rows` (as read by
    /// [`before_image_sql`](Self::before_image_sql)); none when no row matched.
    pub fn undo_from_image(
        &self,
        shape: &TableShape,
        rows: &[Vec<Option<String>>],
    ) -> Result<Vec<String>, Error> {
        if shape.dialect == Dialect::Postgres {
            return self.pg_undo_from_image(shape, rows);
        }
        let table = self.table();
        let mut literals = Vec::with_capacity(rows.len());
        for row in rows {
            if row.len() != shape.columns.len() {
                return Err(refuse(format!(
                    "a write to `{table}` whose before-image came back with {} columns (the table has {})",
                    row.len(),
                    shape.columns.len()
                )));
            }
            let values: Result<Vec<String>, Error> = row
                .iter()
                .map(|v| literal(v.as_deref(), Dialect::MySql, table))
                .collect();
            literals.push(values?);
        }
        if literals.is_empty() {
            return Ok(Vec::new());
        }
        let q = |c: &str| quote_ident(c, Dialect::MySql);
        match self {
            UndoPlan::Update { .. } => Ok(literals
                .iter()
                .map(|values| {
                    let mut sets = Vec::new();
                    let mut keys = Vec::new();
                    for (c, v) in shape.columns.iter().zip(values) {
                        if has(&shape.primary_key, c) {
                            keys.push(format!("{} = {v}", q(c)));
                        } else {
                            // Every column, not only those assigned: ON UPDATE defaults
                            // and triggers change more than the UPDATE names.
                            sets.push(format!("{} = {v}", q(c)));
                        }
                    }
                    format!(
                        "UPDATE {table} SET {} WHERE {}",
                        sets.join(", "),
                        keys.join(" AND ")
                    )
                })
                .filter(|_| shape.columns.len() > shape.primary_key.len())
                .collect()),
            UndoPlan::Delete { .. } => {
                let names: Vec<String> = shape.columns.iter().map(|c| q(c)).collect();
                let values: Vec<String> = literals
                    .iter()
                    .map(|v| format!("({})", v.join(", ")))
                    .collect();
                Ok(vec![format!(
                    "REPLACE INTO {table} ({}) VALUES {}",
                    names.join(", "),
                    values.join(", ")
                )])
            }
            UndoPlan::Insert { .. } => Ok(Vec::new()),
        }
    }

    /// The primary keys an INSERT names, as SQL values per row in primary key order, or
    /// `None` when the AUTO_INCREMENT key is left out (then see
    /// [`undo_generated_insert`](Self::undo_generated_insert)).
    pub fn inserted_keys(&self, shape: &TableShape) -> Result<Option<Vec<Vec<String>>>, Error> {
        let UndoPlan::Insert {
            table,
            columns,
            rows,
        } = self
        else {
            return Ok(None);
        };
        let positions: Vec<Option<usize>> = shape
            .primary_key
            .iter()
            .map(|k| columns.iter().position(|c| c.eq_ignore_ascii_case(k)))
            .collect();
        if positions.iter().all(Option::is_none)
            && shape.primary_key.len() == 1
            && shape.auto_increment.as_deref() == shape.primary_key.first().map(String::as_str)
        {
            return Ok(None);
        }
        let mut keys = Vec::with_capacity(rows.len());
        for row in rows {
            let mut key = Vec::with_capacity(positions.len());
            for (k, p) in shape.primary_key.iter().zip(&positions) {
                let value = p.and_then(|p| row.get(p)).filter(|v| is_literal(v));
                let Some(value) = value else {
                    return Err(refuse(format!(
                        "an INSERT into `{table}` that does not give primary key column `{k}` as a value (leave only an AUTO_INCREMENT key out)"
                    )));
                };
                key.push(value.to_string());
            }
            keys.push(key);
        }
        Ok(Some(keys))
    }

    /// The compensation of an INSERT of the keys `keys` (from
    /// [`inserted_keys`](Self::inserted_keys)).
    pub fn undo_insert(&self, shape: &TableShape, keys: &[Vec<String>]) -> Option<String> {
        if keys.is_empty() {
            return None;
        }
        let q = |c: &str| quote_ident(c, Dialect::MySql);
        let rows: Vec<String> = keys
            .iter()
            .map(|key| {
                let parts: Vec<String> = shape
                    .primary_key
                    .iter()
                    .zip(key)
                    .map(|(c, v)| format!("{} = {v}", q(c)))
                    .collect();
                format!("({})", parts.join(" AND "))
            })
            .collect();
        Some(format!(
            "DELETE FROM {} WHERE {}",
            self.table(),
            rows.join(" OR ")
        ))
    }

    /// The compensation of an INSERT that left its AUTO_INCREMENT key out: the server
    /// gave `rows` consecutive keys from `first` (LAST_INSERT_ID; consecutive for one
    /// statement with `innodb_autoinc_lock_mode` 0 or 1, MariaDB's default).
    pub fn undo_generated_insert(
        &self,
        shape: &TableShape,
        first: u64,
        rows: u64,
    ) -> Option<String> {
        let key = shape.primary_key.first()?;
        (rows > 0).then(|| {
            format!(
                "DELETE FROM {} WHERE {} BETWEEN {first} AND {}",
                self.table(),
                quote_ident(key, Dialect::MySql),
                first + rows - 1
            )
        })
    }
}

/// A value the undo can copy: a literal, possibly signed or cast.
fn is_literal(expr: &Expr) -> bool {
    match expr {
        Expr::Value(v) => !matches!(v.value, sqlparser::ast::Value::Null),
        Expr::UnaryOp { expr, .. } | Expr::Nested(expr) | Expr::Cast { expr, .. } => {
            is_literal(expr)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape() -> TableShape {
        TableShape {
            columns: vec!["id".into(), "owner".into(), "balance".into()],
            primary_key: vec!["id".into()],
            auto_increment: Some("id".into()),
            types: Vec::new(),
            identity_always: Vec::new(),
            dialect: Dialect::MySql,
        }
    }

    fn hex(s: &str) -> Option<String> {
        Some(s.bytes().map(|b| format!("{b:02X}")).collect())
    }

    #[test]
    fn an_update_is_undone_by_primary_key_with_every_column() {
        let plan = plan_undo(
            "UPDATE acct_1 SET balance = balance - 5 WHERE owner = 'a'",
            Dialect::MySql,
        )
        .unwrap();
        assert_eq!(
            plan.before_image_sql(&shape()).unwrap(),
            "SELECT HEX(CAST(`id` AS BINARY)), HEX(CAST(`owner` AS BINARY)), HEX(CAST(`balance` AS BINARY)) FROM acct_1 WHERE owner = 'a' FOR UPDATE"
        );
        let undo = plan
            .undo_from_image(&shape(), &[vec![hex("7"), hex("a"), hex("100")]])
            .unwrap();
        assert_eq!(
            undo,
            vec!["UPDATE acct_1 SET `owner` = 'a', `balance` = '100' WHERE `id` = '7'"]
        );
        assert!(plan.undo_from_image(&shape(), &[]).unwrap().is_empty());
    }

    #[test]
    fn a_delete_is_undone_by_replace_keeping_nulls() {
        let plan = plan_undo("DELETE FROM acct_0 WHERE id IN (1, 2)", Dialect::MySql).unwrap();
        let undo = plan
            .undo_from_image(
                &shape(),
                &[
                    vec![hex("1"), None, hex("5")],
                    vec![hex("2"), hex("b"), hex("6")],
                ],
            )
            .unwrap();
        assert_eq!(
            undo,
            vec!["REPLACE INTO acct_0 (`id`, `owner`, `balance`) VALUES ('1', NULL, '5'), ('2', 'b', '6')"]
        );
    }

    #[test]
    fn an_insert_is_undone_by_its_keys_or_its_generated_range() {
        let plan = plan_undo(
            "INSERT INTO acct_0 (id, owner) VALUES (3, 'c'), (-4, 'd')",
            Dialect::MySql,
        )
        .unwrap();
        let keys = plan.inserted_keys(&shape()).unwrap().unwrap();
        assert_eq!(
            plan.undo_insert(&shape(), &keys).unwrap(),
            "DELETE FROM acct_0 WHERE (`id` = 3) OR (`id` = -4)"
        );
        let generated = plan_undo(
            "INSERT INTO acct_0 (owner) VALUES ('c'), ('d')",
            Dialect::MySql,
        )
        .unwrap();
        assert_eq!(generated.inserted_keys(&shape()).unwrap(), None);
        assert_eq!(
            generated.undo_generated_insert(&shape(), 10, 2).unwrap(),
            "DELETE FROM acct_0 WHERE `id` BETWEEN 10 AND 11"
        );
        let computed = plan_undo(
            "INSERT INTO acct_0 (id, owner) VALUES (1 + 2, 'c')",
            Dialect::MySql,
        )
        .unwrap();
        assert!(computed.inserted_keys(&shape()).is_err());
        assert!(computed.check(&shape(), "acct").is_err());
    }

    #[test]
    fn what_cannot_be_undone_is_refused() {
        for sql in [
            "INSERT IGNORE INTO t (id) VALUES (1)",
            "REPLACE INTO t (id) VALUES (1)",
            "INSERT INTO t (id) VALUES (1) ON DUPLICATE KEY UPDATE id = 2",
            "INSERT INTO t (id) SELECT id FROM u",
            "UPDATE t, u SET t.a = u.a WHERE t.id = u.id",
            "UPDATE t SET a = 1 LIMIT 3",
            "DELETE FROM t ORDER BY id LIMIT 1",
            "DELETE t FROM t JOIN u ON t.id = u.id",
            "CREATE TABLE x (id INT)",
        ] {
            let e = plan_undo(sql, Dialect::MySql).unwrap_err();
            assert!(matches!(e, Error::NotSupported(_)), "{sql}: {e:?}");
        }
        let update_key = plan_undo("UPDATE t SET id = 2 WHERE id = 1", Dialect::MySql).unwrap();
        assert!(update_key.check(&shape(), "t").is_err());
        let no_key = TableShape {
            primary_key: Vec::new(),
            ..shape()
        };
        let e = plan_undo("DELETE FROM t_1 WHERE id = 1", Dialect::MySql)
            .unwrap()
            .check(&no_key, "t")
            .unwrap_err();
        assert!(
            e.to_string().contains("`t`, which has no primary key"),
            "{e}"
        );
    }

    #[test]
    fn show_columns_gives_the_shape() {
        let row =
            |f: &str, k: &str, e: &str| vec![Some(f.to_string()), Some(k.into()), Some(e.into())];
        let shape = TableShape::from_show_columns(&[
            row("id", "PRI", "auto_increment"),
            row("v", "", ""),
            row("g", "", "VIRTUAL GENERATED"),
        ]);
        assert_eq!(shape.columns, vec!["id", "v"]);
        assert_eq!(shape.primary_key, vec!["id"]);
        assert_eq!(shape.auto_increment.as_deref(), Some("id"));
    }
}
