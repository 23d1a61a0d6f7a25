//! Subqueries of a SELECT that runs on several shards. Every shard runs the whole
//! statement over its own rows, subqueries included, so a subquery gives each shard its
//! share of the subquery's answer only when it just filters and projects rows. One that
//! groups, aggregates, de-duplicates, limits or combines (UNION) rows computes a per-shard
//! answer instead: `(SELECT AVG(amount) FROM t_order)` is each shard's average, a derived
//! `(SELECT ... LIMIT 5)` gives five rows per shard. No merge of the outer result repairs
//! that, so such subqueries are refused:
//!
//! - in FROM (derived tables, at any depth) and in WITH, always;
//! - in expressions (scalar, IN, EXISTS subqueries in the select list, WHERE, ON, HAVING,
//!   ORDER BY) unless correlated with the outer query (a qualified reference to an outer
//!   table, `WHERE i.order_id = o.order_id`): a correlated subquery is evaluated per outer
//!   row and sees the rows of the outer row's shard, which for binding tables correlated
//!   on their sharding key are all its rows.
//!
//! The planner knows no rules, so a subquery over a broadcast table is refused too,
//! although every shard would answer it alike.

use std::ops::ControlFlow;

use sqlparser::ast::{
    Distinct, Expr, GroupByExpr, InTarget, JoinConstraint, JoinOperator, ObjectNamePart, Query,
    Select, SelectItem, SetExpr, TableFactor, TableWithJoins, Visit, Visitor,
};

use super::aggregates;
use super::unsupported_because;
use crate::error::Error;

/// Refuses the subqueries of `query` whose per-shard answer is not their share of the
/// whole answer (see the module docs).
pub(super) fn check(query: &Query) -> Result<(), Error> {
    for cte in query.with.iter().flat_map(|w| &w.cte_tables) {
        if merges_rows(&cte.query) {
            return Err(spans(&cte.query, "a WITH query"));
        }
        check(&cte.query)?;
    }
    check_body(&query.body)?;
    let outer = outer_names(&query.body);
    if let Some(order_by) = &query.order_by {
        if let sqlparser::ast::OrderByKind::Expressions(exprs) = &order_by.kind {
            for o in exprs {
                check_expr(&o.expr, &outer)?;
            }
        }
    }
    Ok(())
}

fn check_body(body: &SetExpr) -> Result<(), Error> {
    match body {
        SetExpr::Select(select) => check_select(select),
        SetExpr::SetOperation { left, right, .. } => {
            check_body(left)?;
            check_body(right)
        }
        SetExpr::Query(inner) => check(inner),
        _ => Ok(()),
    }
}

fn check_select(select: &Select) -> Result<(), Error> {
    let outer = names_of(&select.from);
    let mut factors: Vec<&TableFactor> = Vec::new();
    for from in &select.from {
        factors.push(&from.relation);
        for join in &from.joins {
            factors.push(&join.relation);
            if let Some(JoinConstraint::On(on)) = join_constraint(&join.join_operator) {
                check_expr(on, &outer)?;
            }
        }
    }
    while let Some(factor) = factors.pop() {
        match factor {
            TableFactor::Derived { subquery, .. } => {
                if merges_rows(subquery) {
                    return Err(spans(subquery, "a derived table"));
                }
                check(subquery)?;
            }
            TableFactor::NestedJoin {
                table_with_joins, ..
            } => {
                factors.push(&table_with_joins.relation);
                for join in &table_with_joins.joins {
                    factors.push(&join.relation);
                    if let Some(JoinConstraint::On(on)) = join_constraint(&join.join_operator) {
                        check_expr(on, &outer)?;
                    }
                }
            }
            _ => {}
        }
    }
    for item in &select.projection {
        if let SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } = item {
            check_expr(e, &outer)?;
        }
    }
    for e in select.selection.iter().chain(&select.having) {
        check_expr(e, &outer)?;
    }
    if let GroupByExpr::Expressions(exprs, _) = &select.group_by {
        for e in exprs {
            check_expr(e, &outer)?;
        }
    }
    Ok(())
}

fn join_constraint(op: &JoinOperator) -> Option<&JoinConstraint> {
    match op {
        JoinOperator::Join(c)
        | JoinOperator::Inner(c)
        | JoinOperator::Left(c)
        | JoinOperator::LeftOuter(c)
        | JoinOperator::Right(c)
        | JoinOperator::RightOuter(c)
        | JoinOperator::FullOuter(c)
        | JoinOperator::StraightJoin(c) => Some(c),
        _ => None,
    }
}

/// Refuses an uncorrelated subquery in `expr` (at any depth) that merges rows per shard.
fn check_expr(expr: &Expr, outer: &[String]) -> Result<(), Error> {
    struct Subqueries<'a> {
        outer: &'a [String],
    }
    impl Visitor for Subqueries<'_> {
        type Break = Error;
        fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<Error> {
            let subquery = match expr {
                Expr::Subquery(q) => q,
                Expr::In {
                    target: InTarget::Subquery(subquery),
                    ..
                } => subquery,
                Expr::Exists { subquery, .. } => subquery,
                _ => return ControlFlow::Continue(()),
            };
            if merges_rows(subquery) && !correlated(subquery, self.outer) {
                return ControlFlow::Break(spans(subquery, "an uncorrelated subquery"));
            }
            ControlFlow::Continue(())
        }
    }
    match expr.visit(&mut Subqueries { outer }) {
        ControlFlow::Break(e) => Err(e),
        ControlFlow::Continue(()) => Ok(()),
    }
}

fn spans(subquery: &Query, what: &str) -> Error {
    unsupported_because(
        format!("the subquery `({subquery})` that spans shards"),
        &format!(
            "as {what} it groups, aggregates, de-duplicates or limits rows shard by shard, so each shard would answer with its own rows only; run it on one data source or write it as one query"
        ),
    )
}

/// Whether a subquery's result per shard differs from its share of the whole result.
pub(super) fn merges_rows(query: &Query) -> bool {
    if query.limit_clause.is_some() || query.fetch.is_some() {
        return true;
    }
    match query.body.as_ref() {
        SetExpr::Select(select) => {
            matches!(select.distinct, Some(Distinct::Distinct | Distinct::On(_)))
                || !matches!(&select.group_by, GroupByExpr::Expressions(e, _) if e.is_empty())
                || select.having.is_some()
                || select.projection.iter().any(|item| match item {
                    SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => {
                        aggregates::contains_aggregate(e)
                    }
                    _ => false,
                })
        }
        SetExpr::Query(inner) => merges_rows(inner),
        SetExpr::SetOperation { .. } => true,
        _ => false,
    }
}

/// The names (alias, else table name, lower case) the FROM of a query body binds.
fn outer_names(body: &SetExpr) -> Vec<String> {
    match body {
        SetExpr::Select(select) => names_of(&select.from),
        _ => Vec::new(),
    }
}

fn names_of(from: &[TableWithJoins]) -> Vec<String> {
    let mut names = Vec::new();
    let mut factors: Vec<&TableFactor> = Vec::new();
    for t in from {
        factors.push(&t.relation);
        factors.extend(t.joins.iter().map(|j| &j.relation));
    }
    while let Some(factor) = factors.pop() {
        match factor {
            TableFactor::Table { name, alias, .. } => match alias {
                Some(alias) => names.push(alias.name.value.to_lowercase()),
                None => {
                    if let Some(ObjectNamePart::Identifier(last)) = name.0.last() {
                        names.push(last.value.to_lowercase());
                    }
                }
            },
            TableFactor::Derived {
                alias: Some(alias), ..
            } => names.push(alias.name.value.to_lowercase()),
            TableFactor::NestedJoin {
                table_with_joins, ..
            } => {
                factors.push(&table_with_joins.relation);
                factors.extend(table_with_joins.joins.iter().map(|j| &j.relation));
            }
            _ => {}
        }
    }
    names
}

/// Whether `subquery` refers to a table of the outer query by name (`o.order_id` where
/// `o` is an outer table and not one of the subquery's own).
fn correlated(subquery: &Query, outer: &[String]) -> bool {
    let own = outer_names(&subquery.body);
    struct References<'a> {
        outer: &'a [String],
        own: &'a [String],
    }
    impl Visitor for References<'_> {
        type Break = ();
        fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<()> {
            if let Expr::CompoundIdentifier(parts) = expr {
                if parts.len() >= 2 {
                    let qualifier = parts[parts.len() - 2].value.to_lowercase();
                    if self.outer.contains(&qualifier) && !self.own.contains(&qualifier) {
                        return ControlFlow::Break(());
                    }
                }
            }
            ControlFlow::Continue(())
        }
    }
    subquery
        .visit(&mut References { outer, own: &own })
        .is_break()
}
