//! Exact arithmetic of merged aggregates: a SUM that keeps the kind of value the shards
//! sent, and AVG's division rounded to the scale the backend would give it.
//!
//! Integers and decimals never go through floats: a SUM over shards is as exact as the
//! backend's SUM over all rows. Float sums are floats, and may differ from one database's
//! in the last bits (the additions happen in another order), as they would between two
//! runs of a parallel plan.

use bigdecimal::num_bigint::{BigInt, Sign};
use bigdecimal::{BigDecimal, ToPrimitive};

use super::Value;

/// The scale of an exact AVG (sum and count of integers or decimals).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AvgScale {
    /// Round to this many decimals. MySQL: the SUM column's decimals plus
    /// `div_precision_increment` (4), at most 30; see [`AvgScale::mysql`].
    Fixed(u32),
    /// PostgreSQL's numeric division: at least 16 significant digits, at least the scale
    /// of the sum, at most 1000 decimals (`select_div_scale` in `numeric.c`). The scale
    /// depends on the values, not on column metadata (avg's numeric has no typmod).
    PostgresNumeric,
}

impl AvgScale {
    /// MySQL's default `div_precision_increment`.
    pub const MYSQL_DIV_PRECISION_INCREMENT: u32 = 4;

    /// MySQL's AVG scale for a SUM column with `sum_decimals` decimals (0 for integers):
    /// `AVG(int)` has 4 decimals, `AVG(DECIMAL(10,2))` 6.
    pub fn mysql(sum_decimals: u32) -> AvgScale {
        AvgScale::Fixed((sum_decimals + Self::MYSQL_DIV_PRECISION_INCREMENT).min(30))
    }
}

/// MySQL's AVG of an integer column.
impl Default for AvgScale {
    fn default() -> AvgScale {
        AvgScale::mysql(0)
    }
}

/// A running SUM of the shards' partial sums (or of distinct values).
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Sum {
    /// No non-NULL value yet: the SUM is NULL.
    #[default]
    Empty,
    /// Integers only; `unsigned` while every value was a [`Value::UInt`].
    Int {
        total: i128,
        unsigned: bool,
    },
    Decimal(BigDecimal),
    Float(f64),
}

impl Sum {
    /// Adds one value (NULL is skipped). Fails for values that are not numbers.
    pub fn add(&mut self, value: &Value) -> Result<(), String> {
        let next = match (&*self, value) {
            (_, Value::Null) => return Ok(()),
            (Sum::Empty, Value::Int(v)) => Sum::Int {
                total: i128::from(*v),
                unsigned: false,
            },
            (Sum::Empty, Value::UInt(v)) => Sum::Int {
                total: i128::from(*v),
                unsigned: true,
            },
            (Sum::Int { total, unsigned }, Value::Int(v)) => add_int(*total, *unsigned, *v, false),
            (Sum::Int { total, unsigned }, Value::UInt(v)) => add_int(*total, *unsigned, *v, true),
            (Sum::Float(total), v) => Sum::Float(total + float(v)?),
            (current, Value::Float(v)) => Sum::Float(current.to_f64() + v),
            (current, v) => {
                let d = v.as_decimal().ok_or_else(|| not_a_number(v))?;
                Sum::Decimal(current.exact().unwrap_or_default() + d)
            }
        };
        *self = next;
        Ok(())
    }

    /// The merged SUM, of the kind the shards sent: integers stay integers unless
    /// `as_decimal` or the total does not fit 64 bits.
    pub fn value(&self, as_decimal: bool) -> Value {
        match self {
            Sum::Empty => Value::Null,
            Sum::Int { total, .. } if as_decimal => Value::Decimal(BigDecimal::from(*total)),
            Sum::Int {
                total,
                unsigned: true,
            } => u64::try_from(*total)
                .map(Value::UInt)
                .unwrap_or_else(|_| Value::Decimal(BigDecimal::from(*total))),
            Sum::Int { total, .. } => i64::try_from(*total)
                .map(Value::Int)
                .unwrap_or_else(|_| Value::Decimal(BigDecimal::from(*total))),
            Sum::Decimal(d) => Value::Decimal(d.clone()),
            Sum::Float(f) => Value::Float(*f),
        }
    }

    /// The sum as an exact decimal (`None` when empty or a float).
    fn exact(&self) -> Option<BigDecimal> {
        match self {
            Sum::Int { total, .. } => Some(BigDecimal::from(*total)),
            Sum::Decimal(d) => Some(d.clone()),
            Sum::Empty | Sum::Float(_) => None,
        }
    }

    fn to_f64(&self) -> f64 {
        match self {
            Sum::Empty => 0.0,
            Sum::Int { total, .. } => *total as f64,
            Sum::Decimal(d) => d.to_f64().unwrap_or(f64::NAN),
            Sum::Float(f) => *f,
        }
    }
}

fn add_int(total: i128, unsigned: bool, v: impl Into<i128>, v_unsigned: bool) -> Sum {
    let v = v.into();
    match total.checked_add(v) {
        Some(total) => Sum::Int {
            total,
            unsigned: unsigned && v_unsigned,
        },
        None => Sum::Decimal(BigDecimal::from(total) + BigDecimal::from(v)),
    }
}

fn float(v: &Value) -> Result<f64, String> {
    v.as_f64().ok_or_else(|| not_a_number(v))
}

fn not_a_number(v: &Value) -> String {
    format!("cannot add {v:?}: not a number")
}

/// AVG = `sum / count`: NULL when `count` is 0 or the sum is NULL, a float for a float
/// sum, else the exact quotient rounded half away from zero (as MySQL's DECIMAL and
/// PostgreSQL's numeric division round) to the scale `scale` gives.
pub fn average(sum: &Sum, count: u64, scale: AvgScale) -> Value {
    if count == 0 {
        return Value::Null;
    }
    match sum {
        Sum::Empty => Value::Null,
        Sum::Float(f) => Value::Float(f / count as f64),
        exact => {
            let total = exact.exact().unwrap_or_default();
            let scale = match scale {
                AvgScale::Fixed(s) => i64::from(s),
                AvgScale::PostgresNumeric => postgres_div_scale(&total, &BigDecimal::from(count)),
            };
            Value::Decimal(divide_rounded(&total, &BigInt::from(count), scale))
        }
    }
}

/// `num / den` (`den` > 0) rounded half away from zero to `scale` decimals, exactly.
fn divide_rounded(num: &BigDecimal, den: &BigInt, scale: i64) -> BigDecimal {
    let (digits, num_scale) = num.as_bigint_and_exponent();
    // num = digits * 10^-num_scale; the quotient's digits are num * 10^scale / den.
    let shift = scale - num_scale;
    let (numerator, denominator) = if shift >= 0 {
        (digits * ten_to(shift), den.clone())
    } else {
        (digits, den * ten_to(-shift))
    };
    let mut quotient = &numerator / &denominator;
    let remainder = &numerator % &denominator;
    if remainder.magnitude() * 2u32 >= *denominator.magnitude() {
        quotient += match numerator.sign() {
            Sign::Minus => BigInt::from(-1),
            _ => BigInt::from(1),
        };
    }
    BigDecimal::new(quotient, scale)
}

fn ten_to(exponent: i64) -> BigInt {
    BigInt::from(10u32).pow(exponent as u32)
}

/// PostgreSQL's `select_div_scale`: enough decimals for 16 significant digits of the
/// quotient (estimated from the leading base-10000 digits), at least the scales of both
/// operands, between 0 and 1000.
fn postgres_div_scale(num: &BigDecimal, den: &BigDecimal) -> i64 {
    const NUMERIC_MIN_SIG_DIGITS: i64 = 16;
    const DEC_DIGITS: i64 = 4;
    let (weight1, first1) = base10000_lead(num);
    let (weight2, first2) = base10000_lead(den);
    let mut qweight = weight1 - weight2;
    if first1 <= first2 {
        qweight -= 1;
    }
    let scale = NUMERIC_MIN_SIG_DIGITS - qweight * DEC_DIGITS;
    scale
        .max(num.fractional_digit_count())
        .max(den.fractional_digit_count())
        .clamp(0, 1000)
}

/// The weight (power of 10000) and value of the first non-zero base-10000 digit of `v`,
/// as PostgreSQL's numeric stores it; `(0, 0)` for zero.
fn base10000_lead(v: &BigDecimal) -> (i64, u32) {
    let (digits, scale) = v.as_bigint_and_exponent();
    let decimal = digits.magnitude().to_str_radix(10);
    if decimal == "0" {
        return (0, 0);
    }
    // Position (power of ten) of the leading decimal digit, and its base-10000 group.
    let lead = decimal.len() as i64 - 1 - scale;
    let weight = lead.div_euclid(DEC);
    let width = (lead - weight * DEC + 1) as usize;
    let first: String = decimal
        .chars()
        .chain(std::iter::repeat('0'))
        .take(width)
        .collect();
    (weight, first.parse().unwrap_or(0))
}

const DEC: i64 = 4;

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn dec(s: &str) -> BigDecimal {
        BigDecimal::from_str(s).unwrap()
    }

    fn sum_of(values: &[Value]) -> Sum {
        let mut sum = Sum::Empty;
        for v in values {
            sum.add(v).unwrap();
        }
        sum
    }

    #[test]
    fn integer_sums_stay_integers_until_they_overflow() {
        let sum = sum_of(&[Value::Int(i64::MAX), Value::Null, Value::Int(-1)]);
        assert_eq!(sum.value(false), Value::Int(i64::MAX - 1));
        let big = sum_of(&[Value::Int(i64::MAX), Value::Int(i64::MAX)]);
        assert_eq!(
            big.value(false),
            Value::Decimal(dec("18446744073709551614"))
        );
        assert_eq!(
            sum_of(&[Value::UInt(u64::MAX)]).value(false),
            Value::UInt(u64::MAX)
        );
        assert_eq!(sum.value(true), Value::Decimal(dec("9223372036854775806")));
    }

    #[test]
    fn decimal_sums_are_exact_and_keep_the_scale() {
        let sum = sum_of(&[Value::Decimal(dec("0.10")), Value::Decimal(dec("0.20"))]);
        let Value::Decimal(d) = sum.value(false) else {
            panic!("not a decimal")
        };
        assert_eq!(d.to_string(), "0.30");
    }

    #[test]
    fn sums_of_nothing_are_null_and_text_is_refused() {
        assert_eq!(sum_of(&[Value::Null]).value(false), Value::Null);
        assert!(Sum::Empty.add(&Value::Text("x".into())).is_err());
    }

    #[test]
    fn mysql_avg_has_four_more_decimals_than_the_sum() {
        let avg = average(&Sum::Decimal(dec("2")), 3, AvgScale::mysql(0));
        assert_eq!(avg, Value::Decimal(dec("0.6667")));
        let Value::Decimal(d) = average(&Sum::Decimal(dec("10.00")), 4, AvgScale::mysql(2)) else {
            panic!("not a decimal")
        };
        assert_eq!(d.to_string(), "2.500000");
        // Half away from zero, also below zero.
        let neg = average(&Sum::Decimal(dec("-1")), 8, AvgScale::Fixed(2));
        assert_eq!(neg, Value::Decimal(dec("-0.13")));
    }

    #[test]
    fn postgres_avg_keeps_sixteen_significant_digits() {
        let text = |sum: Sum, n| match average(&sum, n, AvgScale::PostgresNumeric) {
            Value::Decimal(d) => d.to_string(),
            other => panic!("{other:?}"),
        };
        let int = |v| Sum::Int {
            total: v,
            unsigned: false,
        };
        // What `SELECT avg(x)` prints over these sums and counts.
        assert_eq!(text(int(3), 2), "1.5000000000000000");
        assert_eq!(text(int(1), 1), "1.00000000000000000000");
        assert_eq!(text(int(2), 3), "0.66666666666666666667");
        assert_eq!(text(int(123456), 2), "61728.000000000000");
        assert_eq!(
            text(Sum::Decimal(dec("1.123456789012345678901")), 1).len(),
            23
        );
    }

    #[test]
    fn avg_of_nothing_is_null_and_of_floats_a_float() {
        assert_eq!(average(&Sum::Empty, 0, AvgScale::mysql(0)), Value::Null);
        assert_eq!(
            average(&Sum::Float(3.0), 2, AvgScale::PostgresNumeric),
            Value::Float(1.5)
        );
    }
}
