//! Binding tables route pair by pair (`t_order_0` with `t_order_item_0`), which gives the
//! single database's answer only when the statement combines their rows on the column
//! that picks the actual table: `o.order_id = i.order_id`, `USING (order_id)`,
//! `o.order_id IN (SELECT i.order_id ...)`, or a subquery correlated on it. Combined on
//! anything else (`o.user_id = i.user_id`), a row of `t_order_0` may belong with a row of
//! `t_order_item_1`, which no unit sees: rows would be missing, or counted once per unit.
//! Such SELECTs are refused rather than answered wrong. The same holds for a sharded table
//! combined with itself (a self-join, a subquery over it correlated with it): both
//! references become one actual table per unit.
//!
//! What is checked, per SELECT: the binding tables of its FROM and of the subqueries in
//! its expressions must be connected by equalities of their key columns (the table
//! strategy's column, or the database strategy's when a data source holds one table).
//! Names resolve through aliases; an unqualified column belongs to the only table of its
//! scope. A table whose key is not one column (COMPLEX_INLINE, HINT) is not checked.

use std::ops::ControlFlow;

use sqlparser::ast::{
    BinaryOperator, Expr, InTarget, JoinConstraint, JoinOperator, ObjectNamePart, Query, Select,
    SelectItem, SetExpr, Statement, TableFactor, TableWithJoins, Visit, Visitor,
};

use crate::config::rules::ShardingRules;
use crate::error::Error;

/// Refuses a SELECT that combines binding tables on something else than their key.
pub(super) fn check(rules: &ShardingRules, statement: &Statement) -> Result<(), Error> {
    struct Selects<'a> {
        rules: &'a ShardingRules,
    }
    impl Visitor for Selects<'_> {
        type Break = Error;
        fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<Error> {
            let mut selects = Vec::new();
            selects_of(&query.body, &mut selects);
            for select in selects {
                if let Err(e) = check_select(self.rules, select) {
                    return ControlFlow::Break(e);
                }
            }
            ControlFlow::Continue(())
        }
    }
    match statement.visit(&mut Selects { rules }) {
        ControlFlow::Break(e) => Err(e),
        ControlFlow::Continue(()) => Ok(()),
    }
}

pub(super) fn selects_of<'a>(body: &'a SetExpr, out: &mut Vec<&'a Select>) {
    match body {
        SetExpr::Select(select) => out.push(select),
        SetExpr::SetOperation { left, right, .. } => {
            selects_of(left, out);
            selects_of(right, out);
        }
        _ => {}
    }
}

/// One FROM's tables: (name in scope: alias or table name, logical table, occurrence:
/// which scope and name, so that a table joined with itself counts twice), lower case.
type Scope = Vec<(String, String, String)>;

fn scope_of(from: &[TableWithJoins], tag: usize) -> Scope {
    let mut scope = Vec::new();
    let mut factors: Vec<&TableFactor> = Vec::new();
    for t in from {
        factors.push(&t.relation);
        factors.extend(t.joins.iter().map(|j| &j.relation));
    }
    while let Some(factor) = factors.pop() {
        match factor {
            TableFactor::Table { name, alias, .. } => {
                if let Some(ObjectNamePart::Identifier(table)) = name.0.last() {
                    let table = table.value.to_lowercase();
                    let seen = alias
                        .as_ref()
                        .map_or(table.clone(), |a| a.name.value.to_lowercase());
                    let occurrence = format!("{tag}:{seen}");
                    scope.push((seen, table, occurrence));
                }
            }
            TableFactor::NestedJoin {
                table_with_joins, ..
            } => {
                factors.push(&table_with_joins.relation);
                factors.extend(table_with_joins.joins.iter().map(|j| &j.relation));
            }
            _ => {}
        }
    }
    scope
}

fn check_select(rules: &ShardingRules, select: &Select) -> Result<(), Error> {
    let outer = scope_of(&select.from, 0);
    // The sharded tables combined here (occurrence, logical table), and the subqueries'
    // scopes.
    let mut members: Vec<(String, String)> = Vec::new();
    let add = |scope: &Scope, members: &mut Vec<(String, String)>| {
        for (_, table, occurrence) in scope {
            if key_column(rules, table).is_some() && !members.iter().any(|(o, _)| o == occurrence) {
                members.push((occurrence.clone(), table.clone()));
            }
        }
    };
    add(&outer, &mut members);
    let mut subqueries: Vec<&Query> = Vec::new();
    let mut exprs: Vec<&Expr> = select.selection.iter().chain(&select.having).collect();
    for item in &select.projection {
        if let SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } = item {
            exprs.push(e);
        }
    }
    let mut using: Vec<String> = Vec::new();
    for from in &select.from {
        for join in &from.joins {
            match join_constraint(&join.join_operator) {
                Some(JoinConstraint::On(on)) => exprs.push(on),
                Some(JoinConstraint::Using(columns)) => {
                    for c in columns {
                        if let Some(ObjectNamePart::Identifier(c)) = c.0.last() {
                            using.push(c.value.to_lowercase());
                        }
                    }
                }
                _ => {}
            }
        }
    }
    for e in &exprs {
        collect_subqueries(e, &mut subqueries);
    }
    let scopes: Vec<Scope> = subqueries
        .iter()
        .enumerate()
        .map(|(i, q)| match q.body.as_ref() {
            SetExpr::Select(s) => scope_of(&s.from, i + 1),
            _ => Vec::new(),
        })
        .collect();
    for scope in &scopes {
        add(scope, &mut members);
    }
    if members.len() < 2 {
        return Ok(());
    }
    // Edges: equalities of key columns between two binding tables.
    let mut edges: Vec<(String, String)> = Vec::new();
    let is_key = |table: &str, column: &str| key_column(rules, table).as_deref() == Some(column);
    for column in &using {
        let keyed: Vec<&String> = outer
            .iter()
            .filter(|(_, t, _)| is_key(t, column))
            .map(|(_, _, o)| o)
            .collect();
        for pair in keyed.windows(2) {
            edges.push((pair[0].clone(), pair[1].clone()));
        }
    }
    // An expression's (occurrence, logical table, column).
    let resolve = |expr: &Expr, inner: Option<&Scope>| -> Option<(String, String, String)> {
        let (qualifier, column) = match expr {
            Expr::CompoundIdentifier(parts) if parts.len() >= 2 => (
                Some(parts[parts.len() - 2].value.to_lowercase()),
                parts[parts.len() - 1].value.to_lowercase(),
            ),
            Expr::Identifier(ident) => (None, ident.value.to_lowercase()),
            _ => return None,
        };
        let (_, table, occurrence) = match qualifier {
            Some(q) => inner
                .into_iter()
                .chain(std::iter::once(&outer))
                .find_map(|scope| scope.iter().find(|(seen, _, _)| *seen == q))?,
            None => {
                let scope = inner.filter(|s| !s.is_empty()).unwrap_or(&outer);
                match scope.as_slice() {
                    [only] => only,
                    _ => return None,
                }
            }
        };
        Some((occurrence.clone(), table.clone(), column))
    };
    let mut equalities: Vec<(&Expr, &Expr, Option<&Scope>)> = Vec::new();
    for e in &exprs {
        equalities_in(e, None, &mut equalities);
    }
    for (q, scope) in subqueries.iter().zip(&scopes) {
        if let SetExpr::Select(s) = q.body.as_ref() {
            for e in s.selection.iter() {
                equalities_in(e, Some(scope), &mut equalities);
            }
        }
    }
    for (left, right, scope) in &equalities {
        if let (Some((a, t, x)), Some((b, u, y))) = (resolve(left, *scope), resolve(right, *scope))
        {
            if a != b && is_key(&t, &x) && is_key(&u, &y) {
                edges.push((a, b));
            }
        }
    }
    // `x.key IN (SELECT y.key FROM ...)`.
    for e in &exprs {
        let mut ins = Vec::new();
        in_subqueries(e, &mut ins);
        for (left, q) in ins {
            let (SetExpr::Select(s), Some(scope)) = (
                q.body.as_ref(),
                subqueries
                    .iter()
                    .position(|sq| std::ptr::eq(*sq, q))
                    .map(|i| &scopes[i]),
            ) else {
                continue;
            };
            let [SelectItem::UnnamedExpr(right) | SelectItem::ExprWithAlias { expr: right, .. }] =
                s.projection.as_slice()
            else {
                continue;
            };
            if let (Some((a, t, x)), Some((b, u, y))) =
                (resolve(left, None), resolve(right, Some(scope)))
            {
                if a != b && is_key(&t, &x) && is_key(&u, &y) {
                    edges.push((a, b));
                }
            }
        }
    }
    // Connected?
    let mut reached = vec![members[0].0.clone()];
    let mut grew = true;
    while grew {
        grew = false;
        for (a, b) in &edges {
            for (from, to) in [(a, b), (b, a)] {
                if reached.contains(from) && !reached.contains(to) {
                    reached.push(to.clone());
                    grew = true;
                }
            }
        }
    }
    if let Some((_, apart)) = members.iter().find(|(o, _)| !reached.contains(o)) {
        let mut pair = [&members[0].1, apart];
        pair.sort();
        let [first, apart] = pair;
        let what = if first == apart {
            format!("`{first}` with itself")
        } else {
            format!("binding tables `{first}` and `{apart}`")
        };
        return Err(Error::MergeUnsupported(format!(
            "combining {what} without equating their sharding columns (`{}`, `{}`) is not supported across shards: dbmesh joins sharded tables actual table by actual table, so rows of different actual tables would never meet; join them on those columns",
            key_column(rules, first).unwrap_or_default(),
            key_column(rules, apart).unwrap_or_default(),
        )));
    }
    Ok(())
}

/// The column that picks a sharded table's actual table: the table strategy's when a
/// data source holds several of its tables, else the database strategy's; `None` for
/// tables that are not sharded or whose key is not one column.
fn key_column(rules: &ShardingRules, table: &str) -> Option<String> {
    let rule = rules.table(table)?;
    let split = rule
        .data_sources()
        .iter()
        .any(|ds| rule.tables_in(ds).len() > 1);
    let strategy = if split {
        rule.table_strategy.as_ref()?
    } else {
        rule.database_strategy.as_ref()?
    };
    match strategy.columns.as_slice() {
        [column] => Some(column.clone()),
        _ => None,
    }
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

/// The subqueries directly in `expr` (not those nested in them).
fn collect_subqueries<'a>(expr: &'a Expr, out: &mut Vec<&'a Query>) {
    match expr {
        Expr::Subquery(q) | Expr::Exists { subquery: q, .. } => out.push(q),
        Expr::In {
            expr,
            target: InTarget::Subquery(q),
            ..
        } => {
            collect_subqueries(expr, out);
            out.push(q);
        }
        Expr::BinaryOp { left, right, .. } => {
            collect_subqueries(left, out);
            collect_subqueries(right, out);
        }
        Expr::UnaryOp { expr, .. } | Expr::Nested(expr) => collect_subqueries(expr, out),
        _ => {}
    }
}

/// The `x = y` comparisons of `expr` combined by AND / OR / NOT / parentheses.
fn equalities_in<'a, 's>(
    expr: &'a Expr,
    scope: Option<&'s Scope>,
    out: &mut Vec<(&'a Expr, &'a Expr, Option<&'s Scope>)>,
) {
    match expr {
        Expr::BinaryOp {
            left,
            op: BinaryOperator::Eq,
            right,
        } => out.push((left, right, scope)),
        Expr::BinaryOp { left, right, .. } => {
            equalities_in(left, scope, out);
            equalities_in(right, scope, out);
        }
        Expr::UnaryOp { expr, .. } | Expr::Nested(expr) => equalities_in(expr, scope, out),
        _ => {}
    }
}

/// The `x IN (SELECT ...)` of `expr` combined by AND / OR / NOT / parentheses.
fn in_subqueries<'a>(expr: &'a Expr, out: &mut Vec<(&'a Expr, &'a Query)>) {
    match expr {
        Expr::In {
            expr,
            target: InTarget::Subquery(q),
            negated: false,
            ..
        } => out.push((expr, q)),
        Expr::BinaryOp { left, right, .. } => {
            in_subqueries(left, out);
            in_subqueries(right, out);
        }
        Expr::Nested(expr) => in_subqueries(expr, out),
        _ => {}
    }
}
