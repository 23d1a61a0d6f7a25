//! From a rule file's raw sections to [`ShardingRules`]: algorithms and key generators are
//! built, data nodes expanded and checked against the database's data sources, strategies
//! checked against their algorithms and targets, binding and broadcast tables cross-checked.
//! Every problem is reported; the result only counts when none was.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use toml::Spanned;

use super::super::error::{child_key, index_key, Report};
use super::document::{PropertiesSection, RulesDocument};
use super::model::{Definition, KeyGen, ShardingRules, Strategy, TableRule};
use super::raw::{RawStrategy, RawTable};
use crate::route::algorithms::{
    build_algorithm, trailing_number, ColumnUse, PropertyProblem, ShardingAlgorithm,
};
use crate::route::data_nodes::{self, DataNode};
use crate::route::keygen::KeyGeneratorConfig;

/// The logical database the rules are for.
pub(super) struct Target<'a> {
    pub database: &'a str,
    pub data_sources: &'a [&'a str],
}

type Algorithms = BTreeMap<String, Arc<dyn ShardingAlgorithm>>;

pub(super) fn validate(
    doc: RulesDocument,
    target: &Target<'_>,
    report: &mut Report,
) -> ShardingRules {
    let declared_algorithms: BTreeSet<&str> =
        doc.algorithms.iter().map(|s| s.name.as_str()).collect();
    let declared_generators: BTreeSet<&str> =
        doc.key_generators.iter().map(|s| s.name.as_str()).collect();
    let mut rules = ShardingRules::default();

    for section in &doc.key_generators {
        let Some(kind) = &section.kind else { continue };
        match KeyGeneratorConfig::from_properties(kind.get_ref(), &section.properties) {
            Ok(config) => {
                rules.key_generators.insert(section.name.clone(), config);
                rules.key_generator_definitions.insert(
                    section.name.clone(),
                    Definition {
                        kind: kind.get_ref().to_ascii_uppercase(),
                        properties: section.properties.clone(),
                    },
                );
            }
            Err(problems) => property_problems(section, kind, problems, report),
        }
    }
    for section in &doc.algorithms {
        let Some(kind) = &section.kind else { continue };
        match build_algorithm(&section.name, kind.get_ref(), &section.properties) {
            Ok(algorithm) => {
                rules.algorithms.insert(section.name.clone(), algorithm);
                rules.algorithm_definitions.insert(
                    section.name.clone(),
                    Definition {
                        kind: kind.get_ref().to_ascii_uppercase(),
                        properties: section.properties.clone(),
                    },
                );
            }
            Err(problems) => property_problems(section, kind, problems, report),
        }
    }

    let mut declared_tables = BTreeSet::new();
    for (name, section) in &doc.tables {
        let logical = name.to_lowercase();
        if !declared_tables.insert(logical.clone()) {
            report.at(
                Some(section.span.clone()),
                section.key.clone(),
                format!("table `{name}` is defined twice (table names are case-insensitive: both are `{logical}`)"),
            );
            continue;
        }
        let Some(raw) = &section.raw else { continue };
        let cx = TableCx {
            logical: &logical,
            key: &section.key,
            target,
            algorithms: &rules.algorithms,
            declared_algorithms: &declared_algorithms,
        };
        let rule = table_rule(
            &cx,
            raw,
            &rules.key_generators,
            &declared_generators,
            report,
        );
        if let Some(rule) = rule {
            rules.tables.insert(logical, rule);
        }
    }

    for (i, entry) in doc.broadcast_tables.iter().enumerate() {
        let name = entry.get_ref().to_lowercase();
        let key = index_key("broadcast_tables", i);
        if declared_tables.contains(&name) {
            let message = format!("`{name}` is both a broadcast table and a sharded table ([tables.{name}]); it can be only one");
            report.at(Some(entry.span()), key, message);
        } else if !rules.broadcast_tables.insert(name.clone()) {
            report.at(Some(entry.span()), key, format!("`{name}` is listed twice"));
        }
    }

    binding_groups(&doc.binding_tables, &declared_tables, &mut rules, report);
    rules
}

/// Places the problems of building an algorithm or key generator at their properties.
fn property_problems(
    section: &PropertiesSection,
    kind: &Spanned<String>,
    problems: Vec<PropertyProblem>,
    report: &mut Report,
) {
    for problem in problems {
        let (span, key) = if problem.message.starts_with("unknown") && problem.property.is_none() {
            (kind.span(), child_key(&section.key, "type"))
        } else {
            section.span_of(problem.property.as_deref())
        };
        report.at(Some(span), key, problem.message);
    }
}

struct TableCx<'a> {
    logical: &'a str,
    key: &'a str,
    target: &'a Target<'a>,
    algorithms: &'a Algorithms,
    declared_algorithms: &'a BTreeSet<&'a str>,
}

fn table_rule(
    cx: &TableCx<'_>,
    raw: &RawTable,
    generators: &BTreeMap<String, KeyGeneratorConfig>,
    declared_generators: &BTreeSet<&str>,
    report: &mut Report,
) -> Option<TableRule> {
    let nodes_key = child_key(cx.key, "nodes");
    let nodes = match &raw.nodes {
        // No `nodes`: a table of the logical name on every data source.
        None => Some(
            cx.target
                .data_sources
                .iter()
                .map(|ds| DataNode::new(*ds, cx.logical))
                .collect(),
        ),
        Some(expression) => match data_nodes::expand(expression.get_ref()) {
            Err(error) => {
                let message = format!("invalid data nodes `{}`: {error}", expression.get_ref());
                report.at(Some(expression.span()), nodes_key, message);
                None
            }
            Ok(nodes) => {
                let mut unknown: Vec<&str> = Vec::new();
                for node in &nodes {
                    let ds = node.data_source.as_str();
                    if !cx.target.data_sources.contains(&ds) && !unknown.contains(&ds) {
                        unknown.push(ds);
                    }
                }
                for ds in &unknown {
                    let message = format!(
                        "data source `{ds}` is not defined in database `{}` (its data sources: {})",
                        cx.target.database,
                        cx.target.data_sources.join(", ")
                    );
                    report.at(Some(expression.span()), nodes_key.clone(), message);
                }
                unknown.is_empty().then_some(nodes)
            }
        },
    };

    let mut rule = TableRule {
        logical: cx.logical.to_string(),
        nodes: nodes.clone().unwrap_or_default(),
        database_strategy: None,
        table_strategy: None,
        key_generator: None,
    };
    let database_targets = nodes.as_ref().map(|_| rule.data_sources());
    let table_targets = nodes.as_ref().map(|_| rule.actual_tables());
    let mut ok = nodes.is_some();
    if let Some(raw_strategy) = &raw.database_strategy {
        rule.database_strategy = strategy(
            cx,
            "database_strategy",
            raw_strategy,
            database_targets,
            report,
        );
        ok &= rule.database_strategy.is_some();
    }
    if let Some(raw_strategy) = &raw.table_strategy {
        rule.table_strategy = strategy(cx, "table_strategy", raw_strategy, table_targets, report);
        ok &= rule.table_strategy.is_some();
    }
    if let Some(key_gen) = &raw.key_generator {
        let key = child_key(cx.key, "key_generator");
        let (column, generator) = (
            key_gen.get_ref().column.get_ref(),
            &key_gen.get_ref().generator,
        );
        if column.trim().is_empty() {
            report.at(
                Some(key_gen.get_ref().column.span()),
                child_key(&key, "column"),
                "must name the key column",
            );
            ok = false;
        }
        if !generators.contains_key(generator.get_ref()) {
            ok = false;
            if !declared_generators.contains(generator.get_ref().as_str()) {
                let message = format!(
                    "unknown key generator `{}`; key generators defined in this file: {}",
                    generator.get_ref(),
                    list_or_none(declared_generators.iter().copied())
                );
                report.at(
                    Some(generator.span()),
                    child_key(&key, "generator"),
                    message,
                );
            }
        }
        rule.key_generator = Some(KeyGen {
            column: column.trim().to_lowercase(),
            generator: generator.get_ref().clone(),
        });
    }
    ok.then_some(rule)
}

/// Checks one strategy against its algorithm and (when the nodes are valid) its targets.
fn strategy(
    cx: &TableCx<'_>,
    axis: &str,
    raw: &Spanned<RawStrategy>,
    targets: Option<Vec<String>>,
    report: &mut Report,
) -> Option<Strategy> {
    let key = child_key(cx.key, axis);
    let span = raw.span();
    let raw = raw.get_ref();
    let columns: Vec<Spanned<String>> = match (&raw.column, &raw.columns) {
        (Some(_), Some(list)) => {
            report.at(
                Some(list.span()),
                child_key(&key, "columns"),
                "set either column or columns, not both",
            );
            return None;
        }
        (Some(column), None) => vec![column.clone()],
        (None, Some(list)) => {
            if list.get_ref().is_empty() {
                report.at(
                    Some(list.span()),
                    child_key(&key, "columns"),
                    "must name at least one column",
                );
                return None;
            }
            list.get_ref().clone()
        }
        (None, None) => Vec::new(),
    };
    let mut names: Vec<String> = Vec::new();
    for column in &columns {
        let name = column.get_ref().trim().to_lowercase();
        let message = if name.is_empty() {
            "column names must not be empty".to_string()
        } else if names.contains(&name) {
            format!("column `{name}` is listed twice")
        } else {
            names.push(name);
            continue;
        };
        report.at(Some(column.span()), key.clone(), message);
        return None;
    }

    let algorithm_name = raw.algorithm.get_ref();
    let Some(algorithm) = cx.algorithms.get(algorithm_name) else {
        if !cx.declared_algorithms.contains(algorithm_name.as_str()) {
            let message = format!(
                "unknown algorithm `{algorithm_name}`; algorithms defined in this file: {}",
                list_or_none(cx.declared_algorithms.iter().copied())
            );
            report.at(
                Some(raw.algorithm.span()),
                child_key(&key, "algorithm"),
                message,
            );
        }
        return None;
    };
    let described = format!("{} algorithm `{algorithm_name}`", algorithm.kind());
    let mut problems: Vec<(std::ops::Range<usize>, String)> = Vec::new();
    match algorithm.columns() {
        ColumnUse::Hint => {
            if let Some(column) = columns.first() {
                problems.push((
                    column.span(),
                    format!("{described} routes by hints, not by a column; remove column/columns"),
                ));
            }
        }
        ColumnUse::One | ColumnUse::Expression { several: false, .. } if names.len() != 1 => {
            let message = if names.is_empty() {
                format!("{described} reads one sharding column; set column = \"...\" (only HINT algorithms take none)")
            } else {
                format!("{described} reads one column, but {} are named; use a COMPLEX_INLINE algorithm for several", names.len())
            };
            problems.push((span.clone(), message));
        }
        ColumnUse::One => {}
        ColumnUse::Expression {
            columns: read,
            several,
        } => {
            let source = || {
                format!(
                    "its expression reads {}",
                    read.iter()
                        .map(|c| format!("`{c}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            };
            if !several && read != names.as_slice() {
                problems.push((
                    columns[0].span(),
                    format!(
                        "column `{}` is not the column {described} reads ({})",
                        names[0],
                        source()
                    ),
                ));
            } else if several {
                for column in read.iter().filter(|c| !names.contains(c)) {
                    problems.push((span.clone(), format!("{described} reads `{column}`, which is not among this strategy's columns ({})", names.join(", "))));
                }
                for (column, name) in columns
                    .iter()
                    .zip(&names)
                    .filter(|(_, n)| !read.contains(n))
                {
                    problems.push((
                        column.span(),
                        format!("column `{name}` is not used by {described} ({})", source()),
                    ));
                }
                if names.is_empty() {
                    problems.push((span.clone(), format!("{described} needs columns = [...] naming the columns its expression reads")));
                }
            }
        }
    }
    if problems.is_empty() {
        if let Some(targets) = &targets {
            for message in algorithm.check_targets(targets) {
                problems.push((raw.algorithm.span(), message));
            }
        }
    }
    if !problems.is_empty() {
        for (at, message) in problems {
            report.at(Some(at), key.clone(), message);
        }
        return None;
    }
    Some(Strategy {
        columns: names,
        algorithm: algorithm_name.clone(),
    })
}

fn binding_groups(
    groups: &[Vec<Spanned<String>>],
    declared_tables: &BTreeSet<String>,
    rules: &mut ShardingRules,
    report: &mut Report,
) {
    let mut group_of: BTreeMap<String, usize> = BTreeMap::new();
    for (g, group) in groups.iter().enumerate() {
        let group_key = index_key("binding_tables", g);
        if group.len() < 2 {
            let at = group.first().map(|e| e.span());
            report.at(
                at,
                group_key.clone(),
                "a binding group needs at least two tables, e.g. [\"t_order\", \"t_order_item\"]",
            );
        }
        let mut names: Vec<String> = Vec::new();
        for (e, entry) in group.iter().enumerate() {
            let name = entry.get_ref().to_lowercase();
            let key = index_key(&group_key, e);
            let message = if !declared_tables.contains(&name) {
                format!("binding table `{name}` has no [tables.{name}] rule; binding tables must be sharded tables")
            } else if names.contains(&name) {
                format!("`{name}` is listed twice in this group")
            } else if let Some(other) = group_of.get(&name) {
                format!("`{name}` is already in binding_tables[{other}]; a table belongs to one binding group")
            } else {
                if let (Some(first), Some(rule)) = (
                    names.first().and_then(|n| rules.tables.get(n)),
                    rules.tables.get(&name),
                ) {
                    if let Some(message) = binding_mismatch(first, rule) {
                        report.at(Some(entry.span()), key.clone(), message);
                    }
                }
                group_of.insert(name.clone(), g);
                names.push(name);
                continue;
            };
            report.at(Some(entry.span()), key, message);
        }
        rules.binding_groups.push(names);
    }
}

/// Why two tables cannot be bound: different node layouts or strategies.
fn binding_mismatch(a: &TableRule, b: &TableRule) -> Option<String> {
    let (x, y) = (&a.logical, &b.logical);
    if a.nodes.len() != b.nodes.len() {
        return Some(format!(
            "binding tables `{x}` and `{y}` must have matching data nodes, but they have {} and {}",
            a.nodes.len(),
            b.nodes.len()
        ));
    }
    for (na, nb) in a.nodes.iter().zip(&b.nodes) {
        if na.data_source != nb.data_source || suffix(&na.table, x) != suffix(&nb.table, y) {
            return Some(format!(
                "binding tables `{x}` and `{y}` must have matching data nodes (same data sources, same table suffixes, same order), but `{na}` pairs with `{nb}`"
            ));
        }
    }
    for (axis, sa, sb) in [
        (
            "database_strategy",
            &a.database_strategy,
            &b.database_strategy,
        ),
        ("table_strategy", &a.table_strategy, &b.table_strategy),
    ] {
        let alike = match (sa, sb) {
            (None, None) => true,
            (Some(sa), Some(sb)) => {
                sa.algorithm == sb.algorithm && sa.columns.len() == sb.columns.len()
            }
            _ => false,
        };
        if !alike {
            return Some(format!(
                "binding tables must be sharded alike, but `{x}` has {axis} {} and `{y}` has {}",
                describe(sa),
                describe(sb)
            ));
        }
    }
    None
}

fn describe(strategy: &Option<Strategy>) -> String {
    match strategy {
        None => "none".into(),
        Some(s) if s.columns.is_empty() => format!("algorithm `{}` (hint)", s.algorithm),
        Some(s) => format!("algorithm `{}` on {}", s.algorithm, s.columns.join(", ")),
    }
}

/// What distinguishes an actual table among its siblings: the text after the logical name
/// (`t_order_item_1` → `_1`), or else its trailing number.
fn suffix(table: &str, logical: &str) -> String {
    let lower = table.to_lowercase();
    match lower.strip_prefix(logical) {
        Some(rest) => rest.to_string(),
        None => trailing_number(table)
            .map(|n| n.to_string())
            .unwrap_or(lower),
    }
}

fn list_or_none<'a>(names: impl Iterator<Item = &'a str>) -> String {
    let names: Vec<&str> = names.collect();
    if names.is_empty() {
        "(none)".into()
    } else {
        names.join(", ")
    }
}
