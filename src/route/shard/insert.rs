//! INSERT and REPLACE: each VALUES row goes to the one node its sharding values
//! name; rows are grouped per node, and keys are generated for a key column the statement
//! leaves out. INSERT ... SELECT is checked to copy rows node pair by node pair.

use std::borrow::Cow;
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
use super::targets::Target;
use super::{target_tables, ParamMode, Plan, PreparedRoute, ShardRouter, Unit};
use crate::rewrite::{GeneratedKeyColumn, TargetRewrite};
use crate::sql::analyze::{Analysis, TableRole};

/// Where the rows of one INSERT go.
pub(crate) struct RowRoute {
    /// Per node, in node order: the 0-based rows it gets.
    pub rows_by_node: Vec<(DataNode, Vec<usize>)>,
    /// The key column and one generated key per row, when the statement left it out.
    pub generated: Option<(String, Vec<GeneratedKey>)>,
}

impl ShardRouter {
    /// INSERT / REPLACE ... VALUES into a sharded table: rows split per node, keys
    /// generated.
    pub(super) fn plan_insert_rows(
        &self,
        prepared: &PreparedRoute,
        analysis: &Analysis,
        ctx: &Context<'_>,
        keep: bool,
    ) -> Result<Plan, Error> {
        let insert = analysis.insert.as_ref().expect("an INSERT");
        let rule = self
            .rules
            .table(&insert.table.name)
            .expect("sharded tables have a rule");
        let generator = rule
            .key_generator
            .as_ref()
            .and_then(|k| self.key_generators.get(&k.generator));
        let rows = route_rows(ctx, rule, insert, generator)?;
        let split = rows.rows_by_node.len() > 1;
        let keep = keep && !split && rows.generated.is_none();
        let statement = if keep {
            Cow::Borrowed(&analysis.statement)
        } else {
            self.bound_statement(analysis, ctx.params)?
        };
        let mut units = Vec::with_capacity(rows.rows_by_node.len());
        for (node, row_indexes) in &rows.rows_by_node {
            let target = Target {
                data_source: node.data_source.clone(),
                tables: BTreeMap::from([(rule.logical.clone(), node.table.clone())]),
            };
            let sql = if keep {
                self.rename(&statement, analysis, &target)?
            } else {
                let plan = TargetRewrite {
                    tables: target_tables(&target),
                    in_lists: Vec::new(),
                    insert_rows: split.then(|| row_indexes.clone()),
                    generated_key: rows.generated.as_ref().map(|(column, keys)| {
                        GeneratedKeyColumn {
                            column: column.clone(),
                            values: row_indexes.iter().map(|&i| keys[i].clone()).collect(),
                        }
                    }),
                };
                self.rewrite(&statement, analysis, &plan)?
            };
            units.push(Unit {
                data_source: node.data_source.clone(),
                sql: Some(sql),
            });
        }
        Ok(Plan {
            kind: prepared.kind,
            units,
            params: if keep {
                ParamMode::Keep
            } else {
                ParamMode::Inline
            },
            generated_keys: rows.generated.map(|(_, keys)| keys).unwrap_or_default(),
            merge: None,
        })
    }

    /// INSERT ... SELECT runs only where each node pair copies rows within itself: the
    /// target and the source tables must be bound, and no key can be generated.
    pub(super) fn check_insert_select(
        &self,
        analysis: &Analysis,
        insert: &crate::sql::analyze::InsertInfo,
    ) -> Result<(), Error> {
        let target = &insert.table.name;
        if insert.table.role != TableRole::Sharded {
            return Err(Error::Unroutable(format!(
                "INSERT INTO `{target}` ... SELECT from sharded table `{}`: `{target}` is not sharded like it, so the rows cannot be copied shard by shard",
                analysis.sharded_tables().first().copied().unwrap_or_default()
            )));
        }
        if !analysis.sharded_tables_are_bound(&self.rules) {
            return Err(Error::Unroutable(format!(
                "INSERT INTO `{target}` ... SELECT reads sharded tables not bound to `{target}`; dbmesh copies rows shard by shard only between binding tables"
            )));
        }
        if let Some(key) = self
            .rules
            .table(target)
            .and_then(|r| r.key_generator.as_ref())
        {
            if insert.column_index(&key.column).is_none() {
                return Err(Error::Unroutable(format!(
                    "INSERT INTO `{target}` ... SELECT must give key column `{}`: dbmesh generates keys for VALUES rows only",
                    key.column
                )));
            }
        }
        Ok(())
    }
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
