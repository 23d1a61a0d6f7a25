//! Walking queries scope by scope: each SELECT (or UPDATE / DELETE) block resolves its
//! column names against the tables of its own FROM clause.
//!
//! Rules for a block:
//! - WHERE and the ON conditions of inner joins give conditions (see `conditions.rs`). ON
//!   conditions of outer joins do not: `LEFT JOIN i ON o.user_id = 1` keeps every `o` row.
//! - A column is `alias.col`, `table.col` (when the table has no alias), or a bare `col`
//!   when exactly one table of the block has it as a sharding column, or the block has a
//!   single table. Columns of outer blocks (correlated subqueries) are not resolved.
//! - Equalities between two columns (`o.order_id = i.order_id`) in ON clauses or the
//!   WHERE clause's top-level AND copy a value from one side to the other within each
//!   branch, so binding tables joined on their sharding columns route together.
//! - Subqueries (derived tables, `IN (SELECT ...)`, `EXISTS`, scalar) are their own blocks;
//!   their conditions are ANDed with the enclosing block's, as they name other tables (a
//!   table named in both gets both, keyed by logical name). UNION branches are ORed.
//! - CTE names are not tables; their queries are blocks.

use sqlparser::ast::{
    BinaryOperator, Expr, Ident, InTarget, JoinConstraint, JoinOperator, Query, SelectItem,
    SetExpr, TableFactor, TableWithJoins,
};

use super::conditions::{and, or, unconstrained, ColumnCondition, ColumnKey, ConditionGroup, Dnf};
use super::subqueries::find_subqueries;
use super::tables::{sharding_columns, TableRef};
use super::tokens::Placeholders;
use super::value::ValueRef;
use crate::config::rules::ShardingRules;
use std::ops::Bound;

/// Collects tables and conditions over a whole statement.
pub(super) struct Walker<'a> {
    pub(super) rules: &'a ShardingRules,
    pub(super) placeholders: &'a Placeholders,
    /// Every table reference met so far.
    pub(super) tables: Vec<TableRef>,
    /// CTE names in scope (lower case).
    ctes: Vec<String>,
}

/// One block's tables and its ON clauses.
#[derive(Default)]
struct Block<'q> {
    /// Indexes into `Walker::tables`.
    tables: Vec<usize>,
    /// ON conditions, with whether the join is inner.
    ons: Vec<(&'q Expr, bool)>,
    /// Conditions of derived tables.
    derived: Dnf,
}

impl<'a> Walker<'a> {
    pub(super) fn new(rules: &'a ShardingRules, placeholders: &'a Placeholders) -> Self {
        Walker {
            rules,
            placeholders,
            tables: Vec::new(),
            ctes: Vec::new(),
        }
    }

    /// Records a table that is not part of any block (an INSERT target, a DDL table).
    pub(super) fn add_table(&mut self, table: TableRef) -> usize {
        self.tables.push(table);
        self.tables.len() - 1
    }

    /// The conditions of a query (with its CTEs and set operations).
    pub(super) fn query(&mut self, query: &Query) -> Dnf {
        let ctes_before = self.ctes.len();
        let mut dnf = unconstrained();
        if let Some(with) = &query.with {
            for cte in &with.cte_tables {
                dnf = and(dnf, self.query(&cte.query));
                self.ctes.push(cte.alias.name.value.to_lowercase());
            }
        }
        dnf = and(dnf, self.set_expr(&query.body));
        self.ctes.truncate(ctes_before);
        dnf
    }

    fn set_expr(&mut self, body: &SetExpr) -> Dnf {
        match body {
            SetExpr::Select(select) => {
                let mut exprs: Vec<&Expr> = select.having.iter().collect();
                for item in &select.projection {
                    match item {
                        SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => {
                            exprs.push(e)
                        }
                        _ => {}
                    }
                }
                let from: Vec<&TableWithJoins> = select.from.iter().collect();
                self.block(&from, select.selection.as_ref(), &exprs)
            }
            SetExpr::Query(query) => self.query(query),
            SetExpr::SetOperation { left, right, .. } => {
                let left = self.set_expr(left);
                let right = self.set_expr(right);
                or(left, right)
            }
            _ => unconstrained(),
        }
    }

    /// The conditions of one block: its FROM tables, WHERE clause, and other expressions
    /// that may hold subqueries (projection, HAVING, SET values).
    pub(super) fn block(
        &mut self,
        from: &[&TableWithJoins],
        selection: Option<&Expr>,
        others: &[&Expr],
    ) -> Dnf {
        let mut block = Block {
            derived: unconstrained(),
            ..Block::default()
        };
        for table in from {
            self.table_with_joins(table, &mut block);
        }
        let mut dnf = std::mem::take(&mut block.derived);
        let mut equalities = Vec::new();
        for (on, inner) in &block.ons {
            if *inner {
                dnf = and(dnf, self.predicate(on, &block.tables));
            }
            self.equalities(on, &block.tables, &mut equalities);
        }
        if let Some(selection) = selection {
            dnf = and(dnf, self.predicate(selection, &block.tables));
            self.equalities(selection, &block.tables, &mut equalities);
        }
        let mut subqueries = Vec::new();
        for expr in block
            .ons
            .iter()
            .map(|(e, _)| *e)
            .chain(selection)
            .chain(others.iter().copied())
        {
            find_subqueries(expr, &mut subqueries);
        }
        for query in subqueries {
            dnf = and(dnf, self.query(query));
        }
        propagate(&mut dnf, &equalities);
        dnf
    }

    fn table_with_joins<'q>(&mut self, table: &'q TableWithJoins, block: &mut Block<'q>) {
        self.factor(&table.relation, block);
        for join in &table.joins {
            self.factor(&join.relation, block);
            let (constraint, inner) = match &join.join_operator {
                JoinOperator::Join(c) | JoinOperator::Inner(c) | JoinOperator::StraightJoin(c) => {
                    (c, true)
                }
                JoinOperator::Left(c)
                | JoinOperator::LeftOuter(c)
                | JoinOperator::Right(c)
                | JoinOperator::RightOuter(c)
                | JoinOperator::FullOuter(c) => (c, false),
                _ => continue,
            };
            if let JoinConstraint::On(on) = constraint {
                block.ons.push((on, inner));
            }
        }
    }

    fn factor<'q>(&mut self, factor: &'q TableFactor, block: &mut Block<'q>) {
        match factor {
            TableFactor::Table { name, alias, .. } => {
                let is_cte = name.0.len() == 1
                    && name.0[0]
                        .as_ident()
                        .is_some_and(|i| self.ctes.contains(&i.value.to_lowercase()));
                if !is_cte {
                    let table = TableRef::new(name, alias.as_ref().map(|a| &a.name), self.rules);
                    let index = self.add_table(table);
                    block.tables.push(index);
                }
            }
            TableFactor::Derived { subquery, .. } => {
                let derived = std::mem::take(&mut block.derived);
                block.derived = and(derived, self.query(subquery));
            }
            TableFactor::NestedJoin {
                table_with_joins, ..
            } => self.table_with_joins(table_with_joins, block),
            _ => {}
        }
    }

    /// `expr` as conditions on this block's sharding columns.
    fn predicate(&self, expr: &Expr, scope: &[usize]) -> Dnf {
        match expr {
            Expr::BinaryOp {
                left,
                op: BinaryOperator::And,
                right,
            } => and(self.predicate(left, scope), self.predicate(right, scope)),
            Expr::BinaryOp {
                left,
                op: BinaryOperator::Or,
                right,
            } => or(self.predicate(left, scope), self.predicate(right, scope)),
            Expr::Nested(inner) => self.predicate(inner, scope),
            _ => match self.leaf(expr, scope) {
                Some((key, condition)) => vec![ConditionGroup::single(key, condition)],
                None => unconstrained(),
            },
        }
    }

    /// A single comparison on a sharding column, if `expr` is one.
    fn leaf(&self, expr: &Expr, scope: &[usize]) -> Option<(ColumnKey, ColumnCondition)> {
        match expr {
            Expr::BinaryOp { left, op, right } => {
                if let (Some(key), Some(value)) = (self.column(left, scope), self.value(right)) {
                    return Some((key, comparison(op, value)?));
                }
                let (key, value) = (self.column(right, scope)?, self.value(left)?);
                Some((key, comparison(&flip(op)?, value)?))
            }
            Expr::In {
                expr,
                target: InTarget::List(list),
                negated: false,
                ..
            } => {
                let key = self.column(expr, scope)?;
                let values = list
                    .iter()
                    .map(|e| self.value(e))
                    .collect::<Option<Vec<_>>>()?;
                Some((key, ColumnCondition::Values(values)))
            }
            Expr::Between {
                expr,
                negated: false,
                low,
                high,
            } => Some((
                self.column(expr, scope)?,
                ColumnCondition::Range {
                    lower: Bound::Included(self.value(low)?),
                    upper: Bound::Included(self.value(high)?),
                },
            )),
            _ => None,
        }
    }

    /// A literal or parameter.
    fn value(&self, expr: &Expr) -> Option<ValueRef> {
        Some(ValueRef::from_expr(expr, self.placeholders)).filter(ValueRef::is_known)
    }

    /// The sharding column `expr` names, if it is one of this block's.
    fn column(&self, expr: &Expr, scope: &[usize]) -> Option<ColumnKey> {
        let parts: &[Ident] = match expr {
            Expr::Nested(inner) => return self.column(inner, scope),
            Expr::Identifier(ident) => std::slice::from_ref(ident),
            Expr::CompoundIdentifier(parts) => parts,
            _ => return None,
        };
        let (column, qualifiers) = parts.split_last()?;
        let column = column.value.to_lowercase();
        let candidates: Vec<&TableRef> = scope
            .iter()
            .map(|&i| &self.tables[i])
            .filter(|t| match qualifiers.last() {
                Some(q) => t.answers_to(&q.value),
                None => true,
            })
            .collect();
        let owners: Vec<&TableRef> = candidates
            .iter()
            .copied()
            .filter(|t| sharding_columns(self.rules, &t.name).contains(&column.as_str()))
            .collect();
        let first = owners.first()?;
        if owners.iter().all(|t| t.name == first.name)
            && (qualifiers.last().is_some()
                || owners.len() == 1
                || candidates.len() == owners.len())
        {
            return Some((first.name.clone(), column));
        }
        None
    }

    /// Column = column pairs among the top-level conjuncts of `expr`.
    fn equalities(&self, expr: &Expr, scope: &[usize], out: &mut Vec<(ColumnKey, ColumnKey)>) {
        match expr {
            Expr::Nested(inner) => self.equalities(inner, scope, out),
            Expr::BinaryOp {
                left,
                op: BinaryOperator::And,
                right,
            } => {
                self.equalities(left, scope, out);
                self.equalities(right, scope, out);
            }
            Expr::BinaryOp {
                left,
                op: BinaryOperator::Eq,
                right,
            } => {
                if let (Some(a), Some(b)) = (self.column(left, scope), self.column(right, scope)) {
                    out.push((a, b));
                }
            }
            _ => {}
        }
    }
}

/// `column op value` as a condition.
fn comparison(op: &BinaryOperator, value: ValueRef) -> Option<ColumnCondition> {
    let range = |lower, upper| ColumnCondition::Range { lower, upper };
    Some(match op {
        BinaryOperator::Eq => ColumnCondition::Values(vec![value]),
        BinaryOperator::Lt => range(Bound::Unbounded, Bound::Excluded(value)),
        BinaryOperator::LtEq => range(Bound::Unbounded, Bound::Included(value)),
        BinaryOperator::Gt => range(Bound::Excluded(value), Bound::Unbounded),
        BinaryOperator::GtEq => range(Bound::Included(value), Bound::Unbounded),
        _ => return None,
    })
}

/// The operator with its operands swapped (`5 < col` is `col > 5`).
fn flip(op: &BinaryOperator) -> Option<BinaryOperator> {
    Some(match op {
        BinaryOperator::Eq => BinaryOperator::Eq,
        BinaryOperator::Lt => BinaryOperator::Gt,
        BinaryOperator::LtEq => BinaryOperator::GtEq,
        BinaryOperator::Gt => BinaryOperator::Lt,
        BinaryOperator::GtEq => BinaryOperator::LtEq,
        _ => return None,
    })
}

/// Copies conditions across column equalities, in each branch (twice, for chains).
fn propagate(dnf: &mut Dnf, equalities: &[(ColumnKey, ColumnKey)]) {
    for group in dnf.iter_mut() {
        for _ in 0..2 {
            for (a, b) in equalities {
                for (from, to) in [(a, b), (b, a)] {
                    if group.condition(to).is_none() {
                        if let Some(condition) = group.condition(from).cloned() {
                            group.set(to.clone(), condition);
                        }
                    }
                }
            }
        }
    }
}
