//! From one OR branch of a statement's sharding conditions to the actual data nodes of one
//! sharded table: the database strategy picks data sources, then the table strategy picks
//! actual tables on each.

use std::collections::BTreeSet;
use std::ops::Bound;

use crate::config::rules::{ShardingRules, Strategy, TableRule};
use crate::error::Error;
use crate::route::algorithms::{ColumnUse, ShardingValue, ShardingValues};
use crate::route::data_nodes::DataNode;
use crate::sql::analyze::{ColumnCondition, ConditionGroup};
use crate::sql::hint::Hint;

use super::params::resolve;
use super::ParamValue;

/// Most value combinations a COMPLEX_INLINE strategy is evaluated for before it routes to
/// every target instead.
const MAX_COMBINATIONS: usize = 1024;

/// Everything a routing decision reads besides the conditions.
pub(crate) struct Context<'a> {
    pub rules: &'a ShardingRules,
    pub params: Option<&'a [ParamValue]>,
    pub hint: Option<&'a Hint>,
}

/// The nodes of `rule` that may hold rows matching `group`, in node order.
pub(crate) fn route_table(
    ctx: &Context<'_>,
    rule: &TableRule,
    group: &ConditionGroup,
) -> Result<Vec<DataNode>, Error> {
    let data_sources = rule.data_sources();
    let mut chosen_sources = match &rule.database_strategy {
        None => data_sources.clone(),
        Some(strategy) => axis(ctx, rule, strategy, &data_sources, group, Axis::DataSource)?,
    };
    if let Some(forced) = ctx.hint.and_then(|h| h.data_source.as_deref()) {
        if !is_hint_strategy(ctx, rule.database_strategy.as_ref()) {
            chosen_sources.retain(|ds| ds == forced);
        }
    }
    let mut nodes = Vec::new();
    for ds in &chosen_sources {
        let tables = rule.tables_in(ds);
        let chosen = match &rule.table_strategy {
            None => tables,
            Some(strategy) => axis(ctx, rule, strategy, &tables, group, Axis::Table)?,
        };
        nodes.extend(chosen.into_iter().map(|t| DataNode::new(ds.clone(), t)));
    }
    Ok(nodes)
}

/// The nodes of `rule` that hold rows whose sharding columns have exactly `values`: where
/// an INSERT row goes. Errors when a column is missing or the algorithms do not name
/// exactly one node.
pub(crate) fn route_row(
    ctx: &Context<'_>,
    rule: &TableRule,
    values: &ShardingValues,
) -> Result<DataNode, Error> {
    if let Some((column, _)) = values.iter().find(|(_, v)| v.is_null()) {
        return Err(Error::Routing(format!(
            "sharding column `{column}` of table `{}` is NULL; a row needs a value to be placed on a data node",
            rule.logical
        )));
    }
    let mut group = ConditionGroup::default();
    for (column, value) in values.iter() {
        group = group.with(
            &rule.logical,
            column,
            ColumnCondition::Values(vec![crate::sql::analyze::ValueRef::Literal(value.clone())]),
        );
    }
    for strategy in [&rule.database_strategy, &rule.table_strategy]
        .into_iter()
        .flatten()
    {
        for column in &strategy.columns {
            if values.get(column).is_none() {
                return Err(Error::Unroutable(format!(
                    "INSERT into sharded table `{}` must give sharding column `{column}` (or the table needs a key_generator for it)",
                    rule.logical
                )));
            }
        }
    }
    let nodes = route_table(ctx, rule, &group)?;
    match nodes.as_slice() {
        [node] => Ok(node.clone()),
        [] => Err(Error::Routing(format!(
            "no data node of `{}` takes the row with {}",
            rule.logical,
            describe(values)
        ))),
        _ => Err(Error::Unroutable(format!(
            "the row with {} of `{}` routes to several data nodes ({}); INSERT needs exactly one (give the columns of both strategies)",
            describe(values),
            rule.logical,
            nodes.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
        ))),
    }
}

fn describe(values: &ShardingValues) -> String {
    values
        .iter()
        .map(|(c, v)| format!("{c} = {}", v.canonical_text()))
        .collect::<Vec<_>>()
        .join(", ")
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Axis {
    DataSource,
    Table,
}

fn is_hint_strategy(ctx: &Context<'_>, strategy: Option<&Strategy>) -> bool {
    strategy
        .and_then(|s| ctx.rules.algorithm(&s.algorithm))
        .is_some_and(|a| matches!(a.columns(), ColumnUse::Hint))
}

/// The targets of one strategy under `group`.
fn axis(
    ctx: &Context<'_>,
    rule: &TableRule,
    strategy: &Strategy,
    targets: &[String],
    group: &ConditionGroup,
    which: Axis,
) -> Result<Vec<String>, Error> {
    let Some(algorithm) = ctx.rules.algorithm(&strategy.algorithm) else {
        // Validation guarantees it exists.
        return Ok(targets.to_vec());
    };
    let routed = if matches!(algorithm.columns(), ColumnUse::Hint) {
        let hint = ctx.hint.and_then(|h| match which {
            Axis::DataSource => h.data_source.clone(),
            Axis::Table => h.table.clone(),
        });
        match hint {
            Some(value) => algorithm.hint(targets, &[value]),
            None => Ok(targets.to_vec()),
        }
    } else if strategy.columns.len() == 1 {
        let column = &strategy.columns[0];
        match group.get(&rule.logical, column) {
            None => Ok(targets.to_vec()),
            Some(ColumnCondition::Values(values)) => {
                let mut resolved = Vec::with_capacity(values.len());
                for value in values {
                    match resolve(value, ctx.params) {
                        Some(v) => resolved.push(v),
                        None => return Ok(targets.to_vec()),
                    }
                }
                exact_union(targets, &resolved, |v| {
                    algorithm.exact(targets, &ShardingValues::single(column, v.clone()))
                })
            }
            Some(ColumnCondition::Range { lower, upper }) => {
                let lower = resolve_bound(lower, ctx.params);
                let upper = resolve_bound(upper, ctx.params);
                match (lower, upper) {
                    (Some(lower), Some(upper)) => {
                        algorithm.range(targets, column, as_ref(&lower), as_ref(&upper))
                    }
                    _ => Ok(targets.to_vec()),
                }
            }
        }
    } else {
        complex(ctx, rule, strategy, targets, group, algorithm.as_ref())
    };
    routed.map_err(|e| Error::Routing(format!("table `{}`: {e}", rule.logical)))
}

/// A multi-column strategy: every combination of the columns' values, when each column
/// has `=` / `IN` values; otherwise every target.
fn complex(
    ctx: &Context<'_>,
    rule: &TableRule,
    strategy: &Strategy,
    targets: &[String],
    group: &ConditionGroup,
    algorithm: &dyn crate::route::algorithms::ShardingAlgorithm,
) -> Result<Vec<String>, crate::route::algorithms::RouteError> {
    let mut columns: Vec<(&str, Vec<ShardingValue>)> = Vec::new();
    let mut combinations = 1usize;
    for column in &strategy.columns {
        let Some(ColumnCondition::Values(values)) = group.get(&rule.logical, column) else {
            return Ok(targets.to_vec());
        };
        let mut resolved = Vec::new();
        for value in values {
            match resolve(value, ctx.params) {
                Some(v) if !v.is_null() => resolved.push(v),
                Some(_) => {}
                None => return Ok(targets.to_vec()),
            }
        }
        combinations = combinations.saturating_mul(resolved.len().max(1));
        if combinations > MAX_COMBINATIONS {
            return Ok(targets.to_vec());
        }
        columns.push((column, resolved));
    }
    if columns.iter().any(|(_, values)| values.is_empty()) {
        // A contradiction (`a = 1 AND a = 2`) or only NULLs: no row matches.
        return Ok(targets.iter().take(1).cloned().collect());
    }
    let mut chosen: BTreeSet<String> = BTreeSet::new();
    let mut index = vec![0usize; columns.len()];
    loop {
        let mut values = ShardingValues::new();
        for (i, (column, column_values)) in columns.iter().enumerate() {
            values.insert(column, column_values[index[i]].clone());
        }
        chosen.extend(algorithm.exact(targets, &values)?);
        // Next combination, last column fastest.
        let mut i = columns.len();
        loop {
            if i == 0 {
                return Ok(in_target_order(targets, &chosen));
            }
            i -= 1;
            index[i] += 1;
            if index[i] < columns[i].1.len() {
                break;
            }
            index[i] = 0;
        }
    }
}

/// The union of the targets of each value (NULLs match nothing under `=` and are skipped;
/// no value at all routes to the first target, for the result's shape).
fn exact_union(
    targets: &[String],
    values: &[ShardingValue],
    mut exact: impl FnMut(&ShardingValue) -> Result<Vec<String>, crate::route::algorithms::RouteError>,
) -> Result<Vec<String>, crate::route::algorithms::RouteError> {
    let mut chosen: BTreeSet<String> = BTreeSet::new();
    for value in values.iter().filter(|v| !v.is_null()) {
        chosen.extend(exact(value)?);
        if chosen.len() == targets.len() {
            break;
        }
    }
    if chosen.is_empty() {
        return Ok(targets.iter().take(1).cloned().collect());
    }
    Ok(in_target_order(targets, &chosen))
}

fn in_target_order(targets: &[String], chosen: &BTreeSet<String>) -> Vec<String> {
    targets
        .iter()
        .filter(|t| chosen.contains(*t))
        .cloned()
        .collect()
}

fn resolve_bound(
    bound: &Bound<crate::sql::analyze::ValueRef>,
    params: Option<&[ParamValue]>,
) -> Option<Bound<ShardingValue>> {
    Some(match bound {
        Bound::Unbounded => Bound::Unbounded,
        Bound::Included(v) => Bound::Included(resolve(v, params)?),
        Bound::Excluded(v) => Bound::Excluded(resolve(v, params)?),
    })
}

fn as_ref(bound: &Bound<ShardingValue>) -> Bound<&ShardingValue> {
    match bound {
        Bound::Unbounded => Bound::Unbounded,
        Bound::Included(v) => Bound::Included(v),
        Bound::Excluded(v) => Bound::Excluded(v),
    }
}
