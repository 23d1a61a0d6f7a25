//! INTERVAL: date-time ranges of a fixed calendar length, one target per range, named by
//! the range's start formatted as a suffix (`t_order_202401`).

use std::ops::Bound;

use chrono::{Datelike, Duration, Months, NaiveDateTime};

use super::datetime::{datetime_bound, datetime_property, datetime_value, SuffixPattern};
use super::{
    list_targets, sole_value, ColumnUse, NoTarget, Properties, PropertyProblem, PropertyReader,
    RouteError, ShardingAlgorithm, ShardingValue, ShardingValues, MAX_PARTITIONS,
};

/// `type = "INTERVAL"`: intervals of `datetime_interval_amount` × `datetime_interval_unit`
/// starting at `datetime_lower`, up to `datetime_upper` (inclusive). A value goes to the
/// target whose name ends with the start of its interval formatted by
/// `sharding_suffix_pattern` (`yyyy`, `yy`, `MM`, `dd`, `HH`, other characters copied).
///
/// With `datetime_lower = "2024-01-01 00:00:00"`, unit `MONTHS`, amount 1 and pattern
/// `yyyyMM`, `'2024-03-15 08:00:00'` goes to the target ending with `202403`. Values
/// outside `[datetime_lower, datetime_upper]` are errors. Range conditions route to the
/// intervals they overlap (skipping intervals without a target, as ShardingSphere does).
#[derive(Debug, Clone)]
pub struct IntervalSharding {
    name: String,
    lower: NaiveDateTime,
    upper: NaiveDateTime,
    step: Step,
    suffix: SuffixPattern,
    count: u64,
}

#[derive(Debug, Clone, Copy)]
enum Step {
    Months(u32),
    Seconds(i64),
}

impl IntervalSharding {
    /// The type name in rule files.
    pub const KIND: &'static str = "INTERVAL";
    /// Its properties.
    pub const PROPERTIES: &'static [&'static str] = &[
        "datetime_lower",
        "datetime_upper",
        "sharding_suffix_pattern",
        "datetime_interval_amount",
        "datetime_interval_unit",
    ];

    /// From the documented properties; `datetime_interval_amount` defaults to 1 and
    /// `datetime_interval_unit` to `DAYS`.
    pub fn new(name: &str, properties: &Properties) -> Result<Self, Vec<PropertyProblem>> {
        let mut reader = PropertyReader::new(properties, Self::KIND, Self::PROPERTIES);
        let lower = datetime_property(&mut reader, "datetime_lower");
        let upper = datetime_property(&mut reader, "datetime_upper");
        let suffix = reader
            .required_text("sharding_suffix_pattern", "\"yyyyMM\"")
            .and_then(|pattern| match SuffixPattern::parse(&pattern) {
                Ok(tokens) => Some(tokens),
                Err(message) => {
                    reader.problem(Some("sharding_suffix_pattern"), message);
                    None
                }
            });
        let amount = reader.int("datetime_interval_amount").unwrap_or(1);
        if !(1..=100_000).contains(&amount) {
            reader.problem(
                Some("datetime_interval_amount"),
                "must be between 1 and 100000",
            );
        }
        let amount = amount.clamp(1, 100_000);
        let unit = reader
            .text("datetime_interval_unit")
            .unwrap_or_else(|| "DAYS".into());
        let step = match unit.to_ascii_uppercase().as_str() {
            "YEARS" => Some(Step::Months(amount as u32 * 12)),
            "MONTHS" => Some(Step::Months(amount as u32)),
            "DAYS" => Some(Step::Seconds(amount * 86_400)),
            "HOURS" => Some(Step::Seconds(amount * 3_600)),
            _ => {
                reader.problem(
                    Some("datetime_interval_unit"),
                    format!("`{unit}` is not allowed; expected one of: \"YEARS\", \"MONTHS\", \"DAYS\", \"HOURS\""),
                );
                None
            }
        };
        let mut built = None;
        if let (Some(lower), Some(upper), Some(suffix), Some(step)) = (lower, upper, suffix, step) {
            if upper < lower {
                reader.problem(
                    Some("datetime_upper"),
                    format!("must not be before datetime_lower ({lower})"),
                );
            } else if reader.problems.is_empty() {
                let mut algorithm = IntervalSharding {
                    name: name.to_string(),
                    lower,
                    upper,
                    step,
                    suffix,
                    count: 0,
                };
                match algorithm.index(upper).map(|last| last + 1) {
                    Some(count) if count <= MAX_PARTITIONS => {
                        algorithm.count = count;
                        built = Some(algorithm);
                    }
                    _ => reader.problem(
                        Some("datetime_interval_amount"),
                        format!("more than {MAX_PARTITIONS} intervals between datetime_lower and datetime_upper"),
                    ),
                }
            }
        }
        reader.finish(built)
    }

    /// The index of the interval holding `value` (which must not be before `lower`).
    fn index(&self, value: NaiveDateTime) -> Option<u64> {
        match self.step {
            Step::Seconds(step) => Some(((value - self.lower).num_seconds() / step) as u64),
            Step::Months(step) => {
                let mut months = (value.year() - self.lower.year()) as i64 * 12
                    + value.month0() as i64
                    - self.lower.month0() as i64;
                if self.start_after_months(months)? > value {
                    months -= 1;
                }
                Some(months as u64 / u64::from(step))
            }
        }
    }

    fn start_after_months(&self, months: i64) -> Option<NaiveDateTime> {
        self.lower
            .checked_add_months(Months::new(u32::try_from(months).ok()?))
    }

    /// The suffix naming interval `index`'s target.
    pub fn suffix(&self, index: u64) -> String {
        self.suffix.format(self.start(index).unwrap_or(self.upper))
    }

    /// The start of interval `index`.
    fn start(&self, index: u64) -> Option<NaiveDateTime> {
        match self.step {
            Step::Seconds(step) => self
                .lower
                .checked_add_signed(Duration::seconds(index as i64 * step)),
            Step::Months(step) => self.start_after_months(index as i64 * i64::from(step)),
        }
    }
}

impl ShardingAlgorithm for IntervalSharding {
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
        let at = datetime_value(self, column, value)?;
        if at < self.lower || at > self.upper {
            return Err(RouteError::OutOfRange {
                algorithm: self.name.clone(),
                column: column.to_string(),
                value: value.to_string(),
                lower: self.lower.to_string(),
                upper: self.upper.to_string(),
            });
        }
        let suffix = self.suffix(self.index(at).unwrap_or(0));
        match targets.iter().find(|t| t.ends_with(&suffix)) {
            Some(target) => Ok(vec![target.clone()]),
            None => Err(RouteError::NoTarget(Box::new(NoTarget {
                algorithm: self.name.clone(),
                kind: Self::KIND,
                column: column.to_string(),
                value: value.to_string(),
                computed: format!("suffix {suffix}"),
                targets: list_targets(targets),
            }))),
        }
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
        let from = low.map_or(self.lower, |(v, _)| v.max(self.lower));
        let to = high.map_or(self.upper, |(v, _)| v.min(self.upper));
        if from > to {
            return Ok(Vec::new());
        }
        let first = self.index(from).unwrap_or(0);
        let mut last = self.index(to).unwrap_or(0);
        if let Some((end, false)) = high {
            // `< end` where `end` starts an interval: that interval is not touched.
            if end == to && self.start(last) == Some(end) {
                if last == first {
                    return Ok(Vec::new());
                }
                last -= 1;
            }
        }
        let suffixes: Vec<String> = (first..=last).map(|i| self.suffix(i)).collect();
        Ok(targets
            .iter()
            .filter(|t| suffixes.iter().any(|s| t.ends_with(s.as_str())))
            .cloned()
            .collect())
    }

    fn check_targets(&self, targets: &[String]) -> Vec<String> {
        let mut problems = Vec::new();
        let mut missing = Vec::new();
        let suffixes: Vec<String> = (0..self.count).map(|i| self.suffix(i)).collect();
        for suffix in &suffixes {
            let owners: Vec<&String> = targets
                .iter()
                .filter(|t| t.ends_with(suffix.as_str()))
                .collect();
            match owners.len() {
                0 => missing.push(suffix.as_str()),
                1 => {}
                _ => {
                    problems.push(format!(
                    "targets {} all end with {suffix}; each interval must end exactly one target",
                    owners.iter().map(|t| t.as_str()).collect::<Vec<_>>().join(", ")
                ))
                }
            }
        }
        if !missing.is_empty() {
            problems.push(format!(
                "INTERVAL algorithm `{}` has {} intervals from {} to {}, but no target ends with {}{}",
                self.name,
                self.count,
                self.lower,
                self.upper,
                missing.iter().take(10).copied().collect::<Vec<_>>().join(", "),
                if missing.len() > 10 { ", …" } else { "" }
            ));
        }
        let unreachable: Vec<&str> = targets
            .iter()
            .filter(|t| !suffixes.iter().any(|s| t.ends_with(s.as_str())))
            .map(String::as_str)
            .collect();
        if !unreachable.is_empty() {
            problems.push(format!(
                "INTERVAL algorithm `{}` would never route to {}: their names end with no interval suffix between {} and {}",
                self.name,
                unreachable.join(", "),
                self.lower,
                self.upper
            ));
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::super::PropertyValue;
    use super::*;

    fn monthly(extra: &[(&str, &str)]) -> Result<IntervalSharding, Vec<PropertyProblem>> {
        let mut props = Properties::new()
            .with(
                "datetime_lower",
                PropertyValue::Text("2024-01-01 00:00:00".into()),
            )
            .with(
                "datetime_upper",
                PropertyValue::Text("2024-12-31 23:59:59".into()),
            )
            .with(
                "sharding_suffix_pattern",
                PropertyValue::Text("yyyyMM".into()),
            )
            .with(
                "datetime_interval_unit",
                PropertyValue::Text("MONTHS".into()),
            );
        for (k, v) in extra {
            props.insert(k, PropertyValue::Text(v.to_string()));
        }
        IntervalSharding::new("by_month", &props)
    }

    fn targets() -> Vec<String> {
        (1..=12).map(|m| format!("t_order_2024{m:02}")).collect()
    }

    fn at(text: &str) -> ShardingValue {
        ShardingValue::from(text)
    }

    #[test]
    fn places_values_in_their_month() {
        let alg = monthly(&[]).unwrap();
        let exact = |v: &str| alg.exact(&targets(), &ShardingValues::single("created", at(v)));
        assert_eq!(exact("2024-03-15 08:00:00").unwrap(), ["t_order_202403"]);
        assert_eq!(exact("2024-01-01").unwrap(), ["t_order_202401"]);
        assert_eq!(exact("2024-12-31 23:59:59").unwrap(), ["t_order_202412"]);
        let err = exact("2025-01-01").unwrap_err();
        assert!(matches!(err, RouteError::OutOfRange { .. }), "{err}");
        assert!(matches!(
            exact("soon").unwrap_err(),
            RouteError::NotADateTime { .. }
        ));
        assert!(alg.check_targets(&targets()).is_empty());
    }

    #[test]
    fn ranges_route_to_overlapping_months() {
        let alg = monthly(&[]).unwrap();
        let (a, b) = (at("2024-02-10"), at("2024-04-01"));
        let t = targets();
        assert_eq!(
            alg.range(&t, "c", Bound::Included(&a), Bound::Excluded(&b))
                .unwrap(),
            ["t_order_202402", "t_order_202403"]
        );
        assert_eq!(
            alg.range(&t, "c", Bound::Included(&a), Bound::Included(&b))
                .unwrap(),
            ["t_order_202402", "t_order_202403", "t_order_202404"]
        );
        let before = at("2023-06-01");
        assert!(alg
            .range(&t, "c", Bound::Unbounded, Bound::Included(&before))
            .unwrap()
            .is_empty());
        assert_eq!(
            alg.range(&t, "c", Bound::Unbounded, Bound::Unbounded)
                .unwrap()
                .len(),
            12
        );
    }

    #[test]
    fn days_hours_and_years_step_from_the_lower_bound() {
        let daily = monthly(&[
            ("datetime_interval_unit", "DAYS"),
            ("sharding_suffix_pattern", "MMdd"),
            ("datetime_upper", "2024-01-10"),
        ])
        .unwrap();
        assert_eq!(daily.count, 10);
        assert_eq!(daily.suffix(9), "0110");
        let hourly = monthly(&[
            ("datetime_interval_unit", "hours"),
            ("sharding_suffix_pattern", "dd_HH"),
            ("datetime_upper", "2024-01-01 23:00:00"),
        ])
        .unwrap();
        assert_eq!((hourly.count, hourly.suffix(23)), (24, "01_23".to_string()));
        let yearly = monthly(&[
            ("datetime_interval_unit", "YEARS"),
            ("sharding_suffix_pattern", "yy"),
            ("datetime_upper", "2026-06-01"),
        ])
        .unwrap();
        assert_eq!((yearly.count, yearly.suffix(2)), (3, "26".to_string()));
    }

    #[test]
    fn validation_reports_missing_and_unreachable_tables() {
        let alg = monthly(&[]).unwrap();
        let mut t = targets();
        t.remove(5);
        t.push("t_order_2023".into());
        let problems = alg.check_targets(&t);
        assert!(
            problems[0].contains("no target ends with 202406"),
            "{problems:?}"
        );
        assert!(
            problems[1].contains("never route to t_order_2023"),
            "{problems:?}"
        );
    }

    #[test]
    fn rejects_bad_properties() {
        let problems = monthly(&[
            ("sharding_suffix_pattern", "yyyyMMmm"),
            ("datetime_interval_unit", "WEEKS"),
            ("datetime_lower", "Jan 1st"),
        ])
        .unwrap_err();
        let props: Vec<_> = problems
            .iter()
            .map(|p| p.property.as_deref().unwrap())
            .collect();
        assert_eq!(
            props,
            [
                "datetime_lower",
                "sharding_suffix_pattern",
                "datetime_interval_unit"
            ]
        );
    }
}
