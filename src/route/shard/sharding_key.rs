//! An UPDATE may not change a sharding column: the row would belong on another node.
//! Setting it to the value the WHERE clause already pins it to is harmless and allowed
//! (ORMs write every column back).

use crate::error::Error;
use crate::sql::analyze::{Analysis, ColumnCondition, TableRole};

use super::nodes::Context;
use super::params::resolve;

/// Refuses an UPDATE that assigns a sharding column anything but its current value.
pub(crate) fn check_update(ctx: &Context<'_>, analysis: &Analysis) -> Result<(), Error> {
    for set in &analysis.update_sets {
        for table in analysis
            .tables
            .iter()
            .filter(|t| t.role == TableRole::Sharded)
        {
            let answers = match &set.qualifier {
                Some(q) => match &table.alias {
                    Some(alias) => alias.eq_ignore_ascii_case(q),
                    None => table.name.eq_ignore_ascii_case(q),
                },
                None => true,
            };
            if !answers {
                continue;
            }
            let Some(rule) = ctx.rules.table(&table.name) else {
                continue;
            };
            let is_sharding_column = [&rule.database_strategy, &rule.table_strategy]
                .into_iter()
                .flatten()
                .any(|s| s.columns.contains(&set.column));
            if !is_sharding_column {
                continue;
            }
            let new_value = resolve(&set.value, ctx.params);
            let unchanged = new_value.is_some()
                && analysis.conditions.iter().all(|group| {
                    match group.get(&table.name, &set.column) {
                        Some(ColumnCondition::Values(values)) => {
                            values.iter().all(|v| {
                                let current = resolve(v, ctx.params);
                                current.is_some()
                                    && same_value(current.as_ref(), new_value.as_ref())
                            }) && !values.is_empty()
                        }
                        _ => false,
                    }
                });
            if !unchanged {
                return Err(Error::ShardingKeyChange {
                    table: table.name.clone(),
                    column: set.column.clone(),
                });
            }
        }
    }
    Ok(())
}

fn same_value(
    a: Option<&crate::route::algorithms::ShardingValue>,
    b: Option<&crate::route::algorithms::ShardingValue>,
) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => {
            a == b
                || (a.as_integer().is_some() && a.as_integer() == b.as_integer())
                || a.canonical_text() == b.canonical_text()
        }
        _ => false,
    }
}
