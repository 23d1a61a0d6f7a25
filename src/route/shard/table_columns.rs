//! The columns of sharded tables, for an INSERT that leaves its column list out
//! (`INSERT INTO t_order VALUES (...)`): routing must know which value is the sharding
//! column's. The router knows no more than the rules say, so the wire layer asks the
//! table's first actual table when [`ShardRouter::columns_wanted`] says so, and hands the
//! answer to [`ShardRouter::learn_columns`]. DDL on a table through dbmesh forgets them;
//! columns that no longer fit a row (the table was altered elsewhere) are asked again.

use std::collections::HashMap;
use std::sync::RwLock;

use super::{ShardRouter, Unit};
use crate::sql::analyze::{analyze_with_columns, AnalyzeError, Dialect};

/// Learnt columns by logical table, in table order, lower case.
#[derive(Debug, Default)]
pub(super) struct TableColumns(RwLock<HashMap<String, Vec<String>>>);

impl TableColumns {
    pub(super) fn get(&self, table: &str) -> Option<Vec<String>> {
        self.0.read().ok()?.get(table).cloned()
    }

    pub(super) fn forget(&self, table: &str) {
        if let Ok(mut map) = self.0.write() {
            map.remove(table);
        }
    }

    fn set(&self, table: &str, columns: Vec<String>) {
        if let Ok(mut map) = self.0.write() {
            map.insert(table.to_string(), columns);
        }
    }
}

/// Where to read a table's columns: a statement listing them, one row per column in order
/// with the name in the first column, and the data source to run it on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnsQuery {
    /// The logical table.
    pub table: String,
    /// The statement, on its first actual table.
    pub unit: Unit,
}

impl ShardRouter {
    /// When `sql` failed to prepare because it is an INSERT into a sharded table without a
    /// column list whose columns dbmesh does not know (or knows, but a row does not fit
    /// them: they are forgotten, as the table may have changed), where to read them.
    /// `None` when that is not why.
    pub fn columns_wanted(&self, sql: &str) -> Option<ColumnsQuery> {
        let table =
            match analyze_with_columns(sql, self.dialect, &self.rules, &|t| self.columns.get(t)) {
                Err(AnalyzeError::NoColumnList { table }) => table,
                Err(AnalyzeError::RowWidth { table, .. }) if self.columns.get(&table).is_some() => {
                    self.columns.forget(&table);
                    table
                }
                _ => return None,
            };
        self.columns_query(&table)
    }

    /// The statement listing the columns of logical table `table` (on its first actual
    /// table), in order; `None` for a table without rules.
    pub fn columns_query(&self, table: &str) -> Option<ColumnsQuery> {
        let node = self.rules.table(table)?.nodes.first()?;
        let sql = match self.dialect {
            Dialect::MySql => format!("SHOW COLUMNS FROM `{}`", node.table.replace('`', "``")),
            Dialect::Postgres => {
                let (schema, name) = match node.table.split_once('.') {
                    Some((schema, name)) => (format!("'{}'", schema.replace('\'', "''")), name),
                    None => ("current_schema()".to_string(), node.table.as_str()),
                };
                format!(
                    "SELECT column_name FROM information_schema.columns WHERE table_schema = {schema} AND table_name = '{}' ORDER BY ordinal_position",
                    name.replace('\'', "''")
                )
            }
        };
        Some(ColumnsQuery {
            table: table.to_string(),
            unit: Unit {
                data_source: node.data_source.clone(),
                sql: Some(sql),
            },
        })
    }

    /// Remembers the columns of `table`, in order, as [`columns_wanted`](Self::columns_wanted)'s
    /// statement listed them.
    pub fn learn_columns(&self, table: &str, columns: Vec<String>) {
        let columns = columns.into_iter().map(|c| c.to_lowercase()).collect();
        self.columns.set(table, columns);
    }
}
