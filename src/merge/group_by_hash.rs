//! Hash GROUP BY: for inputs in no useful order. Every group is held, keyed by its
//! normalised key ([`super::key`]: under a case-insensitive collation 'a' and 'A' are one
//! group), and the groups go out, in the order their first rows came, once every input
//! has ended.
//!
//! Memory grows with the number of groups, not rows. The plan uses it only when the
//! shards' rows do not come ordered by the group keys.

use std::collections::HashMap;

use super::aggregate::{Accumulator, Group};
use super::key::{row_key, Key};
use super::{Collation, Inputs, MergeError, Operator, Pull};

/// Merges rows with equal group keys, wherever they come.
#[derive(Debug)]
pub struct HashGroupBy {
    input: Box<dyn Operator>,
    keys: Vec<(usize, Collation)>,
    prototypes: Vec<Accumulator>,
    columns: usize,
    index: HashMap<Key, usize>,
    groups: Vec<Group>,
    output: Option<std::vec::IntoIter<Group>>,
}

impl HashGroupBy {
    /// Groups `input` (rows of `columns` columns) by `keys` with the aggregates of
    /// `prototypes`.
    pub fn new(
        input: Box<dyn Operator>,
        keys: Vec<(usize, Collation)>,
        prototypes: Vec<Accumulator>,
        columns: usize,
    ) -> HashGroupBy {
        HashGroupBy {
            input,
            keys,
            prototypes,
            columns,
            index: HashMap::new(),
            groups: Vec::new(),
            output: None,
        }
    }
}

impl Operator for HashGroupBy {
    fn pull(&mut self, inputs: &mut Inputs) -> Result<Pull, MergeError> {
        loop {
            if let Some(output) = &mut self.output {
                return Ok(match output.next() {
                    Some(group) => Pull::Row(group.finish()),
                    None => Pull::End,
                });
            }
            match self.input.pull(inputs)? {
                Pull::NeedInput(i) => return Ok(Pull::NeedInput(i)),
                Pull::Row(row) => {
                    let key = row_key(&row, &self.keys);
                    match self.index.get(&key) {
                        Some(&i) => self.groups[i].add(&row)?,
                        None => {
                            self.index.insert(key, self.groups.len());
                            self.groups.push(Group::start(row, &self.prototypes)?);
                        }
                    }
                }
                Pull::End => {
                    self.index = HashMap::new();
                    let groups = std::mem::take(&mut self.groups);
                    self.output = Some(groups.into_iter());
                    if self.keys.is_empty() && self.output.as_ref().is_some_and(|o| o.len() == 0) {
                        return Ok(Pull::Row(Group::of_nothing(self.columns, &self.prototypes)));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merge::iterator::Concat;
    use crate::merge::test_support::{dec, int, run, run_prefilled, shards, text};
    use crate::merge::{Aggregate, AggregateFunction, ColumnInfo, Value};

    /// `SELECT name, sum(amount) ... GROUP BY name` under a `_ci` collation.
    fn sum_by_name(count: usize) -> HashGroupBy {
        let ci = ColumnInfo {
            collation: Collation::CaseInsensitive,
            ..ColumnInfo::default()
        };
        let columns = [ci, ColumnInfo::default()];
        let sum = Accumulator::new(
            &Aggregate {
                column: 1,
                function: AggregateFunction::Sum,
            },
            &columns,
        );
        HashGroupBy::new(
            Box::new(Concat::new(count)),
            vec![(0, Collation::CaseInsensitive)],
            vec![sum],
            2,
        )
    }

    #[test]
    fn groups_unordered_rows_case_insensitively_in_first_seen_order() {
        let input = || {
            shards(vec![
                vec![vec![text("b"), dec("1.5")], vec![text("a"), dec("1")]],
                vec![vec![text("A "), dec("2")], vec![Value::Null, dec("3")]],
                vec![vec![text("B"), dec("0.25")], vec![Value::Null, Value::Null]],
            ])
        };
        let out = run(&mut sum_by_name(3), input());
        assert_eq!(
            out.values(),
            vec![
                vec![text("b"), dec("1.75")],
                vec![text("a"), dec("3")],
                vec![Value::Null, dec("3")],
            ]
        );
        assert_eq!(out.reads, vec![2, 2, 2]);
        assert_eq!(run_prefilled(&mut sum_by_name(3), input()), out.rows);
    }

    #[test]
    fn no_rows_is_no_groups_with_keys_and_one_row_without() {
        assert!(run(&mut sum_by_name(2), vec![vec![], vec![]])
            .rows
            .is_empty());
        let columns = [ColumnInfo::default()];
        let count = Accumulator::new(
            &Aggregate {
                column: 0,
                function: AggregateFunction::Count,
            },
            &columns,
        );
        let mut op = HashGroupBy::new(Box::new(Concat::new(1)), vec![], vec![count], 1);
        assert_eq!(run(&mut op, vec![vec![]]).values(), vec![vec![int(0)]]);
    }
}
