//! An UPDATE that assigns a sharding column a new value moves its rows to another data
//! node. One database cannot do that in one statement, so inside a distributed
//! transaction (XA) dbmesh runs it as three: read the full rows on their old nodes
//! (`SELECT ... FOR UPDATE`, so nobody changes them meanwhile), delete them there, and
//! insert them, with the UPDATE's new values, wherever the rules place them now. The
//! transaction makes the three one change: a crash or a failure leaves the rows where they
//! were. Outside such a transaction (LOCAL) the router keeps refusing the UPDATE.
//!
//! Everything here is planned at the logical level, as if the client had written the three
//! statements, so routing, table renaming and key placement are the ordinary ones.

use sqlparser::ast::{AssignmentTarget, Expr, Statement, TableFactor, UnaryOperator};

use super::{ColumnsQuery, ParamValue, PreparedRoute, ShardRouter};
use crate::error::Error;
use crate::sql::analyze::{Dialect, SqlKind};

/// The statements of one row-moving UPDATE, planned before any row is read.
#[derive(Debug, Clone)]
pub struct RowMove {
    /// The logical table, as the UPDATE names it.
    pub table: String,
    /// Where to read the table's columns (their names and order): the rows are read and
    /// written back column by column.
    pub columns: ColumnsQuery,
    /// The UPDATE's WHERE clause (parameters written in), or `None` for every row.
    selection: Option<String>,
    /// The UPDATE's assignments: lower-case column name and the new value as SQL.
    assignments: Vec<(String, String)>,
}

impl RowMove {
    /// The logical `SELECT <columns> FROM <table> WHERE ... FOR UPDATE` reading the rows
    /// to move. On MySQL each column is read as `HEX(CAST(c AS BINARY))`, so binary values
    /// come back exactly (the text protocol would not say which bytes are text).
    pub fn select_sql(&self, columns: &[String], dialect: Dialect) -> String {
        let list: Vec<String> = columns
            .iter()
            .map(|c| match dialect {
                Dialect::MySql => format!("HEX(CAST({} AS BINARY))", quote_ident(c, dialect)),
                Dialect::Postgres => quote_ident(c, dialect),
            })
            .collect();
        format!(
            "SELECT {} FROM {}{} FOR UPDATE",
            list.join(", "),
            self.table,
            self.where_clause()
        )
    }

    /// The logical `DELETE FROM <table> WHERE ...` removing them from their old nodes (in
    /// the same transaction, after the SELECT locked them).
    pub fn delete_sql(&self) -> String {
        format!("DELETE FROM {}{}", self.table, self.where_clause())
    }

    fn where_clause(&self) -> String {
        match &self.selection {
            Some(s) => format!(" WHERE {s}"),
            None => String::new(),
        }
    }

    /// The logical INSERT of `rows` (values of `columns`, in order, as read by
    /// [`select_sql`](Self::select_sql): MySQL values hex-encoded) with the UPDATE's
    /// assignments applied. `None` when there are no rows.
    pub fn insert_sql(
        &self,
        columns: &[String],
        rows: &[Vec<Option<String>>],
        dialect: Dialect,
    ) -> Result<Option<String>, Error> {
        if rows.is_empty() {
            return Ok(None);
        }
        let assigned: Vec<Option<&str>> = columns
            .iter()
            .map(|c| {
                self.assignments
                    .iter()
                    .find(|(name, _)| name.eq_ignore_ascii_case(c))
                    .map(|(_, v)| v.as_str())
            })
            .collect();
        let mut values = Vec::with_capacity(rows.len());
        for row in rows {
            if row.len() != columns.len() {
                return Err(Error::Unroutable(format!(
                    "moving rows of `{}`: a row came back with {} columns where the table has {}",
                    self.table,
                    row.len(),
                    columns.len()
                )));
            }
            let mut items = Vec::with_capacity(row.len());
            for (value, new) in row.iter().zip(&assigned) {
                items.push(match new {
                    Some(new) => new.to_string(),
                    None => literal(value.as_deref(), dialect, &self.table)?,
                });
            }
            values.push(format!("({})", items.join(", ")));
        }
        let names: Vec<String> = columns.iter().map(|c| quote_ident(c, dialect)).collect();
        Ok(Some(format!(
            "INSERT INTO {} ({}) VALUES {}",
            self.table,
            names.join(", "),
            values.join(", ")
        )))
    }
}

impl ShardRouter {
    /// The row move of `prepared`, an UPDATE the router refused with
    /// [`Error::ShardingKeyChange`], for a session whose transaction type allows it. Errors
    /// name what keeps this UPDATE from being moved (a join, an expression assigned, ...).
    pub fn plan_row_move(
        &self,
        prepared: &PreparedRoute,
        params: Option<&[ParamValue]>,
    ) -> Result<RowMove, Error> {
        let refuse = |why: &str| {
            Err(Error::Unroutable(format!(
                "this UPDATE changes a sharding column, so its rows move to another shard; dbmesh moves rows only for {why}"
            )))
        };
        let Some(analysis) = &prepared.analysis else {
            return refuse("an UPDATE of one sharded table");
        };
        if analysis.kind != SqlKind::Update {
            return refuse("an UPDATE");
        }
        let statement = self.bound_statement(analysis, params)?;
        let Statement::Update(update) = statement.as_ref() else {
            return refuse("an UPDATE");
        };
        if !update.table.joins.is_empty() || update.from.is_some() {
            return refuse("an UPDATE of one table (no joins, no FROM)");
        }
        if update.returning.is_some() || !update.order_by.is_empty() || update.limit.is_some() {
            return refuse("an UPDATE without RETURNING, ORDER BY or LIMIT");
        }
        let TableFactor::Table { name, alias, .. } = &update.table.relation else {
            return refuse("an UPDATE of a table");
        };
        if alias.is_some() {
            return refuse("an UPDATE whose table has no alias");
        }
        let mut assignments = Vec::with_capacity(update.assignments.len());
        for a in &update.assignments {
            let AssignmentTarget::ColumnName(column) = &a.target else {
                return refuse("single-column assignments (`SET a = 1, b = 2`)");
            };
            if !is_value(&a.value) {
                return Err(Error::Unroutable(format!(
                    "this UPDATE changes a sharding column, so its rows move to another shard; every value it assigns must then be a literal or a parameter, not `{}` (dbmesh writes the moved rows itself)",
                    a.value
                )));
            }
            let column = column
                .0
                .last()
                .map(|part| part.to_string())
                .unwrap_or_default();
            let column = column.trim_matches(['`', '"']).to_lowercase();
            assignments.push((column, a.value.to_string()));
        }
        let table = name.to_string();
        let logical = analysis
            .sharded_tables()
            .first()
            .map(|t| t.to_string())
            .unwrap_or_else(|| table.clone());
        let columns = self.columns_query(&logical).ok_or_else(|| {
            Error::Routing(format!("sharded table `{logical}` has no data nodes"))
        })?;
        Ok(RowMove {
            table,
            columns,
            selection: update.selection.as_ref().map(|s| s.to_string()),
            assignments,
        })
    }
}

/// A literal or a (written-in) parameter: what dbmesh can copy into the moved rows.
fn is_value(expr: &Expr) -> bool {
    match expr {
        Expr::Value(_) => true,
        Expr::UnaryOp {
            op: UnaryOperator::Minus | UnaryOperator::Plus,
            expr,
        } => matches!(**expr, Expr::Value(_)),
        Expr::Cast { expr, .. } | Expr::Nested(expr) => is_value(expr),
        _ => false,
    }
}

/// `value` as read by [`RowMove::select_sql`], as an SQL literal.
fn literal(value: Option<&str>, dialect: Dialect, table: &str) -> Result<String, Error> {
    let Some(value) = value else {
        return Ok("NULL".into());
    };
    let param = match dialect {
        Dialect::Postgres => ParamValue::Text(value.to_string()),
        Dialect::MySql => {
            let bytes = hex_decode(value).ok_or_else(|| {
                Error::Unroutable(format!(
                    "moving rows of `{table}`: a value did not come back hex-encoded"
                ))
            })?;
            match String::from_utf8(bytes) {
                Ok(text) => ParamValue::Text(text),
                Err(e) => ParamValue::Bytes(e.into_bytes()),
            }
        }
    };
    Ok(param.literal(dialect).to_string())
}

fn hex_decode(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

fn quote_ident(name: &str, dialect: Dialect) -> String {
    match dialect {
        Dialect::MySql => format!("`{}`", name.replace('`', "``")),
        Dialect::Postgres => format!("\"{}\"", name.replace('"', "\"\"")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::route::shard::tests::router;

    fn planned(dialect: Dialect, sql: &str) -> Result<RowMove, Error> {
        let r = router(dialect);
        let prepared = r.prepare(sql)?;
        r.plan_row_move(&prepared, None)
    }

    #[test]
    fn plans_the_select_delete_and_insert_of_a_moving_update() {
        let sql = "UPDATE t_order SET user_id = 8, amount = 5 WHERE user_id = 7 AND order_id = 1";
        let mv = planned(Dialect::MySql, sql).unwrap();
        assert_eq!(mv.columns.table, "t_order");
        let columns: Vec<String> = ["order_id", "user_id", "amount"].map(String::from).to_vec();
        assert_eq!(
            mv.select_sql(&columns, Dialect::MySql),
            "SELECT HEX(CAST(`order_id` AS BINARY)), HEX(CAST(`user_id` AS BINARY)), HEX(CAST(`amount` AS BINARY)) FROM t_order WHERE user_id = 7 AND order_id = 1 FOR UPDATE"
        );
        assert_eq!(
            mv.delete_sql(),
            "DELETE FROM t_order WHERE user_id = 7 AND order_id = 1"
        );
        let rows = vec![vec![Some("31".into()), Some("37".into()), None]];
        assert_eq!(
            mv.insert_sql(&columns, &rows, Dialect::MySql)
                .unwrap()
                .unwrap(),
            "INSERT INTO t_order (`order_id`, `user_id`, `amount`) VALUES ('1', 8, 5)",
            "the UPDATE's values replace the row's"
        );
        assert_eq!(mv.insert_sql(&columns, &[], Dialect::MySql).unwrap(), None);
        // Each of the three routes like a statement the client wrote.
        let r = router(Dialect::MySql);
        let select = r
            .route_text(&mv.select_sql(&columns, Dialect::MySql))
            .unwrap();
        assert_eq!(select.units.len(), 1);
        assert_eq!(select.units[0].data_source, "ds_1");
        let insert = r
            .route_text(
                &mv.insert_sql(&columns, &rows, Dialect::MySql)
                    .unwrap()
                    .unwrap(),
            )
            .unwrap();
        assert_eq!(insert.units.len(), 1);
        assert_eq!(insert.units[0].data_source, "ds_0");
    }

    #[test]
    fn postgres_reads_plain_columns_and_writes_in_the_parameters() {
        let r = router(Dialect::Postgres);
        let prepared = r
            .prepare("UPDATE t_order SET user_id = $1 WHERE order_id = $2")
            .unwrap();
        let mv = r
            .plan_row_move(&prepared, Some(&[ParamValue::Int(8), ParamValue::Int(3)]))
            .unwrap();
        let columns = vec!["order_id".to_string(), "user_id".to_string()];
        assert_eq!(
            mv.select_sql(&columns, Dialect::Postgres),
            r#"SELECT "order_id", "user_id" FROM t_order WHERE order_id = 3 FOR UPDATE"#
        );
        let rows = vec![vec![Some("3".into()), Some("7".into())]];
        assert_eq!(
            mv.insert_sql(&columns, &rows, Dialect::Postgres)
                .unwrap()
                .unwrap(),
            r#"INSERT INTO t_order ("order_id", "user_id") VALUES ('3', 8)"#
        );
    }

    #[test]
    fn refuses_what_it_cannot_move_naming_why() {
        for (sql, why) in [
            (
                "UPDATE t_order SET user_id = user_id + 1 WHERE order_id = 1",
                "not `user_id + 1`",
            ),
            (
                "UPDATE t_order o SET user_id = 8 WHERE o.order_id = 1",
                "no alias",
            ),
            (
                "UPDATE t_order SET user_id = 8 WHERE order_id = 1 LIMIT 1",
                "without RETURNING, ORDER BY or LIMIT",
            ),
        ] {
            let e = planned(Dialect::MySql, sql).unwrap_err();
            assert!(e.to_string().contains(why), "{sql}: {e}");
        }
    }

    #[test]
    fn mysql_values_come_back_from_hex_as_text_or_bytes() {
        assert_eq!(
            literal(Some("4F27427269656E"), Dialect::MySql, "t").unwrap(),
            "'O''Brien'"
        );
        assert_eq!(
            literal(Some("5C"), Dialect::MySql, "t").unwrap(),
            r"'\\'",
            "a backslash stays one backslash under MySQL's default sql_mode"
        );
        assert_eq!(
            literal(Some("FF00"), Dialect::MySql, "t").unwrap(),
            "X'FF00'"
        );
        assert_eq!(literal(None, Dialect::MySql, "t").unwrap(), "NULL");
        assert!(literal(Some("F"), Dialect::MySql, "t").is_err());
    }

    #[test]
    fn postgres_values_are_standard_strings() {
        assert_eq!(
            literal(Some("it's \\x"), Dialect::Postgres, "t").unwrap(),
            r"'it''s \x'"
        );
    }
}
