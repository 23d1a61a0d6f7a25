//! Date-times for INTERVAL and AUTO_INTERVAL: reading them from properties, statement
//! values and range bounds, and the suffix patterns (`yyyyMM`) that name interval targets.

use std::ops::Bound;

use chrono::{Datelike, NaiveDateTime, Timelike};

use super::{parse_datetime, PropertyReader, RouteError, ShardingAlgorithm, ShardingValue};

/// A `sharding_suffix_pattern`: `yyyy`, `yy`, `MM`, `dd`, `HH` and copied characters.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct SuffixPattern(Vec<SuffixToken>);

#[derive(Debug, Clone, PartialEq)]
enum SuffixToken {
    Year4,
    Year2,
    Month,
    Day,
    Hour,
    Literal(char),
}

/// Reads a required date-time property (`"2024-01-01 00:00:00"`, `"2024-01-01"`).
pub(super) fn datetime_property(
    reader: &mut PropertyReader<'_>,
    name: &str,
) -> Option<NaiveDateTime> {
    let text = reader.required_text(name, "\"2024-01-01 00:00:00\"")?;
    let parsed = parse_datetime(&text);
    if parsed.is_none() {
        reader.problem(
            Some(name),
            format!(
                "`{text}` is not a date-time; write e.g. \"2024-01-01 00:00:00\" or \"2024-01-01\""
            ),
        );
    }
    parsed
}

/// `value` as a date-time, or a [`RouteError`] naming the algorithm and column.
pub(super) fn datetime_value(
    algorithm: &dyn ShardingAlgorithm,
    column: &str,
    value: &ShardingValue,
) -> Result<NaiveDateTime, RouteError> {
    if value.is_null() {
        return Err(RouteError::NullValue {
            algorithm: algorithm.name().to_string(),
            column: column.to_string(),
        });
    }
    value.as_datetime().ok_or_else(|| RouteError::NotADateTime {
        algorithm: algorithm.name().to_string(),
        kind: algorithm.kind(),
        column: column.to_string(),
        value: value.to_string(),
    })
}

/// Reads a bound as a date-time: `(value, inclusive)`, `None` when unbounded.
pub(super) fn datetime_bound(
    algorithm: &dyn ShardingAlgorithm,
    column: &str,
    bound: Bound<&ShardingValue>,
) -> Result<Option<(NaiveDateTime, bool)>, RouteError> {
    Ok(match bound {
        Bound::Unbounded => None,
        Bound::Included(v) => Some((datetime_value(algorithm, column, v)?, true)),
        Bound::Excluded(v) => Some((datetime_value(algorithm, column, v)?, false)),
    })
}

impl SuffixPattern {
    /// Reads a pattern such as `yyyyMM` or `yyyy_MM_dd`.
    pub(super) fn parse(pattern: &str) -> Result<Self, String> {
        let mut tokens = Vec::new();
        let mut rest = pattern;
        while let Some(c) = rest.chars().next() {
            let (token, len) = if rest.starts_with("yyyy") {
                (SuffixToken::Year4, 4)
            } else if rest.starts_with("yy") {
                (SuffixToken::Year2, 2)
            } else if rest.starts_with("MM") {
                (SuffixToken::Month, 2)
            } else if rest.starts_with("dd") {
                (SuffixToken::Day, 2)
            } else if rest.starts_with("HH") {
                (SuffixToken::Hour, 2)
            } else if c.is_ascii_alphabetic() {
                return Err(format!(
                    "`{pattern}` has `{c}`, which is not a supported field; use yyyy, yy, MM, dd and HH (other characters that are not letters are copied)"
                ));
            } else {
                (SuffixToken::Literal(c), c.len_utf8())
            };
            tokens.push(token);
            rest = &rest[len..];
        }
        if tokens.iter().all(|t| matches!(t, SuffixToken::Literal(_))) {
            return Err(
                "must contain at least one of yyyy, yy, MM, dd, HH, e.g. \"yyyyMM\"".into(),
            );
        }
        Ok(SuffixPattern(tokens))
    }

    /// `start` formatted by the pattern.
    pub(super) fn format(&self, start: NaiveDateTime) -> String {
        let mut out = String::new();
        for token in &self.0 {
            match token {
                SuffixToken::Year4 => out.push_str(&format!("{:04}", start.year())),
                SuffixToken::Year2 => out.push_str(&format!("{:02}", start.year().rem_euclid(100))),
                SuffixToken::Month => out.push_str(&format!("{:02}", start.month())),
                SuffixToken::Day => out.push_str(&format!("{:02}", start.day())),
                SuffixToken::Hour => out.push_str(&format!("{:02}", start.hour())),
                SuffixToken::Literal(c) => out.push(*c),
            }
        }
        out
    }
}
