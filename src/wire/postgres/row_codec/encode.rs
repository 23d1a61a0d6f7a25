//! Rows encoded back into DataRow bodies, in the format the client asked for per column.

use bigdecimal::num_bigint::Sign;
use bigdecimal::BigDecimal;
use bytes::{BufMut, BytesMut};
use chrono::{Datelike, NaiveDate, NaiveDateTime, Timelike};
use postgres_protocol::types as pg;

use super::*;
use crate::error::Error;
use crate::merge::{Row, Value};

/// Appends a DataRow body (field count, then each field) for the first `columns.len()`
/// columns of `row` (pass the visible columns to drop derived ones): `raw` is copied where
/// present, `values` are encoded by the column's type OID and format otherwise (NULL for
/// [`Value::Null`]). Frame it as `D`, length, body; or as pgwire's `DataRow` with the body
/// after its 2-byte field count.
pub fn encode_data_row(row: &Row, columns: &[ColumnMeta], out: &mut BytesMut) -> Result<(), Error> {
    if row.raw.len() < columns.len() || row.values.len() < columns.len() {
        return Err(Error::Malformed(format!(
            "a merged row of {} columns written as {} columns",
            row.raw.len().min(row.values.len()),
            columns.len()
        )));
    }
    let count = i16::try_from(columns.len())
        .map_err(|_| Error::Malformed(format!("{} columns in a DataRow", columns.len())))?;
    out.put_i16(count);
    for (i, column) in columns.iter().enumerate() {
        match (&row.raw[i], &row.values[i]) {
            (Some(raw), _) => {
                out.put_i32(raw.len() as i32);
                out.put_slice(raw);
            }
            (None, Value::Null) => out.put_i32(-1),
            (None, value) => {
                let at = out.len();
                out.put_i32(0);
                match column.format {
                    Format::Text => text_form(value, column, out),
                    Format::Binary => binary_form(value, column, out),
                }
                .map_err(|p| p.at(i, column))?;
                let len = (out.len() - at - 4) as i32;
                out[at..at + 4].copy_from_slice(&len.to_be_bytes());
            }
        }
    }
    Ok(())
}

fn cannot_write(value: &Value, column: &ColumnMeta) -> Problem {
    Problem::Unsupported(format!(
        "writing {value:?} as a value of type OID {} in {:?} format",
        column.type_oid, column.format
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

/// A decimal with a scale of at least 0 (`1E+3` → `1000`).
fn non_negative_scale(d: BigDecimal) -> BigDecimal {
    if d.fractional_digit_count() < 0 {
        d.with_scale(0)
    } else {
        d
    }
}

/// Appends the text form of a computed value.
fn text_form(value: &Value, column: &ColumnMeta, out: &mut BytesMut) -> Result<(), Problem> {
    let cannot = || cannot_write(value, column);
    let text = match column.type_oid {
        INT2 | INT4 | INT8 | OID => {
            let v = integer_of(value).ok_or_else(cannot)?;
            integer_in_range(v, column)?;
            v.to_string()
        }
        NUMERIC => non_negative_scale(decimal_of(value).ok_or_else(cannot)?).to_plain_string(),
        FLOAT4 => float_text(value.as_f64().ok_or_else(cannot)?, true),
        FLOAT8 => float_text(value.as_f64().ok_or_else(cannot)?, false),
        BOOL => match integer_of(value) {
            Some(0) => "f".into(),
            Some(1) => "t".into(),
            _ => return Err(cannot()),
        },
        BYTEA => match value {
            Value::Bytes(b) => {
                let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
                format!("\\x{hex}")
            }
            _ => return Err(cannot()),
        },
        CHAR => match value {
            Value::Text(s) => s
                .chars()
                .map(|c| match u32::from(c) {
                    0x80..=0xFF => Ok(format!("\\{:03o}", u32::from(c))),
                    0..=0x7F => Ok(c.to_string()),
                    _ => Err(cannot()),
                })
                .collect::<Result<String, _>>()?,
            _ => return Err(cannot()),
        },
        DATE => match value {
            Value::Date(d) => date_form(*d),
            _ => return Err(cannot()),
        },
        TIME => match value {
            Value::Time(t) if (0..=86_400_000_000).contains(t) => {
                let a = *t as u64;
                format!(
                    "{:02}:{:02}:{:02}{}",
                    a / 3_600_000_000,
                    a / 60_000_000 % 60,
                    a / 1_000_000 % 60,
                    fraction((a % 1_000_000) as u32)
                )
            }
            _ => return Err(cannot()),
        },
        TIMESTAMP | TIMESTAMPTZ => match value {
            Value::DateTime(dt) => timestamp_form(*dt, column.type_oid == TIMESTAMPTZ),
            _ => return Err(cannot()),
        },
        _ => match value {
            Value::Text(s) => s.clone(),
            Value::Bytes(b) => String::from_utf8(b.clone()).map_err(|_| cannot())?,
            Value::Int(v) => v.to_string(),
            Value::UInt(v) => v.to_string(),
            Value::Decimal(d) => non_negative_scale(d.clone()).to_plain_string(),
            Value::Float(f) => float_text(*f, false),
            Value::Date(d) => date_form(*d),
            Value::DateTime(dt) => timestamp_form(*dt, false),
            Value::Time(_) | Value::Null => return Err(cannot()),
        },
    };
    out.put_slice(text.as_bytes());
    Ok(())
}

fn integer_in_range(v: i128, column: &ColumnMeta) -> Result<(), Problem> {
    let (min, max) = match column.type_oid {
        INT2 => (i16::MIN.into(), i16::MAX.into()),
        INT4 => (i32::MIN.into(), i32::MAX.into()),
        OID => (0, u32::MAX.into()),
        _ => (i64::MIN.into(), i64::MAX.into()),
    };
    if (min..=max).contains(&v) {
        Ok(())
    } else {
        Err(Problem::Unsupported(format!(
            "{v}, out of range for type OID {},",
            column.type_oid
        )))
    }
}

/// Appends the binary form of a computed value.
fn binary_form(value: &Value, column: &ColumnMeta, out: &mut BytesMut) -> Result<(), Problem> {
    let cannot = || cannot_write(value, column);
    match column.type_oid {
        INT2 | INT4 | INT8 | OID => {
            let v = integer_of(value).ok_or_else(cannot)?;
            integer_in_range(v, column)?;
            match column.type_oid {
                INT2 => pg::int2_to_sql(v as i16, out),
                INT4 => pg::int4_to_sql(v as i32, out),
                OID => pg::oid_to_sql(v as u32, out),
                _ => pg::int8_to_sql(v as i64, out),
            }
        }
        FLOAT4 => pg::float4_to_sql(value.as_f64().ok_or_else(cannot)? as f32, out),
        FLOAT8 => pg::float8_to_sql(value.as_f64().ok_or_else(cannot)?, out),
        BOOL => match integer_of(value) {
            Some(v @ (0 | 1)) => pg::bool_to_sql(v == 1, out),
            _ => return Err(cannot()),
        },
        NUMERIC => put_numeric(&decimal_of(value).ok_or_else(cannot)?, out).ok_or_else(cannot)?,
        BYTEA => match value {
            Value::Bytes(b) => pg::bytea_to_sql(b, out),
            _ => return Err(cannot()),
        },
        CHAR => match value {
            Value::Text(s) => {
                let mut chars = s.chars();
                match (chars.next().map(u32::from), chars.next()) {
                    (Some(c @ 0..=0xFF), None) => out.put_u8(c as u8),
                    _ => return Err(cannot()),
                }
            }
            _ => return Err(cannot()),
        },
        TEXT | VARCHAR | BPCHAR | NAME | UNKNOWN | JSON => match value {
            Value::Text(s) => pg::text_to_sql(s, out),
            _ => return Err(cannot()),
        },
        JSONB => match value {
            Value::Text(s) => {
                out.put_u8(1);
                pg::text_to_sql(s, out);
            }
            _ => return Err(cannot()),
        },
        UUID => match value {
            Value::Text(s) => pg::uuid_to_sql(uuid_bytes(s).ok_or_else(cannot)?, out),
            _ => return Err(cannot()),
        },
        DATE => match value {
            Value::Date(d) if *d == NaiveDate::MAX => pg::date_to_sql(i32::MAX, out),
            Value::Date(d) if *d == NaiveDate::MIN => pg::date_to_sql(i32::MIN, out),
            Value::Date(d) => {
                let days = (*d - epoch().date()).num_days();
                pg::date_to_sql(i32::try_from(days).map_err(|_| cannot())?, out);
            }
            _ => return Err(cannot()),
        },
        TIME => match value {
            Value::Time(t) if (0..=86_400_000_000).contains(t) => pg::time_to_sql(*t, out),
            _ => return Err(cannot()),
        },
        TIMESTAMP | TIMESTAMPTZ => match value {
            Value::DateTime(dt) if *dt == NaiveDateTime::MAX => pg::timestamp_to_sql(i64::MAX, out),
            Value::DateTime(dt) if *dt == NaiveDateTime::MIN => pg::timestamp_to_sql(i64::MIN, out),
            Value::DateTime(dt) => {
                let micros = (*dt - epoch()).num_microseconds().ok_or_else(cannot)?;
                pg::timestamp_to_sql(micros, out);
            }
            _ => return Err(cannot()),
        },
        _ => return Err(cannot()),
    }
    Ok(())
}

/// numeric's binary format of `d` as PostgreSQL writes it: no leading or trailing zero
/// digits, zero with weight 0, the display scale the decimal's scale.
pub(super) fn put_numeric(d: &BigDecimal, out: &mut BytesMut) -> Option<()> {
    let d = non_negative_scale(d.clone());
    let (n, scale) = d.as_bigint_and_exponent();
    let dscale = u16::try_from(scale).ok().filter(|s| *s <= 0x3FFF)?;
    let mut digits = n.magnitude().to_string();
    let scale = usize::from(dscale);
    let pad = (4 - scale % 4) % 4;
    digits.push_str(&"0".repeat(pad));
    let frac_groups = (scale + pad) / 4;
    let lead = (4 - digits.len() % 4) % 4;
    let digits = format!("{}{digits}", "0".repeat(lead));
    let mut groups: Vec<u16> = digits
        .as_bytes()
        .chunks(4)
        .map(|g| std::str::from_utf8(g).ok()?.parse().ok())
        .collect::<Option<_>>()?;
    let mut weight = groups.len() as i64 - frac_groups as i64 - 1;
    let leading = groups.iter().take_while(|g| **g == 0).count();
    groups.drain(..leading);
    weight -= leading as i64;
    while groups.last() == Some(&0) {
        groups.pop();
    }
    let sign = if n.sign() == Sign::Minus {
        NUMERIC_NEG
    } else {
        NUMERIC_POS
    };
    if groups.is_empty() {
        weight = 0;
    }
    out.put_u16(u16::try_from(groups.len()).ok()?);
    out.put_i16(i16::try_from(weight).ok()?);
    out.put_u16(if groups.is_empty() { NUMERIC_POS } else { sign });
    out.put_u16(dscale);
    for g in groups {
        out.put_u16(g);
    }
    Some(())
}

fn uuid_bytes(s: &str) -> Option<[u8; 16]> {
    let hex: Vec<u8> = s.bytes().filter(|c| *c != b'-').collect();
    if hex.len() != 32 {
        return None;
    }
    let mut b = [0u8; 16];
    for (i, pair) in hex.chunks(2).enumerate() {
        b[i] = u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok()?;
    }
    Some(b)
}

/// `.ffffff` without trailing zeros (none for 0), as PostgreSQL writes fractional seconds.
pub(super) fn fraction(micros: u32) -> String {
    if micros == 0 {
        return String::new();
    }
    let digits = format!("{micros:06}");
    format!(".{}", digits.trim_end_matches('0'))
}

fn date_form(d: NaiveDate) -> String {
    if d == NaiveDate::MAX {
        return "infinity".into();
    }
    if d == NaiveDate::MIN {
        return "-infinity".into();
    }
    let (year, bc) = if d.year() <= 0 {
        (1 - d.year(), " BC")
    } else {
        (d.year(), "")
    };
    format!("{year:04}-{:02}-{:02}{bc}", d.month(), d.day())
}

/// A timestamp as PostgreSQL writes it; `timestamptz` values (UTC) get the offset `+00`,
/// whatever the session's `TimeZone` (the wall-clock text differs from a single database's
/// unless the session is in UTC; the instant is the same).
fn timestamp_form(dt: NaiveDateTime, with_zone: bool) -> String {
    if dt == NaiveDateTime::MAX {
        return "infinity".into();
    }
    if dt == NaiveDateTime::MIN {
        return "-infinity".into();
    }
    let date = date_form(dt.date());
    let (date, bc) = match date.strip_suffix(" BC") {
        Some(date) => (date.to_string(), " BC"),
        None => (date, ""),
    };
    format!(
        "{date} {:02}:{:02}:{:02}{}{}{bc}",
        dt.hour(),
        dt.minute(),
        dt.second(),
        fraction(dt.nanosecond() / 1000),
        if with_zone { "+00" } else { "" }
    )
}

/// float4 / float8 text as PostgreSQL (12 and later, `extra_float_digits` 1) writes it:
/// the shortest digits that read back as the same value, positional when the decimal
/// exponent is from -4 to below 15 (6 for float4), else `1.5e+20` / `1e-05`; `NaN`,
/// `Infinity`, `-Infinity`.
pub fn float_text(f: f64, single: bool) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    let sci = if single {
        format!("{:e}", f as f32)
    } else {
        format!("{f:e}")
    };
    let (negative, mantissa) = match sci.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, sci.as_str()),
    };
    let (mantissa, exp) = mantissa.split_once('e').unwrap_or((mantissa, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let sign = if negative { "-" } else { "" };
    if digits.bytes().all(|c| c == b'0') {
        return format!("{sign}0");
    }
    let max = if single { 6 } else { 15 };
    if (-4..max).contains(&exp) {
        let len = digits.len() as i32;
        let decpt = exp + 1;
        let positional = if decpt <= 0 {
            format!("0.{}{digits}", "0".repeat(decpt.unsigned_abs() as usize))
        } else if decpt < len {
            format!(
                "{}.{}",
                &digits[..decpt as usize],
                &digits[decpt as usize..]
            )
        } else {
            format!("{digits}{}", "0".repeat((decpt - len) as usize))
        };
        format!("{sign}{positional}")
    } else {
        let exp_sign = if exp < 0 { '-' } else { '+' };
        format!("{sign}{mantissa}e{exp_sign}{:02}", exp.unsigned_abs())
    }
}
