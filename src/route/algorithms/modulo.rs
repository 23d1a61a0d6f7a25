//! MOD: the target ending with `value mod sharding_count`.

use std::ops::Bound;

use super::{
    check_indexed_targets, integer_bounds, integer_value, no_target, sole_value, target_with_index,
    ColumnUse, Properties, PropertyProblem, PropertyReader, RouteError, ShardingAlgorithm,
    ShardingValue, ShardingValues, MAX_PARTITIONS,
};

/// `type = "MOD"`: integer values, target = the one ending with `value mod sharding_count`.
///
/// The remainder is Euclidean (never negative), so `-3` with `sharding_count = 2` goes to
/// target 1, as with ShardingSphere's `BigInteger.mod`. Text that reads as an integer
/// (`'42'`) is accepted; fractions and other text are errors. A range no wider than
/// `sharding_count - 1` routes to the targets of its values; wider or open ranges to all.
#[derive(Debug, Clone)]
pub struct ModSharding {
    name: String,
    sharding_count: u64,
}

impl ModSharding {
    /// The type name in rule files.
    pub const KIND: &'static str = "MOD";
    /// Its properties.
    pub const PROPERTIES: &'static [&'static str] = &["sharding_count"];

    /// From `sharding_count` (1 ..= 100000).
    pub fn new(name: &str, properties: &Properties) -> Result<Self, Vec<PropertyProblem>> {
        let mut reader = PropertyReader::new(properties, Self::KIND, Self::PROPERTIES);
        let count = sharding_count(&mut reader);
        reader.finish(count.map(|sharding_count| ModSharding {
            name: name.to_string(),
            sharding_count,
        }))
    }

    fn target(
        &self,
        targets: &[String],
        column: &str,
        value: &ShardingValue,
    ) -> Result<String, RouteError> {
        let integer = integer_value(self, column, value)?;
        let index = integer.rem_euclid(i128::from(self.sharding_count)) as u128;
        target_with_index(targets, index)
            .cloned()
            .ok_or_else(|| no_target(self, column, value, format!("suffix {index}"), targets))
    }
}

/// Reads the required `sharding_count` property shared by MOD and HASH_MOD.
pub(super) fn sharding_count(reader: &mut PropertyReader<'_>) -> Option<u64> {
    let count = reader.required_int("sharding_count", "4")?;
    if !(1..=MAX_PARTITIONS as i64).contains(&count) {
        reader.problem(
            Some("sharding_count"),
            format!("must be between 1 and {MAX_PARTITIONS}, got {count}"),
        );
        return None;
    }
    Some(count as u64)
}

impl ShardingAlgorithm for ModSharding {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &'static str {
        Self::KIND
    }

    fn columns(&self) -> ColumnUse<'_> {
        ColumnUse::One
    }

    fn exact(
        &self,
        targets: &[String],
        values: &ShardingValues,
    ) -> Result<Vec<String>, RouteError> {
        let (column, value) = sole_value(self, values)?;
        Ok(vec![self.target(targets, column, value)?])
    }

    fn range(
        &self,
        targets: &[String],
        column: &str,
        lower: Bound<&ShardingValue>,
        upper: Bound<&ShardingValue>,
    ) -> Result<Vec<String>, RouteError> {
        let (Some(low), Some(high)) = integer_bounds(self, column, lower, upper)? else {
            return Ok(targets.to_vec());
        };
        if low > high {
            return Ok(Vec::new());
        }
        if high - low >= i128::from(self.sharding_count) - 1 {
            return Ok(targets.to_vec());
        }
        let mut chosen = Vec::new();
        for value in low..=high {
            let target = self.target(targets, column, &ShardingValue::Int(value))?;
            if !chosen.contains(&target) {
                chosen.push(target);
            }
        }
        Ok(targets
            .iter()
            .filter(|t| chosen.contains(t))
            .cloned()
            .collect())
    }

    fn check_targets(&self, targets: &[String]) -> Vec<String> {
        let what = format!(
            "MOD algorithm `{}` (sharding_count = {})",
            self.name, self.sharding_count
        );
        check_indexed_targets(targets, self.sharding_count.into(), &what)
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::targets;
    use super::super::PropertyValue;
    use super::*;

    fn algorithm(count: i64) -> ModSharding {
        ModSharding::new(
            "order_mod",
            &Properties::new().with("sharding_count", PropertyValue::Int(count)),
        )
        .unwrap()
    }

    #[test]
    fn routes_to_the_target_ending_with_the_remainder() {
        let t = targets(&["t_order_0", "t_order_1", "t_order_2"]);
        let exact =
            |v: ShardingValue| algorithm(3).exact(&t, &ShardingValues::single("order_id", v));
        assert_eq!(exact(ShardingValue::Int(7)).unwrap(), ["t_order_1"]);
        assert_eq!(exact(ShardingValue::Int(-1)).unwrap(), ["t_order_2"]);
        assert_eq!(exact("42".into()).unwrap(), ["t_order_0"]);
        let err = exact("4.5".into()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "sharding algorithm `order_mod` (MOD) needs an integer for column `order_id`, got '4.5'"
        );
        assert!(matches!(
            exact(ShardingValue::Null),
            Err(RouteError::NullValue { .. })
        ));
    }

    #[test]
    fn eleven_does_not_match_target_one() {
        let t: Vec<String> = (0..12).map(|i| format!("t_{i}")).collect();
        let got = algorithm(12)
            .exact(&t, &ShardingValues::single("id", 11i64))
            .unwrap();
        assert_eq!(got, ["t_11"]);
    }

    #[test]
    fn missing_target_names_the_algorithm_and_value() {
        let t = targets(&["t_0"]);
        let err = algorithm(2)
            .exact(&t, &ShardingValues::single("id", 3i64))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "sharding algorithm `order_mod` (MOD) computed `suffix 1` for id = 3, but no target matches; targets: t_0"
        );
    }

    #[test]
    fn narrow_ranges_prune_and_wide_ones_route_everywhere() {
        let t = targets(&["t_0", "t_1", "t_2", "t_3"]);
        let (a, b) = (ShardingValue::Int(5), ShardingValue::Int(6));
        let alg = algorithm(4);
        assert_eq!(
            alg.range(&t, "id", Bound::Included(&a), Bound::Included(&b))
                .unwrap(),
            ["t_1", "t_2"]
        );
        assert_eq!(
            alg.range(&t, "id", Bound::Excluded(&a), Bound::Included(&b))
                .unwrap(),
            ["t_2"]
        );
        assert!(alg
            .range(&t, "id", Bound::Excluded(&a), Bound::Excluded(&b))
            .unwrap()
            .is_empty());
        let far = ShardingValue::Int(100);
        assert_eq!(
            alg.range(&t, "id", Bound::Included(&a), Bound::Included(&far))
                .unwrap(),
            t
        );
        assert_eq!(
            alg.range(&t, "id", Bound::Unbounded, Bound::Included(&a))
                .unwrap(),
            t
        );
    }

    #[test]
    fn checks_sharding_count_against_targets() {
        assert!(algorithm(2)
            .check_targets(&targets(&["ds_0", "ds_1"]))
            .is_empty());
        let problems = algorithm(2).check_targets(&targets(&["ds_0", "ds_1", "ds_2"]));
        assert_eq!(problems, ["MOD algorithm `order_mod` (sharding_count = 2) would never route to ds_2: their names do not end with a number from 0 to 1"]);
        let problems = algorithm(3).check_targets(&targets(&["ds_0", "ds_1"]));
        assert!(
            problems[0].contains("no target ends with 2"),
            "{problems:?}"
        );
    }

    #[test]
    fn rejects_a_non_positive_sharding_count() {
        let props = Properties::new().with("sharding_count", PropertyValue::Int(0));
        let problems = ModSharding::new("m", &props).unwrap_err();
        assert_eq!(problems[0].property.as_deref(), Some("sharding_count"));
        assert!(ModSharding::new("m", &Properties::new()).unwrap_err()[0]
            .message
            .contains("missing property `sharding_count`"));
    }
}
