//! The value of a sharding column, as it comes out of an SQL statement or a hint, and the
//! set of column values one routing decision sees.
//!
//! Values are kept close to what the statement said (`42`, `'42'`, `4.50`, a date) and each
//! algorithm coerces them the way it needs: MOD wants an integer (and accepts `'42'`, as MySQL
//! compares a string with a number), INTERVAL wants a date-time (and accepts
//! `'2024-01-31 10:00:00'`), HASH_MOD hashes the canonical text.

use std::borrow::Cow;
use std::fmt;

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};

/// One sharding column value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ShardingValue {
    /// SQL `NULL`: no algorithm can place it.
    Null,
    /// An integer literal (wide enough for BIGINT UNSIGNED).
    Int(i128),
    /// A number with a non-zero fraction, normalised: no exponent, no `+`, no leading zeros,
    /// no trailing zeros in the fraction (`"4.5"`, `"-0.25"`). Integral numbers become [`Int`](Self::Int).
    Decimal(String),
    /// A string literal's contents.
    Text(String),
    /// A date-time (from a typed literal or a bound parameter).
    DateTime(NaiveDateTime),
    /// A date.
    Date(NaiveDate),
}

impl ShardingValue {
    /// Reads an SQL numeric literal: `42`, `-7`, `+3`, `4.50`, `.5`, `1e3`, `2.5E-1`.
    /// Integral values (`4.0`, `1e3`) become [`Int`](Self::Int); `None` when `text` is not a number.
    pub fn from_number_literal(text: &str) -> Option<Self> {
        let text = text.trim();
        let (negative, unsigned) = match text.as_bytes().first()? {
            b'-' => (true, &text[1..]),
            b'+' => (false, &text[1..]),
            _ => (false, text),
        };
        let (mantissa, exponent) = match unsigned.find(['e', 'E']) {
            Some(at) => (&unsigned[..at], unsigned[at + 1..].parse::<i64>().ok()?),
            None => (unsigned, 0),
        };
        let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if int_part.len() + frac_part.len() == 0 || !all_digits(int_part) || !all_digits(frac_part)
        {
            return None;
        }
        if exponent.abs() > 400 {
            return None;
        }
        let digits = format!("{int_part}{frac_part}");
        let point = int_part.len() as i64 + exponent;
        let (integer, fraction) = if point >= digits.len() as i64 {
            let zeros = "0".repeat((point - digits.len() as i64) as usize);
            (format!("{digits}{zeros}"), String::new())
        } else if point <= 0 {
            (
                "0".to_string(),
                format!("{}{digits}", "0".repeat((-point) as usize)),
            )
        } else {
            let (i, f) = digits.split_at(point as usize);
            (i.to_string(), f.to_string())
        };
        let integer = integer.trim_start_matches('0');
        let integer = if integer.is_empty() { "0" } else { integer };
        let fraction = fraction.trim_end_matches('0');
        let sign = if negative { "-" } else { "" };
        if fraction.is_empty() {
            return Some(match format!("{sign}{integer}").parse::<i128>() {
                Ok(value) => ShardingValue::Int(value),
                Err(_) => ShardingValue::Decimal(format!("{sign}{integer}")),
            });
        }
        Some(ShardingValue::Decimal(format!(
            "{sign}{integer}.{fraction}"
        )))
    }

    /// A string literal's contents (quotes already removed by the SQL parser).
    pub fn from_string_literal(text: &str) -> Self {
        ShardingValue::Text(text.to_string())
    }

    /// A hint value from a `/* dbmesh: ... */` comment: an integer when it reads as one
    /// (`7`), otherwise text (`ds_1`).
    pub fn from_hint(text: &str) -> Self {
        let text = text.trim();
        match text.parse::<i128>() {
            Ok(value) => ShardingValue::Int(value),
            Err(_) => ShardingValue::Text(text.to_string()),
        }
    }

    /// Whether this is SQL `NULL`.
    pub fn is_null(&self) -> bool {
        matches!(self, ShardingValue::Null)
    }

    /// The value as an exact integer: integers, and text or decimals that are integral
    /// (`'42'`, `' 42 '`). `None` for fractions, non-numeric text, dates and NULL.
    pub fn as_integer(&self) -> Option<i128> {
        match self {
            ShardingValue::Int(value) => Some(*value),
            ShardingValue::Text(text) => match Self::from_number_literal(text)? {
                ShardingValue::Int(value) => Some(value),
                _ => None,
            },
            _ => None,
        }
    }

    /// The largest integer not above the value (`4.5` → 4, `-4.5` → -5): what range
    /// algorithms use, as all their partitions have integer bounds.
    pub fn floor_integer(&self) -> Option<i128> {
        let decimal = match self {
            ShardingValue::Int(value) => return Some(*value),
            ShardingValue::Decimal(text) => Cow::Borrowed(text.as_str()),
            ShardingValue::Text(text) => match Self::from_number_literal(text)? {
                ShardingValue::Int(value) => return Some(value),
                ShardingValue::Decimal(text) => Cow::Owned(text),
                _ => return None,
            },
            _ => return None,
        };
        let (integer, _) = decimal.split_once('.')?;
        let value: i128 = integer.parse().ok()?;
        // A normalised decimal always has a non-zero fraction.
        Some(if integer.starts_with('-') {
            value - 1
        } else {
            value
        })
    }

    /// The value as a date-time: date-times, dates (at midnight) and text in ISO form
    /// (`2024-01-31`, `2024-01-31 10:00:00`, `2024-01-31T10:00:00.123`).
    pub fn as_datetime(&self) -> Option<NaiveDateTime> {
        match self {
            ShardingValue::DateTime(value) => Some(*value),
            ShardingValue::Date(date) => Some(date.and_time(NaiveTime::MIN)),
            ShardingValue::Text(text) => parse_datetime(text),
            _ => None,
        }
    }

    /// The text HASH_MOD hashes and inline expressions print: integers in decimal
    /// (`-42`), decimals normalised (`4.5`), text as is, dates `2024-01-31`, date-times
    /// `2024-01-31 10:00:00` (with `.123`, `.123456` or `.123456789` when the fraction is
    /// not zero), NULL as `NULL`.
    pub fn canonical_text(&self) -> Cow<'_, str> {
        match self {
            ShardingValue::Null => Cow::Borrowed("NULL"),
            ShardingValue::Int(value) => Cow::Owned(value.to_string()),
            ShardingValue::Decimal(text) | ShardingValue::Text(text) => Cow::Borrowed(text),
            ShardingValue::DateTime(value) => {
                Cow::Owned(value.format("%Y-%m-%d %H:%M:%S%.f").to_string())
            }
            ShardingValue::Date(value) => Cow::Owned(value.format("%Y-%m-%d").to_string()),
        }
    }
}

/// Parses ISO dates and date-times as SQL literals write them; `None` otherwise.
pub fn parse_datetime(text: &str) -> Option<NaiveDateTime> {
    let text = text.trim();
    for format in [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(value) = NaiveDateTime::parse_from_str(text, format) {
            return Some(value);
        }
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .map(|date| date.and_time(NaiveTime::MIN))
}

/// SQL-like rendering for error messages: `42`, `'abc'`, `NULL`, `'2024-01-31'`.
impl fmt::Display for ShardingValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ShardingValue::Null => f.write_str("NULL"),
            ShardingValue::Int(_) | ShardingValue::Decimal(_) => {
                f.write_str(&self.canonical_text())
            }
            _ => write!(f, "'{}'", self.canonical_text()),
        }
    }
}

impl From<i64> for ShardingValue {
    fn from(value: i64) -> Self {
        ShardingValue::Int(value.into())
    }
}

impl From<u64> for ShardingValue {
    fn from(value: u64) -> Self {
        ShardingValue::Int(value.into())
    }
}

impl From<i32> for ShardingValue {
    fn from(value: i32) -> Self {
        ShardingValue::Int(value.into())
    }
}

impl From<&str> for ShardingValue {
    fn from(value: &str) -> Self {
        ShardingValue::Text(value.to_string())
    }
}

impl From<String> for ShardingValue {
    fn from(value: String) -> Self {
        ShardingValue::Text(value)
    }
}

impl From<NaiveDate> for ShardingValue {
    fn from(value: NaiveDate) -> Self {
        ShardingValue::Date(value)
    }
}

impl From<NaiveDateTime> for ShardingValue {
    fn from(value: NaiveDateTime) -> Self {
        ShardingValue::DateTime(value)
    }
}

/// The values of the sharding columns for one routing decision, by column name.
///
/// Column names are compared ASCII case-insensitively (MySQL column names are
/// case-insensitive; PostgreSQL folds unquoted names to lower case). A handful of entries
/// at most, so lookups are a linear scan without hashing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShardingValues {
    entries: Vec<(String, ShardingValue)>,
}

impl ShardingValues {
    /// No values.
    pub fn new() -> Self {
        Self::default()
    }

    /// One column's value: what single-column algorithms get.
    pub fn single(column: &str, value: impl Into<ShardingValue>) -> Self {
        Self::new().with(column, value)
    }

    /// Adds (or replaces) a column's value, builder style.
    pub fn with(mut self, column: &str, value: impl Into<ShardingValue>) -> Self {
        self.insert(column, value);
        self
    }

    /// Adds (or replaces) a column's value.
    pub fn insert(&mut self, column: &str, value: impl Into<ShardingValue>) {
        let value = value.into();
        match self
            .entries
            .iter_mut()
            .find(|(name, _)| name.eq_ignore_ascii_case(column))
        {
            Some(entry) => entry.1 = value,
            None => self.entries.push((column.to_ascii_lowercase(), value)),
        }
    }

    /// The value of `column`, if given.
    pub fn get(&self, column: &str) -> Option<&ShardingValue> {
        self.entries
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(column))
            .map(|(_, value)| value)
    }

    /// (column, value) pairs in insertion order; column names in lower case.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &ShardingValue)> {
        self.entries
            .iter()
            .map(|(name, value)| (name.as_str(), value))
    }

    /// Number of columns with a value.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no column has a value.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn number(text: &str) -> Option<ShardingValue> {
        ShardingValue::from_number_literal(text)
    }

    #[test]
    fn number_literals_normalise_to_int_or_decimal() {
        assert_eq!(number("42"), Some(ShardingValue::Int(42)));
        assert_eq!(number("-007"), Some(ShardingValue::Int(-7)));
        assert_eq!(number("+3"), Some(ShardingValue::Int(3)));
        assert_eq!(number("4.50"), Some(ShardingValue::Decimal("4.5".into())));
        assert_eq!(number("4.0"), Some(ShardingValue::Int(4)));
        assert_eq!(number(".5"), Some(ShardingValue::Decimal("0.5".into())));
        assert_eq!(number("1e3"), Some(ShardingValue::Int(1000)));
        assert_eq!(
            number("2.5E-1"),
            Some(ShardingValue::Decimal("0.25".into()))
        );
        assert_eq!(number("-0.0"), Some(ShardingValue::Int(0)));
        assert_eq!(
            number("18446744073709551615"),
            Some(ShardingValue::Int(u64::MAX.into()))
        );
        for bad in ["", "-", "abc", "1.2.3", "1e", "0x1F", "1e999"] {
            assert_eq!(number(bad), None, "{bad}");
        }
    }

    #[test]
    fn integers_are_read_from_numeric_text_too() {
        assert_eq!(ShardingValue::from("42").as_integer(), Some(42));
        assert_eq!(ShardingValue::from(" 42 ").as_integer(), Some(42));
        assert_eq!(ShardingValue::from("4.5").as_integer(), None);
        assert_eq!(ShardingValue::from("abc").as_integer(), None);
        assert_eq!(ShardingValue::Null.as_integer(), None);
    }

    #[test]
    fn floor_rounds_fractions_down() {
        assert_eq!(number("4.5").unwrap().floor_integer(), Some(4));
        assert_eq!(number("-4.5").unwrap().floor_integer(), Some(-5));
        assert_eq!(ShardingValue::from("-0.5").floor_integer(), Some(-1));
        assert_eq!(ShardingValue::Int(7).floor_integer(), Some(7));
    }

    #[test]
    fn dates_are_read_from_iso_text() {
        let midnight = NaiveDate::from_ymd_opt(2024, 1, 31)
            .unwrap()
            .and_hms_opt(0, 0, 0)
            .unwrap();
        assert_eq!(
            ShardingValue::from("2024-01-31").as_datetime(),
            Some(midnight)
        );
        let value = ShardingValue::from("2024-01-31 10:20:30.5")
            .as_datetime()
            .unwrap();
        assert_eq!(value.to_string(), "2024-01-31 10:20:30.500");
        assert!(ShardingValue::from("2024-01-31T10:20:30")
            .as_datetime()
            .is_some());
        assert_eq!(ShardingValue::from("31/01/2024").as_datetime(), None);
        assert_eq!(ShardingValue::Int(20240131).as_datetime(), None);
    }

    #[test]
    fn canonical_text_is_what_a_dba_would_write() {
        assert_eq!(ShardingValue::Int(-42).canonical_text(), "-42");
        let dt = parse_datetime("2024-01-31 10:00:00").unwrap();
        assert_eq!(
            ShardingValue::DateTime(dt).canonical_text(),
            "2024-01-31 10:00:00"
        );
        let dt = parse_datetime("2024-01-31 10:00:00.25").unwrap();
        assert_eq!(
            ShardingValue::DateTime(dt).canonical_text(),
            "2024-01-31 10:00:00.250"
        );
        assert_eq!(ShardingValue::Date(dt.date()).to_string(), "'2024-01-31'");
        assert_eq!(ShardingValue::from("x").to_string(), "'x'");
    }

    #[test]
    fn column_lookup_ignores_case_and_replaces() {
        let mut values = ShardingValues::single("User_ID", 1i64);
        values.insert("user_id", 2i64);
        values.insert("order_id", 3i64);
        assert_eq!(values.len(), 2);
        assert_eq!(values.get("USER_ID"), Some(&ShardingValue::Int(2)));
        assert_eq!(values.iter().next().unwrap().0, "user_id");
        assert_eq!(values.get("missing"), None);
    }
}
