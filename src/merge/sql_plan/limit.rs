//! LIMIT / OFFSET across shards: the merge skips `offset` rows and returns `limit`, so each
//! shard returns its first `offset + limit` rows and no OFFSET of its own (any row of the
//! answer is among the first `offset + limit` of the shard holding it, in the shards' common
//! order).
//!
//! Accepted forms: `LIMIT n`, `LIMIT n OFFSET m`, `OFFSET m` alone, PostgreSQL `LIMIT ALL`,
//! `OFFSET m ROWS FETCH FIRST n ROWS ONLY`, and MySQL `LIMIT m, n`. The counts must be
//! integer literals: a parameter (`LIMIT ?`, `LIMIT $1`) must be bound into the statement
//! before planning (the plan depends on its value). `FETCH ... WITH TIES` and `PERCENT`
//! are refused.

use sqlparser::ast::{Expr, LimitClause, Query, Value as SqlValue};

use super::{unsupported, unsupported_because};
use crate::error::Error;

/// The client's OFFSET and LIMIT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) struct Limits {
    pub offset: u64,
    pub limit: Option<u64>,
}

impl Limits {
    /// Whether the statement has no LIMIT, OFFSET or FETCH at all (or only `OFFSET 0`).
    pub fn is_none(&self) -> bool {
        self.offset == 0 && self.limit.is_none()
    }
}

/// The limits of `query`.
pub(super) fn read(query: &Query) -> Result<Limits, Error> {
    let mut limits = Limits::default();
    match &query.limit_clause {
        None => {}
        Some(LimitClause::LimitOffset {
            limit,
            offset,
            limit_by,
        }) => {
            if !limit_by.is_empty() {
                return Err(unsupported("LIMIT ... BY".to_string()));
            }
            if let Some(limit) = limit {
                limits.limit = count("LIMIT", limit)?;
            }
            if let Some(offset) = offset {
                limits.offset = count("OFFSET", &offset.value)?.unwrap_or(0);
            }
        }
        Some(LimitClause::OffsetCommaLimit { offset, limit }) => {
            limits.offset = count("LIMIT", offset)?.unwrap_or(0);
            limits.limit = count("LIMIT", limit)?;
        }
    }
    if let Some(fetch) = &query.fetch {
        if fetch.with_ties || fetch.percent {
            return Err(unsupported(format!("`{fetch}`")));
        }
        let n = match &fetch.quantity {
            Some(quantity) => count("FETCH", quantity)?,
            None => Some(1),
        };
        limits.limit = match (limits.limit, n) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
    Ok(limits)
}

/// A row count: an integer literal, or NULL (no limit, as PostgreSQL reads `LIMIT NULL`).
fn count(clause: &str, expr: &Expr) -> Result<Option<u64>, Error> {
    let not_integer = || {
        unsupported_because(
            format!("{clause} `{expr}`"),
            "only an integer literal is merged",
        )
    };
    let Expr::Value(value) = expr else {
        return Err(not_integer());
    };
    match &value.value {
        SqlValue::Number(text, _) => text.parse::<u64>().map(Some).map_err(|_| not_integer()),
        SqlValue::Null => Ok(None),
        SqlValue::Placeholder(p) => Err(unsupported_because(
            format!("a parameter in {clause} (`{p}`)"),
            "the merge needs the number when the statement is planned; write a literal",
        )),
        _ => Err(not_integer()),
    }
}

/// Sets the shard statement's limit: `LIMIT offset + limit` without OFFSET when `push` and
/// the client has a LIMIT, and nothing otherwise.
pub(super) fn apply(query: &mut Query, limits: Limits, push: bool) {
    query.fetch = None;
    query.limit_clause = match limits.limit {
        Some(limit) if push => Some(LimitClause::LimitOffset {
            limit: Some(Expr::value(SqlValue::Number(
                limits.offset.saturating_add(limit).to_string(),
                false,
            ))),
            offset: None,
            limit_by: Vec::new(),
        }),
        _ => None,
    };
}
