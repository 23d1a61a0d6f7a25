//! From a statement's tables and conditions to its *targets*: which actual table each
//! sharded logical table becomes on each unit of work. Sharded tables alone route by their
//! conditions; binding tables route together, node pair by node pair; unrelated sharded
//! tables combine within each data source they share (a Cartesian route, bounded).

use std::collections::{BTreeMap, BTreeSet};

use crate::config::rules::TableRule;
use crate::error::Error;
use crate::route::data_nodes::DataNode;
use crate::sql::analyze::Analysis;

use super::nodes::{route_table, Context};

/// Most units a Cartesian route (sharded tables that are not bound) may produce.
const MAX_CARTESIAN_UNITS: usize = 64;

/// One unit of work: the data source and, per sharded logical table (lower case), the
/// actual table it becomes there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    pub data_source: String,
    pub tables: BTreeMap<String, String>,
}

/// The targets of a statement over its sharded tables, in node order of the first one.
/// `every_node` ignores the conditions (DDL).
pub(crate) fn route(
    ctx: &Context<'_>,
    analysis: &Analysis,
    tables: &[&str],
    every_node: bool,
) -> Result<Vec<Target>, Error> {
    let mut routed: Vec<(&TableRule, Vec<DataNode>)> = Vec::with_capacity(tables.len());
    for table in tables {
        let rule = ctx.rules.table(table).expect("sharded tables have a rule");
        let nodes = if every_node {
            rule.nodes.clone()
        } else {
            let mut chosen: BTreeSet<DataNode> = BTreeSet::new();
            for group in &analysis.conditions {
                chosen.extend(route_table(ctx, rule, group)?);
                if chosen.len() == rule.nodes.len() {
                    break;
                }
            }
            rule.nodes
                .iter()
                .filter(|n| chosen.contains(*n))
                .cloned()
                .collect()
        };
        routed.push((rule, nodes));
    }
    if routed.len() == 1 {
        let (rule, nodes) = &routed[0];
        return Ok(nodes.iter().map(|node| single(rule, node)).collect());
    }
    if analysis.sharded_tables_are_bound(ctx.rules) {
        Ok(bound(&routed))
    } else {
        cartesian(&routed)
    }
}

fn single(rule: &TableRule, node: &DataNode) -> Target {
    Target {
        data_source: node.data_source.clone(),
        tables: BTreeMap::from([(rule.logical.clone(), node.table.clone())]),
    }
}

/// Binding tables: node (ds, k-th table of ds) of one table goes with the k-th table of ds
/// of the others. A node pair is a target when every table's conditions allow it.
fn bound(routed: &[(&TableRule, Vec<DataNode>)]) -> Vec<Target> {
    let position = |rule: &TableRule, node: &DataNode| -> Option<(String, usize)> {
        rule.tables_in(&node.data_source)
            .iter()
            .position(|t| *t == node.table)
            .map(|k| (node.data_source.clone(), k))
    };
    let (primary, primary_nodes) = &routed[0];
    let mut allowed: Vec<(String, usize)> = primary_nodes
        .iter()
        .filter_map(|n| position(primary, n))
        .collect();
    for (rule, nodes) in &routed[1..] {
        let theirs: BTreeSet<(String, usize)> =
            nodes.iter().filter_map(|n| position(rule, n)).collect();
        allowed.retain(|p| theirs.contains(p));
    }
    if allowed.is_empty() {
        // The conditions contradict each other: no row matches anywhere. One node pair
        // still runs, so the client gets the result's shape.
        if let Some(first) = primary.nodes.first().and_then(|n| position(primary, n)) {
            allowed.push(first);
        }
    }
    allowed
        .into_iter()
        .map(|(ds, k)| Target {
            tables: routed
                .iter()
                .filter_map(|(rule, _)| {
                    rule.tables_in(&ds)
                        .get(k)
                        .map(|t| (rule.logical.clone(), t.clone()))
                })
                .collect(),
            data_source: ds,
        })
        .collect()
}

/// Sharded tables that are not bound: every combination of their nodes within each data
/// source they all have nodes on.
fn cartesian(routed: &[(&TableRule, Vec<DataNode>)]) -> Result<Vec<Target>, Error> {
    let names = || {
        routed
            .iter()
            .map(|(r, _)| format!("`{}`", r.logical))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let (_, first_nodes) = &routed[0];
    let mut sources: Vec<String> = Vec::new();
    for node in first_nodes {
        if !sources.contains(&node.data_source) {
            sources.push(node.data_source.clone());
        }
    }
    sources.retain(|ds| {
        routed
            .iter()
            .all(|(_, nodes)| nodes.iter().any(|n| &n.data_source == ds))
    });
    if sources.is_empty() {
        return Err(Error::Unroutable(format!(
            "tables {} are not binding tables and this statement's rows of them are on different data sources; a join across data sources is not supported (bind the tables in `binding_tables`, or add conditions that put them on one data source)",
            names()
        )));
    }
    let mut targets = Vec::new();
    for ds in sources {
        let mut partial: Vec<BTreeMap<String, String>> = vec![BTreeMap::new()];
        for (rule, nodes) in routed {
            let tables: Vec<&DataNode> = nodes.iter().filter(|n| n.data_source == ds).collect();
            let mut next = Vec::with_capacity(partial.len() * tables.len());
            for map in &partial {
                for node in &tables {
                    let mut map = map.clone();
                    map.insert(rule.logical.clone(), node.table.clone());
                    next.push(map);
                }
            }
            partial = next;
            if partial.len() + targets.len() > MAX_CARTESIAN_UNITS {
                return Err(Error::Unroutable(format!(
                    "tables {} are not binding tables; joining them here would run on more than {MAX_CARTESIAN_UNITS} table combinations (bind them in `binding_tables`, or add sharding conditions)",
                    names()
                )));
            }
        }
        targets.extend(partial.into_iter().map(|tables| Target {
            data_source: ds.clone(),
            tables,
        }));
    }
    Ok(targets)
}
