//! Finding the subqueries inside an expression, so their tables and conditions are seen.

use sqlparser::ast::{Expr, FunctionArg, FunctionArgExpr, FunctionArguments, InTarget, Query};

/// The subqueries directly inside `expr` (not those nested in them).
pub(super) fn find_subqueries<'e>(expr: &'e Expr, out: &mut Vec<&'e Query>) {
    match expr {
        Expr::Subquery(query)
        | Expr::Exists {
            subquery: query, ..
        } => out.push(query),
        Expr::In { expr, target, .. } => {
            find_subqueries(expr, out);
            match target {
                InTarget::Subquery(query) => out.push(query),
                InTarget::List(list) => list.iter().for_each(|e| find_subqueries(e, out)),
                _ => {}
            }
        }
        Expr::BinaryOp { left, right, .. } => {
            find_subqueries(left, out);
            find_subqueries(right, out);
        }
        Expr::AnyOp { left, right, .. } | Expr::AllOp { left, right, .. } => {
            find_subqueries(left, out);
            find_subqueries(right, out);
        }
        Expr::Between {
            expr, low, high, ..
        } => {
            for e in [expr, low, high] {
                find_subqueries(e, out);
            }
        }
        Expr::UnaryOp { expr, .. }
        | Expr::Nested(expr)
        | Expr::IsNull(expr)
        | Expr::IsNotNull(expr)
        | Expr::Cast { expr, .. } => find_subqueries(expr, out),
        Expr::Tuple(list) => list.iter().for_each(|e| find_subqueries(e, out)),
        Expr::Function(function) => match &function.args {
            FunctionArguments::Subquery(query) => out.push(query),
            FunctionArguments::List(list) => {
                for arg in &list.args {
                    if let FunctionArg::Unnamed(FunctionArgExpr::Expr(e))
                    | FunctionArg::Named {
                        arg: FunctionArgExpr::Expr(e),
                        ..
                    } = arg
                    {
                        find_subqueries(e, out);
                    }
                }
            }
            FunctionArguments::None => {}
        },
        _ => {}
    }
}
