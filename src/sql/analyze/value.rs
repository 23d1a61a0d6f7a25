//! Values as a statement gives them: literals, parameters to be bound later, or
//! expressions dbmesh does not evaluate.

use std::cmp::Ordering;

use sqlparser::ast::{DataType, Expr, UnaryOperator, Value};

use super::tokens::Placeholders;
use crate::route::algorithms::{parse_datetime, ShardingValue};

/// A value in a statement, as far as routing can know it before execution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValueRef {
    /// A literal: `42`, `-7`, `'abc'`, `NULL`, `DATE '2024-01-31'`.
    Literal(ShardingValue),
    /// A positional parameter, 0-based: the n-th MySQL `?`, or PostgreSQL `$n` as n-1.
    /// The router reads its value from the bound parameters.
    Param(usize),
    /// Anything else (`NOW()`, `a + 1`, `DEFAULT`, a subquery): routing cannot use it.
    Unknown,
}

impl ValueRef {
    /// Whether the value is a literal or a parameter.
    pub fn is_known(&self) -> bool {
        !matches!(self, ValueRef::Unknown)
    }

    /// Reads `expr` as a value.
    pub(crate) fn from_expr(expr: &Expr, placeholders: &Placeholders) -> Self {
        match expr {
            Expr::Nested(inner) => Self::from_expr(inner, placeholders),
            Expr::Value(value) => match &value.value {
                Value::Placeholder(text) => placeholders
                    .index(text, value.span)
                    .map_or(ValueRef::Unknown, ValueRef::Param),
                other => literal(other, false).map_or(ValueRef::Unknown, ValueRef::Literal),
            },
            Expr::UnaryOp {
                op: op @ (UnaryOperator::Minus | UnaryOperator::Plus),
                expr,
            } => match expr.as_ref() {
                Expr::Value(value) => literal(&value.value, *op == UnaryOperator::Minus)
                    .map_or(ValueRef::Unknown, ValueRef::Literal),
                _ => ValueRef::Unknown,
            },
            Expr::TypedString(typed) => {
                let Some(text) = typed.value.value.clone().into_string() else {
                    return ValueRef::Unknown;
                };
                let value = match typed.data_type {
                    DataType::Date => {
                        parse_datetime(&text).map(|dt| ShardingValue::Date(dt.date()))
                    }
                    DataType::Datetime(_) | DataType::Timestamp(..) => {
                        parse_datetime(&text).map(ShardingValue::DateTime)
                    }
                    _ => Some(ShardingValue::Text(text)),
                };
                value.map_or(ValueRef::Unknown, ValueRef::Literal)
            }
            _ => ValueRef::Unknown,
        }
    }
}

/// A literal's sharding value; `negate` for a leading `-`, which only numbers accept.
fn literal(value: &Value, negate: bool) -> Option<ShardingValue> {
    match value {
        Value::Number(text, _) if negate => ShardingValue::from_number_literal(&format!("-{text}")),
        Value::Number(text, _) => ShardingValue::from_number_literal(text),
        _ if negate => None,
        Value::Null => Some(ShardingValue::Null),
        Value::SingleQuotedString(text)
        | Value::DoubleQuotedString(text)
        | Value::EscapedStringLiteral(text)
        | Value::NationalStringLiteral(text)
        | Value::UnicodeStringLiteral(text) => Some(ShardingValue::from_string_literal(text)),
        _ => None,
    }
}

/// Orders two values when they are comparable for sure (both integers, or both dates);
/// `None` otherwise (text collations and mixed types are the backend's business).
pub(super) fn compare(a: &ShardingValue, b: &ShardingValue) -> Option<Ordering> {
    if let (Some(a), Some(b)) = (a.as_integer(), b.as_integer()) {
        return Some(a.cmp(&b));
    }
    let is_date =
        |v: &ShardingValue| matches!(v, ShardingValue::Date(_) | ShardingValue::DateTime(_));
    if is_date(a) || is_date(b) {
        if let (Some(a), Some(b)) = (a.as_datetime(), b.as_datetime()) {
            return Some(a.cmp(&b));
        }
    }
    None
}

/// Whether two values are certainly the same value (`1` and `'1'` are, as MySQL compares
/// them); `None` when that cannot be told.
pub(super) fn same(a: &ValueRef, b: &ValueRef) -> Option<bool> {
    match (a, b) {
        (ValueRef::Literal(x), ValueRef::Literal(y)) => {
            if x == y {
                return Some(true);
            }
            match compare(x, y) {
                Some(order) => Some(order == Ordering::Equal),
                None => Some(x.canonical_text() == y.canonical_text()),
            }
        }
        (ValueRef::Param(x), ValueRef::Param(y)) if x == y => Some(true),
        _ => None,
    }
}
