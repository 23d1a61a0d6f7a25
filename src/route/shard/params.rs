//! Bound parameters: their sharding values for routing, and their SQL literals for
//! statements that run with the values written in ([`ParamMode::Inline`]).

use std::ops::ControlFlow;

use sqlparser::ast::{
    Expr, LimitClause, Query, Statement, UnaryOperator, Value, VisitMut, VisitorMut,
};

use super::ParamValue;
use crate::route::algorithms::{parse_datetime, ShardingValue};
use crate::sql::analyze::{Dialect, Placeholders, ValueRef};

impl ParamValue {
    /// The value as the sharding algorithms see it: integers as integers, text that reads
    /// as a date or date-time as one (drivers send dates as text), other text as text.
    pub fn sharding_value(&self) -> ShardingValue {
        match self {
            ParamValue::Null => ShardingValue::Null,
            ParamValue::Int(v) => ShardingValue::Int(i128::from(*v)),
            ParamValue::UInt(v) => ShardingValue::Int(i128::from(*v)),
            ParamValue::Float(v) => ShardingValue::from_number_literal(&v.to_string())
                .unwrap_or_else(|| ShardingValue::Text(v.to_string())),
            ParamValue::Text(text) => {
                if let Some(number) = integer_text(text) {
                    return ShardingValue::Int(number);
                }
                match parse_datetime(text) {
                    Some(dt) if text.trim().len() <= 10 => ShardingValue::Date(dt.date()),
                    Some(dt) => ShardingValue::DateTime(dt),
                    None => ShardingValue::Text(text.clone()),
                }
            }
            ParamValue::Bytes(bytes) => {
                ShardingValue::Text(String::from_utf8_lossy(bytes).into_owned())
            }
        }
    }

    /// The value as a row count (`LIMIT` / `OFFSET`), when it is a whole number that is not
    /// negative, whatever its type: JavaScript drivers bind every number as a double, and
    /// servers take `LIMIT ?` bound to `2.0` as 2.
    pub fn row_count(&self) -> Option<u64> {
        match self {
            ParamValue::Int(v) => u64::try_from(*v).ok(),
            ParamValue::UInt(v) => Some(*v),
            ParamValue::Float(v) if v.fract() == 0.0 && *v >= 0.0 && *v < u64::MAX as f64 => {
                Some(*v as u64)
            }
            ParamValue::Text(t) => t.trim().parse().ok(),
            _ => None,
        }
    }

    /// The value as an SQL literal of `dialect`.
    ///
    /// MySQL strings escape backslashes (the default `sql_mode` reads them as escapes) and
    /// binary strings become hex literals; PostgreSQL strings are standard-conforming
    /// (`standard_conforming_strings = on`, the default since 9.1) and bytea is `'\x..'::bytea`.
    pub fn literal(&self, dialect: Dialect) -> Expr {
        let value = match self {
            ParamValue::Null => Value::Null,
            ParamValue::Int(v) if *v < 0 => {
                return Expr::UnaryOp {
                    op: UnaryOperator::Minus,
                    expr: Box::new(Expr::value(Value::Number(
                        v.unsigned_abs().to_string(),
                        false,
                    ))),
                }
            }
            ParamValue::Int(v) => Value::Number(v.to_string(), false),
            ParamValue::UInt(v) => Value::Number(v.to_string(), false),
            // A float stays a float: `0.5` would be a DECIMAL (MySQL) or numeric
            // (PostgreSQL) literal, and change the type of what it takes part in (a
            // column `amount + ?`, a comparison made in DECIMAL instead of DOUBLE). MySQL
            // reads a literal with an exponent as DOUBLE; PostgreSQL needs a cast.
            ParamValue::Float(v) if v.is_finite() => {
                let positive = Expr::value(Value::Number(format!("{:e}", v.abs()), false));
                let positive = match dialect {
                    Dialect::MySql => positive,
                    Dialect::Postgres => float8(positive),
                };
                if v.is_sign_negative() && *v != 0.0 {
                    return Expr::UnaryOp {
                        op: UnaryOperator::Minus,
                        expr: Box::new(positive),
                    };
                }
                return positive;
            }
            ParamValue::Float(v) => match dialect {
                Dialect::MySql => Value::SingleQuotedString(v.to_string()),
                Dialect::Postgres => {
                    return float8(Expr::value(Value::SingleQuotedString(v.to_string())))
                }
            },
            ParamValue::Text(text) => Value::SingleQuotedString(quote_text(text, dialect)),
            ParamValue::Bytes(bytes) => {
                let hex: String = bytes.iter().map(|b| format!("{b:02X}")).collect();
                match dialect {
                    Dialect::MySql => Value::HexStringLiteral(hex),
                    Dialect::Postgres => {
                        return Expr::Cast {
                            kind: sqlparser::ast::CastKind::DoubleColon,
                            expr: Box::new(Expr::value(Value::SingleQuotedString(format!(
                                "\\x{hex}"
                            )))),
                            data_type: sqlparser::ast::DataType::Bytea,
                            format: None,
                        }
                    }
                }
            }
        };
        Expr::value(value)
    }
}

/// `expr::DOUBLE PRECISION`.
fn float8(expr: Expr) -> Expr {
    Expr::Cast {
        kind: sqlparser::ast::CastKind::DoubleColon,
        expr: Box::new(expr),
        data_type: sqlparser::ast::DataType::DoublePrecision,
        format: None,
    }
}

/// `text` as an integer when it is one exactly (`42`, `-7`; not `007` or `4.0`), so a
/// text-format parameter routes like the number it is.
fn integer_text(text: &str) -> Option<i128> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if digits.len() > 1 && digits.starts_with('0') {
        return None;
    }
    text.parse().ok()
}

/// The body of a single-quoted literal as sqlparser should print it. sqlparser doubles
/// single quotes itself; MySQL also needs backslashes doubled, because statements are
/// parsed without unescaping and printed back as written.
fn quote_text(text: &str, dialect: Dialect) -> String {
    match dialect {
        Dialect::MySql => text.replace('\\', "\\\\"),
        Dialect::Postgres => text.to_string(),
    }
}

/// Resolves a value of the analysis with the bound parameters: literals as they are,
/// parameters from `params`; `None` when it cannot be known (an expression, or a
/// parameter with no value bound).
pub(crate) fn resolve(value: &ValueRef, params: Option<&[ParamValue]>) -> Option<ShardingValue> {
    match value {
        ValueRef::Literal(v) => Some(v.clone()),
        ValueRef::Param(i) => params
            .and_then(|p| p.get(*i))
            .map(ParamValue::sharding_value),
        ValueRef::Unknown => None,
    }
}

/// Writes the bound values into `statement` in place of its positional placeholders.
pub(crate) fn bind(
    statement: &mut Statement,
    placeholders: &Placeholders,
    params: &[ParamValue],
    dialect: Dialect,
) -> Result<(), usize> {
    struct Binder<'a> {
        placeholders: &'a Placeholders,
        params: &'a [ParamValue],
        dialect: Dialect,
    }
    impl Binder<'_> {
        /// The bound value of `expr` when it is a placeholder: `Some(Err(index))` when
        /// none was bound for it.
        fn value_of(&self, expr: &Expr) -> Option<Result<&ParamValue, usize>> {
            let Expr::Value(value) = expr else {
                return None;
            };
            let Value::Placeholder(text) = &value.value else {
                return None;
            };
            let index = self.placeholders.index(text, value.span)?;
            Some(self.params.get(index).ok_or(index))
        }
    }
    impl VisitorMut for Binder<'_> {
        type Break = usize;
        fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<usize> {
            // Row counts are written as integers (see `ParamValue::row_count`).
            let counts: Vec<&mut Expr> = match &mut query.limit_clause {
                Some(LimitClause::LimitOffset { limit, offset, .. }) => limit
                    .iter_mut()
                    .chain(offset.iter_mut().map(|o| &mut o.value))
                    .collect(),
                Some(LimitClause::OffsetCommaLimit { offset, limit }) => vec![offset, limit],
                None => Vec::new(),
            };
            for expr in counts {
                let count = match self.value_of(expr) {
                    Some(Ok(param)) => param.row_count(),
                    Some(Err(missing)) => return ControlFlow::Break(missing),
                    None => None,
                };
                if let Some(n) = count {
                    *expr = Expr::value(Value::Number(n.to_string(), false));
                }
            }
            ControlFlow::Continue(())
        }

        fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<usize> {
            if let Expr::Value(value) = expr {
                if let Value::Placeholder(text) = &value.value {
                    let Some(index) = self.placeholders.index(text, value.span) else {
                        return ControlFlow::Continue(());
                    };
                    let Some(param) = self.params.get(index) else {
                        return ControlFlow::Break(index);
                    };
                    *expr = param.literal(self.dialect);
                }
            }
            ControlFlow::Continue(())
        }
    }
    let mut binder = Binder {
        placeholders,
        params,
        dialect,
    };
    match statement.visit(&mut binder) {
        ControlFlow::Break(missing) => Err(missing),
        ControlFlow::Continue(()) => Ok(()),
    }
}
