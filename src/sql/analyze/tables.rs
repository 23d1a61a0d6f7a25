//! The tables a statement names, and what the sharding rules make of each.

use sqlparser::ast::{Ident, ObjectName};

use crate::config::rules::ShardingRules;

/// What the sharding rules say about a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableRole {
    /// Has a `[tables.<name>]` rule: spread over actual data nodes.
    Sharded,
    /// A broadcast table: a full copy on every data source.
    Broadcast,
    /// Neither: lives in the logical database's default data source.
    Single,
}

/// One reference to a table in a statement (a table joined to itself appears twice).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableRef {
    /// The table name, lower case, without schema: the logical table name for the rules.
    pub name: String,
    /// The schema or database it was qualified with (`shop.t_order`), as written.
    pub schema: Option<String>,
    /// Its alias in the statement (`t_order o`), as written.
    pub alias: Option<String>,
    /// What the rules make of it.
    pub role: TableRole,
}

impl TableRef {
    /// The reference for `name` (`t`, `schema.t` or `catalog.schema.t`) and its alias.
    pub(super) fn new(name: &ObjectName, alias: Option<&Ident>, rules: &ShardingRules) -> Self {
        let parts: Vec<String> = name
            .0
            .iter()
            .map(|part| match part.as_ident() {
                Some(ident) => ident.value.clone(),
                None => part.to_string(),
            })
            .collect();
        let table = parts.last().map(|t| t.to_lowercase()).unwrap_or_default();
        let role = if rules.table(&table).is_some() {
            TableRole::Sharded
        } else if rules.is_broadcast(&table) {
            TableRole::Broadcast
        } else {
            TableRole::Single
        };
        TableRef {
            schema: parts.len().checked_sub(2).map(|at| parts[at].clone()),
            name: table,
            alias: alias.map(|a| a.value.clone()),
            role,
        }
    }

    /// Whether a column qualifier (`o` in `o.user_id`) names this reference: its alias when
    /// it has one, else its name (ASCII case-insensitively).
    pub(super) fn answers_to(&self, qualifier: &str) -> bool {
        match &self.alias {
            Some(alias) => alias.eq_ignore_ascii_case(qualifier),
            None => self.name.eq_ignore_ascii_case(qualifier),
        }
    }
}

/// The lower-case sharding columns of `table`'s database and table strategies.
pub(super) fn sharding_columns<'r>(rules: &'r ShardingRules, table: &str) -> Vec<&'r str> {
    let Some(rule) = rules.table(table) else {
        return Vec::new();
    };
    let mut columns: Vec<&str> = Vec::new();
    for strategy in [&rule.database_strategy, &rule.table_strategy]
        .into_iter()
        .flatten()
    {
        for column in &strategy.columns {
            if !columns.contains(&column.as_str()) {
                columns.push(column);
            }
        }
    }
    columns
}
