//! Rows that come from a table every unit holds whole (a broadcast or single table, or
//! no table at all) are returned by every unit: right when a sharded table's rows decide
//! them (an inner join keeps a province once per order, wherever the order is), wrong
//! when they stand on their own, since each unit then adds its copy:
//!
//! - an outer join that preserves the non-sharded side (`t_province p LEFT JOIN t_order o`:
//!   a province without orders on a shard comes back once per shard, NULL-extended);
//! - a SELECT whose FROM holds no sharded table but whose subqueries do
//!   (`SELECT * FROM t_province p WHERE EXISTS (SELECT 1 FROM t_order ...)`, `SELECT
//!   (SELECT count(*) FROM t_order)`).
//!
//! Such a SELECT routed to several units is refused.

use std::ops::ControlFlow;

use sqlparser::ast::{
    Expr, JoinOperator, ObjectNamePart, Query, Select, SelectItem, Statement, TableFactor, Visit,
    Visitor,
};

use super::binding_join::selects_of;
use crate::config::rules::ShardingRules;
use crate::error::Error;

/// Refuses the SELECTs of `statement` whose non-sharded rows every unit would repeat.
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

fn check_select(rules: &ShardingRules, select: &Select) -> Result<(), Error> {
    let mut from_sharded = false;
    for from in &select.from {
        let mut left = sharded(rules, &from.relation);
        for join in &from.joins {
            let right = sharded(rules, &join.relation);
            let repeats = match &join.join_operator {
                JoinOperator::Left(_)
                | JoinOperator::LeftOuter(_)
                | JoinOperator::LeftAnti(_)
                | JoinOperator::LeftSemi(_) => !left && right,
                JoinOperator::Right(_)
                | JoinOperator::RightOuter(_)
                | JoinOperator::RightAnti(_)
                | JoinOperator::RightSemi(_) => left && !right,
                JoinOperator::FullOuter(_) => left != right,
                _ => false,
            };
            if repeats {
                return Err(refused(format!(
                    "an outer join that keeps the rows of `{}` whatever sharded rows match",
                    if left { &join.relation } else { &from.relation }
                )));
            }
            left |= right;
        }
        from_sharded |= left;
    }
    if from_sharded {
        return Ok(());
    }
    let mut exprs: Vec<&Expr> = select.selection.iter().chain(&select.having).collect();
    for item in &select.projection {
        if let SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } = item {
            exprs.push(e);
        }
    }
    if exprs.iter().any(|e| mentions_sharded(rules, *e)) {
        return Err(refused(
            "a subquery over a sharded table in a SELECT whose FROM holds none".to_string(),
        ));
    }
    Ok(())
}

fn refused(what: String) -> Error {
    Error::MergeUnsupported(format!(
        "{what} is not supported across shards: every data node would return those rows once; join the sharded table in the FROM clause instead, or narrow the statement to one data node"
    ))
}

/// Whether `factor` reads a sharded table.
fn sharded(rules: &ShardingRules, factor: &TableFactor) -> bool {
    match factor {
        TableFactor::Table { name, .. } => match name.0.last() {
            Some(ObjectNamePart::Identifier(table)) => rules.table(&table.value).is_some(),
            _ => false,
        },
        _ => mentions_sharded(rules, factor),
    }
}

/// Whether anything in `node` names a sharded table.
fn mentions_sharded<T: Visit>(rules: &ShardingRules, node: &T) -> bool {
    struct Tables<'a> {
        rules: &'a ShardingRules,
    }
    impl Visitor for Tables<'_> {
        type Break = ();
        fn pre_visit_relation(&mut self, relation: &sqlparser::ast::ObjectName) -> ControlFlow<()> {
            match relation.0.last() {
                Some(ObjectNamePart::Identifier(t)) if self.rules.table(&t.value).is_some() => {
                    ControlFlow::Break(())
                }
                _ => ControlFlow::Continue(()),
            }
        }
    }
    node.visit(&mut Tables { rules }).is_break()
}
