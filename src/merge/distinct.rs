//! SELECT DISTINCT across shards: each shard removed its own duplicates, this removes the
//! ones between shards, comparing the visible columns under their collations ('a' and
//! 'A' are one row under a `_ci` collation; the first one seen is kept).
//!
//! Streamed when the input is sorted by every visible column (duplicates are then
//! consecutive and only the previous row's key is held); otherwise every distinct key
//! seen is held, and rows still go out as soon as they are seen to be new.

use std::collections::HashSet;

use super::key::{row_key, Key};
use super::{Collation, Inputs, MergeError, Operator, Pull};

/// Drops rows equal on `columns` to a row already returned.
#[derive(Debug)]
pub struct Distinct {
    input: Box<dyn Operator>,
    columns: Vec<(usize, Collation)>,
    seen: Seen,
}

#[derive(Debug)]
enum Seen {
    /// The input is sorted by the columns: the last key returned.
    Previous(Option<Key>),
    /// Every key returned.
    All(HashSet<Key>),
}

impl Distinct {
    /// Over an input sorted by `columns` (in any order of the columns).
    pub fn streamed(input: Box<dyn Operator>, columns: Vec<(usize, Collation)>) -> Distinct {
        Distinct {
            input,
            columns,
            seen: Seen::Previous(None),
        }
    }

    /// Over an input in any order.
    pub fn hashed(input: Box<dyn Operator>, columns: Vec<(usize, Collation)>) -> Distinct {
        Distinct {
            input,
            columns,
            seen: Seen::All(HashSet::new()),
        }
    }
}

impl Operator for Distinct {
    fn pull(&mut self, inputs: &mut Inputs) -> Result<Pull, MergeError> {
        loop {
            let row = match self.input.pull(inputs)? {
                Pull::Row(row) => row,
                other => return Ok(other),
            };
            let key = row_key(&row, &self.columns);
            let new = match &mut self.seen {
                Seen::Previous(previous) if previous.as_ref() == Some(&key) => false,
                Seen::Previous(previous) => {
                    *previous = Some(key);
                    true
                }
                Seen::All(seen) => seen.insert(key),
            };
            if new {
                return Ok(Pull::Row(row));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merge::iterator::Concat;
    use crate::merge::order_by::{OrderByMerge, RowOrder};
    use crate::merge::test_support::{asc, int, run, shards, text};
    use crate::merge::{ColumnInfo, Value};

    const COLUMNS: [(usize, Collation); 2] =
        [(0, Collation::CaseInsensitive), (1, Collation::Binary)];

    #[test]
    fn hashed_distinct_keeps_the_first_of_rows_equal_under_the_collation() {
        let input = shards(vec![
            vec![vec![text("a"), int(1)], vec![text("b"), int(1)]],
            vec![
                vec![text("A"), int(1)],
                vec![text("a"), int(2)],
                vec![Value::Null, Value::Null],
            ],
            vec![vec![Value::Null, Value::Null], vec![text("B "), int(1)]],
        ]);
        let mut op = Distinct::hashed(Box::new(Concat::new(3)), COLUMNS.to_vec());
        assert_eq!(
            run(&mut op, input).values(),
            vec![
                vec![text("a"), int(1)],
                vec![text("b"), int(1)],
                vec![text("a"), int(2)],
                vec![Value::Null, Value::Null],
            ]
        );
    }

    #[test]
    fn streamed_distinct_over_sorted_inputs_drops_consecutive_duplicates() {
        let ci = ColumnInfo {
            collation: Collation::CaseInsensitive,
            ..ColumnInfo::default()
        };
        let columns = [ci, ColumnInfo::default()];
        let source = OrderByMerge::new(2, RowOrder::new(&[asc(0), asc(1)], &columns));
        let mut op = Distinct::streamed(Box::new(source), COLUMNS.to_vec());
        let input = shards(vec![
            vec![vec![text("a"), int(1)], vec![text("b"), int(2)]],
            vec![
                vec![text("A"), int(1)],
                vec![text("a"), int(3)],
                vec![text("b"), int(2)],
            ],
        ]);
        assert_eq!(
            run(&mut op, input).values(),
            vec![
                vec![text("a"), int(1)],
                vec![text("a"), int(3)],
                vec![text("b"), int(2)],
            ]
        );
    }
}
