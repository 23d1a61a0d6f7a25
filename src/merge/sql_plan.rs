//! From a SELECT that runs on several shards to its [`MergePlan`] and the statement each
//! shard runs instead of the client's, both read from and built on sqlparser's AST.
//!
//! [`plan_select`] is the entry point. It is pure: no rules, no I/O. It answers `None`
//! when concatenating the shards' rows is already the answer (no ORDER BY, GROUP BY,
//! aggregate, DISTINCT, LIMIT/OFFSET or UNION), and an error naming the construct when no
//! merge gives the single database's answer ([`Error::MergeUnsupported`]: MySQL 1235 /
//! SQLSTATE `0A000`, PostgreSQL `0A000`).
//!
//! # What the shard statement changes
//!
//! - **Derived columns** are appended to the select list, after the client's items, as
//!   `expr AS dbmesh_<purpose>_<n>`: ORDER BY / GROUP BY / HAVING expressions that are not
//!   selected (`SELECT *` counts as selecting nothing by name, since where a column lands
//!   in `*` is known only after execution), and the COUNT half of an AVG. The client sees
//!   the first `plan.visible_columns` columns.
//! - **Aggregates** (see `aggregates.rs`): AVG(x) becomes SUM(x) in place, with COUNT(x)
//!   derived; COUNT(DISTINCT x) / SUM(DISTINCT x) become `x` in place and x joins the
//!   GROUP BY, so the shards return each group's distinct values of x (NULL among them,
//!   which the merge skips as COUNT and SUM do). A rewritten item keeps the column name
//!   the client would see: its alias, else the expression's text on MySQL and the
//!   function's name on PostgreSQL.
//! - **GROUP BY** gets an ORDER BY so that groups merge as streams
//!   (`plan.group_by_streamed`, always true): the client's ORDER BY when it is made of the
//!   group keys (completed with the remaining group keys), otherwise the group keys
//!   ascending. HAVING is removed (it is evaluated on the merged groups, `having.rs`).
//! - **LIMIT n OFFSET m** becomes `LIMIT n+m` (see `limit.rs`) where the shards' first rows
//!   are sure to hold the answer: always without grouping; with grouping only when the
//!   groups come out in the client's order and no HAVING, DISTINCT or DISTINCT aggregate
//!   can drop or split them. Otherwise the shards get no LIMIT.
//! - DISTINCT stays on the shards; a UNION stays as it is.
//!
//! # The merge the plan asks for
//!
//! An operator tree built from the plan merges in this order: shards' rows → (grouping)
//! → HAVING → DISTINCT → (sort) → OFFSET/LIMIT → drop derived columns. Invariants the
//! builder can rely on:
//!
//! - *No grouping* (`group_by` and `aggregates` empty): each shard returns its rows sorted
//!   by `order_by` (the shard keeps the client's ORDER BY), so a k-way merge on it gives
//!   the final order; no sort after.
//! - *Grouping with keys*: each shard returns its rows sorted by `group_by_order`, whose
//!   columns are `group_by`, in that order. When `order_by` starts with `group_by_order`,
//!   the groups come out in the final order; otherwise (the client orders by an aggregate
//!   or another expression) the merged groups are sorted by `order_by` after HAVING.
//! - *Aggregates without GROUP BY*: one group over every row, `group_by` empty, no
//!   `order_by` (one row out).
//!
//! # Known limits
//!
//! - Names in GROUP BY and HAVING resolve to a select item with the same expression first,
//!   then to an alias; a backend prefers a table column over an alias of the same name
//!   there, so `SELECT x AS user_id ... GROUP BY user_id` merges by the wrong column when
//!   `user_id` is also a column of the table.
//! - An expression in ORDER BY that uses an alias inside it (`ORDER BY c + 1`, MySQL) is
//!   derived as written and fails on the shards.
//! - Aggregates are recognised by name; a user-defined aggregate is taken for a scalar
//!   function and its per-shard results are returned unmerged.
//! - LIMIT, OFFSET and HAVING values must be literals: plan the statement after the
//!   parameters are bound into it.
//! - A derived table is refused only when the outer query groups or aggregates over it;
//!   whether a subquery may run per shard at all is the router's decision.

mod aggregates;
mod having;
mod limit;
mod select;
mod select_list;
mod subqueries;
mod union;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_group;
#[cfg(test)]
mod tests_merge;

use sqlparser::ast::{Query, SetExpr, Statement};

use super::{Having, MergePlan};
use crate::error::Error;
use crate::sql::analyze::Dialect;

/// How a multi-shard SELECT is merged, and what each shard runs for it.
#[derive(Debug, Clone, PartialEq)]
pub struct SelectMerge {
    /// The merge. With a wildcard in the select list its column indexes count the wildcard
    /// as no column: use [`SelectMerge::resolve`] once the shards' column count is known.
    pub plan: MergePlan,
    /// The statement to rewrite per target instead of the client's.
    pub shard_statement: Statement,
    /// How many columns the shard statement selects, wildcards counted as none.
    pub columns: usize,
    /// Column index (wildcards counted as none) of the first wildcard in the select list.
    pub wildcard_at: Option<usize>,
}

impl SelectMerge {
    /// The plan for shard results of `shard_columns` columns: the indexes at and after the
    /// first wildcard move by the wildcards' width. Indexes are final when there is no
    /// wildcard (every index the plan uses is before the first wildcard, after the last,
    /// or a derived column).
    pub fn resolve(&self, shard_columns: usize) -> MergePlan {
        let mut plan = self.plan.clone();
        let Some(at) = self.wildcard_at else {
            return plan;
        };
        let width = shard_columns.saturating_sub(self.columns);
        let shift = |c: &mut usize| {
            if *c >= at {
                *c += width;
            }
        };
        shift(&mut plan.visible_columns);
        plan.group_by.iter_mut().for_each(shift);
        plan.group_by_order
            .iter_mut()
            .for_each(|k| shift(&mut k.column));
        plan.order_by.iter_mut().for_each(|k| shift(&mut k.column));
        for aggregate in &mut plan.aggregates {
            shift(&mut aggregate.column);
            if let super::AggregateFunction::Avg { count_column } = &mut aggregate.function {
                shift(count_column);
            }
        }
        if let Some(having) = &mut plan.having {
            shift_having(having, &shift);
        }
        plan
    }
}

fn shift_having(having: &mut Having, shift: &dyn Fn(&mut usize)) {
    match having {
        Having::Compare { column, .. } => shift(column),
        Having::And(a, b) | Having::Or(a, b) => {
            shift_having(a, shift);
            shift_having(b, shift);
        }
        Having::Not(a) => shift_having(a, shift),
    }
}

/// The merge of `statement` over several shards, in `dialect`; `None` when the shards'
/// rows concatenated are the answer (and for statements that are not queries).
///
/// Errors ([`Error::MergeUnsupported`]) name what cannot be merged: window functions,
/// aggregates inside expressions or other than COUNT/SUM/MIN/MAX/AVG, HAVING beyond
/// comparisons with literals, parameters in LIMIT/OFFSET/HAVING, EXCEPT/INTERSECT,
/// DISTINCT ON, ROLLUP, and grouped queries over subqueries that group per shard.
pub fn plan_select(statement: &Statement, dialect: Dialect) -> Result<Option<SelectMerge>, Error> {
    match statement {
        Statement::Query(query) => {
            subqueries::check(query)?;
            plan_query(query, dialect)
        }
        _ => Ok(None),
    }
}

fn plan_query(query: &Query, dialect: Dialect) -> Result<Option<SelectMerge>, Error> {
    match query.body.as_ref() {
        SetExpr::Select(select) => select::plan(query, select, dialect),
        SetExpr::SetOperation { .. } => union::plan(query, dialect),
        // `(SELECT ...)` with nothing outside the parentheses is that SELECT.
        SetExpr::Query(inner)
            if query.with.is_none()
                && query.order_by.is_none()
                && query.limit_clause.is_none()
                && query.fetch.is_none() =>
        {
            plan_query(inner, dialect)
        }
        SetExpr::Query(inner) => Err(unsupported(format!(
            "ORDER BY or LIMIT around the parenthesised query `({inner})`"
        ))),
        // VALUES, TABLE t: rows as they come.
        _ => Ok(None),
    }
}

/// `what` cannot be merged across shards.
fn unsupported(what: String) -> Error {
    Error::MergeUnsupported(format!("{what} is not supported across shards"))
}

/// `what` cannot be merged across shards, and why or what to do instead.
fn unsupported_because(what: String, why: &str) -> Error {
    Error::MergeUnsupported(format!("{what} is not supported across shards: {why}"))
}

/// # Wiring
///
/// Wired for MySQL (`crate::wire::mysql::merged`, `MERGES_RESULTS`); a wire layer that
/// only concatenates keeps `ShardRouter::with_merge(false)`, since changing the shards'
/// SQL under it would change its answers. The wiring:
///
/// 1. `route::shard::ShardRouter::plan` calls [`plan_select`] for a `SqlKind::Select`
///    statement routed to more than one unit (a single unit never merges: its SQL stays
///    the client's), on the *bound* statement (`bound_statement`: parameters written in as
///    literals), and runs the units in `ParamMode::Inline`. Keeping placeholders is not
///    possible in general: LIMIT/OFFSET/HAVING values must be known to plan, and a
///    derived column copies its expression, so a MySQL `?` in it would be counted twice.
///    A statement without parameters can be planned once, at prepare time, and cached in
///    `PreparedRoute`.
/// 2. `Plan` gains `merge: Option<SelectMerge>` without its statement, that is the
///    [`MergePlan`] plus `columns` and `wildcard_at` (a plan over `SELECT *` is final only
///    once the shards' column count is known); `None` when `plan_select` answers `None`.
/// 3. Each unit's SQL is `rewrite::rewrite` of `shard_statement` instead of the
///    original statement: table renames and IN pruning apply to it unchanged, since the
///    derived columns and clauses name logical tables as the client's SQL does; then
///    `with_lock_clause` as today. `PREVIEW` shows that SQL.
/// 4. The wire layer's fan-out, seeing `merge: Some(..)`, reads the first shard's column
///    metadata, calls [`SelectMerge::resolve`] with its column count, builds the operator
///    tree with `MergePlan::build` from the resolved plan and the columns' collations,
///    sends the client only the first `visible_columns` column definitions, and streams
///    the merged rows. A refusal from `plan_select` goes to the client as it is
///    ([`Error::MergeUnsupported`]).
pub mod wiring {}
