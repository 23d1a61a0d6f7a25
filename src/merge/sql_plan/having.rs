//! HAVING of a grouped multi-shard SELECT, evaluated on the merged groups: each shard sees
//! only part of a group, so its HAVING would drop groups that pass once merged.
//!
//! What is understood: comparisons (`=`, `<>`, `<`, `<=`, `>`, `>=`, `BETWEEN`) between an
//! aggregate, a group key or a selected column on one side and a literal on the other,
//! combined with AND, OR, NOT and parentheses. Literals are numbers, strings, NULL and
//! `DATE '...'` / `TIMESTAMP '...'`; a parameter (`?`, `$1`) must be bound into the
//! statement before planning. Anything else is refused.

use std::str::FromStr;

use bigdecimal::BigDecimal;
use chrono::{NaiveDate, NaiveDateTime};
use sqlparser::ast::{BinaryOperator, DataType, Expr, UnaryOperator, Value as SqlValue};

use super::{unsupported, unsupported_because};
use crate::error::Error;
use crate::merge::{CompareOp, Having, Value};

/// Converts a HAVING condition; `operand` finds (or derives) the column of a non-literal
/// side.
pub(super) fn convert(
    expr: &Expr,
    operand: &mut dyn FnMut(&Expr) -> Result<usize, Error>,
) -> Result<Having, Error> {
    match expr {
        Expr::Nested(inner) => convert(inner, operand),
        Expr::BinaryOp {
            left,
            op: BinaryOperator::And,
            right,
        } => Ok(Having::And(
            Box::new(convert(left, operand)?),
            Box::new(convert(right, operand)?),
        )),
        Expr::BinaryOp {
            left,
            op: BinaryOperator::Or,
            right,
        } => Ok(Having::Or(
            Box::new(convert(left, operand)?),
            Box::new(convert(right, operand)?),
        )),
        Expr::UnaryOp {
            op: UnaryOperator::Not,
            expr: inner,
        } => Ok(Having::Not(Box::new(convert(inner, operand)?))),
        Expr::BinaryOp { left, op, right } => {
            let Some(op) = compare_op(op) else {
                return Err(refused(expr));
            };
            match (literal(left)?, literal(right)?) {
                (None, Some(value)) => compare(left, op, value, operand),
                (Some(value), None) => compare(right, flip(op), value, operand),
                _ => Err(refused(expr)),
            }
        }
        Expr::Between {
            expr: inner,
            negated,
            low,
            high,
        } => {
            let (Some(low), Some(high)) = (literal(low)?, literal(high)?) else {
                return Err(refused(expr));
            };
            let between = Having::And(
                Box::new(compare(inner, CompareOp::GtEq, low, operand)?),
                Box::new(compare(inner, CompareOp::LtEq, high, operand)?),
            );
            Ok(if *negated {
                Having::Not(Box::new(between))
            } else {
                between
            })
        }
        _ => Err(refused(expr)),
    }
}

fn compare(
    side: &Expr,
    op: CompareOp,
    value: Value,
    operand: &mut dyn FnMut(&Expr) -> Result<usize, Error>,
) -> Result<Having, Error> {
    Ok(Having::Compare {
        column: operand(side)?,
        op,
        value,
    })
}

fn refused(expr: &Expr) -> Error {
    unsupported_because(
        format!("HAVING condition `{expr}`"),
        "dbmesh evaluates comparisons of aggregates and group keys with literals, joined by AND, OR and NOT",
    )
}

fn compare_op(op: &BinaryOperator) -> Option<CompareOp> {
    Some(match op {
        BinaryOperator::Eq => CompareOp::Eq,
        BinaryOperator::NotEq => CompareOp::NotEq,
        BinaryOperator::Lt => CompareOp::Lt,
        BinaryOperator::LtEq => CompareOp::LtEq,
        BinaryOperator::Gt => CompareOp::Gt,
        BinaryOperator::GtEq => CompareOp::GtEq,
        _ => return None,
    })
}

/// `literal op x` as `x op' literal`.
fn flip(op: CompareOp) -> CompareOp {
    match op {
        CompareOp::Lt => CompareOp::Gt,
        CompareOp::LtEq => CompareOp::GtEq,
        CompareOp::Gt => CompareOp::Lt,
        CompareOp::GtEq => CompareOp::LtEq,
        same => same,
    }
}

/// The value of a literal, `None` if `expr` is not one. Errors on parameters and literals
/// the merge has no value for.
pub(super) fn literal(expr: &Expr) -> Result<Option<Value>, Error> {
    match expr {
        Expr::Nested(inner) => literal(inner),
        Expr::Value(v) => sql_value(&v.value).map(Some),
        Expr::UnaryOp {
            op: op @ (UnaryOperator::Minus | UnaryOperator::Plus),
            expr: inner,
        } => match literal(inner)? {
            Some(value) if *op == UnaryOperator::Plus => Ok(Some(value)),
            Some(value) => negate(value).map(Some).ok_or_else(|| {
                unsupported_because(format!("the literal `{expr}` in HAVING"), "out of range")
            }),
            None => Ok(None),
        },
        Expr::TypedString(typed) => {
            let text = match &typed.value.value {
                SqlValue::SingleQuotedString(s) => s.as_str(),
                _ => return Err(unsupported(format!("the literal `{expr}` in HAVING"))),
            };
            let parsed = match typed.data_type {
                DataType::Date => NaiveDate::parse_from_str(text, "%Y-%m-%d")
                    .ok()
                    .map(Value::Date),
                DataType::Timestamp(..) | DataType::Datetime(_) => {
                    NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f")
                        .ok()
                        .map(Value::DateTime)
                }
                _ => None,
            };
            parsed
                .map(Some)
                .ok_or_else(|| unsupported(format!("the literal `{expr}` in HAVING")))
        }
        _ => Ok(None),
    }
}

fn sql_value(value: &SqlValue) -> Result<Value, Error> {
    match value {
        SqlValue::Number(text, _) => {
            number(text).ok_or_else(|| unsupported(format!("the number `{text}` in HAVING")))
        }
        SqlValue::SingleQuotedString(s)
        | SqlValue::DoubleQuotedString(s)
        | SqlValue::EscapedStringLiteral(s)
        | SqlValue::NationalStringLiteral(s) => Ok(Value::Text(s.clone())),
        SqlValue::Null => Ok(Value::Null),
        SqlValue::Placeholder(p) => Err(unsupported_because(
            format!("the parameter `{p}` in HAVING"),
            "the merge needs its value when the statement is planned; write a literal",
        )),
        other => Err(unsupported(format!("the literal `{other}` in HAVING"))),
    }
}

/// A numeric literal: an integer when it is one, an exact decimal otherwise, a float in
/// scientific notation (MySQL types `1e3` as DOUBLE).
fn number(text: &str) -> Option<Value> {
    if let Ok(i) = text.parse::<i64>() {
        return Some(Value::Int(i));
    }
    if let Ok(u) = text.parse::<u64>() {
        return Some(Value::UInt(u));
    }
    if text.contains(['e', 'E']) {
        return text.parse::<f64>().ok().map(Value::Float);
    }
    BigDecimal::from_str(text).ok().map(Value::Decimal)
}

fn negate(value: Value) -> Option<Value> {
    Some(match value {
        Value::Int(i) => Value::Int(i.checked_neg()?),
        Value::UInt(u) => i64::try_from(-i128::from(u))
            .map(Value::Int)
            .unwrap_or_else(|_| Value::Decimal(-BigDecimal::from(u))),
        Value::Decimal(d) => Value::Decimal(-d),
        Value::Float(f) => Value::Float(-f),
        _ => return None,
    })
}
