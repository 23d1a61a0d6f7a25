//! AUTO_INTERVAL: date-time ranges of a fixed number of seconds, numbered from 0.

use std::ops::Bound;

use chrono::NaiveDateTime;

use super::datetime::{datetime_bound, datetime_property, datetime_value};
use super::{
    check_indexed_targets, no_target, sole_value, target_with_index, targets_in_index_range,
    ColumnUse, Properties, PropertyProblem, PropertyReader, RouteError, ShardingAlgorithm,
    ShardingValue, ShardingValues, MAX_PARTITIONS,
};

/// `type = "AUTO_INTERVAL"`: target index = `(value - datetime_lower) / sharding_seconds`
/// (whole intervals, rounded down), the target being the one whose name ends with that
/// number. There are `ceil((datetime_upper - datetime_lower) / sharding_seconds)` targets;
/// values before `datetime_lower` go to target 0 and values at or after `datetime_upper` to
/// the last. (ShardingSphere keeps an extra target 0 for values before the lower bound and
/// rounds up; dbmesh's numbering is the plain one.) Range conditions route to the intervals
/// they overlap.
#[derive(Debug, Clone)]
pub struct AutoIntervalSharding {
    name: String,
    lower: NaiveDateTime,
    seconds: i64,
    count: u64,
}

impl AutoIntervalSharding {
    /// The type name in rule files.
    pub const KIND: &'static str = "AUTO_INTERVAL";
    /// Its properties.
    pub const PROPERTIES: &'static [&'static str] =
        &["datetime_lower", "datetime_upper", "sharding_seconds"];

    /// From `datetime_lower` < `datetime_upper` and `sharding_seconds` > 0.
    pub fn new(name: &str, properties: &Properties) -> Result<Self, Vec<PropertyProblem>> {
        let mut reader = PropertyReader::new(properties, Self::KIND, Self::PROPERTIES);
        let lower = datetime_property(&mut reader, "datetime_lower");
        let upper = datetime_property(&mut reader, "datetime_upper");
        let seconds = reader.required_int("sharding_seconds", "86400");
        let mut built = None;
        if let (Some(lower), Some(upper), Some(seconds)) = (lower, upper, seconds) {
            let span = (upper - lower).num_seconds();
            if seconds <= 0 {
                reader.problem(Some("sharding_seconds"), "must be greater than 0");
            } else if span <= 0 {
                reader.problem(
                    Some("datetime_upper"),
                    format!("must be after datetime_lower ({lower})"),
                );
            } else {
                let count = (span + seconds - 1) / seconds;
                if count as u64 > MAX_PARTITIONS {
                    reader.problem(
                        Some("sharding_seconds"),
                        format!("makes {count} intervals; at most {MAX_PARTITIONS} are allowed"),
                    );
                } else {
                    built = Some(AutoIntervalSharding {
                        name: name.to_string(),
                        lower,
                        seconds,
                        count: count as u64,
                    });
                }
            }
        }
        reader.finish(built)
    }

    /// The index of the target holding `value`.
    pub fn partition(&self, value: NaiveDateTime) -> u128 {
        let elapsed = (value - self.lower).num_seconds();
        if elapsed < 0 {
            return 0;
        }
        ((elapsed / self.seconds) as u64).min(self.count - 1).into()
    }
}

impl ShardingAlgorithm for AutoIntervalSharding {
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
        let index = self.partition(datetime_value(self, column, value)?);
        let target = target_with_index(targets, index)
            .ok_or_else(|| no_target(self, column, value, format!("suffix {index}"), targets))?;
        Ok(vec![target.clone()])
    }

    fn range(
        &self,
        targets: &[String],
        column: &str,
        lower: Bound<&ShardingValue>,
        upper: Bound<&ShardingValue>,
    ) -> Result<Vec<String>, RouteError> {
        let low = datetime_bound(self, column, lower)?;
        let high = datetime_bound(self, column, upper)?;
        if let (Some((from, _)), Some((to, _))) = (low, high) {
            if from > to {
                return Ok(Vec::new());
            }
        }
        let first = low.map_or(0, |(v, _)| self.partition(v));
        let last = high.map_or(u128::from(self.count - 1), |(v, _)| self.partition(v));
        Ok(targets_in_index_range(targets, first, last))
    }

    fn check_targets(&self, targets: &[String]) -> Vec<String> {
        let what = format!(
            "AUTO_INTERVAL algorithm `{}` ({} intervals of {} seconds)",
            self.name, self.count, self.seconds
        );
        check_indexed_targets(targets, self.count.into(), &what)
    }
}

#[cfg(test)]
mod tests {
    use super::super::PropertyValue;
    use super::*;

    fn algorithm(upper: &str, seconds: i64) -> Result<AutoIntervalSharding, Vec<PropertyProblem>> {
        let props = Properties::new()
            .with(
                "datetime_lower",
                PropertyValue::Text("2024-01-01 00:00:00".into()),
            )
            .with("datetime_upper", PropertyValue::Text(upper.into()))
            .with("sharding_seconds", PropertyValue::Int(seconds));
        AutoIntervalSharding::new("auto", &props)
    }

    #[test]
    fn numbers_intervals_from_the_lower_bound() {
        // Four days, one target per day.
        let alg = algorithm("2024-01-05 00:00:00", 86_400).unwrap();
        let t: Vec<String> = (0..4).map(|i| format!("t_log_{i}")).collect();
        let exact = |v: &str| alg.exact(&t, &ShardingValues::single("at", v)).unwrap();
        assert_eq!(exact("2023-12-31 23:00:00"), ["t_log_0"]);
        assert_eq!(exact("2024-01-01 00:00:00"), ["t_log_0"]);
        assert_eq!(exact("2024-01-02 00:00:00"), ["t_log_1"]);
        assert_eq!(exact("2024-01-04 23:59:59"), ["t_log_3"]);
        assert_eq!(exact("2030-01-01"), ["t_log_3"]);
        assert!(alg.check_targets(&t).is_empty());
        let (a, b) = (
            ShardingValue::from("2024-01-02 12:00:00"),
            ShardingValue::from("2024-01-03"),
        );
        assert_eq!(
            alg.range(&t, "at", Bound::Included(&a), Bound::Included(&b))
                .unwrap(),
            ["t_log_1", "t_log_2"]
        );
        assert_eq!(
            alg.range(&t, "at", Bound::Included(&a), Bound::Unbounded)
                .unwrap(),
            ["t_log_1", "t_log_2", "t_log_3"]
        );
    }

    #[test]
    fn a_partial_last_interval_counts_as_one() {
        let alg = algorithm("2024-01-01 02:30:00", 3600).unwrap();
        assert_eq!(alg.count, 3);
        let problems = alg.check_targets(&["t_0".to_string(), "t_1".to_string()]);
        assert!(
            problems[0].contains("no target ends with 2"),
            "{problems:?}"
        );
    }

    #[test]
    fn rejects_empty_spans_and_bad_seconds() {
        assert_eq!(
            algorithm("2024-01-01", 60).unwrap_err()[0]
                .property
                .as_deref(),
            Some("datetime_upper")
        );
        assert_eq!(
            algorithm("2024-02-01", 0).unwrap_err()[0]
                .property
                .as_deref(),
            Some("sharding_seconds")
        );
        assert!(algorithm("2124-02-01", 1).is_err(), "too many intervals");
    }
}
