//! Rows encoded back into text- and binary-protocol row packets for the client.

use bigdecimal::{BigDecimal, RoundingMode};
use chrono::{Datelike, NaiveDate, NaiveDateTime, NaiveTime, Timelike};
use mysql_common::constants::{ColumnFlags, ColumnType};

use super::*;
use crate::error::Error;
use crate::merge::{Row, Value};
use crate::wire::mysql::ok::put_lenenc_str;

/// Appends a text-protocol row packet payload for the first `columns.len()` columns of
/// `row` (pass the visible columns' metadata to drop derived ones): `raw` is copied where
/// present, `values` are encoded by the column's type otherwise (NULL when the value is
/// [`Value::Null`]).
pub fn encode_text_row(row: &Row, columns: &[ColumnMeta], out: &mut Vec<u8>) -> Result<(), Error> {
    check_width(row, columns)?;
    for (i, column) in columns.iter().enumerate() {
        match (&row.raw[i], &row.values[i]) {
            (Some(raw), _) => put_lenenc_str(out, raw),
            (None, Value::Null) => out.push(TEXT_NULL),
            (None, value) => {
                let text = text_form(value, column).map_err(|p| p.at(i, column))?;
                put_lenenc_str(out, &text);
            }
        }
    }
    Ok(())
}

/// Appends a binary-protocol row packet payload for the first `columns.len()` columns of
/// `row`: header, NULL bitmap, then `raw` where present and `values` encoded by the
/// column's type otherwise.
pub fn encode_binary_row(
    row: &Row,
    columns: &[ColumnMeta],
    out: &mut Vec<u8>,
) -> Result<(), Error> {
    check_width(row, columns)?;
    out.push(0);
    let bitmap_at = out.len();
    out.resize(bitmap_at + (columns.len() + 9) / 8, 0);
    for (i, column) in columns.iter().enumerate() {
        match (&row.raw[i], &row.values[i]) {
            (Some(raw), _) => out.extend_from_slice(raw),
            (None, Value::Null) => {
                let bit = i + 2;
                out[bitmap_at + bit / 8] |= 1 << (bit % 8);
            }
            (None, value) => binary_form(value, column, out).map_err(|p| p.at(i, column))?,
        }
    }
    Ok(())
}

fn check_width(row: &Row, columns: &[ColumnMeta]) -> Result<(), Error> {
    if row.raw.len() < columns.len() || row.values.len() < columns.len() {
        return Err(Error::Malformed(format!(
            "a merged row of {} columns written as {} columns",
            row.raw.len().min(row.values.len()),
            columns.len()
        )));
    }
    Ok(())
}

fn cannot_write(value: &Value, column: &ColumnMeta) -> Problem {
    Problem::Unsupported(format!(
        "writing {value:?} as a {:?} value",
        column.column_type
    ))
}

/// An integer value, from any exact number that is one.
fn integer_of(value: &Value) -> Option<i128> {
    use bigdecimal::ToPrimitive;
    match value {
        Value::Int(v) => Some((*v).into()),
        Value::UInt(v) => Some((*v).into()),
        Value::Decimal(d) if d.is_integer() => d.to_i128(),
        _ => None,
    }
}

fn decimal_of(value: &Value) -> Option<BigDecimal> {
    match value {
        Value::Float(f) => BigDecimal::try_from(*f).ok(),
        v => v.as_decimal(),
    }
}

/// The text-protocol form of a computed value in `column`.
fn text_form(value: &Value, column: &ColumnMeta) -> Result<Vec<u8>, Problem> {
    use ColumnType::*;
    let cannot = || cannot_write(value, column);
    Ok(match column.column_type {
        MYSQL_TYPE_TINY | MYSQL_TYPE_SHORT | MYSQL_TYPE_INT24 | MYSQL_TYPE_LONG
        | MYSQL_TYPE_LONGLONG => {
            let v = integer_of(value).ok_or_else(cannot)?;
            let digits = v.to_string();
            let width = column.column_length as usize;
            if column.flags.contains(ColumnFlags::ZEROFILL_FLAG) && digits.len() < width {
                format!("{digits:0>width$}").into_bytes()
            } else {
                digits.into_bytes()
            }
        }
        MYSQL_TYPE_YEAR => format!("{:04}", integer_of(value).ok_or_else(cannot)?).into_bytes(),
        MYSQL_TYPE_DECIMAL | MYSQL_TYPE_NEWDECIMAL => {
            decimal_text(&decimal_of(value).ok_or_else(cannot)?, column.decimals).into_bytes()
        }
        MYSQL_TYPE_FLOAT | MYSQL_TYPE_DOUBLE => {
            let f = value.as_f64().ok_or_else(cannot)?;
            float_text(f, column.column_type == MYSQL_TYPE_FLOAT, column.decimals).into_bytes()
        }
        MYSQL_TYPE_DATE | MYSQL_TYPE_NEWDATE => match value {
            Value::Date(d) => date_text(*d).into_bytes(),
            _ => return Err(cannot()),
        },
        MYSQL_TYPE_DATETIME | MYSQL_TYPE_TIMESTAMP => match value {
            Value::DateTime(dt) => datetime_text(*dt, column.decimals).into_bytes(),
            Value::Date(d) => {
                datetime_text(d.and_time(NaiveTime::MIN), column.decimals).into_bytes()
            }
            _ => return Err(cannot()),
        },
        MYSQL_TYPE_TIME => match value {
            Value::Time(t) => time_text(*t, column.decimals).into_bytes(),
            _ => return Err(cannot()),
        },
        MYSQL_TYPE_BIT => match value {
            Value::Bytes(b) => b.clone(),
            v => {
                let n = u64::try_from(integer_of(v).ok_or_else(cannot)?).map_err(|_| cannot())?;
                let len = (column.column_length as usize).div_ceil(8).clamp(1, 8);
                n.to_be_bytes()[8 - len..].to_vec()
            }
        },
        MYSQL_TYPE_NULL => return Err(cannot()),
        _ => match value {
            Value::Text(s) => match column.encoding() {
                Encoding::Latin1 => s
                    .chars()
                    .map(|c| u8::try_from(u32::from(c)).map_err(|_| cannot()))
                    .collect::<Result<_, _>>()?,
                _ => s.clone().into_bytes(),
            },
            Value::Bytes(b) => b.clone(),
            Value::Int(_) | Value::UInt(_) => integer_of(value)
                .ok_or_else(cannot)?
                .to_string()
                .into_bytes(),
            Value::Decimal(d) => decimal_text(d, NOT_FIXED_DECIMALS).into_bytes(),
            Value::Float(f) => float_text(*f, false, NOT_FIXED_DECIMALS).into_bytes(),
            Value::Date(d) => date_text(*d).into_bytes(),
            Value::DateTime(dt) => datetime_text(*dt, NOT_FIXED_DECIMALS).into_bytes(),
            Value::Time(t) => time_text(*t, NOT_FIXED_DECIMALS).into_bytes(),
            Value::Null => return Err(cannot()),
        },
    })
}

/// Appends the binary-protocol form of a computed value in `column`.
fn binary_form(value: &Value, column: &ColumnMeta, out: &mut Vec<u8>) -> Result<(), Problem> {
    use ColumnType::*;
    let cannot = || cannot_write(value, column);
    let width = match column.column_type {
        MYSQL_TYPE_TINY => 1,
        MYSQL_TYPE_SHORT | MYSQL_TYPE_YEAR => 2,
        MYSQL_TYPE_LONG | MYSQL_TYPE_INT24 => 4,
        MYSQL_TYPE_LONGLONG => 8,
        _ => 0,
    };
    match column.column_type {
        _ if width > 0 => {
            let v = integer_of(value).ok_or_else(cannot)?;
            let bits = 8 * width as u32;
            let fits = if column.unsigned() || column.column_type == MYSQL_TYPE_YEAR {
                v >= 0 && v < 1i128 << bits
            } else {
                v >= -(1i128 << (bits - 1)) && v < 1i128 << (bits - 1)
            };
            if !fits {
                return Err(Problem::Unsupported(format!(
                    "{v}, out of range for a {:?} value,",
                    column.column_type
                )));
            }
            out.extend_from_slice(&v.to_le_bytes()[..width]);
        }
        MYSQL_TYPE_FLOAT => {
            let f = value.as_f64().ok_or_else(cannot)?;
            out.extend_from_slice(&(f as f32).to_le_bytes());
        }
        MYSQL_TYPE_DOUBLE => {
            out.extend_from_slice(&value.as_f64().ok_or_else(cannot)?.to_le_bytes());
        }
        MYSQL_TYPE_DATE | MYSQL_TYPE_NEWDATE | MYSQL_TYPE_DATETIME | MYSQL_TYPE_TIMESTAMP => {
            let datetime = match value {
                Value::Date(d) => d.and_time(NaiveTime::MIN),
                Value::DateTime(dt) => *dt,
                _ => return Err(cannot()),
            };
            put_binary_datetime(out, datetime).ok_or_else(cannot)?;
        }
        MYSQL_TYPE_TIME => match value {
            Value::Time(t) => put_binary_time(out, *t).ok_or_else(cannot)?,
            _ => return Err(cannot()),
        },
        MYSQL_TYPE_NULL => return Err(cannot()),
        _ => put_lenenc_str(out, &text_form(value, column)?),
    }
    Ok(())
}

/// The minimal binary DATE / DATETIME (length 0 for the zero date, 4 without a time, 7
/// without microseconds, 11), as MySQL writes it.
fn put_binary_datetime(out: &mut Vec<u8>, dt: NaiveDateTime) -> Option<()> {
    if dt.date() == NaiveDate::MIN {
        out.push(0);
        return Some(());
    }
    let year = u16::try_from(dt.year()).ok()?;
    let micros = dt.nanosecond() / 1000;
    let len = if micros != 0 {
        11
    } else if (dt.hour(), dt.minute(), dt.second()) != (0, 0, 0) {
        7
    } else {
        4
    };
    out.push(len);
    out.extend_from_slice(&year.to_le_bytes());
    out.extend_from_slice(&[dt.month() as u8, dt.day() as u8]);
    if len >= 7 {
        out.extend_from_slice(&[dt.hour() as u8, dt.minute() as u8, dt.second() as u8]);
    }
    if len == 11 {
        out.extend_from_slice(&micros.to_le_bytes());
    }
    Some(())
}

/// The minimal binary TIME (length 0 for zero, 8 without microseconds, 12).
fn put_binary_time(out: &mut Vec<u8>, t: i64) -> Option<()> {
    let a = t.unsigned_abs();
    let (secs, micros) = (a / 1_000_000, (a % 1_000_000) as u32);
    let days = u32::try_from(secs / 86_400).ok()?;
    let rest = secs % 86_400;
    let (h, m, s) = (
        (rest / 3600) as u8,
        (rest / 60 % 60) as u8,
        (rest % 60) as u8,
    );
    if a == 0 {
        out.push(0);
        return Some(());
    }
    out.push(if micros == 0 { 8 } else { 12 });
    out.push(u8::from(t < 0));
    out.extend_from_slice(&days.to_le_bytes());
    out.extend_from_slice(&[h, m, s]);
    if micros != 0 {
        out.extend_from_slice(&micros.to_le_bytes());
    }
    Some(())
}

/// DECIMAL text with `decimals` digits after the point (rounded half away from zero, as
/// MySQL rounds), or the value's own scale when the column's is not fixed.
pub(super) fn decimal_text(d: &BigDecimal, decimals: u8) -> String {
    let d = if decimals < NOT_FIXED_DECIMALS {
        d.with_scale_round(decimals.into(), RoundingMode::HalfUp)
    } else if d.fractional_digit_count() < 0 {
        d.with_scale(0)
    } else {
        d.clone()
    };
    d.to_plain_string()
}

/// FLOAT / DOUBLE text as MySQL and MariaDB write it: with `decimals` digits after the
/// point when the column has a fixed scale; otherwise the shortest digits that read back
/// as the same double (at most 6 significant digits for FLOAT), in positional notation
/// unless the decimal exponent is above 15 or below -15 (`1e15`, `1.5e-16`,
/// `0.000000000000001`).
pub fn float_text(f: f64, single: bool, decimals: u8) -> String {
    let f = if single { f64::from(f as f32) } else { f };
    if decimals < NOT_FIXED_DECIMALS {
        return format!("{:.*}", usize::from(decimals), f);
    }
    let sci = if single {
        format!("{f:.5e}")
    } else {
        format!("{f:e}")
    };
    let (negative, digits, exp) = split_scientific(&sci);
    let sign = if negative { "-" } else { "" };
    if digits == "0" {
        return format!("{sign}0");
    }
    let decpt = exp + 1;
    let len = digits.len() as i32;
    if decpt >= -14 && (decpt <= 15 || len > decpt) {
        format!("{sign}{}", positional(&digits, decpt))
    } else {
        let mantissa = if digits.len() > 1 {
            format!("{}.{}", &digits[..1], &digits[1..])
        } else {
            digits
        };
        format!("{sign}{mantissa}e{exp}")
    }
}

/// `-1.2300e5` → (negative, "123", 5): the significant digits without trailing zeros and
/// the decimal exponent of the first one.
fn split_scientific(s: &str) -> (bool, String, i32) {
    let (negative, s) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let (mantissa, exp) = s.split_once('e').unwrap_or((s, "0"));
    let mut digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    while digits.len() > 1 && digits.ends_with('0') {
        digits.pop();
    }
    (negative, digits, exp.parse().unwrap_or(0))
}

/// Significant `digits` with the decimal point after `decpt` of them.
fn positional(digits: &str, decpt: i32) -> String {
    let len = digits.len() as i32;
    if decpt <= 0 {
        format!("0.{}{digits}", "0".repeat(decpt.unsigned_abs() as usize))
    } else if decpt < len {
        format!(
            "{}.{}",
            &digits[..decpt as usize],
            &digits[decpt as usize..]
        )
    } else {
        format!("{digits}{}", "0".repeat((decpt - len) as usize))
    }
}

fn date_text(d: NaiveDate) -> String {
    if d == NaiveDate::MIN {
        return "0000-00-00".into();
    }
    format!("{:04}-{:02}-{:02}", d.year(), d.month(), d.day())
}

/// `.ffffff` cut to `decimals` digits (none for 0; all six, or none when zero, for a scale
/// that is not fixed).
fn fraction(micros: u32, decimals: u8) -> String {
    match decimals {
        0 => String::new(),
        1..=6 => {
            let digits = format!("{micros:06}");
            format!(".{}", &digits[..usize::from(decimals)])
        }
        _ if micros == 0 => String::new(),
        _ => format!(".{micros:06}"),
    }
}

fn datetime_text(dt: NaiveDateTime, decimals: u8) -> String {
    if dt.date() == NaiveDate::MIN {
        return format!("0000-00-00 00:00:00{}", fraction(0, decimals));
    }
    format!(
        "{} {:02}:{:02}:{:02}{}",
        date_text(dt.date()),
        dt.hour(),
        dt.minute(),
        dt.second(),
        fraction(dt.nanosecond() / 1000, decimals)
    )
}

fn time_text(t: i64, decimals: u8) -> String {
    let a = t.unsigned_abs();
    let (secs, micros) = (a / 1_000_000, (a % 1_000_000) as u32);
    format!(
        "{}{:02}:{:02}:{:02}{}",
        if t < 0 { "-" } else { "" },
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        fraction(micros, decimals)
    )
}
