//! Which items of a sharding column's `IN (...)` list each target owns, so the rewriter can
//! prune the list and no target reads or writes values another one owns.
//!
//! An item is owned by a target when routing the column to that one value alone reaches
//! the target's actual table. That holds under any AND/OR around the list: a row on a
//! target has its own values, so dropping values the target cannot hold drops no row.
//! Lists under NOT would invert that; they are never pruned: a list is pruned only when it
//! is the statement's one `IN` list on that column and the analysis read it as a
//! condition (which it does not under NOT).

use std::ops::ControlFlow;

use sqlparser::ast::{Expr, InTarget, Visit, Visitor};

use crate::config::rules::TableRule;
use crate::rewrite::InListPrune;
use crate::route::data_nodes::DataNode;
use crate::sql::analyze::{Analysis, ColumnCondition, ConditionGroup, TableRole, ValueRef};

use super::nodes::{route_table, Context};
use super::params::resolve;
use super::targets::Target;

/// One prunable IN list: its table's rule, its column, and its items as values.
pub(crate) struct InList<'r> {
    rule: &'r TableRule,
    column: String,
    items: Vec<ValueRef>,
}

/// The IN lists of `analysis` that may be pruned.
pub(crate) fn prunable<'r>(ctx: &Context<'r>, analysis: &Analysis) -> Vec<InList<'r>> {
    let mut lists = Vec::new();
    let mut seen: Vec<(String, String)> = Vec::new();
    for table in analysis
        .tables
        .iter()
        .filter(|t| t.role == TableRole::Sharded)
    {
        let Some(rule) = ctx.rules.table(&table.name) else {
            continue;
        };
        let columns = [&rule.database_strategy, &rule.table_strategy]
            .into_iter()
            .flatten()
            .filter(|s| s.columns.len() == 1)
            .map(|s| s.columns[0].clone());
        for column in columns {
            let key = (rule.logical.clone(), column.clone());
            if seen.contains(&key) {
                continue;
            }
            seen.push(key);
            let found = lists_on(analysis, &column);
            let [list] = found.as_slice() else {
                continue;
            };
            let read_as_condition = analysis.conditions.iter().any(|g| {
                matches!(g.get(&rule.logical, &column),
                    Some(ColumnCondition::Values(v)) if v.len() == list.len())
            });
            if !read_as_condition || list.len() < 2 {
                continue;
            }
            let items: Vec<ValueRef> = list
                .iter()
                .map(|e| ValueRef::from_expr(e, &analysis.placeholders))
                .collect();
            if items.iter().all(ValueRef::is_known) {
                lists.push(InList {
                    rule,
                    column,
                    items,
                });
            }
        }
    }
    lists
}

/// The prunes for one target: each list cut to the items the target owns (lists the target
/// owns entirely, or whose ownership cannot be told, are left alone).
pub(crate) fn prunes_for(
    ctx: &Context<'_>,
    lists: &[InList<'_>],
    target: &Target,
) -> Vec<InListPrune> {
    let mut prunes = Vec::new();
    for list in lists {
        let Some(actual) = target.tables.get(&list.rule.logical) else {
            continue;
        };
        let node = DataNode::new(target.data_source.clone(), actual.clone());
        let mut keep = Vec::new();
        let mut known = true;
        for (i, item) in list.items.iter().enumerate() {
            let Some(value) = resolve(item, ctx.params) else {
                known = false;
                break;
            };
            let group = ConditionGroup::default().with(
                &list.rule.logical,
                &list.column,
                ColumnCondition::Values(vec![ValueRef::Literal(value)]),
            );
            match route_table(ctx, list.rule, &group) {
                Ok(nodes) if nodes.contains(&node) => keep.push(i),
                Ok(_) => {}
                Err(_) => {
                    known = false;
                    break;
                }
            }
        }
        if known && !keep.is_empty() && keep.len() < list.items.len() {
            prunes.push(InListPrune {
                table: list.rule.logical.clone(),
                column: list.column.clone(),
                keep,
            });
        }
    }
    prunes
}

/// Every `IN (...)` list in the statement on a column named `column` (any qualifier,
/// negated or not), as copies of their items.
fn lists_on(analysis: &Analysis, column: &str) -> Vec<Vec<Expr>> {
    fn names(expr: &Expr, column: &str) -> bool {
        match expr {
            Expr::Identifier(ident) => ident.value.eq_ignore_ascii_case(column),
            Expr::CompoundIdentifier(parts) => parts
                .last()
                .is_some_and(|p| p.value.eq_ignore_ascii_case(column)),
            Expr::Nested(inner) => names(inner, column),
            _ => false,
        }
    }
    struct Finder<'c> {
        column: &'c str,
        lists: Vec<Vec<Expr>>,
    }
    impl Visitor for Finder<'_> {
        type Break = ();
        fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<()> {
            if let Expr::In {
                expr: column,
                target: InTarget::List(list),
                ..
            } = expr
            {
                if names(column, self.column) {
                    self.lists.push(list.clone());
                }
            }
            ControlFlow::Continue(())
        }
    }
    let mut finder = Finder {
        column,
        lists: Vec::new(),
    };
    let _ = analysis.statement.visit(&mut finder);
    finder.lists
}
