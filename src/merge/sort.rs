//! A sort that holds its input: for an ORDER BY the shards could not give in order — after
//! a hash GROUP BY, or when the ORDER BY is not the group keys (`GROUP BY g ORDER BY
//! count(*) DESC`). Its input is merged groups, so it holds as many rows as there are
//! groups (after HAVING and DISTINCT); with a LIMIT, at most twice `offset + limit` rows
//! (a top-N: it sorts and cuts whenever that many have gathered).
//!
//! The sort is stable: rows with equal keys keep the order they came in.

use super::order_by::RowOrder;
use super::{Inputs, MergeError, Operator, Pull, Row};

/// Sorts every row of its input, then returns them.
#[derive(Debug)]
pub struct Sort {
    input: Box<dyn Operator>,
    order: RowOrder,
    /// How many of the first rows are wanted (`offset + limit`), when there is a LIMIT.
    keep: Option<usize>,
    rows: Vec<Row>,
    output: Option<std::vec::IntoIter<Row>>,
}

impl Sort {
    /// Sorts `input` by `order`; only the first `keep` rows are returned, when given.
    pub fn new(input: Box<dyn Operator>, order: RowOrder, keep: Option<usize>) -> Sort {
        Sort {
            input,
            order,
            keep,
            rows: Vec::new(),
            output: None,
        }
    }

    fn sort_and_cut(&mut self) {
        let order = &self.order;
        self.rows.sort_by(|a, b| order.compare(a, b));
        if let Some(keep) = self.keep {
            self.rows.truncate(keep);
        }
    }
}

impl Operator for Sort {
    fn pull(&mut self, inputs: &mut Inputs) -> Result<Pull, MergeError> {
        loop {
            if let Some(output) = &mut self.output {
                return Ok(output.next().map_or(Pull::End, Pull::Row));
            }
            match self.input.pull(inputs)? {
                Pull::NeedInput(i) => return Ok(Pull::NeedInput(i)),
                Pull::Row(row) => {
                    self.rows.push(row);
                    if let Some(keep) = self.keep {
                        if self.rows.len() >= keep.saturating_mul(2).max(1) {
                            self.sort_and_cut();
                        }
                    }
                }
                Pull::End => {
                    self.sort_and_cut();
                    self.output = Some(std::mem::take(&mut self.rows).into_iter());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merge::iterator::Concat;
    use crate::merge::test_support::{desc, int, run, shards, text};
    use crate::merge::ColumnInfo;

    fn sort(keep: Option<usize>) -> Sort {
        let order = RowOrder::new(&[desc(0)], &[ColumnInfo::default(); 2]);
        Sort::new(Box::new(Concat::new(2)), order, keep)
    }

    fn input() -> Vec<Vec<crate::merge::Row>> {
        shards(vec![
            vec![
                vec![int(1), text("a")],
                vec![int(3), text("b")],
                vec![int(2), text("c")],
            ],
            vec![
                vec![int(3), text("d")],
                vec![int(5), text("e")],
                vec![int(1), text("f")],
            ],
        ])
    }

    fn tags(rows: &[crate::merge::Row]) -> Vec<crate::merge::Value> {
        rows.iter().map(|r| r.values[1].clone()).collect()
    }

    #[test]
    fn sorts_everything_stably() {
        let out = run(&mut sort(None), input());
        assert_eq!(tags(&out.rows), ["e", "b", "d", "c", "a", "f"].map(text));
    }

    #[test]
    fn with_a_limit_keeps_only_the_first_rows_in_the_same_order() {
        let out = run(&mut sort(Some(3)), input());
        assert_eq!(tags(&out.rows), ["e", "b", "d"].map(text));
        assert!(run(&mut sort(Some(0)), input()).rows.is_empty());
    }
}
