//! HAVING, evaluated on merged groups: a shard cannot filter a group whose other rows are
//! on other shards, so the rewrite removes HAVING from the shard query and the merge
//! applies it here, after the aggregates are merged.
//!
//! SQL's three-valued logic: a comparison with NULL is unknown, `NOT unknown` is unknown,
//! `unknown AND false` is false, `unknown OR true` is true; a group is kept only when the
//! condition is true.

use std::cmp::Ordering;
use std::str::FromStr;

use bigdecimal::BigDecimal;
use chrono::{NaiveDate, NaiveDateTime};

use super::{Collation, CompareOp, Having, Inputs, MergeError, Operator, Pull, Row, Value};

/// Drops the rows for which the condition is not true.
#[derive(Debug)]
pub struct HavingFilter {
    input: Box<dyn Operator>,
    condition: Having,
    /// Each column's collation, for text comparisons.
    collations: Vec<Collation>,
}

impl HavingFilter {
    pub fn new(input: Box<dyn Operator>, condition: Having, collations: Vec<Collation>) -> Self {
        HavingFilter {
            input,
            condition,
            collations,
        }
    }
}

impl Operator for HavingFilter {
    fn pull(&mut self, inputs: &mut Inputs) -> Result<Pull, MergeError> {
        loop {
            match self.input.pull(inputs)? {
                Pull::Row(row) => {
                    if evaluate(&self.condition, &row, &self.collations)? == Some(true) {
                        return Ok(Pull::Row(row));
                    }
                }
                other => return Ok(other),
            }
        }
    }
}

/// The condition's truth on `row`: `None` is unknown. Fails when a value and its literal
/// cannot be compared (text against a number, ...).
pub fn evaluate(
    condition: &Having,
    row: &Row,
    collations: &[Collation],
) -> Result<Option<bool>, MergeError> {
    Ok(match condition {
        Having::Compare { column, op, value } => {
            let actual = &row.values[*column];
            if actual.is_null() || value.is_null() {
                return Ok(None);
            }
            let coerced = coerce_literal(value, actual);
            let value = coerced.as_ref().unwrap_or(value);
            let order = actual.compare(value, collations[*column]).ok_or_else(|| {
                MergeError(format!(
                    "HAVING: column {} cannot be compared: {actual:?} with {value:?}",
                    column + 1
                ))
            })?;
            Some(holds(*op, order))
        }
        Having::And(a, b) => match (evaluate(a, row, collations)?, evaluate(b, row, collations)?) {
            (Some(false), _) | (_, Some(false)) => Some(false),
            (Some(true), Some(true)) => Some(true),
            _ => None,
        },
        Having::Or(a, b) => match (evaluate(a, row, collations)?, evaluate(b, row, collations)?) {
            (Some(true), _) | (_, Some(true)) => Some(true),
            (Some(false), Some(false)) => Some(false),
            _ => None,
        },
        Having::Not(a) => evaluate(a, row, collations)?.map(|truth| !truth),
    })
}

/// A string literal compared with a date, a timestamp or a number stands for a value of
/// that type, as both backends read it (`HAVING MIN(created) >= '2025-06-01'`: PostgreSQL
/// types the literal as the other side, MySQL converts it to compare); `None` when no
/// conversion applies (and the values compare as they are, or fail to).
fn coerce_literal(literal: &Value, like: &Value) -> Option<Value> {
    let Value::Text(text) = literal else {
        return None;
    };
    let text = text.trim();
    let datetime = || {
        [
            "%Y-%m-%d %H:%M:%S%.f",
            "%Y-%m-%dT%H:%M:%S%.f",
            "%Y-%m-%d %H:%M",
        ]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(text, f).ok())
    };
    let date = || NaiveDate::parse_from_str(text, "%Y-%m-%d").ok();
    match like {
        Value::Date(_) => date()
            .map(Value::Date)
            .or_else(|| datetime().map(Value::DateTime)),
        Value::DateTime(_) => datetime()
            .or_else(|| date().and_then(|d| d.and_hms_opt(0, 0, 0)))
            .map(Value::DateTime),
        Value::Int(_) | Value::UInt(_) | Value::Decimal(_) | Value::Float(_) => {
            BigDecimal::from_str(text).ok().map(Value::Decimal)
        }
        _ => None,
    }
}

fn holds(op: CompareOp, order: Ordering) -> bool {
    match op {
        CompareOp::Eq => order.is_eq(),
        CompareOp::NotEq => order.is_ne(),
        CompareOp::Lt => order.is_lt(),
        CompareOp::LtEq => order.is_le(),
        CompareOp::Gt => order.is_gt(),
        CompareOp::GtEq => order.is_ge(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merge::iterator::Concat;
    use crate::merge::test_support::{dec, int, row, run, shards, text};

    fn compare(column: usize, op: CompareOp, value: Value) -> Having {
        Having::Compare { column, op, value }
    }

    #[test]
    fn keeps_rows_where_the_condition_is_true() {
        // HAVING count > 1 AND name = 'a' under a case-insensitive collation.
        let condition = Having::And(
            Box::new(compare(1, CompareOp::Gt, int(1))),
            Box::new(compare(0, CompareOp::Eq, text("a"))),
        );
        let collations = vec![Collation::CaseInsensitive, Collation::Binary];
        let mut op = HavingFilter::new(Box::new(Concat::new(1)), condition, collations);
        let input = shards(vec![vec![
            vec![text("A"), int(2)],
            vec![text("a"), int(1)],
            vec![text("b"), int(5)],
            vec![Value::Null, int(9)],
        ]]);
        assert_eq!(run(&mut op, input).values(), vec![vec![text("A"), int(2)]]);
    }

    #[test]
    fn null_comparisons_are_unknown_in_three_valued_logic() {
        let collations = [Collation::Binary];
        let null_row = row(vec![Value::Null]);
        let is_null_gt = compare(0, CompareOp::Gt, int(0));
        assert_eq!(evaluate(&is_null_gt, &null_row, &collations), Ok(None));
        let not = Having::Not(Box::new(is_null_gt.clone()));
        assert_eq!(evaluate(&not, &null_row, &collations), Ok(None));
        let always = compare(0, CompareOp::NotEq, int(1));
        let or = Having::Or(Box::new(is_null_gt.clone()), Box::new(always.clone()));
        assert_eq!(
            evaluate(&or, &row(vec![int(5)]), &collations),
            Ok(Some(true))
        );
        let and_false = Having::And(
            Box::new(is_null_gt),
            Box::new(compare(0, CompareOp::Eq, int(1))),
        );
        assert_eq!(evaluate(&and_false, &null_row, &collations), Ok(None));
        assert_eq!(
            evaluate(&and_false, &row(vec![int(2)]), &collations),
            Ok(Some(false))
        );
    }

    #[test]
    fn decimals_compare_exactly_and_mismatched_kinds_are_errors() {
        let collations = [Collation::Binary];
        let avg = row(vec![dec("2.5000")]);
        let at_least = compare(0, CompareOp::GtEq, dec("2.5"));
        assert_eq!(evaluate(&at_least, &avg, &collations), Ok(Some(true)));
        let wrong = compare(0, CompareOp::Eq, text("x"));
        assert!(evaluate(&wrong, &avg, &collations).is_err());
    }

    #[test]
    fn string_literals_compare_as_dates_timestamps_and_numbers() {
        let collations = [Collation::Binary];
        let day = |s| Value::Date(NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap());
        let since = compare(0, CompareOp::GtEq, text("2025-06-01"));
        assert_eq!(
            evaluate(&since, &row(vec![day("2025-06-01")]), &collations),
            Ok(Some(true))
        );
        assert_eq!(
            evaluate(&since, &row(vec![day("2025-05-31")]), &collations),
            Ok(Some(false))
        );
        let noon = compare(0, CompareOp::Lt, text("2025-06-01 12:00:00"));
        assert_eq!(
            evaluate(&noon, &row(vec![day("2025-06-01")]), &collations),
            Ok(Some(true))
        );
        let midnight = Value::DateTime(day_time("2025-06-01 00:00:00"));
        assert_eq!(
            evaluate(
                &compare(0, CompareOp::Eq, text("2025-06-01")),
                &row(vec![midnight]),
                &collations
            ),
            Ok(Some(true))
        );
        let count = compare(0, CompareOp::Gt, text("2.5"));
        assert_eq!(
            evaluate(&count, &row(vec![int(3)]), &collations),
            Ok(Some(true))
        );
    }

    fn day_time(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap()
    }
}
