//! Decoded values and how the backends compare them.
//!
//! Only what merging needs: ORDER BY / GROUP BY / DISTINCT keys and aggregate inputs.
//! Comparison follows the backend: MySQL puts NULL first ascending, PostgreSQL last
//! (`NULLS FIRST/LAST` overrides either); integers and decimals compare exactly (mixed
//! integer/decimal/float compare numerically); text compares by the column's collation.

use std::cmp::Ordering;

use bigdecimal::BigDecimal;
use chrono::{NaiveDate, NaiveDateTime};

/// A decoded column value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    /// Signed integers (TINYINT .. BIGINT, int2/int4/int8).
    Int(i64),
    /// MySQL BIGINT UNSIGNED values above `i64::MAX` (and other unsigned integers).
    UInt(u64),
    /// DECIMAL / NUMERIC, exactly, with the scale the backend sent (`1.50` keeps two
    /// digits).
    Decimal(BigDecimal),
    /// FLOAT / DOUBLE / real / double precision.
    Float(f64),
    /// Character strings, compared by the column's [`Collation`].
    Text(String),
    /// Binary strings, compared bytewise.
    Bytes(Vec<u8>),
    Date(NaiveDate),
    /// TIME (MySQL's may be negative or above 24 h), in microseconds.
    Time(i64),
    /// DATETIME / TIMESTAMP; `timestamptz` normalised to UTC.
    DateTime(NaiveDateTime),
}

/// How a text column's values compare, as the backend reports the column's collation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Collation {
    /// Byte order of the UTF-8 text, trailing spaces significant (NO PAD): MySQL binary
    /// strings and NO PAD `_bin` collations, PostgreSQL "C" and "POSIX".
    #[default]
    Binary,
    /// Byte order, trailing spaces ignored (PAD SPACE: `'a'` = `'a '`): MySQL's and
    /// MariaDB's `_bin` collations (`utf8mb4_bin`, `latin1_bin`), which pad.
    BinaryPadSpace,
    /// Case-insensitive, trailing spaces ignored (PAD SPACE): the `_ci` collations that
    /// pad and whose accent rules are a language's (`latin1_swedish_ci`: `'ä'` is a letter
    /// of its own) or unknown: 'a', 'A' and 'a ' are equal, accents are not folded.
    CaseInsensitive,
    /// Case-insensitive, trailing spaces significant: the NO PAD `_ci` collations of the
    /// kind above (MariaDB's `_nopad_ci`).
    CaseInsensitiveNoPad,
    /// Case- and accent-insensitive, PAD SPACE: the generic `_ci` collations,
    /// `utf8mb4_general_ci` (MariaDB's default) and `utf8mb4_unicode_ci`, where
    /// `'café'` = `'CAFE'` (see [`compare_text`]).
    AccentInsensitive,
    /// Case- and accent-insensitive, NO PAD: MySQL 8's `utf8mb4_0900_ai_ci`, MariaDB's
    /// `utf8mb4_unicode_nopad_ci`.
    AccentInsensitiveNoPad,
}

impl Collation {
    /// Whether trailing spaces are ignored (PAD SPACE).
    pub fn pads(self) -> bool {
        matches!(
            self,
            Collation::BinaryPadSpace | Collation::CaseInsensitive | Collation::AccentInsensitive
        )
    }

    /// Whether case is ignored.
    pub fn folds_case(self) -> bool {
        !matches!(self, Collation::Binary | Collation::BinaryPadSpace)
    }

    /// Whether accents are ignored too.
    pub fn folds_accents(self) -> bool {
        matches!(
            self,
            Collation::AccentInsensitive | Collation::AccentInsensitiveNoPad
        )
    }

    /// The NO PAD twin of this collation.
    pub fn without_padding(self) -> Collation {
        match self {
            Collation::BinaryPadSpace => Collation::Binary,
            Collation::CaseInsensitive => Collation::CaseInsensitiveNoPad,
            Collation::AccentInsensitive => Collation::AccentInsensitiveNoPad,
            other => other,
        }
    }

    /// Text folded as this collation compares it, character by character (without the
    /// padding rule): lowercased when it folds case, the accents dropped when it folds them.
    pub fn fold(self, s: &str) -> impl Iterator<Item = char> + '_ {
        let accents = self.folds_accents();
        s.chars().flat_map(move |c| {
            let base = if accents { base_letter(c) } else { c };
            base.to_lowercase()
        })
    }
}

/// Where NULLs sort.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NullOrder {
    /// Before every value (MySQL ascending; PostgreSQL `NULLS FIRST`, and PostgreSQL
    /// descending by default).
    First,
    /// After every value.
    Last,
}

impl Value {
    /// Whether this is NULL.
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// Compares two non-NULL values of one column; `None` when they cannot be compared
    /// (different kinds that are not both numbers).
    pub fn compare(&self, other: &Value, collation: Collation) -> Option<Ordering> {
        use Value::*;
        match (self, other) {
            (Int(a), Int(b)) => Some(a.cmp(b)),
            (UInt(a), UInt(b)) => Some(a.cmp(b)),
            (Int(a), UInt(b)) => Some(i128::from(*a).cmp(&i128::from(*b))),
            (UInt(a), Int(b)) => Some(i128::from(*a).cmp(&i128::from(*b))),
            (Float(a), Float(b)) => a.partial_cmp(b),
            (Text(a), Text(b)) => Some(compare_text(a, b, collation)),
            (Bytes(a), Bytes(b)) => Some(a.cmp(b)),
            (Date(a), Date(b)) => Some(a.cmp(b)),
            (Time(a), Time(b)) => Some(a.cmp(b)),
            (DateTime(a), DateTime(b)) => Some(a.cmp(b)),
            (Date(a), DateTime(b)) => Some(a.and_hms_opt(0, 0, 0)?.cmp(b)),
            (DateTime(a), Date(b)) => Some(a.cmp(&b.and_hms_opt(0, 0, 0)?)),
            (a, b) => match (a.as_decimal(), b.as_decimal()) {
                (Some(a), Some(b)) => Some(a.cmp(&b)),
                _ => match (a.as_f64(), b.as_f64()) {
                    (Some(a), Some(b)) => a.partial_cmp(&b),
                    _ => None,
                },
            },
        }
    }

    /// Compares two values of one column for sorting, NULLs placed by `nulls`; values that
    /// cannot be compared are equal.
    pub fn sort_cmp(&self, other: &Value, collation: Collation, nulls: NullOrder) -> Ordering {
        match (self.is_null(), other.is_null()) {
            (true, true) => Ordering::Equal,
            (true, false) => match nulls {
                NullOrder::First => Ordering::Less,
                NullOrder::Last => Ordering::Greater,
            },
            (false, true) => match nulls {
                NullOrder::First => Ordering::Greater,
                NullOrder::Last => Ordering::Less,
            },
            (false, false) => self.compare(other, collation).unwrap_or(Ordering::Equal),
        }
    }

    /// Whether two values are the same group key / DISTINCT value (NULLs group together,
    /// as GROUP BY and DISTINCT do).
    pub fn same_key(&self, other: &Value, collation: Collation) -> bool {
        match (self.is_null(), other.is_null()) {
            (true, true) => true,
            (false, false) => self.compare(other, collation) == Some(Ordering::Equal),
            _ => false,
        }
    }

    /// The value as an exact decimal, for integers and decimals.
    pub fn as_decimal(&self) -> Option<BigDecimal> {
        match self {
            Value::Int(v) => Some(BigDecimal::from(*v)),
            Value::UInt(v) => Some(BigDecimal::from(*v)),
            Value::Decimal(d) => Some(d.clone()),
            _ => None,
        }
    }

    /// The value as a float, for every number.
    pub fn as_f64(&self) -> Option<f64> {
        use bigdecimal::ToPrimitive;
        match self {
            Value::Int(v) => Some(*v as f64),
            Value::UInt(v) => Some(*v as f64),
            Value::Decimal(d) => d.to_f64(),
            Value::Float(f) => Some(*f),
            _ => None,
        }
    }
}

/// The letter under a character's accents: the first character of its canonical
/// decomposition when the rest are combining marks (`é` → `e`, `Å` → `A`), else the
/// character itself (`ß`, `æ` and `ø` have no decomposition and stay).
fn base_letter(c: char) -> char {
    if c.is_ascii() {
        return c;
    }
    let mut base = None;
    let mut marks_only = true;
    unicode_normalization::char::decompose_canonical(c, |d| {
        if base.is_none() {
            base = Some(d);
        } else if !unicode_normalization::char::is_combining_mark(d) {
            marks_only = false;
        }
    });
    match base {
        Some(b) if marks_only => b,
        _ => c,
    }
}

/// Text comparison under `collation`. Case-insensitive compares the Unicode simple
/// lowercase of each character, which agrees with MySQL's general and unicode `_ci`
/// collations but for a few expansions (`ß` = `ss` in unicode_ci); the accent-insensitive
/// ones compare the letters under the accents, as those collations weigh `é` as `e`.
/// PAD SPACE compares the shorter string as if padded with spaces, as MySQL does (so
/// `'a\t'` sorts before `'a'`, and `'a '` equals `'a'`); NO PAD compares the strings as
/// they are.
pub fn compare_text(a: &str, b: &str, collation: Collation) -> Ordering {
    match (collation.folds_case(), collation.pads()) {
        (false, false) => a.as_bytes().cmp(b.as_bytes()),
        (false, true) => padded_cmp(a.bytes(), b.bytes(), b' '),
        (true, pads) => {
            let x = collation.fold(a);
            let y = collation.fold(b);
            if pads {
                padded_cmp(x, y, ' ')
            } else {
                x.cmp(y)
            }
        }
    }
}

/// Compares two sequences, the shorter taken as padded with `space`.
fn padded_cmp<T: Ord + Copy>(
    mut x: impl Iterator<Item = T>,
    mut y: impl Iterator<Item = T>,
    space: T,
) -> Ordering {
    loop {
        let (c, d) = match (x.next(), y.next()) {
            (None, None) => return Ordering::Equal,
            (c, d) => (c.unwrap_or(space), d.unwrap_or(space)),
        };
        if c != d {
            return c.cmp(&d);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    #[test]
    fn accent_insensitive_collations_compare_the_letters_under_the_accents() {
        use Collation::*;
        assert_eq!(
            compare_text("café", "CAFE ", AccentInsensitive),
            Ordering::Equal
        );
        assert_eq!(
            compare_text("Ångström", "angstrom", AccentInsensitiveNoPad),
            Ordering::Equal
        );
        assert_eq!(
            compare_text("cafe ", "CAFE", AccentInsensitiveNoPad),
            Ordering::Greater
        );
        assert_eq!(
            compare_text("thé", "tea", AccentInsensitive),
            Ordering::Greater
        );
        // Case-only collations keep the accents apart, and letters without a
        // decomposition stay themselves.
        assert_ne!(
            compare_text("café", "cafe", CaseInsensitive),
            Ordering::Equal
        );
        assert_ne!(
            compare_text("straße", "strase", AccentInsensitive),
            Ordering::Equal
        );
        assert!(AccentInsensitive.pads() && !AccentInsensitiveNoPad.pads());
        assert!(AccentInsensitive.folds_case() && AccentInsensitive.folds_accents());
        assert!(!CaseInsensitive.folds_accents());
    }

    #[test]
    fn numbers_compare_exactly_across_kinds() {
        let d = |s| Value::Decimal(BigDecimal::from_str(s).unwrap());
        assert_eq!(
            Value::Int(2).compare(&d("1.99"), Collation::Binary),
            Some(Ordering::Greater)
        );
        assert_eq!(
            d("12345678901234567890.000000001")
                .compare(&d("12345678901234567890"), Collation::Binary),
            Some(Ordering::Greater)
        );
        assert_eq!(
            Value::UInt(u64::MAX).compare(&Value::Int(-1), Collation::Binary),
            Some(Ordering::Greater)
        );
        assert_eq!(
            Value::Float(1.5).compare(&Value::Int(1), Collation::Binary),
            Some(Ordering::Greater)
        );
    }

    #[test]
    fn case_insensitive_text_ignores_case_and_trailing_spaces() {
        let ci = Collation::CaseInsensitive;
        assert_eq!(compare_text("a", "A", ci), Ordering::Equal);
        assert_eq!(compare_text("abc ", "ABC", ci), Ordering::Equal);
        assert_eq!(compare_text("a", "B", ci), Ordering::Less);
        assert_eq!(compare_text("a", "B", Collation::Binary), Ordering::Greater);
    }

    #[test]
    fn pad_space_pads_the_shorter_string_and_no_pad_does_not() {
        use Collation::*;
        assert_eq!(
            compare_text("open ", "open", BinaryPadSpace),
            Ordering::Equal
        );
        assert_eq!(compare_text("open ", "open", Binary), Ordering::Greater);
        assert_eq!(compare_text("Open", "open", BinaryPadSpace), Ordering::Less);
        // A tab is below a space: padded, 'a\t' < 'a' (trimming would say greater).
        assert_eq!(compare_text("a\t", "a", BinaryPadSpace), Ordering::Less);
        assert_eq!(compare_text("a\t", "A", CaseInsensitive), Ordering::Less);
        assert_eq!(
            compare_text("a ", "A", CaseInsensitiveNoPad),
            Ordering::Greater
        );
        assert_eq!(
            compare_text("ab", "AB", CaseInsensitiveNoPad),
            Ordering::Equal
        );
        assert!(BinaryPadSpace.pads() && CaseInsensitive.pads());
        assert!(!Binary.pads() && !CaseInsensitiveNoPad.pads());
    }

    #[test]
    fn nulls_sort_where_the_backend_puts_them() {
        let n = Value::Null;
        let one = Value::Int(1);
        assert_eq!(
            n.sort_cmp(&one, Collation::Binary, NullOrder::First),
            Ordering::Less
        );
        assert_eq!(
            n.sort_cmp(&one, Collation::Binary, NullOrder::Last),
            Ordering::Greater
        );
        assert!(n.same_key(&Value::Null, Collation::Binary));
    }
}
