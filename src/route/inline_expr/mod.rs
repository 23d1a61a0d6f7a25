//! Inline expressions: the `ds_${user_id % 2}` language of the INLINE, COMPLEX_INLINE and
//! HINT algorithms.
//!
//! An expression is literal text with `${ ... }` holes (`$->{ ... }` is accepted too, as in
//! ShardingSphere); the text of each evaluated hole is put in its place. Inside a hole:
//!
//! - integers (`2`), strings (`'a'` or `"a"`), column names (`user_id`, case-insensitive),
//!   parentheses;
//! - integer arithmetic `+ - * / %` and unary minus. `%` is the Euclidean remainder: never
//!   negative for a positive divisor (`-3 % 2` is `1`, where Groovy gives `-1`). `/` is the
//!   matching Euclidean integer division (`7 / 2` is `3`, `-7 / 2` is `-4`); Groovy would
//!   give a decimal, so ShardingSphere expressions that relied on `.intdiv()` or
//!   `.intValue()` are written with plain `/` here;
//! - `x.abs()`, `abs(x)` or `Math.abs(x)`: absolute value;
//! - `x.hashCode()`: Java's `hashCode`, so ShardingSphere expressions such as
//!   `${Math.abs(order_no.hashCode()) % 4}` place rows where ShardingSphere did: for text,
//!   `String.hashCode` over UTF-16 code units; for integers, `Long.hashCode`
//!   (`(int)(v ^ (v >>> 32))`, which equals the value for 0 ≤ v < 2^31).
//!
//! Column values that are text are used as integers when they read as one (`'42'`). An
//! expression is parsed once, when the rule file is loaded (errors give the character
//! position), and evaluated per statement without allocating beyond the output string.

mod parser;
mod possible;

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::fmt::Write;

use crate::route::algorithms::{ShardingValue, ShardingValues};
use possible::{possible, Possible};

/// A parsed inline expression.
#[derive(Debug, Clone)]
pub struct InlineExpr {
    source: String,
    parts: Vec<Part>,
    columns: Vec<String>,
}

#[derive(Debug, Clone)]
enum Part {
    Literal(String),
    Hole(Expr),
}

#[derive(Debug, Clone)]
enum Expr {
    Int(i128),
    Text(String),
    /// Index into [`InlineExpr::columns`].
    Column(usize),
    Neg(Box<Expr>),
    Abs(Box<Expr>),
    HashCode(Box<Expr>),
    Binary(Op, Box<Expr>, Box<Expr>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Add,
    Sub,
    Mul,
    Div,
    Rem,
}

/// A syntax error, with the 1-based character position in the expression.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("at character {position}: {message}")]
pub struct ExprParseError {
    /// 1-based character position.
    pub position: usize,
    /// What was expected there.
    pub message: String,
}

/// Why an expression could not be evaluated for some values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvalError {
    /// The expression reads a column the values do not include.
    #[error("no value for column `{0}`")]
    MissingValue(String),
    /// The expression reads a column whose value is NULL.
    #[error("column `{0}` is NULL")]
    Null(String),
    /// Arithmetic on something that is not an integer.
    #[error("{value} is not an integer{}", column_suffix(.column))]
    NotAnInteger {
        column: Option<String>,
        value: String,
    },
    /// `/` or `%` by zero.
    #[error("division by zero")]
    DivisionByZero,
    /// The result does not fit.
    #[error("integer overflow")]
    Overflow,
}

fn column_suffix(column: &Option<String>) -> String {
    column
        .as_ref()
        .map(|c| format!(" (column `{c}`)"))
        .unwrap_or_default()
}

impl InlineExpr {
    /// Parses `source`; every `${` must be closed and every hole must be a whole expression.
    pub fn parse(source: &str) -> Result<Self, ExprParseError> {
        let (parts, columns) = parser::parse_template(source)?;
        Ok(InlineExpr {
            source: source.to_string(),
            parts,
            columns,
        })
    }

    /// The expression as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The columns the expression reads, in lower case, in order of first use.
    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    /// Evaluates the expression for `values`.
    pub fn evaluate(&self, values: &ShardingValues) -> Result<String, EvalError> {
        let mut out = String::with_capacity(self.source.len());
        self.evaluate_into(values, &mut out)?;
        Ok(out)
    }

    /// Evaluates the expression for `values`, appending the result to `out`.
    pub fn evaluate_into(
        &self,
        values: &ShardingValues,
        out: &mut String,
    ) -> Result<(), EvalError> {
        for part in &self.parts {
            match part {
                Part::Literal(text) => out.push_str(text),
                Part::Hole(expr) => match self.eval(expr, values)? {
                    Val::Int(value) => {
                        let _ = write!(out, "{value}");
                    }
                    Val::Text(text) => out.push_str(&text),
                },
            }
        }
        Ok(())
    }

    /// Every string the expression can yield, when that is a finite set of at most `limit`
    /// strings derivable without knowing the column values: `ds_${user_id % 2}` yields
    /// `ds_0`, `ds_1`; `ds_${user_id}` is not derivable (`None`). Sorted, without duplicates.
    pub fn possible_outputs(&self, limit: usize) -> Option<Vec<String>> {
        let mut outputs = vec![String::new()];
        for part in &self.parts {
            let choices: Vec<String> = match part {
                Part::Literal(text) => vec![text.clone()],
                Part::Hole(expr) => match possible(expr, limit) {
                    Possible::Any => return None,
                    Possible::Text(text) => vec![text],
                    Possible::Ints(ints) => ints.iter().map(i128::to_string).collect(),
                },
            };
            if outputs.len() * choices.len() > limit {
                return None;
            }
            outputs = outputs
                .iter()
                .flat_map(|prefix| choices.iter().map(move |c| format!("{prefix}{c}")))
                .collect();
        }
        let unique: BTreeSet<String> = outputs.into_iter().collect();
        Some(unique.into_iter().collect())
    }

    fn eval<'a>(
        &'a self,
        expr: &'a Expr,
        values: &'a ShardingValues,
    ) -> Result<Val<'a>, EvalError> {
        Ok(match expr {
            Expr::Int(value) => Val::Int(*value),
            Expr::Text(text) => Val::Text(Cow::Borrowed(text)),
            Expr::Column(index) => {
                let column = &self.columns[*index];
                match values.get(column) {
                    None => return Err(EvalError::MissingValue(column.clone())),
                    Some(ShardingValue::Null) => return Err(EvalError::Null(column.clone())),
                    Some(ShardingValue::Int(value)) => Val::Int(*value),
                    Some(ShardingValue::Text(text) | ShardingValue::Decimal(text)) => {
                        Val::Text(Cow::Borrowed(text))
                    }
                    Some(other) => Val::Text(Cow::Owned(other.canonical_text().into_owned())),
                }
            }
            Expr::Neg(inner) => {
                let value = self.int(inner, values)?;
                Val::Int(value.checked_neg().ok_or(EvalError::Overflow)?)
            }
            Expr::Abs(inner) => {
                let value = self.int(inner, values)?;
                Val::Int(value.checked_abs().ok_or(EvalError::Overflow)?)
            }
            Expr::HashCode(inner) => match self.eval(inner, values)? {
                Val::Int(value) => Val::Int(long_hash_code(value)?.into()),
                Val::Text(text) => Val::Int(string_hash_code(&text).into()),
            },
            Expr::Binary(op, left, right) => {
                let left = self.int(left, values)?;
                let right = self.int(right, values)?;
                Val::Int(apply(*op, left, right)?)
            }
        })
    }

    fn int(&self, expr: &Expr, values: &ShardingValues) -> Result<i128, EvalError> {
        match self.eval(expr, values)? {
            Val::Int(value) => Ok(value),
            Val::Text(text) => match ShardingValue::from_number_literal(&text) {
                Some(ShardingValue::Int(value)) => Ok(value),
                _ => Err(EvalError::NotAnInteger {
                    column: match expr {
                        Expr::Column(index) => Some(self.columns[*index].clone()),
                        _ => None,
                    },
                    value: format!("'{text}'"),
                }),
            },
        }
    }
}

enum Val<'a> {
    Int(i128),
    Text(Cow<'a, str>),
}

fn apply(op: Op, left: i128, right: i128) -> Result<i128, EvalError> {
    if matches!(op, Op::Div | Op::Rem) && right == 0 {
        return Err(EvalError::DivisionByZero);
    }
    match op {
        Op::Add => left.checked_add(right),
        Op::Sub => left.checked_sub(right),
        Op::Mul => left.checked_mul(right),
        Op::Div => left.checked_div_euclid(right),
        Op::Rem => left.checked_rem_euclid(right),
    }
    .ok_or(EvalError::Overflow)
}

/// Java's `Long.hashCode`.
fn long_hash_code(value: i128) -> Result<i32, EvalError> {
    let value = i64::try_from(value).map_err(|_| EvalError::Overflow)?;
    Ok((value ^ ((value as u64) >> 32) as i64) as i32)
}

/// Java's `String.hashCode`: `s[0]*31^(n-1) + … + s[n-1]` over UTF-16 code units, wrapping.
fn string_hash_code(text: &str) -> i32 {
    text.encode_utf16().fold(0i32, |hash, unit| {
        hash.wrapping_mul(31).wrapping_add(i32::from(unit))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval(source: &str, values: &ShardingValues) -> Result<String, EvalError> {
        InlineExpr::parse(source).unwrap().evaluate(values)
    }

    fn parse_error(source: &str) -> ExprParseError {
        InlineExpr::parse(source).unwrap_err()
    }

    #[test]
    fn evaluates_holes_between_literal_text() {
        let values = ShardingValues::single("user_id", 7i64).with("order_id", 12i64);
        assert_eq!(eval("ds_${user_id % 2}", &values).unwrap(), "ds_1");
        assert_eq!(eval("t_${order_id % 4}_x", &values).unwrap(), "t_0_x");
        assert_eq!(eval("ds_$->{user_id % 2}", &values).unwrap(), "ds_1");
        assert_eq!(eval("plain", &values).unwrap(), "plain");
        assert_eq!(
            eval(
                "${USER_ID + order_id * 2}/${(user_id + order_id) / 2}",
                &values
            )
            .unwrap(),
            "31/9"
        );
        assert_eq!(eval("${-user_id % 3}${'x'}", &values).unwrap(), "2x");
    }

    #[test]
    fn remainder_and_division_are_euclidean() {
        let values = ShardingValues::single("v", -7i64);
        assert_eq!(eval("${v % 2}", &values).unwrap(), "1");
        assert_eq!(eval("${v / 2}", &values).unwrap(), "-4");
        assert_eq!(eval("${v.abs() % 4}", &values).unwrap(), "3");
        assert_eq!(eval("${Math.abs(v) / 2}", &values).unwrap(), "3");
    }

    #[test]
    fn hash_code_matches_java() {
        let values = ShardingValues::single("order_no", "hello").with("id", 5_000_000_000i64);
        // "hello".hashCode() == 99162322 in Java.
        assert_eq!(eval("${order_no.hashCode()}", &values).unwrap(), "99162322");
        // Long.valueOf(5000000000L).hashCode() == 705032705 in Java.
        assert_eq!(eval("${id.hashCode()}", &values).unwrap(), "705032705");
        assert_eq!(
            eval("t_${Math.abs(order_no.hashCode()) % 4}", &values).unwrap(),
            "t_2"
        );
    }

    #[test]
    fn numeric_text_is_an_integer_and_other_text_is_not() {
        let values = ShardingValues::single("id", "42").with("name", "bob");
        assert_eq!(eval("${id % 5}", &values).unwrap(), "2");
        assert_eq!(eval("x_${name}", &values).unwrap(), "x_bob");
        assert_eq!(
            eval("${name % 2}", &values).unwrap_err().to_string(),
            "'bob' is not an integer (column `name`)"
        );
    }

    #[test]
    fn reports_missing_null_and_arithmetic_failures() {
        let values = ShardingValues::single("a", 0i64).with("n", ShardingValue::Null);
        assert_eq!(
            eval("${b}", &values),
            Err(EvalError::MissingValue("b".into()))
        );
        assert_eq!(eval("${n}", &values), Err(EvalError::Null("n".into())));
        assert_eq!(eval("${1 / a}", &values), Err(EvalError::DivisionByZero));
        let big = ShardingValues::single("a", ShardingValue::Int(i128::MAX));
        assert_eq!(eval("${a + 1}", &big), Err(EvalError::Overflow));
    }

    #[test]
    fn syntax_errors_give_the_character_position() {
        assert_eq!(parse_error("ds_${user_id % }").position, 16);
        assert_eq!(
            parse_error("ds_${user_id % 2").to_string(),
            "at character 17: expected an operator or `}` to close the hole opened at character 4"
        );
        assert_eq!(parse_error("${a % 0}").message, "division by zero");
        assert!(parse_error("${a.length()}")
            .message
            .contains("unknown method `length`"));
        assert!(parse_error("${'abc}").message.contains("not closed"));
        assert_eq!(parse_error("${a b}").position, 5);
    }

    #[test]
    fn lists_the_columns_it_reads_once_each() {
        let expr = InlineExpr::parse("${a % 2}_${B + a}_${Math.abs(c)}").unwrap();
        assert_eq!(expr.columns(), ["a", "b", "c"]);
        assert_eq!(expr.source(), "${a % 2}_${B + a}_${Math.abs(c)}");
    }

    #[test]
    fn derives_possible_outputs_from_remainders() {
        let outputs = |s: &str| InlineExpr::parse(s).unwrap().possible_outputs(100);
        assert_eq!(outputs("ds_${user_id % 2}").unwrap(), ["ds_0", "ds_1"]);
        assert_eq!(outputs("t_${id % 4 / 2 + 1}").unwrap(), ["t_1", "t_2"]);
        assert_eq!(
            outputs("t_${Math.abs(x.hashCode()) % 3}").unwrap(),
            ["t_0", "t_1", "t_2"]
        );
        assert_eq!(
            outputs("${a % 2}_${b % 2}").unwrap(),
            ["0_0", "0_1", "1_0", "1_1"]
        );
        assert_eq!(outputs("t_${id}"), None);
        assert_eq!(outputs("t_${id % 1000}"), None, "more than the limit");
        assert_eq!(outputs("fixed").unwrap(), ["fixed"]);
    }
}
