//! Driving operator trees over in-memory shards the way the executor does: every
//! [`Pull::NeedInput`]`(i)` moves one row of shard `i` into [`Inputs`] (or ends the input
//! when the shard has no more), and the run records how many rows each shard gave, so a
//! test can prove that LIMIT stopped reading early and that ORDER BY held no more than
//! one row per input.

use std::collections::VecDeque;
use std::str::FromStr;

use bigdecimal::BigDecimal;

use super::{Available, Inputs, MergeError, NullOrder, Operator, Pull, Row, SortKey, Value};

/// What a run of an operator tree produced.
#[derive(Debug)]
pub struct Run {
    /// The output rows.
    pub rows: Vec<Row>,
    /// Rows read from each shard.
    pub reads: Vec<usize>,
    /// The most rows that were read from shards and not yet returned by the tree, at any
    /// time: for a k-way merge at most one per input.
    pub max_unreturned: usize,
}

impl Run {
    /// The output's decoded values.
    pub fn values(&self) -> Vec<Vec<Value>> {
        self.rows.iter().map(|r| r.values.clone()).collect()
    }
}

/// Runs `operator` over `shards` until it ends; panics on a merge error.
pub fn run(operator: &mut dyn Operator, shards: Vec<Vec<Row>>) -> Run {
    try_run(operator, shards).expect("merge failed")
}

/// Runs `operator` over `shards` until it ends or fails.
pub fn try_run(operator: &mut dyn Operator, shards: Vec<Vec<Row>>) -> Result<Run, MergeError> {
    drive(operator, shards, usize::MAX)
}

/// Runs `operator` until it returned `rows` rows (or ended), as a client that stops
/// reading would: what was read by then shows how early rows go out.
pub fn run_first(operator: &mut dyn Operator, shards: Vec<Vec<Row>>, rows: usize) -> Run {
    drive(operator, shards, rows).expect("merge failed")
}

fn drive(
    operator: &mut dyn Operator,
    shards: Vec<Vec<Row>>,
    max_rows: usize,
) -> Result<Run, MergeError> {
    let mut shards: Vec<VecDeque<Row>> = shards.into_iter().map(VecDeque::from).collect();
    let mut inputs = Inputs::new(shards.len());
    let mut out = Run {
        rows: Vec::new(),
        reads: vec![0; shards.len()],
        max_unreturned: 0,
    };
    for _ in 0..1_000_000 {
        if out.rows.len() >= max_rows {
            return Ok(out);
        }
        match operator.pull(&mut inputs)? {
            Pull::Row(row) => out.rows.push(row),
            Pull::End => return Ok(out),
            Pull::NeedInput(i) => {
                assert_eq!(
                    inputs.peek(i),
                    Available::Unknown,
                    "asked for input {i}, which already has a row or has ended"
                );
                match shards[i].pop_front() {
                    Some(row) => {
                        inputs.push(i, row);
                        out.reads[i] += 1;
                    }
                    None => inputs.end(i),
                }
                let read: usize = out.reads.iter().sum();
                out.max_unreturned = out.max_unreturned.max(read - out.rows.len());
            }
        }
    }
    panic!("the operator never ended");
}

/// Runs `operator` with every shard's rows and end already in [`Inputs`] (an executor
/// that read ahead): the output must be the same as [`run`]'s.
pub fn run_prefilled(operator: &mut dyn Operator, shards: Vec<Vec<Row>>) -> Vec<Row> {
    let mut inputs = Inputs::new(shards.len());
    for (i, rows) in shards.into_iter().enumerate() {
        rows.into_iter().for_each(|row| inputs.push(i, row));
        inputs.end(i);
    }
    let mut rows = Vec::new();
    loop {
        match operator.pull(&mut inputs).expect("merge failed") {
            Pull::Row(row) => rows.push(row),
            Pull::End => return rows,
            Pull::NeedInput(i) => panic!("asked for input {i}, which has ended"),
        }
    }
}

/// A shard row with every column decoded and its raw bytes the values' text form (what
/// the MySQL text protocol would carry).
pub fn row(values: Vec<Value>) -> Row {
    Row {
        raw: values.iter().map(text_bytes).collect(),
        values,
    }
}

/// Shards from plain values: `rows[i][r]` is row `r` of shard `i`.
pub fn shards(rows: Vec<Vec<Vec<Value>>>) -> Vec<Vec<Row>> {
    rows.into_iter()
        .map(|shard| shard.into_iter().map(row).collect())
        .collect()
}

fn text_bytes(value: &Value) -> Option<bytes::Bytes> {
    let text = match value {
        Value::Null => return None,
        Value::Int(v) => v.to_string(),
        Value::UInt(v) => v.to_string(),
        Value::Decimal(v) => v.to_string(),
        Value::Float(v) => v.to_string(),
        Value::Text(v) => v.clone(),
        other => format!("{other:?}"),
    };
    Some(text.into())
}

pub fn int(v: i64) -> Value {
    Value::Int(v)
}

pub fn text(v: &str) -> Value {
    Value::Text(v.to_string())
}

pub fn dec(v: &str) -> Value {
    Value::Decimal(BigDecimal::from_str(v).expect("a decimal"))
}

/// An ascending key with NULLs first (MySQL's default).
pub fn asc(column: usize) -> SortKey {
    SortKey {
        column,
        descending: false,
        nulls: NullOrder::First,
    }
}

/// A descending key with NULLs last (MySQL's default).
pub fn desc(column: usize) -> SortKey {
    SortKey {
        column,
        descending: true,
        nulls: NullOrder::Last,
    }
}
