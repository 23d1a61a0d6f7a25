//! Aggregates across shards: each shard computed its partial result per group, an
//! [`Accumulator`] combines the partials of one group, and a [`Group`] is the merged row
//! being built (the first row's columns, the aggregates' merged values).
//!
//! | function | shards return | merge | of no rows |
//! |---|---|---|---|
//! | COUNT | their counts | sum, an integer | 0 |
//! | SUM | their sums | exact sum, the kind the shards sent ([`Sum`]) | NULL |
//! | MIN / MAX | their extremes | by [`Value::compare`] under the collation; keeps the winner's bytes | NULL |
//! | AVG | SUM in `column`, COUNT in `count_column` | total sum / total count at [`AvgScale`] | NULL |
//! | COUNT(DISTINCT x) | the distinct x of the group | count of distinct x across shards | 0 |
//! | SUM(DISTINCT x) | the distinct x of the group | sum of distinct x across shards | NULL |
//! | AVG(DISTINCT x) | the distinct x of the group | their sum / their count, at [`AvgScale`] | NULL |
//!
//! A computed column's `raw` becomes `None`, so the wire layer encodes its `values` entry
//! (as the client-visible column's type: an AVG column is a decimal although its shard
//! column was a SUM); MIN and MAX keep the raw bytes of the row they chose, which already
//! are in the right format.

use std::collections::HashSet;

use bigdecimal::ToPrimitive;
use bytes::Bytes;

use super::key::KeyValue;
use super::numeric::{average, AvgScale, Sum};
use super::{Aggregate, AggregateFunction, Collation, ColumnInfo, MergeError, Row, Value};

/// The merge of one aggregate column over one group.
#[derive(Debug, Clone)]
pub struct Accumulator {
    column: usize,
    collation: Collation,
    state: State,
}

#[derive(Debug, Clone)]
enum State {
    Count(u64),
    Sum(Sum),
    Min(Option<(Value, Option<Bytes>)>),
    Max(Option<(Value, Option<Bytes>)>),
    Avg {
        sum: Sum,
        count: u64,
        count_column: usize,
        scale: AvgScale,
    },
    CountDistinct(HashSet<KeyValue>),
    SumDistinct {
        seen: HashSet<KeyValue>,
        sum: Sum,
        as_decimal: bool,
    },
    AvgDistinct {
        seen: HashSet<KeyValue>,
        sum: Sum,
        scale: AvgScale,
    },
}

impl Accumulator {
    /// An empty accumulator for `aggregate`, whose columns must exist in `columns`.
    pub fn new(aggregate: &Aggregate, columns: &[ColumnInfo]) -> Accumulator {
        let info = columns[aggregate.column];
        let state = match aggregate.function {
            AggregateFunction::Count => State::Count(0),
            AggregateFunction::Sum => State::Sum(Sum::Empty),
            AggregateFunction::Min => State::Min(None),
            AggregateFunction::Max => State::Max(None),
            AggregateFunction::Avg { count_column } => State::Avg {
                sum: Sum::Empty,
                count: 0,
                count_column,
                scale: info.avg_scale,
            },
            AggregateFunction::CountDistinct => State::CountDistinct(HashSet::new()),
            AggregateFunction::SumDistinct => State::SumDistinct {
                seen: HashSet::new(),
                sum: Sum::Empty,
                as_decimal: info.sum_is_decimal,
            },
            AggregateFunction::AvgDistinct => State::AvgDistinct {
                seen: HashSet::new(),
                sum: Sum::Empty,
                scale: info.avg_scale,
            },
        };
        Accumulator {
            column: aggregate.column,
            collation: info.collation,
            state,
        }
    }

    /// Adds one shard row's partial result.
    pub fn add(&mut self, row: &Row) -> Result<(), MergeError> {
        let column = self.column;
        let value = &row.values[column];
        let fail = |message: String| MergeError(format!("column {}: {message}", column + 1));
        match &mut self.state {
            State::Count(total) => {
                *total = total
                    .checked_add(count_of(value).map_err(fail)?)
                    .ok_or_else(|| fail("COUNT overflows".into()))?;
            }
            State::Sum(sum) => sum.add(value).map_err(fail)?,
            State::Min(_) | State::Max(_) if value.is_null() => {}
            State::Min(best) => keep_extreme(best, row, column, self.collation, true)?,
            State::Max(best) => keep_extreme(best, row, column, self.collation, false)?,
            State::Avg {
                sum,
                count,
                count_column,
                ..
            } => {
                sum.add(value).map_err(fail)?;
                let n = count_of(&row.values[*count_column]).map_err(fail)?;
                *count = count.saturating_add(n);
            }
            State::CountDistinct(seen) => {
                if !value.is_null() {
                    seen.insert(KeyValue::new(value, self.collation));
                }
            }
            State::SumDistinct { seen, sum, .. } | State::AvgDistinct { seen, sum, .. } => {
                if !value.is_null() && seen.insert(KeyValue::new(value, self.collation)) {
                    sum.add(value).map_err(fail)?;
                }
            }
        }
        Ok(())
    }

    /// Writes the merged value into `row`.
    pub fn finish(self, row: &mut Row) {
        let (value, raw) = match self.state {
            State::Count(n) => (count_value(n), None),
            State::Sum(sum) => (sum.value(false), None),
            State::Min(best) | State::Max(best) => best.unwrap_or((Value::Null, None)),
            State::Avg {
                sum, count, scale, ..
            } => (average(&sum, count, scale), None),
            State::CountDistinct(seen) => (count_value(seen.len() as u64), None),
            State::SumDistinct {
                sum, as_decimal, ..
            } => (sum.value(as_decimal), None),
            State::AvgDistinct { seen, sum, scale } => {
                (average(&sum, seen.len() as u64, scale), None)
            }
        };
        row.values[self.column] = value;
        row.raw[self.column] = raw;
    }
}

fn keep_extreme(
    best: &mut Option<(Value, Option<Bytes>)>,
    row: &Row,
    column: usize,
    collation: Collation,
    min: bool,
) -> Result<(), MergeError> {
    let value = &row.values[column];
    let better = match best {
        None => true,
        Some((current, _)) => {
            let order = value.compare(current, collation).ok_or_else(|| {
                MergeError(format!(
                    "column {}: cannot compare {value:?} with {current:?}",
                    column + 1
                ))
            })?;
            if min {
                order.is_lt()
            } else {
                order.is_gt()
            }
        }
    };
    if better {
        *best = Some((value.clone(), row.raw[column].clone()));
    }
    Ok(())
}

/// A shard's COUNT (NULL counts as 0: a shard never sends it, but an outer join could).
fn count_of(value: &Value) -> Result<u64, String> {
    match value {
        Value::Null => Ok(0),
        Value::Int(n) => u64::try_from(*n).map_err(|_| format!("negative COUNT {n}")),
        Value::UInt(n) => Ok(*n),
        other => other
            .as_decimal()
            .and_then(|d| d.to_u64())
            .ok_or_else(|| format!("COUNT is not a count: {other:?}")),
    }
}

fn count_value(n: u64) -> Value {
    i64::try_from(n).map(Value::Int).unwrap_or(Value::UInt(n))
}

/// A group being merged: the row that began it and the accumulators of its aggregates.
#[derive(Debug)]
pub struct Group {
    row: Row,
    accumulators: Vec<Accumulator>,
}

impl Group {
    /// A group that begins with `row`; `prototypes` are empty accumulators of the plan's
    /// aggregates.
    pub fn start(row: Row, prototypes: &[Accumulator]) -> Result<Group, MergeError> {
        let mut group = Group {
            row,
            accumulators: prototypes.to_vec(),
        };
        for accumulator in &mut group.accumulators {
            accumulator.add(&group.row)?;
        }
        Ok(group)
    }

    /// The first row of the group, as it came (for comparing keys).
    pub fn first(&self) -> &Row {
        &self.row
    }

    /// Adds a row with the same group key.
    pub fn add(&mut self, row: &Row) -> Result<(), MergeError> {
        self.accumulators.iter_mut().try_for_each(|a| a.add(row))
    }

    /// The merged row: the first row's columns, the aggregates' merged values.
    pub fn finish(self) -> Row {
        let mut row = self.row;
        for accumulator in self.accumulators {
            accumulator.finish(&mut row);
        }
        row
    }

    /// The row of an aggregate without GROUP BY over no rows at all (`SELECT count(*)`
    /// of an empty table has one row: 0): NULL everywhere but the counts.
    pub fn of_nothing(columns: usize, prototypes: &[Accumulator]) -> Row {
        let mut row = Row {
            raw: vec![None; columns],
            values: vec![Value::Null; columns],
        };
        for accumulator in prototypes.iter().cloned() {
            accumulator.finish(&mut row);
        }
        row
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merge::test_support::{dec, int, row, text};

    fn merge(function: AggregateFunction, columns: &[ColumnInfo], rows: &[Row]) -> Row {
        let aggregate = Aggregate {
            column: 0,
            function,
        };
        let prototypes = [Accumulator::new(&aggregate, columns)];
        let mut group = Group::start(rows[0].clone(), &prototypes).unwrap();
        for r in &rows[1..] {
            group.add(r).unwrap();
        }
        group.finish()
    }

    const ONE: &[ColumnInfo] = &[ColumnInfo {
        collation: Collation::CaseInsensitive,
        avg_scale: AvgScale::Fixed(4),
        sum_is_decimal: false,
    }];

    #[test]
    fn count_sums_the_shards_counts_and_is_recomputed() {
        let merged = merge(
            AggregateFunction::Count,
            ONE,
            &[row(vec![int(3)]), row(vec![int(0)]), row(vec![int(4)])],
        );
        assert_eq!(merged.values[0], int(7));
        assert_eq!(merged.raw[0], None);
    }

    #[test]
    fn sum_is_exact_and_skips_null_shards() {
        let rows = [
            row(vec![dec("0.10")]),
            row(vec![Value::Null]),
            row(vec![dec("0.2")]),
        ];
        let merged = merge(AggregateFunction::Sum, ONE, &rows);
        assert_eq!(merged.values[0], dec("0.30"));
        let nulls = merge(AggregateFunction::Sum, ONE, &[row(vec![Value::Null])]);
        assert_eq!(nulls.values[0], Value::Null);
    }

    #[test]
    fn min_and_max_follow_the_collation_and_keep_the_winners_bytes() {
        let rows = [
            row(vec![text("b")]),
            row(vec![Value::Null]),
            row(vec![text("A")]),
            row(vec![text("C")]),
        ];
        let min = merge(AggregateFunction::Min, ONE, &rows);
        assert_eq!(min.values[0], text("A"));
        assert_eq!(min.raw[0].as_deref(), Some(&b"A"[..]));
        assert_eq!(
            merge(AggregateFunction::Max, ONE, &rows).values[0],
            text("C")
        );
        let none = merge(AggregateFunction::Max, ONE, &[row(vec![Value::Null])]);
        assert_eq!(
            (none.values[0].clone(), none.raw[0].clone()),
            (Value::Null, None)
        );
    }

    #[test]
    fn avg_divides_total_sum_by_total_count() {
        let agg = AggregateFunction::Avg { count_column: 1 };
        let columns = [ONE[0], ColumnInfo::default()];
        // Shard averages would be 1 and 3 (mean 2); the true average is 7/3.
        let rows = [row(vec![dec("1"), int(1)]), row(vec![dec("6"), int(2)])];
        assert_eq!(merge(agg.clone(), &columns, &rows).values[0], dec("2.3333"));
        let empty = [row(vec![Value::Null, int(0)])];
        assert_eq!(merge(agg, &columns, &empty).values[0], Value::Null);
    }

    #[test]
    fn avg_distinct_averages_each_value_once_across_shards() {
        // 2 and 4 on two shards each, 6 once: the distinct values average to 4, while
        // every row would give 3.6.
        let rows = [
            row(vec![int(2)]),
            row(vec![int(4)]),
            row(vec![Value::Null]),
            row(vec![int(2)]),
            row(vec![int(4)]),
            row(vec![int(6)]),
        ];
        let merged = merge(AggregateFunction::AvgDistinct, ONE, &rows);
        assert_eq!(merged.values[0], dec("4.0000"));
        assert_eq!(merged.raw[0], None);
        let none = merge(
            AggregateFunction::AvgDistinct,
            ONE,
            &[row(vec![Value::Null])],
        );
        assert_eq!(none.values[0], Value::Null);
    }

    #[test]
    fn distinct_aggregates_count_each_value_once_across_shards() {
        let rows = [
            row(vec![text("a")]),
            row(vec![text("A")]),
            row(vec![Value::Null]),
            row(vec![text("b")]),
        ];
        assert_eq!(
            merge(AggregateFunction::CountDistinct, ONE, &rows).values[0],
            int(2)
        );
        let numbers = [row(vec![int(5)]), row(vec![int(5)]), row(vec![int(2)])];
        assert_eq!(
            merge(AggregateFunction::SumDistinct, ONE, &numbers).values[0],
            int(7)
        );
        let mysql = [ColumnInfo {
            sum_is_decimal: true,
            ..ONE[0]
        }];
        assert_eq!(
            merge(AggregateFunction::SumDistinct, &mysql, &numbers).values[0],
            dec("7")
        );
    }

    #[test]
    fn aggregates_of_no_rows_are_zero_counts_and_nulls() {
        let aggregates = [
            Aggregate {
                column: 0,
                function: AggregateFunction::Count,
            },
            Aggregate {
                column: 1,
                function: AggregateFunction::Sum,
            },
            Aggregate {
                column: 2,
                function: AggregateFunction::CountDistinct,
            },
        ];
        let columns = [ColumnInfo::default(); 4];
        let prototypes: Vec<_> = aggregates
            .iter()
            .map(|a| Accumulator::new(a, &columns))
            .collect();
        let row = Group::of_nothing(4, &prototypes);
        assert_eq!(row.values, vec![int(0), Value::Null, int(0), Value::Null]);
    }

    #[test]
    fn values_that_cannot_be_merged_are_errors_naming_the_column() {
        let rows = [row(vec![int(1)]), row(vec![text("x")])];
        let aggregate = Aggregate {
            column: 0,
            function: AggregateFunction::Sum,
        };
        let prototypes = [Accumulator::new(&aggregate, ONE)];
        let mut group = Group::start(rows[0].clone(), &prototypes).unwrap();
        let error = group.add(&rows[1]).unwrap_err();
        assert!(error.0.starts_with("column 1:"), "{error}");
    }
}
