//! IN-list pruning: `order_id IN (1, 2, 3)` becomes `order_id IN (1, 3)` on the target that
//! owns 1 and 3, so no target reads (or writes) rows another one owns twice.

use std::ops::ControlFlow;

use sqlparser::ast::{Expr, InTarget, Statement, VisitMut, VisitorMut};

use super::aliases::Aliases;
use super::error::RewriteError;
use super::InListPrune;

/// Prunes every non-negated `column IN (...)` on `prune.table` to the kept values.
pub(crate) fn apply(
    statement: &mut Statement,
    prune: &InListPrune,
    aliases: &Aliases,
) -> Result<(), RewriteError> {
    if prune.keep.is_empty() {
        return Err(RewriteError::EmptyInListKeep {
            table: prune.table.clone(),
            column: prune.column.clone(),
        });
    }
    let mut pruner = Pruner {
        prune,
        aliases,
        matched: 0,
    };
    if let ControlFlow::Break(error) = statement.visit(&mut pruner) {
        return Err(error);
    }
    if pruner.matched == 0 {
        return Err(RewriteError::InListNotFound {
            table: prune.table.clone(),
            column: prune.column.clone(),
        });
    }
    Ok(())
}

struct Pruner<'p> {
    prune: &'p InListPrune,
    aliases: &'p Aliases,
    matched: usize,
}

impl Pruner<'_> {
    /// Whether `expr` is the pruned column: bare, or qualified by the table or its alias.
    fn is_column(&self, expr: &Expr) -> bool {
        let (qualifier, column) = match expr {
            Expr::Identifier(column) => (None, column),
            Expr::CompoundIdentifier(idents) => match idents.as_slice() {
                [.., qualifier, column] => (Some(qualifier), column),
                _ => return false,
            },
            Expr::Nested(inner) => return self.is_column(inner),
            _ => return false,
        };
        if !column.value.eq_ignore_ascii_case(&self.prune.column) {
            return false;
        }
        qualifier.is_none_or(|q| {
            q.value.eq_ignore_ascii_case(&self.prune.table)
                || self
                    .aliases
                    .table_of(&q.value)
                    .is_some_and(|t| t.eq_ignore_ascii_case(&self.prune.table))
        })
    }
}

impl VisitorMut for Pruner<'_> {
    type Break = RewriteError;

    fn pre_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<RewriteError> {
        let Expr::In {
            expr: column,
            target: InTarget::List(list),
            negated: false,
            ..
        } = expr
        else {
            return ControlFlow::Continue(());
        };
        if !self.is_column(column) {
            return ControlFlow::Continue(());
        }
        if let Some(&index) = self.prune.keep.iter().find(|&&i| i >= list.len()) {
            return ControlFlow::Break(RewriteError::InListIndexOutOfRange {
                table: self.prune.table.clone(),
                column: self.prune.column.clone(),
                len: list.len(),
                index,
            });
        }
        let mut taken: Vec<Option<Expr>> = std::mem::take(list).into_iter().map(Some).collect();
        *list = self
            .prune
            .keep
            .iter()
            .filter_map(|&i| taken[i].take())
            .collect();
        self.matched += 1;
        ControlFlow::Continue(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{parse, renames};
    use super::super::{rewrite, Dialect, InListPrune, RewriteError, TargetRewrite};

    fn prune(
        dialect: Dialect,
        sql: &str,
        table: &str,
        column: &str,
        keep: &[usize],
    ) -> Result<String, RewriteError> {
        let plan = TargetRewrite {
            in_lists: vec![InListPrune {
                table: table.into(),
                column: column.into(),
                keep: keep.to_vec(),
            }],
            ..renames(&[("t_order", "t_order_1"), ("t_order_item", "t_order_item_1")])
        };
        rewrite(&parse(dialect, sql), &plan, dialect, &[])
    }

    #[test]
    fn keeps_only_the_values_the_target_owns() {
        assert_eq!(
            prune(
                Dialect::MySql,
                "SELECT * FROM t_order WHERE order_id IN (1, 2, 3) AND status = 'a'",
                "t_order",
                "order_id",
                &[0, 2]
            )
            .unwrap(),
            "SELECT * FROM t_order_1 WHERE order_id IN (1, 3) AND status = 'a'"
        );
    }

    #[test]
    fn prunes_columns_qualified_by_table_or_alias() {
        assert_eq!(
            prune(
                Dialect::MySql,
                "SELECT * FROM t_order o WHERE o.ORDER_ID IN (?, ?)",
                "T_ORDER",
                "order_id",
                &[1]
            )
            .unwrap(),
            "SELECT * FROM t_order_1 o WHERE o.ORDER_ID IN (?)"
        );
        assert_eq!(
            prune(
                Dialect::Postgres,
                "DELETE FROM t_order WHERE t_order.order_id IN ($1, $2, $3)",
                "t_order",
                "order_id",
                &[1, 2]
            )
            .unwrap(),
            "DELETE FROM t_order_1 WHERE t_order_1.order_id IN ($2, $3)"
        );
    }

    #[test]
    fn leaves_other_in_lists_and_not_in_alone() {
        assert_eq!(
            prune(Dialect::MySql, "SELECT * FROM t_order o JOIN t_order_item i ON o.order_id = i.order_id WHERE i.order_id IN (1, 2) AND o.user_id NOT IN (3, 4) AND o.order_id IN (1, 2)", "t_order", "order_id", &[1]).unwrap(),
            "SELECT * FROM t_order_1 o JOIN t_order_item_1 i ON o.order_id = i.order_id WHERE i.order_id IN (1, 2) AND o.user_id NOT IN (3, 4) AND o.order_id IN (2)"
        );
    }

    #[test]
    fn refuses_an_empty_keep_a_missing_list_and_a_bad_index() {
        let sql = "SELECT * FROM t_order WHERE order_id IN (1, 2)";
        assert!(matches!(
            prune(Dialect::MySql, sql, "t_order", "order_id", &[]),
            Err(RewriteError::EmptyInListKeep { .. })
        ));
        assert!(matches!(
            prune(Dialect::MySql, sql, "t_order", "user_id", &[0]),
            Err(RewriteError::InListNotFound { .. })
        ));
        assert!(matches!(
            prune(Dialect::MySql, sql, "t_order", "order_id", &[2]),
            Err(RewriteError::InListIndexOutOfRange {
                len: 2,
                index: 2,
                ..
            })
        ));
    }
}
