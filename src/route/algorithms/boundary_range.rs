//! BOUNDARY_RANGE: integer ranges between listed boundaries, one target each.

use std::ops::Bound;

use super::{
    check_indexed_targets, partitioned_exact, partitioned_range, ColumnUse, Properties,
    PropertyProblem, PropertyReader, RouteError, ShardingAlgorithm, ShardingValue, ShardingValues,
    MAX_PARTITIONS,
};

/// `type = "BOUNDARY_RANGE"`, as ShardingSphere's: with `sharding_ranges = [10, 20, 40]`,
/// values below 10 go to target 0, `[10, 20)` to 1, `[20, 40)` to 2 and 40 or more to 3
/// (one target more than there are boundaries). Boundaries must be strictly increasing.
/// Fractions are placed by their integer part rounded down. Range conditions route to the
/// targets they overlap.
#[derive(Debug, Clone)]
pub struct BoundaryRangeSharding {
    name: String,
    boundaries: Vec<i128>,
}

impl BoundaryRangeSharding {
    /// The type name in rule files.
    pub const KIND: &'static str = "BOUNDARY_RANGE";
    /// Its properties.
    pub const PROPERTIES: &'static [&'static str] = &["sharding_ranges"];

    /// From `sharding_ranges`: a non-empty, strictly increasing array of integers.
    pub fn new(name: &str, properties: &Properties) -> Result<Self, Vec<PropertyProblem>> {
        let mut reader = PropertyReader::new(properties, Self::KIND, Self::PROPERTIES);
        let mut built = None;
        if let Some(boundaries) = reader.required_int_list("sharding_ranges", "[10, 20, 40]") {
            if boundaries.is_empty() {
                reader.problem(
                    Some("sharding_ranges"),
                    "must list at least one boundary, e.g. [10, 20, 40]",
                );
            } else if let Some(pair) = boundaries.windows(2).find(|w| w[0] >= w[1]) {
                reader.problem(
                    Some("sharding_ranges"),
                    format!(
                        "must be strictly increasing, but {} is followed by {}",
                        pair[0], pair[1]
                    ),
                );
            } else if boundaries.len() as u64 >= MAX_PARTITIONS {
                reader.problem(
                    Some("sharding_ranges"),
                    format!("at most {} boundaries", MAX_PARTITIONS - 1),
                );
            } else {
                built = Some(BoundaryRangeSharding {
                    name: name.to_string(),
                    boundaries: boundaries.into_iter().map(i128::from).collect(),
                });
            }
        }
        reader.finish(built)
    }

    /// The index of the range holding `value`: how many boundaries are at or below it.
    pub fn partition(&self, value: i128) -> u128 {
        self.boundaries.partition_point(|&b| b <= value) as u128
    }

    fn last(&self) -> u128 {
        self.boundaries.len() as u128
    }
}

impl ShardingAlgorithm for BoundaryRangeSharding {
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
        partitioned_range(self, targets, column, (lower, upper), self.last(), |v| {
            self.partition(v)
        })
    }

    fn check_targets(&self, targets: &[String]) -> Vec<String> {
        let what = format!(
            "BOUNDARY_RANGE algorithm `{}` ({} ranges from {} boundaries)",
            self.name,
            self.last() + 1,
            self.boundaries.len()
        );
        check_indexed_targets(targets, self.last() + 1, &what)
    }
}

#[cfg(test)]
mod tests {
    use super::super::PropertyValue;
    use super::*;

    fn algorithm(ranges: &[i64]) -> Result<BoundaryRangeSharding, Vec<PropertyProblem>> {
        let list = ranges.iter().map(|v| PropertyValue::Int(*v)).collect();
        BoundaryRangeSharding::new(
            "b",
            &Properties::new().with("sharding_ranges", PropertyValue::List(list)),
        )
    }

    fn targets() -> Vec<String> {
        (0..4).map(|i| format!("ds_{i}")).collect()
    }

    #[test]
    fn places_values_between_boundaries() {
        let alg = algorithm(&[10, 20, 40]).unwrap();
        let exact = |v: i64| {
            alg.exact(&targets(), &ShardingValues::single("id", v))
                .unwrap()
        };
        assert_eq!(exact(9), ["ds_0"]);
        assert_eq!(exact(10), ["ds_1"]);
        assert_eq!(exact(19), ["ds_1"]);
        assert_eq!(exact(39), ["ds_2"]);
        assert_eq!(exact(40), ["ds_3"]);
        assert!(alg.check_targets(&targets()).is_empty());
    }

    #[test]
    fn ranges_route_to_the_overlapping_targets() {
        let alg = algorithm(&[10, 20, 40]).unwrap();
        let (a, b) = (ShardingValue::Int(15), ShardingValue::Int(20));
        let t = targets();
        assert_eq!(
            alg.range(&t, "id", Bound::Included(&a), Bound::Excluded(&b))
                .unwrap(),
            ["ds_1"]
        );
        assert_eq!(
            alg.range(&t, "id", Bound::Included(&a), Bound::Unbounded)
                .unwrap(),
            ["ds_1", "ds_2", "ds_3"]
        );
    }

    #[test]
    fn boundaries_must_increase() {
        let problems = algorithm(&[10, 10]).unwrap_err();
        assert!(problems[0].message.contains("10 is followed by 10"));
        assert!(algorithm(&[]).is_err());
        let text = Properties::new().with("sharding_ranges", PropertyValue::Text("10,20".into()));
        assert!(BoundaryRangeSharding::new("b", &text).unwrap_err()[0]
            .message
            .contains("array of integers"));
    }
}
