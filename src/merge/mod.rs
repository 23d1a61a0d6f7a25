//! Merging the results of a statement that ran on several shards into the one result a
//! single database holding all the rows would have returned, as a stream.
//!
//! The wire layer decodes each shard's rows into [`Row`]s (only on this path: single-route
//! results are relayed untouched), feeds them into a [`MergePlan`]'s operator tree and
//! encodes what comes out in the format the client asked for. Operators are one per file
//! (Vitess's `vtgate/engine` is the model) and *sans-IO*: an operator never awaits; when it
//! needs the next row of shard `i` it answers [`Pull::NeedInput`]`(i)`, and the executor
//! reads one row from that shard into [`Inputs`] and asks again. So the operators are plain
//! synchronous code, unit-tested without servers, and memory is bounded by what the
//! operators hold (one row per input for ORDER BY, one group for a stream GROUP BY; a hash
//! GROUP BY or DISTINCT holds its groups).
//!
//! ## Operators
//!
//! | file | operator | holds |
//! |---|---|---|
//! | `iterator.rs` | [`iterator::Concat`]: input 0's rows, then input 1's, ... | nothing |
//! | `order_by.rs` | [`order_by::OrderByMerge`]: k-way merge of sorted inputs (a heap of heads) | one row per input |
//! | `group_by_stream.rs` | [`group_by_stream::StreamGroupBy`]: merges consecutive rows of a group | one group |
//! | `group_by_hash.rs` | [`group_by_hash::HashGroupBy`]: groups in any order | every group |
//! | `aggregate.rs` | [`aggregate::Accumulator`]: COUNT, SUM, MIN, MAX, AVG, COUNT/SUM(DISTINCT) of a group | a group's distinct values |
//! | `having.rs` | [`having::HavingFilter`]: HAVING on merged groups, three-valued | nothing |
//! | `distinct.rs` | [`distinct::Distinct`]: DISTINCT over the visible columns | the previous key, or every key |
//! | `sort.rs` | [`sort::Sort`]: an ORDER BY the shards could not give (after hash grouping) | every group, or 2 × (offset + limit) |
//! | `limit.rs` | [`limit::Limit`]: OFFSET / LIMIT, ending without reading further | nothing |
//! | `project.rs` | [`project::Project`]: drops derived columns | nothing |
//! | `union.rs` | [`union::union`]: UNION ALL (iterator), UNION (distinct over it) | as distinct |
//!
//! [`MergePlan::build`] (`build.rs`) composes them; `key.rs` normalises values into
//! hashable group keys (collation-aware), `numeric.rs` holds the exact SUM and AVG rules.
//! `spill.rs` keeps raw packets the executor must read ahead of the merge in bounded
//! memory and a temporary file. `test_support.rs` drives a tree the way the executor does
//! and counts the rows read from each input.

pub mod aggregate;
pub mod build;
pub mod distinct;
pub mod group_by_hash;
pub mod group_by_stream;
pub mod having;
pub mod iterator;
pub mod key;
pub mod limit;
pub mod numeric;
pub mod order_by;
pub mod plan;
pub mod project;
pub mod sort;
pub mod spill;
pub mod sql_plan;
#[cfg(test)]
mod test_support;
pub mod union;
pub mod value;

use std::collections::VecDeque;

pub use numeric::AvgScale;
pub use plan::{Aggregate, AggregateFunction, ColumnInfo, CompareOp, Having, MergePlan, SortKey};
pub use value::{Collation, NullOrder, Value};

/// One row of a shard's result, in the shard query's column order (which may include
/// derived columns the client does not see).
///
/// `raw` keeps every column exactly as the backend encoded it, in the format the client
/// asked for (MySQL text or binary protocol, PostgreSQL text or binary format): a column
/// the merge only moves is sent on as those bytes, never re-encoded. `values` holds the
/// decoded value of the columns the plan compares or aggregates ([`Value::Null`] for the
/// others, which are not decoded). Aggregate operators replace both for the columns they
/// compute (`raw` becomes `None` there and the wire layer encodes `values`).
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub raw: Vec<Option<bytes::Bytes>>,
    pub values: Vec<Value>,
}

/// What an operator answers when asked for its next row.
#[derive(Debug, Clone, PartialEq)]
pub enum Pull {
    /// The next output row.
    Row(Row),
    /// Read one more row (or the end) of input `i` into [`Inputs`], then ask again.
    NeedInput(usize),
    /// No more rows.
    End,
}

/// Why merging failed (a value the operator cannot compare or add, ...). The wire layer
/// reports it as an error naming the column.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct MergeError(pub String);

/// The shards' rows as read so far: a queue per input and whether it has ended.
#[derive(Debug, Default)]
pub struct Inputs {
    queues: Vec<VecDeque<Row>>,
    ended: Vec<bool>,
}

/// What an input has to offer right now.
#[derive(Debug, PartialEq)]
pub enum Available<'a> {
    /// Its next row (not yet taken).
    Row(&'a Row),
    /// Nothing read yet: the operator must answer [`Pull::NeedInput`].
    Unknown,
    /// It has ended.
    Ended,
}

impl Inputs {
    /// `count` empty inputs.
    pub fn new(count: usize) -> Inputs {
        Inputs {
            queues: (0..count).map(|_| VecDeque::new()).collect(),
            ended: vec![false; count],
        }
    }

    /// How many inputs there are.
    pub fn len(&self) -> usize {
        self.queues.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.queues.is_empty()
    }

    /// The executor read `row` from input `i`.
    pub fn push(&mut self, i: usize, row: Row) {
        self.queues[i].push_back(row);
    }

    /// The executor found the end of input `i`.
    pub fn end(&mut self, i: usize) {
        self.ended[i] = true;
    }

    /// Whether input `i` has ended and every row of it was taken.
    pub fn is_drained(&self, i: usize) -> bool {
        self.ended[i] && self.queues[i].is_empty()
    }

    /// The next row of input `i`, without taking it.
    pub fn peek(&self, i: usize) -> Available<'_> {
        match self.queues[i].front() {
            Some(row) => Available::Row(row),
            None if self.ended[i] => Available::Ended,
            None => Available::Unknown,
        }
    }

    /// Takes the next row of input `i`, if one was read.
    pub fn take(&mut self, i: usize) -> Option<Row> {
        self.queues[i].pop_front()
    }
}

/// A merge operator: a node of a merge plan's tree.
pub trait Operator: Send + std::fmt::Debug {
    /// The next row, or what to read first. Called again after the executor did what a
    /// [`Pull::NeedInput`] asked; never called again after [`Pull::End`].
    fn pull(&mut self, inputs: &mut Inputs) -> Result<Pull, MergeError>;
}
