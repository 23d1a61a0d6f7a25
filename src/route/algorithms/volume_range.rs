//! VOLUME_RANGE: consecutive integer ranges of equal size, one target each.

use std::ops::Bound;

use super::{
    check_indexed_targets, partitioned_exact, partitioned_range, ColumnUse, Properties,
    PropertyProblem, PropertyReader, RouteError, ShardingAlgorithm, ShardingValue, ShardingValues,
    MAX_PARTITIONS,
};

/// `type = "VOLUME_RANGE"`, as in ShardingSphere: with `range_lower = 0`,
/// `range_upper = 300`, `sharding_volume = 100`, values below 0 go to target 0, `[0, 100)`
/// to target 1, `[100, 200)` to 2, `[200, 300)` to 3 and 300 or more to target 4. In general
/// there are `ceil((range_upper - range_lower) / sharding_volume) + 2` targets; the last full
/// range stops at `range_upper`. Fractions are placed by their integer part rounded down.
/// Range conditions route to the targets they overlap.
#[derive(Debug, Clone)]
pub struct VolumeRangeSharding {
    name: String,
    lower: i128,
    upper: i128,
    volume: i128,
    /// Number of ranges between lower and upper (targets are this + 2).
    inner: u128,
}

impl VolumeRangeSharding {
    /// The type name in rule files.
    pub const KIND: &'static str = "VOLUME_RANGE";
    /// Its properties.
    pub const PROPERTIES: &'static [&'static str] =
        &["range_lower", "range_upper", "sharding_volume"];

    /// From `range_lower` < `range_upper` and `sharding_volume` > 0.
    pub fn new(name: &str, properties: &Properties) -> Result<Self, Vec<PropertyProblem>> {
        let mut reader = PropertyReader::new(properties, Self::KIND, Self::PROPERTIES);
        let lower = reader.required_int("range_lower", "0");
        let upper = reader.required_int("range_upper", "3000000");
        let volume = reader.required_int("sharding_volume", "1000000");
        let mut built = None;
        if let (Some(lower), Some(upper), Some(volume)) = (lower, upper, volume) {
            let (lower, upper, volume) = (i128::from(lower), i128::from(upper), i128::from(volume));
            if volume <= 0 {
                reader.problem(Some("sharding_volume"), "must be greater than 0");
            } else if upper <= lower {
                reader.problem(
                    Some("range_upper"),
                    format!("must be greater than range_lower ({lower})"),
                );
            } else {
                let inner = ((upper - lower + volume - 1) / volume) as u128;
                if inner + 2 > u128::from(MAX_PARTITIONS) {
                    reader.problem(
                        Some("sharding_volume"),
                        format!(
                            "makes {} ranges; at most {MAX_PARTITIONS} are allowed",
                            inner + 2
                        ),
                    );
                } else {
                    built = Some(VolumeRangeSharding {
                        name: name.to_string(),
                        lower,
                        upper,
                        volume,
                        inner,
                    });
                }
            }
        }
        reader.finish(built)
    }

    /// The index of the range holding `value`.
    pub fn partition(&self, value: i128) -> u128 {
        if value < self.lower {
            0
        } else if value >= self.upper {
            self.inner + 1
        } else {
            ((value - self.lower) / self.volume) as u128 + 1
        }
    }
}

impl ShardingAlgorithm for VolumeRangeSharding {
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
        partitioned_exact(self, targets, values, |v| self.partition(v))
    }

    fn range(
        &self,
        targets: &[String],
        column: &str,
        lower: Bound<&ShardingValue>,
        upper: Bound<&ShardingValue>,
    ) -> Result<Vec<String>, RouteError> {
        partitioned_range(self, targets, column, (lower, upper), self.inner + 1, |v| {
            self.partition(v)
        })
    }

    fn check_targets(&self, targets: &[String]) -> Vec<String> {
        let what = format!(
            "VOLUME_RANGE algorithm `{}` ({} ranges from range_lower = {}, range_upper = {}, sharding_volume = {})",
            self.name,
            self.inner + 2,
            self.lower,
            self.upper,
            self.volume
        );
        check_indexed_targets(targets, self.inner + 2, &what)
    }
}

#[cfg(test)]
mod tests {
    use super::super::PropertyValue;
    use super::*;

    fn algorithm(
        lower: i64,
        upper: i64,
        volume: i64,
    ) -> Result<VolumeRangeSharding, Vec<PropertyProblem>> {
        let props = Properties::new()
            .with("range_lower", PropertyValue::Int(lower))
            .with("range_upper", PropertyValue::Int(upper))
            .with("sharding_volume", PropertyValue::Int(volume));
        VolumeRangeSharding::new("vol", &props)
    }

    fn targets() -> Vec<String> {
        (0..5).map(|i| format!("t_{i}")).collect()
    }

    #[test]
    fn places_values_by_volume_with_open_ends() {
        let alg = algorithm(0, 300, 100).unwrap();
        let exact = |v: i64| {
            alg.exact(&targets(), &ShardingValues::single("id", v))
                .unwrap()
        };
        assert_eq!(exact(-5), ["t_0"]);
        assert_eq!(exact(0), ["t_1"]);
        assert_eq!(exact(99), ["t_1"]);
        assert_eq!(exact(100), ["t_2"]);
        assert_eq!(exact(299), ["t_3"]);
        assert_eq!(exact(300), ["t_4"]);
        assert_eq!(exact(1_000_000), ["t_4"]);
        let half = ShardingValue::from_number_literal("99.5").unwrap();
        assert_eq!(
            alg.exact(&targets(), &ShardingValues::single("id", half))
                .unwrap(),
            ["t_1"]
        );
    }

    #[test]
    fn last_partial_range_stops_at_the_upper_bound() {
        let alg = algorithm(0, 250, 100).unwrap();
        assert_eq!((alg.partition(249), alg.partition(250)), (3, 4));
        assert!(alg.check_targets(&targets()).is_empty());
    }

    #[test]
    fn ranges_route_to_the_overlapping_targets() {
        let alg = algorithm(0, 300, 100).unwrap();
        let (a, b) = (ShardingValue::Int(150), ShardingValue::Int(200));
        let t = targets();
        assert_eq!(
            alg.range(&t, "id", Bound::Included(&a), Bound::Excluded(&b))
                .unwrap(),
            ["t_2"]
        );
        assert_eq!(
            alg.range(&t, "id", Bound::Included(&a), Bound::Included(&b))
                .unwrap(),
            ["t_2", "t_3"]
        );
        assert_eq!(
            alg.range(&t, "id", Bound::Unbounded, Bound::Excluded(&a))
                .unwrap(),
            ["t_0", "t_1", "t_2"]
        );
        assert_eq!(
            alg.range(&t, "id", Bound::Included(&b), Bound::Unbounded)
                .unwrap(),
            ["t_3", "t_4"]
        );
    }

    #[test]
    fn validates_bounds_and_target_count() {
        let problems = algorithm(10, 10, 5).unwrap_err();
        assert_eq!(problems[0].property.as_deref(), Some("range_upper"));
        assert!(algorithm(0, 10, 0).is_err());
        let problems = algorithm(0, 300, 100)
            .unwrap()
            .check_targets(&targets()[..4]);
        assert!(
            problems[0].contains("5 ranges") && problems[0].contains("no target ends with 4"),
            "{problems:?}"
        );
    }
}
