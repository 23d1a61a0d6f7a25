//! One SELECT (not a UNION): its merge plan and the statement the shards run.

use sqlparser::ast::{
    Distinct, Expr, GroupByExpr, OrderBy, OrderByExpr, OrderByKind, OrderByOptions, OrderBySort,
    Query, Select, SelectItem, SetExpr, Value as SqlValue,
};

use super::aggregates::{self, Call};
use super::having;
use super::limit;
use super::select_list::{normalize, SelectList};
use super::{unsupported, unsupported_because, SelectMerge};
use crate::error::Error;
use crate::merge::{Aggregate, AggregateFunction, MergePlan, NullOrder, SortKey};
use crate::sql::analyze::Dialect;

/// The merge of `select`, the body of `query`; `None` when concatenating the shards' rows
/// is already the answer.
pub(super) fn plan(
    query: &Query,
    select: &Select,
    dialect: Dialect,
) -> Result<Option<SelectMerge>, Error> {
    check_clauses(query, select)?;
    let limits = limit::read(query)?;
    let order = order_by_exprs(query.order_by.as_ref())?;
    let group = match &select.group_by {
        GroupByExpr::Expressions(exprs, _) => exprs.as_slice(),
        GroupByExpr::All(_) => unreachable!("refused by check_clauses"),
    };
    let grouping = !group.is_empty()
        || select.projection.iter().any(|item| match item {
            SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => {
                aggregates::contains_aggregate(e)
            }
            _ => false,
        })
        || select
            .having
            .as_ref()
            .is_some_and(aggregates::contains_aggregate)
        || order
            .iter()
            .any(|o| aggregates::contains_aggregate(&o.expr));
    let distinct = matches!(select.distinct, Some(Distinct::Distinct));
    if !grouping && !distinct && order.is_empty() && limits.is_none() {
        return Ok(None);
    }

    let mut b = Builder {
        list: SelectList::new(&select.projection, dialect)?,
        plan: MergePlan {
            distinct,
            offset: limits.offset,
            limit: limits.limit,
            ..MergePlan::default()
        },
        derived_aggregates: Vec::new(),
        extra_group_by: Vec::new(),
        dialect,
    };
    let mut shard = query.clone();
    let mut push_limit = true;
    if grouping {
        b.select_aggregates(&select.projection)?;
        let group_columns = group
            .iter()
            .map(|e| b.group_column(e))
            .collect::<Result<Vec<_>, _>>()?;
        if let Some(condition) = &select.having {
            let having = having::convert(condition, &mut |e| b.operand(e, "having"))?;
            b.plan.having = Some(having);
        }
        if group.is_empty() {
            // One group over every row: one row out, whatever the ORDER BY says. Its
            // aggregates are still merged when they appear only there (`ORDER BY count(*)`).
            if b.plan.aggregates.is_empty() {
                for o in order {
                    b.sort_key(o)?;
                }
            }
            b.plan.group_by_streamed = true;
            shard.order_by = None;
            push_limit = false;
        } else {
            let keys = b.sort_keys(order, distinct)?;
            let follows = b.group_order(group, &group_columns, order, &keys, &mut shard);
            push_limit =
                follows && b.plan.having.is_none() && b.extra_group_by.is_empty() && !distinct;
        }
    } else {
        b.plan.order_by = b.sort_keys(order, distinct)?;
    }
    limit::apply(&mut shard, limits, push_limit);

    let Builder {
        list,
        mut plan,
        extra_group_by,
        ..
    } = b;
    plan.visible_columns = list.visible();
    let columns = list.columns();
    let wildcard_at = list.wildcard_at();
    let SetExpr::Select(shard_select) = shard.body.as_mut() else {
        unreachable!("the body is a SELECT")
    };
    shard_select.projection = list.into_items();
    if grouping {
        shard_select.having = None;
        if let GroupByExpr::Expressions(exprs, _) = &mut shard_select.group_by {
            for x in extra_group_by {
                let wanted = normalize(&x, dialect);
                if !exprs.iter().any(|e| normalize(e, dialect) == wanted) {
                    exprs.push(x);
                }
            }
        }
    }
    Ok(Some(SelectMerge {
        plan,
        shard_statement: sqlparser::ast::Statement::Query(Box::new(shard)),
        columns,
        wildcard_at,
    }))
}

struct Builder {
    list: SelectList,
    plan: MergePlan,
    /// Aggregates derived for HAVING / ORDER BY: (normalised expression, column).
    derived_aggregates: Vec<(Expr, usize)>,
    /// The x of COUNT(DISTINCT x) / SUM(DISTINCT x), added to the shards' GROUP BY.
    extra_group_by: Vec<Expr>,
    dialect: Dialect,
}

/// Where an aggregate's partial result goes in the shard's select list.
enum Place {
    /// In place of the client's select item `item` (column `column`), named `name`.
    Item {
        item: usize,
        column: usize,
        name: sqlparser::ast::Ident,
    },
    /// A derived column for this purpose.
    Derived(&'static str),
}

impl Builder {
    /// Registers the aggregates of the client's select list, rewriting AVG and DISTINCT
    /// aggregates in place.
    fn select_aggregates(&mut self, projection: &[SelectItem]) -> Result<(), Error> {
        for (item, select_item) in projection.iter().enumerate() {
            let (expr, alias) = match select_item {
                SelectItem::UnnamedExpr(e) => (e, None),
                SelectItem::ExprWithAlias { expr, alias } => (expr, Some(alias)),
                _ => continue,
            };
            let Some(call) = aggregates::classify(expr)? else {
                continue;
            };
            let Some(column) = self.list.item_column(item) else {
                return Err(unsupported(format!(
                    "aggregate `{expr}` between two wildcards in the select list"
                )));
            };
            let name = alias
                .cloned()
                .unwrap_or_else(|| column_name(expr, self.dialect));
            self.aggregate(call, expr, Place::Item { item, column, name })?;
        }
        Ok(())
    }

    /// Puts the shards' part of aggregate `expr` at `place` and registers how it merges;
    /// returns the column the merged value ends up in.
    fn aggregate(&mut self, call: Call, expr: &Expr, place: Place) -> Result<usize, Error> {
        let function = aggregates::function_of(expr).expect("an aggregate is a function call");
        let (shard_expr, merge) = match call {
            Call::Count => (expr.clone(), AggregateFunction::Count),
            Call::Sum => (expr.clone(), AggregateFunction::Sum),
            Call::Min => (expr.clone(), AggregateFunction::Min),
            Call::Max => (expr.clone(), AggregateFunction::Max),
            Call::Avg => (
                aggregates::renamed(function, "SUM"),
                AggregateFunction::Avg { count_column: 0 },
            ),
            Call::CountDistinct(x) => {
                self.group_by_too(&x);
                (x, AggregateFunction::CountDistinct)
            }
            Call::SumDistinct(x) => {
                self.group_by_too(&x);
                (x, AggregateFunction::SumDistinct)
            }
            Call::AvgDistinct(x) => {
                self.group_by_too(&x);
                (x, AggregateFunction::AvgDistinct)
            }
        };
        let column = match place {
            Place::Item { item, column, name } => {
                if shard_expr != *expr {
                    self.list.replace(item, shard_expr, name);
                }
                column
            }
            Place::Derived(purpose) => self.list.derive(shard_expr, purpose, false),
        };
        let function = match merge {
            AggregateFunction::Avg { .. } => AggregateFunction::Avg {
                count_column: self.list.derive(
                    aggregates::renamed(function, "COUNT"),
                    "avg_count",
                    false,
                ),
            },
            other => other,
        };
        self.plan.aggregates.push(Aggregate { column, function });
        Ok(column)
    }

    /// Adds x of a DISTINCT aggregate to the shards' GROUP BY (once).
    fn group_by_too(&mut self, x: &Expr) {
        let wanted = normalize(x, self.dialect);
        if !self
            .extra_group_by
            .iter()
            .any(|e| normalize(e, self.dialect) == wanted)
        {
            self.extra_group_by.push(x.clone());
        }
    }

    /// The column of a GROUP BY key: a position, the same expression selected, an alias,
    /// or a derived column.
    fn group_column(&mut self, expr: &Expr) -> Result<usize, Error> {
        if let Expr::Rollup(_) | Expr::Cube(_) | Expr::GroupingSets(_) = expr {
            return Err(unsupported(format!("GROUP BY `{expr}`")));
        }
        if let Some(n) = position(expr) {
            return self.list.by_position("GROUP BY", n);
        }
        if let Some(column) = self.list.by_expr(expr) {
            return Ok(column);
        }
        if let Expr::Identifier(ident) = expr {
            if let Some(column) = self.list.by_name(ident) {
                return Ok(column);
            }
        }
        Ok(self.list.derive(expr.clone(), "group", true))
    }

    /// The column of a HAVING or ORDER BY operand: the same expression selected, an alias,
    /// an aggregate derived before, or a new derived column (an aggregate registered).
    fn operand(&mut self, expr: &Expr, purpose: &'static str) -> Result<usize, Error> {
        if let Some(column) = self.list.by_expr(expr) {
            return Ok(column);
        }
        if let Expr::Identifier(ident) = expr {
            if let Some(column) = self.list.by_name(ident) {
                return Ok(column);
            }
        }
        let normalized = normalize(expr, self.dialect);
        if let Some((_, column)) = self
            .derived_aggregates
            .iter()
            .find(|(e, _)| *e == normalized)
        {
            return Ok(*column);
        }
        match aggregates::classify(expr)? {
            Some(call) => {
                let column = self.aggregate(call, expr, Place::Derived(purpose))?;
                self.derived_aggregates.push((normalized, column));
                Ok(column)
            }
            None => Ok(self.list.derive(expr.clone(), purpose, true)),
        }
    }

    /// The sort key of one ORDER BY item: a position, an alias or column name, or an
    /// operand.
    fn sort_key(&mut self, o: &OrderByExpr) -> Result<SortKey, Error> {
        let column = match (position(&o.expr), &o.expr) {
            (Some(n), _) => self.list.by_position("ORDER BY", n)?,
            (None, Expr::Identifier(ident)) => match self.list.by_name(ident) {
                Some(column) => column,
                None => self.operand(&o.expr, "order")?,
            },
            (None, _) => self.operand(&o.expr, "order")?,
        };
        sort_key(column, &o.options, self.dialect)
    }

    /// The sort keys of an ORDER BY. Under SELECT DISTINCT a key must be selected: a
    /// derived column would change which rows are distinct (both backends refuse it too).
    fn sort_keys(&mut self, order: &[OrderByExpr], distinct: bool) -> Result<Vec<SortKey>, Error> {
        let mut keys = Vec::with_capacity(order.len());
        for o in order {
            let key = self.sort_key(o)?;
            if distinct
                && key.column >= self.list.visible()
                && !self.derivable_under_distinct(&o.expr)
            {
                return Err(unsupported_because(
                    format!("ORDER BY `{}` with SELECT DISTINCT", o.expr),
                    "the expression must be in the select list",
                ));
            }
            keys.push(key);
        }
        Ok(keys)
    }

    /// With SELECT DISTINCT and `*`, a derived ORDER BY column is harmless when it is a
    /// plain column: it is one of the wildcard's, so it does not change which rows are
    /// distinct.
    fn derivable_under_distinct(&self, expr: &Expr) -> bool {
        self.list.wildcard_at().is_some()
            && matches!(expr, Expr::Identifier(_) | Expr::CompoundIdentifier(_))
    }

    /// Orders the shards' rows by the group keys so groups merge as streams, and sets the
    /// plan's group and final order. Returns whether the groups come out in the client's
    /// order (no sort after grouping).
    fn group_order(
        &mut self,
        group: &[Expr],
        group_columns: &[usize],
        order: &[OrderByExpr],
        keys: &[SortKey],
        shard: &mut Query,
    ) -> bool {
        // How far the client's ORDER BY is made of distinct group keys.
        let mut prefix = 0;
        while prefix < keys.len()
            && group_columns.contains(&keys[prefix].column)
            && !keys[..prefix]
                .iter()
                .any(|k| k.column == keys[prefix].column)
        {
            prefix += 1;
        }
        let covered: Vec<usize> = keys[..prefix].iter().map(|k| k.column).collect();
        let follows = prefix == keys.len() || covered.len() == distinct_count(group_columns);
        let mut shard_order: Vec<OrderByExpr> = Vec::new();
        let mut group_order: Vec<SortKey> = Vec::new();
        if follows {
            shard_order.extend(order[..prefix].iter().cloned());
            group_order.extend_from_slice(&keys[..prefix]);
        }
        for (expr, &column) in group.iter().zip(group_columns) {
            if group_order.iter().any(|k| k.column == column) {
                continue;
            }
            shard_order.push(OrderByExpr {
                expr: expr.clone(),
                options: OrderByOptions::default(),
                with_fill: None,
            });
            group_order.push(SortKey {
                column,
                descending: false,
                nulls: default_nulls(self.dialect, false),
            });
        }
        self.plan.group_by = group_order.iter().map(|k| k.column).collect();
        self.plan.group_by_streamed = true;
        self.plan.group_by_order = group_order.clone();
        self.plan.order_by = if follows {
            let mut final_order = group_order;
            final_order.extend_from_slice(&keys[prefix..]);
            final_order
        } else {
            keys.to_vec()
        };
        shard.order_by = Some(OrderBy {
            kind: OrderByKind::Expressions(shard_order),
            interpolate: None,
        });
        follows
    }
}

fn distinct_count(columns: &[usize]) -> usize {
    let mut seen: Vec<usize> = Vec::new();
    for c in columns {
        if !seen.contains(c) {
            seen.push(*c);
        }
    }
    seen.len()
}

/// A sort key on `column` with the ORDER BY item's direction and NULL placement.
pub(super) fn sort_key(
    column: usize,
    options: &OrderByOptions,
    dialect: Dialect,
) -> Result<SortKey, Error> {
    let descending = match &options.sort {
        None | Some(OrderBySort::Asc) => false,
        Some(OrderBySort::Desc) => true,
        Some(OrderBySort::Using(operator)) => {
            return Err(unsupported(format!("ORDER BY ... USING {operator}")))
        }
    };
    let nulls = match options.nulls_first {
        Some(true) => NullOrder::First,
        Some(false) => NullOrder::Last,
        None => default_nulls(dialect, descending),
    };
    Ok(SortKey {
        column,
        descending,
        nulls,
    })
}

/// Where the backend puts NULLs without NULLS FIRST/LAST: MySQL treats NULL as the smallest
/// value, PostgreSQL as the largest.
pub(super) fn default_nulls(dialect: Dialect, descending: bool) -> NullOrder {
    match (dialect, descending) {
        (Dialect::MySql, false) | (Dialect::Postgres, true) => NullOrder::First,
        (Dialect::MySql, true) | (Dialect::Postgres, false) => NullOrder::Last,
    }
}

/// The ORDER BY items of a query (none without ORDER BY).
pub(super) fn order_by_exprs(order_by: Option<&OrderBy>) -> Result<&[OrderByExpr], Error> {
    match order_by.map(|o| &o.kind) {
        None => Ok(&[]),
        Some(OrderByKind::Expressions(exprs)) => {
            for o in exprs {
                aggregates::reject_window(&o.expr)?;
            }
            Ok(exprs)
        }
        Some(OrderByKind::All(_)) => Err(unsupported("ORDER BY ALL".to_string())),
    }
}

/// `n` of `ORDER BY n` / `GROUP BY n`.
pub(super) fn position(expr: &Expr) -> Option<u64> {
    match expr {
        Expr::Value(v) => match &v.value {
            SqlValue::Number(n, _) => n.parse().ok(),
            _ => None,
        },
        _ => None,
    }
}

/// The name the client sees for an unaliased select item we rewrite: MySQL names it by the
/// expression's text (as sqlparser prints it; the client's own spacing may differ),
/// PostgreSQL by the function's name.
fn column_name(expr: &Expr, dialect: Dialect) -> sqlparser::ast::Ident {
    match dialect {
        Dialect::MySql => sqlparser::ast::Ident::with_quote('`', expr.to_string()),
        Dialect::Postgres => sqlparser::ast::Ident::with_quote(
            '"',
            aggregates::function_name(expr).unwrap_or_else(|| "?column?".to_string()),
        ),
    }
}

/// Clauses of a SELECT the merge refuses whatever else the statement does.
fn check_clauses(query: &Query, select: &Select) -> Result<(), Error> {
    if let Some(Distinct::On(_)) = &select.distinct {
        return Err(unsupported("SELECT DISTINCT ON".to_string()));
    }
    match &select.group_by {
        GroupByExpr::All(_) => return Err(unsupported("GROUP BY ALL".to_string())),
        GroupByExpr::Expressions(_, modifiers) => {
            if let Some(modifier) = modifiers.first() {
                return Err(unsupported(format!("GROUP BY ... {modifier}")));
            }
        }
    }
    if !select.named_window.is_empty() {
        return Err(unsupported("a WINDOW clause".to_string()));
    }
    for item in &select.projection {
        if let SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } = item {
            aggregates::reject_window(e)?;
        }
    }
    if let Some(having) = &select.having {
        aggregates::reject_window(having)?;
    }
    order_by_exprs(query.order_by.as_ref())?;
    Ok(())
}
