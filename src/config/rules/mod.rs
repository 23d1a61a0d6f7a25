//! Sharding rule files: which tables are sharded, over which actual data nodes, by which
//! algorithms. A logical database names its rule files in `rules = [...]`; see
//! `docs/sharding.md` for the format.
//!
//! Like the main config, a rule file is read in two passes that report every problem at
//! once as `file:line:column: key.path: message`: `document` (TOML syntax, unknown keys,
//! value types, per-type algorithm properties) and `validate` (algorithms built, data nodes
//! expanded and checked against the database's data sources, strategies checked against
//! their algorithms' possible outputs, binding and broadcast tables cross-checked).

mod document;
#[cfg(test)]
mod example_tests;
mod model;
mod raw;
#[cfg(test)]
mod tests;
mod validate;

use std::path::{Path, PathBuf};

pub use model::{Definition, KeyGen, ShardingRules, Strategy, TableRule};

use super::error::{ConfigError, ConfigProblem, Report};

/// Reads and validates the rule file at `path` for logical database `database`, whose data
/// sources are `data_sources` (nodes must name only these).
pub fn load_rules(
    path: &Path,
    database: &str,
    data_sources: &[&str],
) -> Result<ShardingRules, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        problems: vec![problem(path, "", format!("cannot read rule file: {e}"))],
    })?;
    parse_rules(&text, path, database, data_sources)
}

/// Parses and validates rule-file `text` as if read from `path` (which names the file in
/// problems; it is not read).
pub fn parse_rules(
    text: &str,
    path: &Path,
    database: &str,
    data_sources: &[&str],
) -> Result<ShardingRules, ConfigError> {
    let mut report = Report::new(path, text);
    let Some(document) = document::read(text, &mut report) else {
        report.finish()?;
        unreachable!("document::read reports why it returned nothing");
    };
    let target = validate::Target {
        database,
        data_sources,
    };
    let rules = validate::validate(document, &target, &mut report);
    report.finish()?;
    Ok(rules)
}

/// Loads every rule file of a database and merges them; `None` when there are none. Each
/// file is self-contained (its strategies name its own algorithms); a table, algorithm or
/// key generator defined in two files is an error.
pub(super) fn load_all(
    paths: &[PathBuf],
    database: &str,
    data_sources: &[&str],
) -> Result<Option<ShardingRules>, ConfigError> {
    let mut merged: Option<ShardingRules> = None;
    let mut problems = Vec::new();
    let mut origin: Vec<(String, &Path)> = Vec::new();
    for path in paths {
        let rules = match load_rules(path, database, data_sources) {
            Ok(rules) => rules,
            Err(error) => {
                problems.extend(error.problems);
                continue;
            }
        };
        let Some(into) = merged.as_mut() else {
            origin.extend(names(&rules).into_iter().map(|n| (n, path.as_path())));
            merged = Some(rules);
            continue;
        };
        for name in names(&rules) {
            if let Some((_, first)) = origin.iter().find(|(n, _)| *n == name) {
                let message = format!("already defined in {}; define each table, algorithm and key generator in one rule file", first.display());
                problems.push(problem(path, &name, message));
            } else {
                origin.push((name, path.as_path()));
            }
        }
        into.binding_groups.extend(rules.binding_groups);
        into.broadcast_tables.extend(rules.broadcast_tables);
        into.tables.extend(rules.tables);
        into.algorithms.extend(rules.algorithms);
        into.key_generators.extend(rules.key_generators);
        into.algorithm_definitions
            .extend(rules.algorithm_definitions);
        into.key_generator_definitions
            .extend(rules.key_generator_definitions);
    }
    if !problems.is_empty() {
        return Err(ConfigError { problems });
    }
    Ok(merged)
}

/// The key paths a rule file defines, to find clashes between files.
fn names(rules: &ShardingRules) -> Vec<String> {
    let tables = rules.tables.keys().map(|n| format!("tables.{n}"));
    // A broadcast table clashes with a sharded table of the same name in another file.
    let broadcast = rules.broadcast_tables.iter().map(|n| format!("tables.{n}"));
    let algorithms = rules.algorithms.keys().map(|n| format!("algorithms.{n}"));
    let generators = rules
        .key_generators
        .keys()
        .map(|n| format!("key_generators.{n}"));
    tables
        .chain(broadcast)
        .chain(algorithms)
        .chain(generators)
        .collect()
}

fn problem(path: &Path, key: &str, message: String) -> ConfigProblem {
    ConfigProblem {
        file: path.to_path_buf(),
        line: None,
        column: None,
        key: key.to_string(),
        message,
    }
}
