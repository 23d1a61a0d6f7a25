//! Stream GROUP BY: the input comes sorted by the group keys (an order-by merge over shards
//! that ran `ORDER BY` the group keys), so a group's rows are consecutive; they are merged
//! into one row as they pass, and the group goes out when the next key begins.
//!
//! Holds one group (plus, for COUNT/SUM(DISTINCT), the distinct values of that group).
//! Without group keys every row is one group, and an input without rows still gives the
//! one row an aggregate over nothing has (`SELECT count(*)` of an empty table is 0).

use super::aggregate::{Accumulator, Group};
use super::{Collation, MergeError, Operator, Pull, Row};
use crate::merge::Inputs;

/// Merges consecutive rows with equal group keys.
#[derive(Debug)]
pub struct StreamGroupBy {
    input: Box<dyn Operator>,
    keys: Vec<(usize, Collation)>,
    prototypes: Vec<Accumulator>,
    columns: usize,
    current: Option<Group>,
    emitted: bool,
    ended: bool,
}

impl StreamGroupBy {
    /// Groups `input` (rows of `columns` columns, sorted by `keys`) with the aggregates
    /// of `prototypes`.
    pub fn new(
        input: Box<dyn Operator>,
        keys: Vec<(usize, Collation)>,
        prototypes: Vec<Accumulator>,
        columns: usize,
    ) -> StreamGroupBy {
        StreamGroupBy {
            input,
            keys,
            prototypes,
            columns,
            current: None,
            emitted: false,
            ended: false,
        }
    }

    /// Whether `row` belongs to the current group.
    fn continues_group(&self, row: &Row) -> bool {
        let Some(group) = &self.current else {
            return false;
        };
        let first = group.first();
        self.keys.iter().all(|&(column, collation)| {
            first.values[column].same_key(&row.values[column], collation)
        })
    }

    fn emit(&mut self, group: Group) -> Pull {
        self.emitted = true;
        Pull::Row(group.finish())
    }
}

impl Operator for StreamGroupBy {
    fn pull(&mut self, inputs: &mut Inputs) -> Result<Pull, MergeError> {
        if self.ended {
            return Ok(Pull::End);
        }
        loop {
            match self.input.pull(inputs)? {
                Pull::NeedInput(i) => return Ok(Pull::NeedInput(i)),
                Pull::Row(row) if self.continues_group(&row) => {
                    self.current.as_mut().expect("a group").add(&row)?;
                }
                Pull::Row(row) => {
                    let next = Group::start(row, &self.prototypes)?;
                    if let Some(done) = self.current.replace(next) {
                        return Ok(self.emit(done));
                    }
                }
                Pull::End => {
                    self.ended = true;
                    return Ok(match self.current.take() {
                        Some(group) => self.emit(group),
                        None if self.keys.is_empty() && !self.emitted => {
                            Pull::Row(Group::of_nothing(self.columns, &self.prototypes))
                        }
                        None => Pull::End,
                    });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merge::order_by::{OrderByMerge, RowOrder};
    use crate::merge::test_support::{asc, int, run, run_first, shards, text};
    use crate::merge::{Aggregate, AggregateFunction, ColumnInfo, Value};

    const CI: ColumnInfo = ColumnInfo {
        collation: Collation::CaseInsensitive,
        avg_scale: crate::merge::AvgScale::Fixed(4),
        sum_is_decimal: false,
    };

    /// `SELECT name, count(*), max(id) ... GROUP BY name` over `count` shards.
    fn group_by_name(count: usize) -> StreamGroupBy {
        let columns = [CI, ColumnInfo::default(), ColumnInfo::default()];
        let source = OrderByMerge::new(count, RowOrder::new(&[asc(0)], &columns));
        let prototypes = [(1, AggregateFunction::Count), (2, AggregateFunction::Max)]
            .map(|(column, function)| Accumulator::new(&Aggregate { column, function }, &columns))
            .to_vec();
        StreamGroupBy::new(
            Box::new(source),
            vec![(0, Collation::CaseInsensitive)],
            prototypes,
            3,
        )
    }

    #[test]
    fn merges_each_group_across_shards() {
        let input = shards(vec![
            vec![
                vec![text("a"), int(2), int(5)],
                vec![text("c"), int(1), int(1)],
            ],
            vec![
                vec![text("A"), int(3), int(9)],
                vec![text("b"), int(1), int(4)],
            ],
        ]);
        let out = run(&mut group_by_name(2), input);
        assert_eq!(
            out.values(),
            vec![
                vec![text("a"), int(5), int(9)],
                vec![text("b"), int(1), int(4)],
                vec![text("c"), int(1), int(1)],
            ]
        );
        // The key column keeps the first row's bytes; aggregates are recomputed.
        assert_eq!(out.rows[0].raw[0].as_deref(), Some(&b"a"[..]));
        assert_eq!(out.rows[0].raw[1], None);
    }

    #[test]
    fn a_group_goes_out_before_later_rows_are_read() {
        // Shard 0 has one row for group 1 and then many rows of group 2.
        let mut first = vec![vec![text("g1"), int(1), int(1)]];
        first.extend((0..100).map(|_| vec![text("g2"), int(1), int(1)]));
        let input = shards(vec![first, vec![vec![text("g1"), int(1), int(2)]]]);
        let out = run_first(&mut group_by_name(2), input, 1);
        assert_eq!(out.values(), vec![vec![text("g1"), int(2), int(2)]]);
        assert_eq!(out.reads, vec![2, 1], "read past the first row of group 2");
    }

    #[test]
    fn without_keys_all_rows_are_one_group_even_none() {
        let columns = [ColumnInfo::default()];
        let count = Accumulator::new(
            &Aggregate {
                column: 0,
                function: AggregateFunction::Count,
            },
            &columns,
        );
        let op = |n| {
            StreamGroupBy::new(
                Box::new(crate::merge::iterator::Concat::new(n)),
                vec![],
                vec![count.clone()],
                1,
            )
        };
        let out = run(
            &mut op(2),
            shards(vec![vec![vec![int(4)]], vec![vec![int(6)]]]),
        );
        assert_eq!(out.values(), vec![vec![int(10)]]);
        let empty = run(&mut op(2), vec![vec![], vec![]]);
        assert_eq!(empty.values(), vec![vec![int(0)]]);
    }

    #[test]
    fn with_keys_no_rows_is_no_groups_and_null_keys_group_together() {
        assert!(run(&mut group_by_name(2), vec![vec![], vec![]])
            .rows
            .is_empty());
        let input = shards(vec![
            vec![vec![Value::Null, int(1), int(1)]],
            vec![vec![Value::Null, int(2), int(3)]],
        ]);
        let out = run(&mut group_by_name(2), input);
        assert_eq!(out.values(), vec![vec![Value::Null, int(3), int(3)]]);
    }
}
