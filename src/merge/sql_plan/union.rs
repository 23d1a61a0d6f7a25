//! UNION and UNION ALL across shards. Each shard runs the whole UNION over its part of the
//! data; UNION ALL concatenates the shards' rows, UNION removes the duplicates one shard
//! cannot see (`plan.distinct`). ORDER BY and LIMIT of the union apply as for a SELECT:
//! the shards keep the ORDER BY and get `LIMIT offset + limit`.
//!
//! Refused: EXCEPT and INTERSECT (a row's presence depends on the other shards), branches
//! that group, aggregate or have their own ORDER BY / LIMIT, a UNION ALL over a UNION or a
//! SELECT DISTINCT (duplicates would have to be removed from part of the rows only), and an
//! ORDER BY that is not a result column (by position or name).

use sqlparser::ast::{
    Distinct, Expr, Query, Select, SelectItem, SetExpr, SetOperator, SetQuantifier,
};

use super::aggregates;
use super::limit;
use super::select::{order_by_exprs, position, sort_key};
use super::select_list::SelectList;
use super::{unsupported, unsupported_because, SelectMerge};
use crate::error::Error;
use crate::merge::MergePlan;
use crate::sql::analyze::Dialect;

/// The merge of a query whose body is a set operation.
pub(super) fn plan(query: &Query, dialect: Dialect) -> Result<Option<SelectMerge>, Error> {
    let mut leaves = Vec::new();
    let mut quantifiers = Vec::new();
    walk(&query.body, &mut leaves, &mut quantifiers)?;
    // The first quantifier met is the outermost operation's.
    let distinct = quantifiers.first().copied().unwrap_or(false);
    if !distinct && quantifiers.contains(&true) {
        return Err(unsupported_because(
            "UNION ALL over a UNION".to_string(),
            "dbmesh removes duplicates from the whole result or from none of it; use one kind of UNION",
        ));
    }
    for select in &leaves {
        check_branch(select, distinct)?;
    }
    let limits = limit::read(query)?;
    let order = order_by_exprs(query.order_by.as_ref())?;
    if !distinct && order.is_empty() && limits.is_none() {
        return Ok(None);
    }
    let list = SelectList::new(&leaves[0].projection, dialect)?;
    let mut plan = MergePlan {
        visible_columns: list.visible(),
        distinct,
        offset: limits.offset,
        limit: limits.limit,
        ..MergePlan::default()
    };
    for o in order {
        let column = match (position(&o.expr), &o.expr) {
            (Some(n), _) => list.by_position("ORDER BY", n)?,
            (None, Expr::Identifier(ident)) => {
                list.by_name(ident).ok_or_else(|| not_a_result(&o.expr))?
            }
            (None, _) => list.by_expr(&o.expr).ok_or_else(|| not_a_result(&o.expr))?,
        };
        plan.order_by.push(sort_key(column, &o.options, dialect)?);
    }
    let mut shard = query.clone();
    limit::apply(&mut shard, limits, true);
    Ok(Some(SelectMerge {
        plan,
        shard_statement: sqlparser::ast::Statement::Query(Box::new(shard)),
        columns: list.visible(),
        wildcard_at: list.wildcard_at(),
    }))
}

fn not_a_result(expr: &Expr) -> Error {
    unsupported_because(
        format!("ORDER BY `{expr}` on a UNION"),
        "order a UNION by a result column's position or name",
    )
}

/// Collects the SELECTs of a UNION tree and the quantifier of each UNION (true: distinct),
/// outermost first.
fn walk<'a>(
    body: &'a SetExpr,
    leaves: &mut Vec<&'a Select>,
    quantifiers: &mut Vec<bool>,
) -> Result<(), Error> {
    match body {
        SetExpr::SetOperation {
            op: SetOperator::Union,
            set_quantifier,
            left,
            right,
        } => {
            quantifiers.push(match set_quantifier {
                SetQuantifier::None | SetQuantifier::Distinct => true,
                SetQuantifier::All => false,
                other => return Err(unsupported(format!("UNION {other}"))),
            });
            walk(left, leaves, quantifiers)?;
            walk(right, leaves, quantifiers)
        }
        SetExpr::SetOperation { op, .. } => Err(unsupported(format!("{op}"))),
        SetExpr::Select(select) => {
            leaves.push(select);
            Ok(())
        }
        SetExpr::Query(inner)
            if inner.with.is_none()
                && inner.order_by.is_none()
                && inner.limit_clause.is_none()
                && inner.fetch.is_none() =>
        {
            walk(&inner.body, leaves, quantifiers)
        }
        SetExpr::Query(inner) => Err(unsupported(format!(
            "ORDER BY or LIMIT inside the UNION branch `({inner})`"
        ))),
        other => Err(unsupported(format!("the UNION branch `{other}`"))),
    }
}

/// A UNION branch must give the shards' share of its rows: no grouping, no aggregates, no
/// window functions, and no DISTINCT under UNION ALL.
fn check_branch(select: &Select, distinct: bool) -> Result<(), Error> {
    let mut exprs: Vec<&Expr> = select
        .projection
        .iter()
        .filter_map(|item| match item {
            SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => Some(e),
            _ => None,
        })
        .collect();
    exprs.extend(select.having.as_ref());
    for e in &exprs {
        aggregates::reject_window(e)?;
    }
    let groups = !matches!(&select.group_by, sqlparser::ast::GroupByExpr::Expressions(e, m) if e.is_empty() && m.is_empty())
        || exprs.iter().any(|e| aggregates::contains_aggregate(e));
    if groups {
        return Err(unsupported(format!(
            "GROUP BY or aggregates inside the UNION branch `{select}`"
        )));
    }
    match &select.distinct {
        Some(Distinct::On(_)) => Err(unsupported("SELECT DISTINCT ON".to_string())),
        Some(Distinct::Distinct) if !distinct => Err(unsupported_because(
            format!("SELECT DISTINCT inside UNION ALL (`{select}`)"),
            "dbmesh removes duplicates from the whole result or from none of it",
        )),
        _ => Ok(()),
    }
}
