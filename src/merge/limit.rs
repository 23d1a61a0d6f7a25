//! LIMIT / OFFSET across shards: each shard ran `LIMIT offset + count` without OFFSET (a
//! row among the first `offset` of the merged result may come from any shard), and the
//! merge skips `offset` rows and returns `count`.
//!
//! After the last wanted row it ends *without pulling its input again*: no shard is read
//! further, and the executor cancels the shard queries still running.

use super::{Inputs, MergeError, Operator, Pull};

/// Skips `offset` rows, then returns at most `limit`.
#[derive(Debug)]
pub struct Limit {
    input: Box<dyn Operator>,
    offset: u64,
    limit: Option<u64>,
    skipped: u64,
    returned: u64,
}

impl Limit {
    /// `LIMIT limit OFFSET offset` (no LIMIT: every row after the offset).
    pub fn new(input: Box<dyn Operator>, offset: u64, limit: Option<u64>) -> Limit {
        Limit {
            input,
            offset,
            limit,
            skipped: 0,
            returned: 0,
        }
    }
}

impl Operator for Limit {
    fn pull(&mut self, inputs: &mut Inputs) -> Result<Pull, MergeError> {
        loop {
            if self.limit.is_some_and(|limit| self.returned >= limit) {
                return Ok(Pull::End);
            }
            match self.input.pull(inputs)? {
                Pull::Row(_) if self.skipped < self.offset => self.skipped += 1,
                Pull::Row(row) => {
                    self.returned += 1;
                    return Ok(Pull::Row(row));
                }
                other => return Ok(other),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merge::order_by::{OrderByMerge, RowOrder};
    use crate::merge::test_support::{asc, int, run, shards};
    use crate::merge::ColumnInfo;

    /// `ORDER BY x LIMIT limit OFFSET offset` over two shards of 100 rows each.
    fn run_limit(offset: u64, limit: Option<u64>) -> crate::merge::test_support::Run {
        let order = RowOrder::new(&[asc(0)], &[ColumnInfo::default()]);
        let mut op = Limit::new(Box::new(OrderByMerge::new(2, order)), offset, limit);
        let even = (0..100).map(|v| vec![int(2 * v)]).collect();
        let odd = (0..100).map(|v| vec![int(2 * v + 1)]).collect();
        run(&mut op, shards(vec![even, odd]))
    }

    #[test]
    fn stops_reading_shards_once_the_limit_is_reached() {
        let out = run_limit(3, Some(4));
        assert_eq!(
            out.values(),
            (3..7).map(|v| vec![int(v)]).collect::<Vec<_>>()
        );
        // Rows 0..=6, and 7: the other shard's head had to be known before 6 went out.
        assert_eq!(out.reads, vec![4, 4]);
    }

    #[test]
    fn limit_zero_reads_nothing_and_offsets_past_the_end_return_nothing() {
        let zero = run_limit(0, Some(0));
        assert!(zero.rows.is_empty());
        assert_eq!(zero.reads, vec![0, 0]);
        let past = run_limit(500, Some(10));
        assert!(past.rows.is_empty());
        assert_eq!(past.reads, vec![100, 100]);
        let no_limit = run_limit(195, None);
        assert_eq!(no_limit.rows.len(), 5);
    }
}
