//! Recognising aggregate calls, and what the shards compute for each.
//!
//! COUNT, SUM, MIN and MAX merge by combining the shards' partial results. AVG(x) becomes
//! SUM(x) on the shards with COUNT(x) beside it. COUNT(DISTINCT x), SUM(DISTINCT x) and
//! AVG(DISTINCT x) cannot be combined from partial results (a value may be on several shards), so the
//! shards return the distinct values of x instead: the aggregate becomes `x`, and x joins
//! the GROUP BY. Every other aggregate of the query stays right under that finer grouping
//! (COUNT, SUM, MIN and MAX of the groups' parts combine into the group's), which is why it
//! is chosen over a separate query.
//!
//! Everything else that aggregates (GROUP_CONCAT, string_agg, STDDEV, ...), an aggregate
//! inside an expression and window functions are refused: their partial results cannot be
//! combined into the single database's answer.

use std::ops::ControlFlow;

use sqlparser::ast::{
    DuplicateTreatment, Expr, Function, FunctionArg, FunctionArgExpr, FunctionArguments, Query,
    Visit, Visitor,
};

use super::{unsupported, unsupported_because};
use crate::error::Error;

/// Aggregates of MySQL and PostgreSQL, lower case. A user-defined aggregate is not known
/// and is taken for a scalar function.
const AGGREGATES: &[&str] = &[
    "any_value",
    "array_agg",
    "avg",
    "bit_and",
    "bit_or",
    "bit_xor",
    "bool_and",
    "bool_or",
    "corr",
    "count",
    "covar_pop",
    "covar_samp",
    "every",
    "group_concat",
    "grouping",
    "json_agg",
    "json_arrayagg",
    "json_object_agg",
    "json_objectagg",
    "jsonb_agg",
    "jsonb_object_agg",
    "max",
    "min",
    "mode",
    "percentile_cont",
    "percentile_disc",
    "range_agg",
    "range_intersect_agg",
    "regr_avgx",
    "regr_avgy",
    "regr_count",
    "regr_intercept",
    "regr_r2",
    "regr_slope",
    "regr_sxx",
    "regr_sxy",
    "regr_syy",
    "std",
    "stddev",
    "stddev_pop",
    "stddev_samp",
    "string_agg",
    "sum",
    "var_pop",
    "var_samp",
    "variance",
    "xmlagg",
];

/// An aggregate call the merge can combine.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Call {
    Count,
    Sum,
    Min,
    Max,
    /// AVG(x): the argument, for the SUM and COUNT halves.
    Avg,
    /// COUNT(DISTINCT x) / SUM(DISTINCT x), with x.
    CountDistinct(Expr),
    SumDistinct(Expr),
    AvgDistinct(Expr),
}

/// What `expr` is to the merge: `Some` aggregate call at its top, `None` for an
/// expression without aggregates. Errors on window functions, aggregates the merge cannot
/// combine, and aggregates inside a larger expression.
pub(super) fn classify(expr: &Expr) -> Result<Option<Call>, Error> {
    let inner = strip_nesting(expr);
    if let Expr::Function(function) = inner {
        if let Some(name) = aggregate_name(function) {
            if function.over.is_none() {
                return call(function, &name).map(Some);
            }
        }
    }
    match find(expr) {
        None => Ok(None),
        Some(Found::Window(f)) => Err(unsupported(format!("window function `{f}`"))),
        Some(Found::Aggregate(f)) => Err(unsupported_because(
            format!("aggregate `{f}` inside the expression `{expr}`"),
            "select the aggregate alone and compute in the application",
        )),
    }
}

/// Whether `expr` holds an aggregate or a window function outside subqueries.
pub(super) fn contains_aggregate(expr: &Expr) -> bool {
    find(expr).is_some()
}

/// Errors if `expr` holds a window function outside subqueries.
pub(super) fn reject_window(expr: &Expr) -> Result<(), Error> {
    match find(expr) {
        Some(Found::Window(f)) => Err(unsupported(format!("window function `{f}`"))),
        _ => Ok(()),
    }
}

fn strip_nesting(mut expr: &Expr) -> &Expr {
    while let Expr::Nested(inner) = expr {
        expr = inner;
    }
    expr
}

/// The lower-case name of an aggregate function call, `None` for other functions.
fn aggregate_name(function: &Function) -> Option<String> {
    let name = function.name.0.last()?.as_ident()?.value.to_lowercase();
    AGGREGATES.contains(&name.as_str()).then_some(name)
}

/// A mergeable aggregate call, or why it is not one.
fn call(function: &Function, name: &str) -> Result<Call, Error> {
    let refuse = |why: &str| Err(unsupported(format!("aggregate `{function}`{why}")));
    let refuse_because =
        |why: &str| Err(unsupported_because(format!("aggregate `{function}`"), why));
    let FunctionArguments::List(list) = &function.args else {
        return refuse("");
    };
    if !list.clauses.is_empty()
        || !function.within_group.is_empty()
        || function.null_treatment.is_some()
        || !matches!(function.parameters, FunctionArguments::None)
    {
        return refuse(" with clauses inside its arguments");
    }
    let distinct = list.duplicate_treatment == Some(DuplicateTreatment::Distinct);
    let args: Vec<&FunctionArgExpr> = list
        .args
        .iter()
        .filter_map(|a| match a {
            FunctionArg::Unnamed(arg) => Some(arg),
            _ => None,
        })
        .collect();
    if args.len() != list.args.len() {
        return refuse(" with named arguments");
    }
    let single = match args.as_slice() {
        [FunctionArgExpr::Expr(e)] => Some(e.clone()),
        _ => None,
    };
    let star = matches!(args.as_slice(), [FunctionArgExpr::Wildcard]);
    match (name, distinct, single) {
        ("count", false, Some(_)) => Ok(Call::Count),
        ("count", false, None) if star => Ok(Call::Count),
        ("sum", false, Some(_)) => Ok(Call::Sum),
        ("min", _, Some(_)) => Ok(Call::Min),
        ("max", _, Some(_)) => Ok(Call::Max),
        ("avg", false, Some(_)) => Ok(Call::Avg),
        ("count" | "sum" | "avg", true, Some(_)) if function.filter.is_some() => {
            refuse(" with DISTINCT and FILTER")
        }
        ("count", true, Some(x)) => Ok(Call::CountDistinct(x)),
        ("sum", true, Some(x)) => Ok(Call::SumDistinct(x)),
        ("count", true, None) => refuse(" of several expressions"),
        ("avg", true, Some(x)) => Ok(Call::AvgDistinct(x)),
        ("count" | "sum" | "min" | "max" | "avg", ..) => refuse(""),
        _ => refuse_because("only COUNT, SUM, MIN, MAX and AVG are merged"),
    }
}

/// `name(args)` with the function's other parts (FILTER, ...) kept: SUM and COUNT halves
/// of an AVG.
pub(super) fn renamed(function: &Function, name: &str) -> Expr {
    let mut f = function.clone();
    if let Some(last) = f.name.0.last_mut() {
        *last = sqlparser::ast::ObjectNamePart::Identifier(sqlparser::ast::Ident::new(name));
    }
    Expr::Function(f)
}

/// The function call at the top of `expr` (through parentheses).
pub(super) fn function_of(expr: &Expr) -> Option<&Function> {
    match strip_nesting(expr) {
        Expr::Function(f) => Some(f),
        _ => None,
    }
}

/// The lower-case name of the function at the top of `expr`.
pub(super) fn function_name(expr: &Expr) -> Option<String> {
    let f = function_of(expr)?;
    Some(f.name.0.last()?.as_ident()?.value.to_lowercase())
}

enum Found {
    Window(String),
    Aggregate(String),
}

/// The first window function or aggregate in `expr`, not looking into subqueries (their
/// aggregates are theirs).
fn find(expr: &Expr) -> Option<Found> {
    struct Finder {
        depth: usize,
    }
    impl Visitor for Finder {
        type Break = Found;
        fn pre_visit_query(&mut self, _: &Query) -> ControlFlow<Found> {
            self.depth += 1;
            ControlFlow::Continue(())
        }
        fn post_visit_query(&mut self, _: &Query) -> ControlFlow<Found> {
            self.depth -= 1;
            ControlFlow::Continue(())
        }
        fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<Found> {
            if let (0, Expr::Function(f)) = (self.depth, expr) {
                if f.over.is_some() {
                    return ControlFlow::Break(Found::Window(f.to_string()));
                }
                if aggregate_name(f).is_some() {
                    return ControlFlow::Break(Found::Aggregate(f.to_string()));
                }
            }
            ControlFlow::Continue(())
        }
    }
    match expr.visit(&mut Finder { depth: 0 }) {
        ControlFlow::Break(found) => Some(found),
        ControlFlow::Continue(()) => None,
    }
}
