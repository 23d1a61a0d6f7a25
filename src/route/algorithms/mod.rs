//! Sharding algorithms: from a sharding column's value to the data source or actual table
//! that holds the row. One file per algorithm; this module holds what they share: the
//! [`ShardingAlgorithm`] trait, the registry that builds one from its rule-file type and
//! properties ([`build_algorithm`]), and the suffix convention.
//!
//! # Targets and suffixes
//! An algorithm chooses among *targets*: the data source names of a table's nodes (database
//! strategy) or its actual table names (table strategy), passed in by the caller. The
//! algorithms that compute a number (MOD, HASH_MOD, VOLUME_RANGE, BOUNDARY_RANGE,
//! AUTO_INTERVAL) choose the target whose name *ends with that number*: the trailing run of
//! digits, read as an integer, equals it. So `t_order_1` is target 1, `t_order_11` is
//! target 11 (not 1, unlike a plain "ends with" test) and zero-padded `t_order_01` is
//! target 1. INTERVAL chooses the target whose name ends with the formatted date suffix;
//! INLINE, COMPLEX_INLINE and HINT compute the whole name.

mod auto_interval;
mod boundary_range;
mod complex_inline;
mod datetime;
mod error;
mod hash_mod;
mod hint;
mod inline;
mod interval;
mod modulo;
mod properties;
mod sharding_value;
mod volume_range;

use std::fmt;
use std::ops::Bound;
use std::sync::Arc;

pub use auto_interval::AutoIntervalSharding;
pub use boundary_range::BoundaryRangeSharding;
pub use complex_inline::ComplexInlineSharding;
pub use error::{NoTarget, RouteError};
pub use hash_mod::{crc32, HashModSharding};
pub use hint::HintSharding;
pub use inline::InlineSharding;
pub use interval::IntervalSharding;
pub use modulo::ModSharding;
pub use properties::{Properties, PropertyProblem, PropertyValue};
pub use sharding_value::{parse_datetime, ShardingValue, ShardingValues};
pub use volume_range::VolumeRangeSharding;

pub(crate) use error::list_targets;
pub(crate) use properties::PropertyReader;

/// Most partitions (indexes or date intervals) an algorithm may define, so validation and
/// range routing stay bounded.
pub const MAX_PARTITIONS: u64 = 100_000;

/// Every algorithm type a rule file may name in `type = "..."` (case-insensitive).
pub const ALGORITHM_TYPES: [&str; 9] = [
    ModSharding::KIND,
    HashModSharding::KIND,
    VolumeRangeSharding::KIND,
    BoundaryRangeSharding::KIND,
    IntervalSharding::KIND,
    AutoIntervalSharding::KIND,
    InlineSharding::KIND,
    ComplexInlineSharding::KIND,
    HintSharding::KIND,
];

/// A sharding algorithm, configured under a name in a rule file.
///
/// `targets` are the candidates in the caller's order (data sources, or actual tables of
/// one data source); results are always a subset of them, in their order.
pub trait ShardingAlgorithm: Send + Sync + fmt::Debug {
    /// The name it is configured under (`order_mod`), for messages.
    fn name(&self) -> &str;

    /// Its type (`MOD`).
    fn kind(&self) -> &'static str;

    /// Which columns it reads, so a rule file's strategies can be checked against it.
    fn columns(&self) -> ColumnUse<'_>;

    /// The targets holding rows whose sharding columns equal `values` (one value per
    /// column: the caller fans out over `IN` lists). Usually exactly one target.
    fn exact(&self, targets: &[String], values: &ShardingValues)
        -> Result<Vec<String>, RouteError>;

    /// The targets that may hold rows with `lower <= column <= upper` (each bound inclusive,
    /// exclusive or open). Hash-like algorithms return every target; range and interval
    /// algorithms prune.
    fn range(
        &self,
        targets: &[String],
        column: &str,
        lower: Bound<&ShardingValue>,
        upper: Bound<&ShardingValue>,
    ) -> Result<Vec<String>, RouteError>;

    /// The targets named by hint values (`/* dbmesh: table=t_order_1 */`). Only HINT
    /// algorithms take hints; the others answer [`RouteError::NotHint`].
    fn hint(&self, targets: &[String], hint_values: &[String]) -> Result<Vec<String>, RouteError> {
        let _ = (targets, hint_values);
        Err(RouteError::NotHint {
            algorithm: self.name().to_string(),
            kind: self.kind(),
        })
    }

    /// Problems with routing over `targets` (used when a rule file is loaded): outputs that
    /// name no target, targets that would never be chosen, ambiguous suffixes. Empty when
    /// the algorithm fits.
    fn check_targets(&self, targets: &[String]) -> Vec<String>;
}

/// Which columns an algorithm reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnUse<'a> {
    /// The one column its strategy names (MOD, HASH_MOD, the range and interval algorithms).
    One,
    /// The columns its expression names: INLINE reads exactly one, COMPLEX_INLINE (`several`)
    /// one or more.
    Expression {
        columns: &'a [String],
        several: bool,
    },
    /// No column: it is routed by hints only (HINT).
    Hint,
}

/// The properties allowed for algorithm type `kind` (case-insensitive); `None` for an
/// unknown type.
pub fn algorithm_properties(kind: &str) -> Option<&'static [&'static str]> {
    Some(match kind.to_ascii_uppercase().as_str() {
        ModSharding::KIND => ModSharding::PROPERTIES,
        HashModSharding::KIND => HashModSharding::PROPERTIES,
        VolumeRangeSharding::KIND => VolumeRangeSharding::PROPERTIES,
        BoundaryRangeSharding::KIND => BoundaryRangeSharding::PROPERTIES,
        IntervalSharding::KIND => IntervalSharding::PROPERTIES,
        AutoIntervalSharding::KIND => AutoIntervalSharding::PROPERTIES,
        InlineSharding::KIND => InlineSharding::PROPERTIES,
        ComplexInlineSharding::KIND => ComplexInlineSharding::PROPERTIES,
        HintSharding::KIND => HintSharding::PROPERTIES,
        _ => return None,
    })
}

/// Builds the algorithm `name` of type `kind` (case-insensitive) from its properties,
/// or every problem with them.
pub fn build_algorithm(
    name: &str,
    kind: &str,
    properties: &Properties,
) -> Result<Arc<dyn ShardingAlgorithm>, Vec<PropertyProblem>> {
    fn arc<T: ShardingAlgorithm + 'static>(
        built: Result<T, Vec<PropertyProblem>>,
    ) -> Result<Arc<dyn ShardingAlgorithm>, Vec<PropertyProblem>> {
        built.map(|a| Arc::new(a) as Arc<dyn ShardingAlgorithm>)
    }
    match kind.to_ascii_uppercase().as_str() {
        ModSharding::KIND => arc(ModSharding::new(name, properties)),
        HashModSharding::KIND => arc(HashModSharding::new(name, properties)),
        VolumeRangeSharding::KIND => arc(VolumeRangeSharding::new(name, properties)),
        BoundaryRangeSharding::KIND => arc(BoundaryRangeSharding::new(name, properties)),
        IntervalSharding::KIND => arc(IntervalSharding::new(name, properties)),
        AutoIntervalSharding::KIND => arc(AutoIntervalSharding::new(name, properties)),
        InlineSharding::KIND => arc(InlineSharding::new(name, properties)),
        ComplexInlineSharding::KIND => arc(ComplexInlineSharding::new(name, properties)),
        HintSharding::KIND => arc(HintSharding::new(name, properties)),
        _ => Err(vec![PropertyProblem {
            property: None,
            message: format!(
                "unknown algorithm type `{kind}`; known types: {}",
                ALGORITHM_TYPES.join(", ")
            ),
        }]),
    }
}

/// The number a target name ends with (`t_order_12` → 12, `ds_01` → 1), if any.
pub fn trailing_number(name: &str) -> Option<u128> {
    let digits = name.len() - name.trim_end_matches(|c: char| c.is_ascii_digit()).len();
    name[name.len() - digits..].parse().ok()
}

/// The first target whose name ends with `index` (see the module docs).
pub fn target_with_index(targets: &[String], index: u128) -> Option<&String> {
    targets.iter().find(|t| trailing_number(t) == Some(index))
}

/// The targets ending with a number in `first..=last`, in target order.
pub(crate) fn targets_in_index_range(targets: &[String], first: u128, last: u128) -> Vec<String> {
    let mut chosen: Vec<String> = Vec::new();
    for index in first..=last {
        if let Some(target) = target_with_index(targets, index) {
            if !chosen.contains(target) {
                chosen.push(target.clone());
            }
        }
    }
    targets
        .iter()
        .filter(|t| chosen.contains(t))
        .cloned()
        .collect()
}

/// Checks that each of `0..count` ends exactly one target and every target ends with one.
/// `what` says where `count` comes from, e.g. `sharding_count = 4`.
pub(crate) fn check_indexed_targets(targets: &[String], count: u128, what: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let mut missing = Vec::new();
    for index in 0..count {
        let owners: Vec<&String> = targets
            .iter()
            .filter(|t| trailing_number(t) == Some(index))
            .collect();
        match owners.as_slice() {
            [] => missing.push(index.to_string()),
            [_] => {}
            several => problems.push(format!(
                "targets {} all end with {index}; each number must end exactly one target",
                several
                    .iter()
                    .map(|t| format!("`{t}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }
    if !missing.is_empty() {
        let shown: Vec<&str> = missing.iter().take(10).map(String::as_str).collect();
        problems.push(format!(
            "{what} routes to targets ending with 0 to {}, but no target ends with {}{}; targets: {}",
            count - 1,
            shown.join(", "),
            if missing.len() > 10 { ", …" } else { "" },
            list_targets(targets)
        ));
    }
    let unreachable: Vec<&str> = targets
        .iter()
        .filter(|t| trailing_number(t).is_none_or(|n| n >= count))
        .map(String::as_str)
        .collect();
    if !unreachable.is_empty() {
        problems.push(format!(
            "{what} would never route to {}: their names do not end with a number from 0 to {}",
            unreachable.join(", "),
            count - 1
        ));
    }
    problems
}

/// The single (column, value) a one-column algorithm reads; NULL is an error.
pub(crate) fn sole_value<'v>(
    algorithm: &dyn ShardingAlgorithm,
    values: &'v ShardingValues,
) -> Result<(&'v str, &'v ShardingValue), RouteError> {
    let mut iter = values.iter();
    match (iter.next(), iter.next()) {
        (Some((column, ShardingValue::Null)), None) => Err(RouteError::NullValue {
            algorithm: algorithm.name().to_string(),
            column: column.to_string(),
        }),
        (Some(entry), None) => Ok(entry),
        _ => Err(RouteError::ColumnCount {
            algorithm: algorithm.name().to_string(),
            kind: algorithm.kind(),
            got: values.len(),
        }),
    }
}

/// `value` as an exact integer, or [`RouteError::NotAnInteger`].
pub(crate) fn integer_value(
    algorithm: &dyn ShardingAlgorithm,
    column: &str,
    value: &ShardingValue,
) -> Result<i128, RouteError> {
    value
        .as_integer()
        .ok_or_else(|| not_an_integer(algorithm, column, value))
}

/// `value` rounded down to an integer (for range partitions with integer bounds).
pub(crate) fn floor_value(
    algorithm: &dyn ShardingAlgorithm,
    column: &str,
    value: &ShardingValue,
) -> Result<i128, RouteError> {
    if value.is_null() {
        return Err(RouteError::NullValue {
            algorithm: algorithm.name().to_string(),
            column: column.to_string(),
        });
    }
    value
        .floor_integer()
        .ok_or_else(|| not_an_integer(algorithm, column, value))
}

fn not_an_integer(
    algorithm: &dyn ShardingAlgorithm,
    column: &str,
    value: &ShardingValue,
) -> RouteError {
    RouteError::NotAnInteger {
        algorithm: algorithm.name().to_string(),
        kind: algorithm.kind(),
        column: column.to_string(),
        value: value.to_string(),
    }
}

/// Range bounds as inclusive integers (`None`: unbounded). An integral bound is exact
/// (`> 4` is `>= 5`); a fractional one is rounded down, which may include one partition
/// too many but never misses one, since partitions have integer bounds.
pub(crate) fn integer_bounds(
    algorithm: &dyn ShardingAlgorithm,
    column: &str,
    lower: Bound<&ShardingValue>,
    upper: Bound<&ShardingValue>,
) -> Result<(Option<i128>, Option<i128>), RouteError> {
    let bound = |bound: Bound<&ShardingValue>, step: i128| -> Result<Option<i128>, RouteError> {
        Ok(match bound {
            Bound::Unbounded => None,
            Bound::Included(value) => Some(floor_value(algorithm, column, value)?),
            Bound::Excluded(value) => {
                let floor = floor_value(algorithm, column, value)?;
                match value.as_integer() {
                    Some(_) => floor.checked_add(step),
                    None => Some(floor),
                }
            }
        })
    };
    Ok((bound(lower, 1)?, bound(upper, -1)?))
}

/// [`RouteError::NoTarget`] for a computed name or suffix.
/// `exact` of an algorithm that maps an integer value to a numbered partition (VOLUME_RANGE,
/// BOUNDARY_RANGE): the target whose suffix is the value's partition.
pub(crate) fn partitioned_exact(
    algorithm: &dyn ShardingAlgorithm,
    targets: &[String],
    values: &ShardingValues,
    partition: impl Fn(i128) -> u128,
) -> Result<Vec<String>, RouteError> {
    let (column, value) = sole_value(algorithm, values)?;
    let index = partition(floor_value(algorithm, column, value)?);
    let target = target_with_index(targets, index)
        .ok_or_else(|| no_target(algorithm, column, value, format!("suffix {index}"), targets))?;
    Ok(vec![target.clone()])
}

/// `range` of such an algorithm: the partitions from the lower bound's to the upper bound's
/// (`last` when unbounded above); an empty range routes nowhere.
pub(crate) fn partitioned_range(
    algorithm: &dyn ShardingAlgorithm,
    targets: &[String],
    column: &str,
    (lower, upper): (Bound<&ShardingValue>, Bound<&ShardingValue>),
    last: u128,
    partition: impl Fn(i128) -> u128,
) -> Result<Vec<String>, RouteError> {
    let (low, high) = integer_bounds(algorithm, column, lower, upper)?;
    if let (Some(low), Some(high)) = (low, high) {
        if low > high {
            return Ok(Vec::new());
        }
    }
    let first = low.map_or(0, &partition);
    let last = high.map_or(last, &partition);
    Ok(targets_in_index_range(targets, first, last))
}

pub(crate) fn no_target(
    algorithm: &dyn ShardingAlgorithm,
    column: &str,
    value: &ShardingValue,
    computed: String,
    targets: &[String],
) -> RouteError {
    RouteError::NoTarget(Box::new(NoTarget {
        algorithm: algorithm.name().to_string(),
        kind: algorithm.kind(),
        column: column.to_string(),
        value: value.to_string(),
        computed,
        targets: list_targets(targets),
    }))
}

#[cfg(test)]
pub(crate) mod test_support {
    /// Owned target names from string literals.
    pub fn targets(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| n.to_string()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::targets;
    use super::*;

    #[test]
    fn trailing_numbers_are_whole_digit_runs() {
        assert_eq!(trailing_number("t_order_12"), Some(12));
        assert_eq!(trailing_number("ds_01"), Some(1));
        assert_eq!(trailing_number("t_order"), None);
        assert_eq!(trailing_number("7"), Some(7));
        let t = targets(&["t_1", "t_11", "t_0"]);
        assert_eq!(target_with_index(&t, 1).unwrap(), "t_1");
        assert_eq!(target_with_index(&t, 11).unwrap(), "t_11");
        assert_eq!(target_with_index(&t, 2), None);
    }

    #[test]
    fn indexed_targets_must_cover_each_index_once() {
        assert!(check_indexed_targets(&targets(&["t_0", "t_1"]), 2, "x").is_empty());
        let problems = check_indexed_targets(
            &targets(&["t_0", "t_00", "t_3", "t_x"]),
            3,
            "sharding_count = 3",
        );
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(problems[0].contains("`t_0`, `t_00` all end with 0"));
        assert!(problems[1].contains("no target ends with 1, 2"));
        assert!(problems[2].contains("would never route to t_3, t_x"));
    }

    #[test]
    fn builds_every_documented_type_and_rejects_unknown_ones() {
        for kind in ALGORITHM_TYPES {
            assert!(algorithm_properties(kind).is_some(), "{kind}");
        }
        assert_eq!(algorithm_properties("mod"), Some(ModSharding::PROPERTIES));
        let problems = build_algorithm("x", "MODULO", &Properties::new()).unwrap_err();
        assert!(problems[0]
            .message
            .starts_with("unknown algorithm type `MODULO`; known types: MOD, HASH_MOD"));
        let props = Properties::new().with("sharding_count", PropertyValue::Int(2));
        let built = build_algorithm("order_mod", "mod", &props).unwrap();
        assert_eq!((built.name(), built.kind()), ("order_mod", "MOD"));
    }

    #[test]
    fn integer_bounds_are_inclusive_and_round_fractions_down() {
        let alg = ModSharding::new(
            "m",
            &Properties::new().with("sharding_count", PropertyValue::Int(2)),
        )
        .unwrap();
        let five = ShardingValue::Int(5);
        let half = ShardingValue::from_number_literal("4.5").unwrap();
        let bounds = |l, u| integer_bounds(&alg, "c", l, u).unwrap();
        assert_eq!(
            bounds(Bound::Excluded(&five), Bound::Excluded(&five)),
            (Some(6), Some(4))
        );
        assert_eq!(
            bounds(Bound::Included(&half), Bound::Excluded(&half)),
            (Some(4), Some(4))
        );
        assert_eq!(
            bounds(Bound::Unbounded, Bound::Included(&five)),
            (None, Some(5))
        );
        let text = ShardingValue::from("abc");
        assert!(matches!(
            integer_bounds(&alg, "c", Bound::Included(&text), Bound::Unbounded),
            Err(RouteError::NotAnInteger { .. })
        ));
    }
}
