//! The order-by merge: a k-way merge of inputs each already sorted by the ORDER BY keys
//! (the shards ran the ORDER BY), so the merged stream is sorted too.
//!
//! A binary heap holds the head row of each input. A row is returned only once the head of
//! every unfinished input is known, so the operator holds at most one row per input and
//! the first row goes out as soon as each shard sent its first. Rows with equal keys come
//! in input order (all of input 0's, then input 1's, ...), as a stable sort would give.

use std::cmp::Ordering;

use super::{Available, Collation, ColumnInfo, Inputs, MergeError, Operator, Pull, Row, SortKey};

/// How rows compare under ORDER BY keys, each column under its collation.
#[derive(Debug, Clone)]
pub struct RowOrder {
    keys: Vec<(SortKey, Collation)>,
}

impl RowOrder {
    /// The order of `keys`, whose columns must exist in `columns`.
    pub fn new(keys: &[SortKey], columns: &[ColumnInfo]) -> RowOrder {
        RowOrder {
            keys: keys
                .iter()
                .map(|&key| (key, columns[key.column].collation))
                .collect(),
        }
    }

    /// Compares two rows: key by key, non-NULL values by [`super::Value::compare`] (reversed
    /// for DESC), NULLs where the key's [`super::NullOrder`] puts them in either direction.
    pub fn compare(&self, a: &Row, b: &Row) -> Ordering {
        for &(key, collation) in &self.keys {
            let (x, y) = (&a.values[key.column], &b.values[key.column]);
            let order = x.sort_cmp(y, collation, key.nulls);
            let order = if key.descending && !x.is_null() && !y.is_null() {
                order.reverse()
            } else {
                order
            };
            if order != Ordering::Equal {
                return order;
            }
        }
        Ordering::Equal
    }
}

/// Merges sorted inputs into one sorted stream.
#[derive(Debug)]
pub struct OrderByMerge {
    order: RowOrder,
    /// A min-heap of `(head row, input)` by the row order, then the input.
    heap: Vec<(Row, usize)>,
    /// Inputs whose next row must be in the heap (or whose end must be seen) before the
    /// smallest head can be returned.
    pending: Vec<usize>,
}

impl OrderByMerge {
    /// Over inputs `0..count`, each sorted by `order`.
    pub fn new(count: usize, order: RowOrder) -> OrderByMerge {
        OrderByMerge {
            order,
            heap: Vec::with_capacity(count),
            pending: (0..count).rev().collect(),
        }
    }

    fn less(&self, a: usize, b: usize) -> bool {
        let ((row_a, input_a), (row_b, input_b)) = (&self.heap[a], &self.heap[b]);
        self.order.compare(row_a, row_b).then(input_a.cmp(input_b)) == Ordering::Less
    }

    fn push(&mut self, row: Row, input: usize) {
        self.heap.push((row, input));
        let mut child = self.heap.len() - 1;
        while child > 0 {
            let parent = (child - 1) / 2;
            if !self.less(child, parent) {
                break;
            }
            self.heap.swap(child, parent);
            child = parent;
        }
    }

    fn pop(&mut self) -> Option<(Row, usize)> {
        if self.heap.is_empty() {
            return None;
        }
        let smallest = self.heap.swap_remove(0);
        let mut parent = 0;
        loop {
            let (left, right) = (2 * parent + 1, 2 * parent + 2);
            let mut least = parent;
            if left < self.heap.len() && self.less(left, least) {
                least = left;
            }
            if right < self.heap.len() && self.less(right, least) {
                least = right;
            }
            if least == parent {
                return Some(smallest);
            }
            self.heap.swap(parent, least);
            parent = least;
        }
    }
}

impl Operator for OrderByMerge {
    fn pull(&mut self, inputs: &mut Inputs) -> Result<Pull, MergeError> {
        while let Some(&input) = self.pending.last() {
            match inputs.peek(input) {
                Available::Row(_) => {
                    let row = inputs.take(input).expect("peeked a row");
                    self.push(row, input);
                }
                Available::Unknown => return Ok(Pull::NeedInput(input)),
                Available::Ended => {}
            }
            self.pending.pop();
        }
        Ok(match self.pop() {
            Some((row, input)) => {
                self.pending.push(input);
                Pull::Row(row)
            }
            None => Pull::End,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merge::test_support::{asc, desc, int, run, run_prefilled, shards, text};
    use crate::merge::{NullOrder, Value};

    fn merge(keys: &[SortKey], columns: &[ColumnInfo], count: usize) -> OrderByMerge {
        OrderByMerge::new(count, RowOrder::new(keys, columns))
    }

    #[test]
    fn merges_sorted_inputs_holding_one_row_per_input() {
        let input = || {
            shards(vec![
                vec![vec![int(1)], vec![int(4)], vec![int(7)]],
                vec![vec![int(2)], vec![int(5)], vec![int(8)]],
                vec![],
                vec![vec![int(3)], vec![int(6)], vec![int(9)]],
            ])
        };
        let columns = [ColumnInfo::default()];
        let out = run(&mut merge(&[asc(0)], &columns, 4), input());
        let expected: Vec<_> = (1..=9).map(|v| vec![int(v)]).collect();
        assert_eq!(out.values(), expected);
        assert_eq!(out.reads, vec![3, 3, 0, 3]);
        assert!(out.max_unreturned <= 4, "held {}", out.max_unreturned);
        let prefilled = run_prefilled(&mut merge(&[asc(0)], &columns, 4), input());
        assert_eq!(prefilled, out.rows);
    }

    #[test]
    fn equal_keys_keep_input_order() {
        let input = shards(vec![
            vec![
                vec![int(1), text("a0")],
                vec![int(1), text("a1")],
                vec![int(2), text("a2")],
            ],
            vec![vec![int(1), text("b0")], vec![int(2), text("b1")]],
        ]);
        let columns = [ColumnInfo::default(); 2];
        let out = run(&mut merge(&[asc(0)], &columns, 2), input);
        let tags: Vec<_> = out.rows.iter().map(|r| r.values[1].clone()).collect();
        assert_eq!(tags, ["a0", "a1", "b0", "a2", "b1"].map(text).to_vec());
    }

    #[test]
    fn descending_keys_place_nulls_where_the_key_says() {
        // PostgreSQL's DESC default: NULLs first.
        let key = SortKey {
            column: 0,
            descending: true,
            nulls: NullOrder::First,
        };
        let input = shards(vec![
            vec![vec![Value::Null], vec![int(5)], vec![int(1)]],
            vec![vec![int(9)], vec![int(2)]],
        ]);
        let out = run(&mut merge(&[key], &[ColumnInfo::default()], 2), input);
        let expected = [Value::Null, int(9), int(5), int(2), int(1)];
        assert_eq!(out.values(), expected.map(|v| vec![v]).to_vec());
    }

    #[test]
    fn several_keys_and_case_insensitive_text() {
        let ci = ColumnInfo {
            collation: Collation::CaseInsensitive,
            ..ColumnInfo::default()
        };
        let columns = [ci, ColumnInfo::default()];
        // ORDER BY name ASC, id DESC under utf8mb4_general_ci: 'a' = 'A'.
        let input = shards(vec![
            vec![vec![text("a"), int(3)], vec![text("B"), int(1)]],
            vec![vec![text("A"), int(7)], vec![text("b"), int(2)]],
        ]);
        let out = run(&mut merge(&[asc(0), desc(1)], &columns, 2), input);
        let ids: Vec<_> = out.rows.iter().map(|r| r.values[1].clone()).collect();
        assert_eq!(ids, vec![int(7), int(3), int(2), int(1)]);
    }
}
