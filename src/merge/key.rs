//! Hashable group keys: values normalised so that two values are one [`KeyValue`] exactly
//! when [`Value::same_key`] calls them the same group (NULLs together, `1` = `1.00`, and
//! under a case-insensitive collation 'a' = 'A ').
//!
//! Hash GROUP BY, DISTINCT and COUNT(DISTINCT x) hold sets of these instead of comparing
//! every row with every group.

use bigdecimal::BigDecimal;
use chrono::NaiveDateTime;

use super::{Collation, Row, Value};

/// One column's value, normalised for hashing.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum KeyValue {
    Null,
    /// Every exact number, and floats that are finite (their exact binary value), so that
    /// `Int(1)`, `UInt(1)`, `Decimal(1.00)` and `Float(1.0)` are one key.
    Number(BigDecimal),
    /// NaN and infinities, by their bits.
    FloatBits(u64),
    /// Text as its collation compares it: lowercased when it folds case, without accents
    /// when it folds them, without trailing spaces when it pads.
    Text(String),
    Bytes(Vec<u8>),
    /// DATE and DATETIME (a date is its midnight, as [`Value::compare`] has it).
    DateTime(NaiveDateTime),
    Time(i64),
}

impl KeyValue {
    /// The key of `value` in a column compared under `collation`.
    pub fn new(value: &Value, collation: Collation) -> KeyValue {
        match value {
            Value::Null => KeyValue::Null,
            Value::Int(v) => KeyValue::Number(BigDecimal::from(*v)),
            Value::UInt(v) => KeyValue::Number(BigDecimal::from(*v)),
            Value::Decimal(d) => KeyValue::Number(d.clone()),
            Value::Float(f) => match BigDecimal::try_from(*f) {
                Ok(d) if f.is_finite() => KeyValue::Number(d),
                _ => KeyValue::FloatBits(f.to_bits()),
            },
            Value::Text(s) => {
                let s = if collation.pads() {
                    s.trim_end_matches(' ')
                } else {
                    s.as_str()
                };
                KeyValue::Text(if collation.folds_case() {
                    collation.fold(s).collect()
                } else {
                    s.to_string()
                })
            }
            Value::Bytes(b) => KeyValue::Bytes(b.clone()),
            Value::Date(d) => match d.and_hms_opt(0, 0, 0) {
                Some(midnight) => KeyValue::DateTime(midnight),
                None => KeyValue::Null,
            },
            Value::DateTime(t) => KeyValue::DateTime(*t),
            Value::Time(t) => KeyValue::Time(*t),
        }
    }
}

/// The key of a row: the normalised values of some of its columns.
pub type Key = Vec<KeyValue>;

/// The key of `row` over `columns`, each compared under its collation.
pub fn row_key(row: &Row, columns: &[(usize, Collation)]) -> Key {
    columns
        .iter()
        .map(|&(column, collation)| KeyValue::new(&row.values[column], collation))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    #[test]
    fn keys_are_equal_when_values_are_the_same_group() {
        let ci = Collation::CaseInsensitive;
        let same = |a: Value, b: Value, c| {
            assert!(a.same_key(&b, c), "{a:?} {b:?}");
            assert_eq!(KeyValue::new(&a, c), KeyValue::new(&b, c));
        };
        same(Value::Text("Abc ".into()), Value::Text("aBC".into()), ci);
        same(
            Value::Int(1),
            Value::Decimal(BigDecimal::from_str("1.00").unwrap()),
            Collation::Binary,
        );
        same(Value::UInt(7), Value::Float(7.0), Collation::Binary);
        same(Value::Null, Value::Null, ci);
        let day = chrono::NaiveDate::from_ymd_opt(2024, 2, 29).unwrap();
        same(
            Value::Date(day),
            Value::DateTime(day.and_hms_opt(0, 0, 0).unwrap()),
            Collation::Binary,
        );
    }

    #[test]
    fn binary_collation_keeps_case_apart() {
        let a = KeyValue::new(&Value::Text("a".into()), Collation::Binary);
        let b = KeyValue::new(&Value::Text("A".into()), Collation::Binary);
        assert_ne!(a, b);
        assert_ne!(KeyValue::new(&Value::Null, Collation::Binary), a);
    }

    #[test]
    fn pad_space_collations_drop_trailing_spaces_from_keys() {
        let key = |s: &str, c| KeyValue::new(&Value::Text(s.into()), c);
        assert_eq!(
            key("a ", Collation::BinaryPadSpace),
            key("a", Collation::BinaryPadSpace)
        );
        assert_ne!(
            key("A", Collation::BinaryPadSpace),
            key("a", Collation::BinaryPadSpace)
        );
        assert_ne!(
            key("a ", Collation::CaseInsensitiveNoPad),
            key("A", Collation::CaseInsensitiveNoPad)
        );
        assert_eq!(
            key("ab", Collation::CaseInsensitiveNoPad),
            key("AB", Collation::CaseInsensitiveNoPad)
        );
    }
}
