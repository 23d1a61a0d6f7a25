//! INSERT and REPLACE with VALUES rows: each row goes to the one node its sharding values
//! name; rows are grouped per node, and keys are generated for a key column the statement
//! leaves out.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::config::rules::TableRule;
use crate::error::Error;
use crate::route::algorithms::ShardingValues;
use crate::route::data_nodes::DataNode;
use crate::route::keygen::{GeneratedKey, KeyGenerator};
use crate::sql::analyze::InsertInfo;

use super::nodes::{route_row, Context};
use super::params::resolve;

/// Where the rows of one INSERT go.
pub(crate) struct RowRoute {
    /// Per node, in node order: the 0-based rows it gets.
    pub rows_by_node: Vec<(DataNode, Vec<usize>)>,
    /// The key column and one generated key per row, when the statement left it out.
    pub generated: Option<(String, Vec<GeneratedKey>)>,
}

/// Routes every row of `insert` into table `rule`.
pub(crate) fn route_rows(
    ctx: &Context<'_>,
    rule: &TableRule,
    insert: &InsertInfo,
    generator: Option<&Arc<dyn KeyGenerator>>,
) -> Result<RowRoute, Error> {
    let key_column = rule
        .key_generator
        .as_ref()
        .filter(|k| insert.column_index(&k.column).is_none())
        .map(|k| k.column.clone());
    let mut keys: Vec<GeneratedKey> = Vec::new();
    if key_column.is_some() {
        let generator = generator.ok_or_else(|| {
            Error::KeyGeneration(format!("no key generator for table `{}`", rule.logical))
        })?;
        for _ in &insert.rows {
            keys.push(
                generator
                    .next()
                    .map_err(|e| Error::KeyGeneration(e.to_string()))?,
            );
        }
    }
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
    let mut by_node: BTreeMap<DataNode, Vec<usize>> = BTreeMap::new();
    for (row_index, row) in insert.rows.iter().enumerate() {
        let mut values = ShardingValues::new();
        for column in &columns {
            if key_column.as_deref() == Some(*column) {
                values.insert(column, key_value(&keys[row_index]));
                continue;
            }
            let Some(at) = insert.column_index(column) else {
                continue; // route_row names the missing column.
            };
            let value = row.get(at).and_then(|v| resolve(v, ctx.params));
            let Some(value) = value else {
                return Err(Error::Unroutable(format!(
                    "row {} of the INSERT into sharded table `{}` gives sharding column `{column}` as an expression; dbmesh routes rows by literal or parameter values only",
                    row_index + 1,
                    rule.logical
                )));
            };
            values.insert(column, value);
        }
        let node = route_row(ctx, rule, &values)?;
        by_node.entry(node).or_default().push(row_index);
    }
    let order = |node: &DataNode| rule.nodes.iter().position(|n| n == node);
    let mut rows_by_node: Vec<(DataNode, Vec<usize>)> = by_node.into_iter().collect();
    rows_by_node.sort_by_key(|(node, _)| order(node));
    Ok(RowRoute {
        rows_by_node,
        generated: key_column.map(|column| (column, keys)),
    })
}

fn key_value(key: &GeneratedKey) -> crate::route::algorithms::ShardingValue {
    match key {
        GeneratedKey::Int(v) => crate::route::algorithms::ShardingValue::Int(i128::from(*v)),
        GeneratedKey::Text(t) => crate::route::algorithms::ShardingValue::Text(t.clone()),
    }
}
