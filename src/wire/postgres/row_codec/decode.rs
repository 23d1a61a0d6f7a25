//! DataRow messages decoded into [`Row`]s, text and binary formats.

use bigdecimal::num_bigint::BigInt;
use bigdecimal::BigDecimal;
use bytes::Bytes;
use chrono::{NaiveDate, NaiveDateTime, NaiveTime, TimeDelta};
use postgres_protocol::types as pg;

use super::*;
use crate::error::Error;
use crate::merge::{Row, Value};

/// Decodes a DataRow body (field count, then each field's length and bytes): `raw` holds
/// each column's bytes (`None` for NULL), `values` the decoded values of the columns listed
/// in `decode` ([`Value::Null`] for the others).
pub fn decode_data_row(
    body: &Bytes,
    columns: &[ColumnMeta],
    decode: &[usize],
) -> Result<Row, Error> {
    let short = || Error::Malformed("DataRow shorter than its fields".into());
    let count = body.get(..2).ok_or_else(short)?;
    let count = i16::from_be_bytes([count[0], count[1]]);
    if usize::try_from(count).ok() != Some(columns.len()) {
        return Err(Error::Malformed(format!(
            "DataRow of {count} fields for {} columns",
            columns.len()
        )));
    }
    let mut at = 2;
    let mut raw = Vec::with_capacity(columns.len());
    for _ in columns {
        let len = body.get(at..at + 4).ok_or_else(short)?;
        let len = i32::from_be_bytes([len[0], len[1], len[2], len[3]]);
        at += 4;
        if len == -1 {
            raw.push(None);
            continue;
        }
        let len = usize::try_from(len)
            .map_err(|_| Error::Malformed(format!("DataRow field length {len}")))?;
        if body.len() < at + len {
            return Err(short());
        }
        raw.push(Some(body.slice(at..at + len)));
        at += len;
    }
    if at != body.len() {
        return Err(Error::Malformed("DataRow longer than its fields".into()));
    }
    let mut values = vec![Value::Null; columns.len()];
    for &i in decode {
        let column = columns.get(i).ok_or_else(|| {
            Error::Malformed(format!(
                "column {} asked for in a row of {} columns",
                i + 1,
                columns.len()
            ))
        })?;
        if let Some(bytes) = &raw[i] {
            values[i] = match column.format {
                Format::Text => text_value(column, bytes),
                Format::Binary => binary_value(column, bytes),
            }
            .map_err(|p| p.at(i, column))?;
        }
    }
    Ok(Row { raw, values })
}

fn utf8(b: &[u8]) -> Result<&str, Problem> {
    std::str::from_utf8(b)
        .map_err(|_| malformed("invalid UTF-8 (dbmesh needs client_encoding UTF8)"))
}

fn parse<T: std::str::FromStr>(b: &[u8], what: &str) -> Result<T, Problem> {
    let s = utf8(b)?;
    s.parse()
        .map_err(|_| malformed(format_args!("{s:?} is not a valid {what}")))
}

fn not_finite(what: &str) -> Problem {
    Problem::Unsupported(format!("a numeric {what} value"))
}

/// A text-format value.
fn text_value(column: &ColumnMeta, b: &[u8]) -> Result<Value, Problem> {
    Ok(match column.type_oid {
        INT2 | INT4 | INT8 | OID => Value::Int(parse(b, "integer")?),
        NUMERIC => Value::Decimal(numeric_text(utf8(b)?)?),
        FLOAT4 => Value::Float(float_of_text::<f32>(b)?.into()),
        FLOAT8 => Value::Float(float_of_text::<f64>(b)?),
        BOOL => match b {
            b"t" => Value::Int(1),
            b"f" => Value::Int(0),
            _ => return Err(malformed("a boolean that is neither t nor f")),
        },
        BYTEA => Value::Bytes(bytea_text(b)?),
        CHAR => Value::Text(char_text(b)?),
        DATE => Value::Date(date_text(utf8(b)?)?),
        TIME => Value::Time(time_text(utf8(b)?)?),
        TIMESTAMP => Value::DateTime(timestamp_text(utf8(b)?, false)?),
        TIMESTAMPTZ => Value::DateTime(timestamp_text(utf8(b)?, true)?),
        _ => match std::str::from_utf8(b) {
            Ok(s) => Value::Text(s.to_string()),
            Err(_) => Value::Bytes(b.to_vec()),
        },
    })
}

/// A binary-format value.
fn binary_value(column: &ColumnMeta, b: &[u8]) -> Result<Value, Problem> {
    let bad = |e: Box<dyn std::error::Error + Sync + Send>| malformed(e);
    Ok(match column.type_oid {
        INT2 => Value::Int(pg::int2_from_sql(b).map_err(bad)?.into()),
        INT4 => Value::Int(pg::int4_from_sql(b).map_err(bad)?.into()),
        INT8 => Value::Int(pg::int8_from_sql(b).map_err(bad)?),
        OID => Value::Int(pg::oid_from_sql(b).map_err(bad)?.into()),
        FLOAT4 => Value::Float(pg::float4_from_sql(b).map_err(bad)?.into()),
        FLOAT8 => Value::Float(pg::float8_from_sql(b).map_err(bad)?),
        BOOL => Value::Int(pg::bool_from_sql(b).map_err(bad)?.into()),
        NUMERIC => Value::Decimal(numeric_binary(b)?),
        BYTEA => Value::Bytes(b.to_vec()),
        CHAR => match b {
            [c] => Value::Text(char::from(*c).to_string()),
            _ => return Err(malformed("a \"char\" of more than one byte")),
        },
        TEXT | VARCHAR | BPCHAR | NAME | UNKNOWN | JSON => Value::Text(utf8(b)?.to_string()),
        JSONB => match b.split_first() {
            Some((1, json)) => Value::Text(utf8(json)?.to_string()),
            _ => return Err(malformed("jsonb of an unknown version")),
        },
        UUID => Value::Text(uuid_text(&pg::uuid_from_sql(b).map_err(bad)?)),
        DATE => Value::Date(date_of_days(pg::date_from_sql(b).map_err(bad)?)?),
        TIME => Value::Time(pg::time_from_sql(b).map_err(bad)?),
        TIMESTAMP | TIMESTAMPTZ => Value::DateTime(timestamp_of_micros(
            pg::timestamp_from_sql(b).map_err(bad)?,
        )?),
        INTERVAL => {
            // microseconds, days, months
            if b.len() != 16 {
                return Err(malformed("interval of the wrong length"));
            }
            let micros = pg::int8_from_sql(&b[..8]).map_err(bad)?;
            let days = pg::int4_from_sql(&b[8..12]).map_err(bad)?;
            let months = pg::int4_from_sql(&b[12..]).map_err(bad)?;
            Value::Text(interval_text(micros, days, months))
        }
        other => {
            return Err(Problem::Unsupported(format!(
                "the binary format of type OID {other} (ask for text format)"
            )))
        }
    })
}

fn float_of_text<T: std::str::FromStr + From<f32>>(b: &[u8]) -> Result<T, Problem> {
    Ok(match b {
        b"NaN" => f32::NAN.into(),
        b"Infinity" => f32::INFINITY.into(),
        b"-Infinity" => f32::NEG_INFINITY.into(),
        _ => parse(b, "floating-point number")?,
    })
}

/// numeric text, exactly (the display scale is kept); NaN and ±Infinity are refused.
fn numeric_text(s: &str) -> Result<BigDecimal, Problem> {
    if matches!(s, "NaN" | "Infinity" | "-Infinity") {
        return Err(not_finite(s));
    }
    let digits = s.strip_prefix('-').unwrap_or(s);
    let plain = !digits.is_empty()
        && !digits.starts_with('.')
        && !digits.ends_with('.')
        && digits.bytes().filter(|&c| c == b'.').count() <= 1
        && digits.bytes().all(|c| c.is_ascii_digit() || c == b'.');
    if !plain {
        return Err(malformed(format_args!("{s:?} is not a valid numeric")));
    }
    s.parse()
        .map_err(|_| malformed(format_args!("{s:?} is not a valid numeric")))
}

pub(super) const NUMERIC_POS: u16 = 0x0000;
pub(super) const NUMERIC_NEG: u16 = 0x4000;
const NUMERIC_NAN: u16 = 0xC000;
const NUMERIC_PINF: u16 = 0xD000;
const NUMERIC_NINF: u16 = 0xF000;

/// numeric's binary format (digit count, weight of the first base-10000 digit, sign,
/// display scale, the digits), exactly.
pub(super) fn numeric_binary(b: &[u8]) -> Result<BigDecimal, Problem> {
    let word = |i: usize| {
        b.get(i..i + 2)
            .map(|w| u16::from_be_bytes([w[0], w[1]]))
            .ok_or_else(|| malformed("truncated numeric"))
    };
    let ndigits = usize::from(word(0)?);
    let weight = i64::from(word(2)? as i16);
    let sign = word(4)?;
    let dscale = word(6)?;
    match sign {
        NUMERIC_NAN => return Err(not_finite("NaN")),
        NUMERIC_PINF => return Err(not_finite("Infinity")),
        NUMERIC_NINF => return Err(not_finite("-Infinity")),
        NUMERIC_POS | NUMERIC_NEG => {}
        _ => return Err(malformed(format_args!("numeric sign 0x{sign:04x}"))),
    }
    if b.len() != 8 + 2 * ndigits {
        return Err(malformed("numeric of the wrong length"));
    }
    let mut n = BigInt::from(0);
    for i in 0..ndigits {
        let d = word(8 + 2 * i)?;
        if d >= 10_000 {
            return Err(malformed(format_args!("numeric digit {d}")));
        }
        n = n * 10_000 + d;
    }
    if sign == NUMERIC_NEG {
        n = -n;
    }
    // n * 10000^(weight - ndigits + 1)
    let exponent = 4 * (weight - ndigits as i64 + 1);
    Ok(BigDecimal::new(n, -exponent).with_scale(dscale.into()))
}

/// bytea text: hex (`\x00ff`, the default) or escape format.
fn bytea_text(b: &[u8]) -> Result<Vec<u8>, Problem> {
    if let Some(hex) = b.strip_prefix(b"\\x") {
        if hex.len() % 2 != 0 {
            return Err(malformed("odd number of hex digits in bytea"));
        }
        return hex
            .chunks(2)
            .map(|pair| {
                std::str::from_utf8(pair)
                    .ok()
                    .and_then(|p| u8::from_str_radix(p, 16).ok())
                    .ok_or_else(|| malformed("invalid hex digit in bytea"))
            })
            .collect();
    }
    unescape(b).ok_or_else(|| malformed("invalid escape in bytea"))
}

/// `\\` is a backslash, `\ooo` an octal byte, anything else itself (bytea's escape
/// format, and `"char"`'s output of bytes above 127).
fn unescape(b: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'\\' {
            out.push(b[i]);
            i += 1;
        } else if b.get(i + 1) == Some(&b'\\') {
            out.push(b'\\');
            i += 2;
        } else {
            let octal = std::str::from_utf8(b.get(i + 1..i + 4)?).ok()?;
            out.push(u8::from_str_radix(octal, 8).ok()?);
            i += 4;
        }
    }
    Some(out)
}

fn char_text(b: &[u8]) -> Result<String, Problem> {
    let bytes = unescape(b).ok_or_else(|| malformed("invalid \"char\""))?;
    Ok(bytes.into_iter().map(char::from).collect())
}

pub(super) fn epoch() -> NaiveDateTime {
    NaiveDate::from_ymd_opt(2000, 1, 1)
        .unwrap_or_default()
        .and_time(NaiveTime::MIN)
}

fn date_of_days(days: i32) -> Result<NaiveDate, Problem> {
    match days {
        i32::MAX => Ok(NaiveDate::MAX),
        i32::MIN => Ok(NaiveDate::MIN),
        d => epoch()
            .date()
            .checked_add_signed(TimeDelta::days(d.into()))
            .ok_or_else(|| Problem::Unsupported(format!("a date {d} days from 2000-01-01"))),
    }
}

fn timestamp_of_micros(micros: i64) -> Result<NaiveDateTime, Problem> {
    match micros {
        i64::MAX => Ok(NaiveDateTime::MAX),
        i64::MIN => Ok(NaiveDateTime::MIN),
        m => epoch()
            .checked_add_signed(TimeDelta::microseconds(m))
            .ok_or_else(|| Problem::Unsupported(format!("a timestamp {m} µs from 2000"))),
    }
}

fn bad_date(s: &str) -> Problem {
    malformed(format_args!(
        "{s:?} is not a date in DateStyle ISO (the only one dbmesh reads)"
    ))
}

/// Splits a trailing ` BC`.
fn strip_bc(s: &str) -> (&str, bool) {
    match s.strip_suffix(" BC") {
        Some(rest) => (rest, true),
        None => (s, false),
    }
}

/// `YYYY-MM-DD[ BC]`, `infinity`, `-infinity`.
fn date_text(s: &str) -> Result<NaiveDate, Problem> {
    match s {
        "infinity" => return Ok(NaiveDate::MAX),
        "-infinity" => return Ok(NaiveDate::MIN),
        _ => {}
    }
    let (ymd, bc) = strip_bc(s);
    let mut parts = ymd.splitn(3, '-');
    let mut next = || -> Option<u32> {
        let p = parts.next()?;
        (!p.is_empty() && p.bytes().all(|c| c.is_ascii_digit()))
            .then(|| p.parse().ok())
            .flatten()
    };
    let (y, m, d) = (next(), next(), next());
    let (Some(y), Some(m), Some(d)) = (y, m, d) else {
        return Err(bad_date(s));
    };
    let year = i32::try_from(y).map_err(|_| bad_date(s))?;
    let year = if bc { 1 - year } else { year };
    NaiveDate::from_ymd_opt(year, m, d).ok_or_else(|| bad_date(s))
}

/// `HH:MM:SS[.ffffff]` as microseconds since midnight (up to `24:00:00`).
fn time_text(s: &str) -> Result<i64, Problem> {
    let bad = || bad_date(s);
    let (hms, micros) = match s.split_once('.') {
        Some((hms, f)) => {
            if f.is_empty() || f.len() > 6 || !f.bytes().all(|c| c.is_ascii_digit()) {
                return Err(bad());
            }
            let n: i64 = f.parse().map_err(|_| bad())?;
            (hms, n * 10i64.pow(6 - f.len() as u32))
        }
        None => (s, 0),
    };
    let mut parts = hms.splitn(3, ':').map(|p| {
        (p.len() == 2 && p.bytes().all(|c| c.is_ascii_digit()))
            .then(|| p.parse::<i64>().ok())
            .flatten()
    });
    let (Some(Some(h)), Some(Some(m)), Some(Some(sec))) =
        (parts.next(), parts.next(), parts.next())
    else {
        return Err(bad());
    };
    Ok(((h * 60 + m) * 60 + sec) * 1_000_000 + micros)
}

/// `YYYY-MM-DD HH:MM:SS[.ffffff][±HH[:MM[:SS]]][ BC]`; with `with_zone`, the offset is
/// required and the result is in UTC.
fn timestamp_text(s: &str, with_zone: bool) -> Result<NaiveDateTime, Problem> {
    match s {
        "infinity" => return Ok(NaiveDateTime::MAX),
        "-infinity" => return Ok(NaiveDateTime::MIN),
        _ => {}
    }
    let (body, bc) = strip_bc(s);
    let (date, time) = body.split_once(' ').ok_or_else(|| bad_date(s))?;
    let (time, offset) = if with_zone {
        let at = time.find(['+', '-']).ok_or_else(|| bad_date(s))?;
        (
            &time[..at],
            offset_seconds(&time[at..]).ok_or_else(|| bad_date(s))?,
        )
    } else {
        (time, 0)
    };
    let date = date_text(&if bc {
        format!("{date} BC")
    } else {
        date.to_string()
    })?;
    let micros = time_text(time)?;
    let local = date
        .and_time(NaiveTime::MIN)
        .checked_add_signed(TimeDelta::microseconds(micros))
        .ok_or_else(|| bad_date(s))?;
    local
        .checked_sub_signed(TimeDelta::seconds(offset))
        .ok_or_else(|| bad_date(s))
}

/// `+05`, `-08:00`, `+05:53:28` as seconds east of UTC.
fn offset_seconds(s: &str) -> Option<i64> {
    let (sign, rest) = match s.as_bytes().first()? {
        b'+' => (1, &s[1..]),
        b'-' => (-1, &s[1..]),
        _ => return None,
    };
    let mut total = 0;
    let mut unit = 3600;
    for part in rest.split(':') {
        if part.len() != 2 || !part.bytes().all(|c| c.is_ascii_digit()) || unit == 0 {
            return None;
        }
        total += part.parse::<i64>().ok()? * unit;
        unit /= 60;
    }
    Some(sign * total)
}

fn uuid_text(b: &[u8; 16]) -> String {
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// An interval as PostgreSQL writes it with the default `IntervalStyle` postgres:
/// `1 year 2 mons 3 days 04:05:06.789`, `-1 days +02:03:00`, `00:00:00`.
fn interval_text(micros: i64, days: i32, months: i32) -> String {
    let mut out = String::new();
    let mut is_zero = true;
    let mut is_before = false;
    for (value, unit) in [(months / 12, "year"), (months % 12, "mon"), (days, "day")] {
        if value == 0 {
            continue;
        }
        if !is_zero {
            out.push(' ');
        }
        if is_before && value > 0 {
            out.push('+');
        }
        out.push_str(&format!(
            "{value} {unit}{}",
            if value == 1 { "" } else { "s" }
        ));
        is_before = value < 0;
        is_zero = false;
    }
    if is_zero || micros != 0 {
        if !is_zero {
            out.push(' ');
        }
        if micros < 0 {
            out.push('-');
        } else if is_before {
            out.push('+');
        }
        let a = micros.unsigned_abs();
        out.push_str(&format!(
            "{:02}:{:02}:{:02}{}",
            a / 3_600_000_000,
            a / 60_000_000 % 60,
            a / 1_000_000 % 60,
            fraction((a % 1_000_000) as u32)
        ));
    }
    out
}
