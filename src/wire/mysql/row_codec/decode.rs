//! Text- and binary-protocol row packets decoded into [`Row`]s.

use bigdecimal::BigDecimal;
use bytes::Bytes;
use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
use mysql_common::constants::ColumnType;
use mysql_common::io::ParseBuf;

use super::*;
use crate::error::Error;
use crate::merge::{Row, Value};

/// Decodes a text-protocol row packet: `raw` holds each column's string (without its
/// length prefix; `None` for NULL), `values` the decoded values of the columns listed in
/// `decode` ([`Value::Null`] for the others).
pub fn decode_text_row(
    payload: &Bytes,
    columns: &[ColumnMeta],
    decode: &[usize],
) -> Result<Row, Error> {
    let mut raw = Vec::with_capacity(columns.len());
    let mut buf = ParseBuf(payload);
    for (i, column) in columns.iter().enumerate() {
        if buf.0.first() == Some(&TEXT_NULL) {
            buf.skip(1);
            raw.push(None);
            continue;
        }
        let value = lenenc_str(&mut buf)
            .ok_or_else(|| malformed("truncated text-protocol row").at(i, column))?;
        raw.push(Some(payload.slice_ref(value)));
    }
    if !buf.is_empty() {
        return Err(Error::Malformed(format!(
            "text-protocol row longer than its {} columns",
            columns.len()
        )));
    }
    let values = decode_values(&raw, columns, decode, text_value)?;
    Ok(Row { raw, values })
}

/// Decodes a binary-protocol row packet (`0x00`, the NULL bitmap with offset 2, the
/// non-NULL values): `raw` holds each column's binary encoding exactly as in the packet
/// (length prefix included, `None` for NULL), `values` the decoded values of the columns
/// listed in `decode`.
pub fn decode_binary_row(
    payload: &Bytes,
    columns: &[ColumnMeta],
    decode: &[usize],
) -> Result<Row, Error> {
    let bitmap_len = (columns.len() + 9) / 8;
    if payload.first() != Some(&0) || payload.len() < 1 + bitmap_len {
        return Err(Error::Malformed(
            "binary-protocol row without its header".into(),
        ));
    }
    let bitmap = &payload[1..1 + bitmap_len];
    let mut at = 1 + bitmap_len;
    let mut raw = Vec::with_capacity(columns.len());
    for (i, column) in columns.iter().enumerate() {
        let bit = i + 2;
        if bitmap[bit / 8] & (1 << (bit % 8)) != 0 {
            raw.push(None);
            continue;
        }
        let len = binary_len(column, &payload[at..]).map_err(|p| p.at(i, column))?;
        raw.push(Some(payload.slice(at..at + len)));
        at += len;
    }
    if at != payload.len() {
        return Err(Error::Malformed(format!(
            "binary-protocol row longer than its {} columns",
            columns.len()
        )));
    }
    let values = decode_values(&raw, columns, decode, binary_value)?;
    Ok(Row { raw, values })
}

fn decode_values(
    raw: &[Option<Bytes>],
    columns: &[ColumnMeta],
    decode: &[usize],
    value_of: fn(&ColumnMeta, &[u8]) -> Result<Value, Problem>,
) -> Result<Vec<Value>, Error> {
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
            values[i] = value_of(column, bytes).map_err(|p| p.at(i, column))?;
        }
    }
    Ok(values)
}

/// A length-encoded string at the head of `buf` (`None` when truncated, or when it starts
/// with a byte that cannot start one).
fn lenenc_str<'a>(buf: &mut ParseBuf<'a>) -> Option<&'a [u8]> {
    if matches!(buf.0.first(), Some(0xFB | 0xFF)) {
        return None;
    }
    buf.checked_eat_lenenc_str()
}

/// How many bytes the binary-protocol value at the head of `buf` takes.
fn binary_len(column: &ColumnMeta, buf: &[u8]) -> Result<usize, Problem> {
    use ColumnType::*;
    let truncated = || malformed("truncated binary-protocol row");
    let len = match column.column_type {
        MYSQL_TYPE_NULL => 0,
        MYSQL_TYPE_TINY => 1,
        MYSQL_TYPE_SHORT | MYSQL_TYPE_YEAR => 2,
        MYSQL_TYPE_LONG | MYSQL_TYPE_INT24 | MYSQL_TYPE_FLOAT => 4,
        MYSQL_TYPE_LONGLONG | MYSQL_TYPE_DOUBLE => 8,
        MYSQL_TYPE_DATE | MYSQL_TYPE_NEWDATE | MYSQL_TYPE_DATETIME | MYSQL_TYPE_TIMESTAMP
        | MYSQL_TYPE_TIME => 1 + usize::from(*buf.first().ok_or_else(truncated)?),
        MYSQL_TYPE_TIMESTAMP2
        | MYSQL_TYPE_DATETIME2
        | MYSQL_TYPE_TIME2
        | MYSQL_TYPE_TYPED_ARRAY
        | MYSQL_TYPE_UNKNOWN => {
            return Err(malformed(format_args!(
                "column type {:?} cannot appear in a row",
                column.column_type
            )))
        }
        // DECIMAL, strings, BLOBs, ENUM, SET, BIT, JSON, GEOMETRY, VECTOR
        _ => {
            let mut p = ParseBuf(buf);
            lenenc_str(&mut p).ok_or_else(truncated)?;
            buf.len() - p.len()
        }
    };
    if buf.len() < len {
        return Err(truncated());
    }
    Ok(len)
}

fn ascii(b: &[u8]) -> Result<&str, Problem> {
    std::str::from_utf8(b).map_err(|_| malformed("non-ASCII bytes in a number or date"))
}

fn parse<T: std::str::FromStr>(b: &[u8], what: &str) -> Result<T, Problem> {
    let s = ascii(b)?;
    s.parse()
        .map_err(|_| malformed(format_args!("{s:?} is not a valid {what}")))
}

/// A text-protocol value.
fn text_value(column: &ColumnMeta, b: &[u8]) -> Result<Value, Problem> {
    use ColumnType::*;
    Ok(match column.column_type {
        MYSQL_TYPE_TINY | MYSQL_TYPE_SHORT | MYSQL_TYPE_INT24 | MYSQL_TYPE_LONG
        | MYSQL_TYPE_LONGLONG => {
            if column.unsigned() {
                Value::UInt(parse(b, "unsigned integer")?)
            } else {
                Value::Int(parse(b, "integer")?)
            }
        }
        MYSQL_TYPE_YEAR => Value::Int(parse(b, "year")?),
        MYSQL_TYPE_DECIMAL | MYSQL_TYPE_NEWDECIMAL => Value::Decimal(decimal(b)?),
        MYSQL_TYPE_FLOAT | MYSQL_TYPE_DOUBLE => Value::Float(parse(b, "floating-point number")?),
        MYSQL_TYPE_DATE | MYSQL_TYPE_NEWDATE => {
            let (date, zero) = text_date(ascii(b)?)?;
            Value::Date(if zero { NaiveDate::MIN } else { date })
        }
        MYSQL_TYPE_DATETIME | MYSQL_TYPE_TIMESTAMP => Value::DateTime(text_datetime(ascii(b)?)?),
        MYSQL_TYPE_TIME => Value::Time(text_time(ascii(b)?)?),
        MYSQL_TYPE_NULL => Value::Null,
        _ => bytes_value(column, b)?,
    })
}

/// A binary-protocol value (`raw` as [`binary_len`] measured it).
fn binary_value(column: &ColumnMeta, raw: &[u8]) -> Result<Value, Problem> {
    use ColumnType::*;
    let unsigned = column.unsigned();
    let mut buf = ParseBuf(raw);
    Ok(match column.column_type {
        MYSQL_TYPE_TINY if unsigned => Value::UInt(buf.eat_u8().into()),
        MYSQL_TYPE_TINY => Value::Int(buf.eat_i8().into()),
        MYSQL_TYPE_SHORT if unsigned => Value::UInt(buf.eat_u16_le().into()),
        MYSQL_TYPE_SHORT => Value::Int(buf.eat_i16_le().into()),
        MYSQL_TYPE_YEAR => Value::Int(buf.eat_u16_le().into()),
        MYSQL_TYPE_LONG | MYSQL_TYPE_INT24 if unsigned => Value::UInt(buf.eat_u32_le().into()),
        MYSQL_TYPE_LONG | MYSQL_TYPE_INT24 => Value::Int(buf.eat_i32_le().into()),
        MYSQL_TYPE_LONGLONG if unsigned => Value::UInt(buf.eat_u64_le()),
        MYSQL_TYPE_LONGLONG => Value::Int(buf.eat_i64_le()),
        MYSQL_TYPE_FLOAT => Value::Float(buf.eat_f32_le().into()),
        MYSQL_TYPE_DOUBLE => Value::Float(buf.eat_f64_le()),
        MYSQL_TYPE_DATE | MYSQL_TYPE_NEWDATE => {
            let (datetime, zero) = binary_datetime(&raw[1..])?;
            Value::Date(if zero {
                NaiveDate::MIN
            } else {
                datetime.date()
            })
        }
        MYSQL_TYPE_DATETIME | MYSQL_TYPE_TIMESTAMP => {
            let (datetime, zero) = binary_datetime(&raw[1..])?;
            Value::DateTime(if zero { zero_datetime() } else { datetime })
        }
        MYSQL_TYPE_TIME => Value::Time(binary_time(&raw[1..])?),
        MYSQL_TYPE_NULL => Value::Null,
        _ => {
            let content = lenenc_str(&mut buf).ok_or_else(|| malformed("bad length"))?;
            match column.column_type {
                MYSQL_TYPE_DECIMAL | MYSQL_TYPE_NEWDECIMAL => Value::Decimal(decimal(content)?),
                _ => bytes_value(column, content)?,
            }
        }
    })
}

/// Strings, BLOBs, BIT, JSON, GEOMETRY and the like.
fn bytes_value(column: &ColumnMeta, b: &[u8]) -> Result<Value, Problem> {
    use ColumnType::*;
    let invalid = || malformed("invalid UTF-8 in a text value");
    Ok(match column.column_type {
        MYSQL_TYPE_BIT | MYSQL_TYPE_GEOMETRY | MYSQL_TYPE_VECTOR => Value::Bytes(b.to_vec()),
        // JSON is utf8mb4 whatever the metadata says.
        MYSQL_TYPE_JSON => Value::Text(String::from_utf8(b.to_vec()).map_err(|_| invalid())?),
        _ => match column.encoding() {
            Encoding::Utf8 => Value::Text(String::from_utf8(b.to_vec()).map_err(|_| invalid())?),
            Encoding::Latin1 => Value::Text(b.iter().map(|&c| char::from(c)).collect()),
            Encoding::Binary | Encoding::Other => Value::Bytes(b.to_vec()),
        },
    })
}

/// DECIMAL text: `[-]digits[.digits]`, exactly (the scale is kept).
fn decimal(b: &[u8]) -> Result<BigDecimal, Problem> {
    let s = ascii(b)?;
    let digits = s.strip_prefix('-').unwrap_or(s);
    let plain = !digits.is_empty()
        && !digits.starts_with('.')
        && !digits.ends_with('.')
        && digits.bytes().filter(|&c| c == b'.').count() <= 1
        && digits.bytes().all(|c| c.is_ascii_digit() || c == b'.');
    if !plain {
        return Err(malformed(format_args!("{s:?} is not a valid decimal")));
    }
    s.parse()
        .map_err(|_| malformed(format_args!("{s:?} is not a valid decimal")))
}

pub(super) fn zero_datetime() -> NaiveDateTime {
    NaiveDate::MIN.and_time(NaiveTime::MIN)
}

fn zero_in_date(s: &str) -> Problem {
    Problem::Unsupported(format!("a date with a zero month or day ({s:?})"))
}

/// `YYYY-MM-DD`; `(_, true)` for the zero date.
fn text_date(s: &str) -> Result<(NaiveDate, bool), Problem> {
    let bad = || malformed(format_args!("{s:?} is not a valid date"));
    let mut parts = s.splitn(3, '-');
    let mut next = || -> Result<u32, Problem> {
        let p = parts.next().ok_or_else(bad)?;
        if p.is_empty() || !p.bytes().all(|c| c.is_ascii_digit()) {
            return Err(bad());
        }
        p.parse().map_err(|_| bad())
    };
    let (y, m, d) = (next()?, next()?, next()?);
    if (y, m, d) == (0, 0, 0) {
        return Ok((NaiveDate::MIN, true));
    }
    if m == 0 || d == 0 {
        return Err(zero_in_date(s));
    }
    let y = i32::try_from(y).map_err(|_| bad())?;
    Ok((NaiveDate::from_ymd_opt(y, m, d).ok_or_else(bad)?, false))
}

/// Fractional seconds `ffffff` (1 to 6 digits) as microseconds.
fn micros_of_fraction(f: &str) -> Option<u32> {
    if f.is_empty() || f.len() > 6 || !f.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let n: u32 = f.parse().ok()?;
    Some(n * 10u32.pow(6 - f.len() as u32))
}

/// `HH:MM:SS[.ffffff]` of a DATETIME.
fn clock(s: &str) -> Option<(u32, u32, u32, u32)> {
    let (hms, frac) = match s.split_once('.') {
        Some((hms, f)) => (hms, micros_of_fraction(f)?),
        None => (s, 0),
    };
    let mut parts = hms.splitn(3, ':').map(|p| {
        (p.len() == 2 && p.bytes().all(|c| c.is_ascii_digit()))
            .then(|| p.parse::<u32>().ok())
            .flatten()
    });
    Some((parts.next()??, parts.next()??, parts.next()??, frac))
}

/// `YYYY-MM-DD HH:MM:SS[.ffffff]`; the zero date-time as [`zero_datetime`].
fn text_datetime(s: &str) -> Result<NaiveDateTime, Problem> {
    let bad = || malformed(format_args!("{s:?} is not a valid date and time"));
    let (date, time) = s.split_once(' ').ok_or_else(bad)?;
    let (date, zero) = text_date(date)?;
    let (h, m, sec, micros) = clock(time).ok_or_else(bad)?;
    if zero {
        return if (h, m, sec, micros) == (0, 0, 0, 0) {
            Ok(zero_datetime())
        } else {
            Err(zero_in_date(s))
        };
    }
    date.and_hms_micro_opt(h, m, sec, micros).ok_or_else(bad)
}

/// `[-]H+:MM:SS[.ffffff]` as signed microseconds.
fn text_time(s: &str) -> Result<i64, Problem> {
    let bad = || malformed(format_args!("{s:?} is not a valid time"));
    let (negative, rest) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let (hms, micros) = match rest.split_once('.') {
        Some((hms, f)) => (hms, micros_of_fraction(f).ok_or_else(bad)?),
        None => (rest, 0),
    };
    let mut parts = hms.splitn(3, ':');
    let mut next = |max_len: usize| -> Result<i64, Problem> {
        let p = parts.next().ok_or_else(bad)?;
        if p.is_empty() || p.len() > max_len || !p.bytes().all(|c| c.is_ascii_digit()) {
            return Err(bad());
        }
        p.parse().map_err(|_| bad())
    };
    let (h, m, sec) = (next(9)?, next(2)?, next(2)?);
    let total = ((h * 60 + m) * 60 + sec) * 1_000_000 + i64::from(micros);
    Ok(if negative { -total } else { total })
}

/// A binary DATE / DATETIME after its length byte (0, 4, 7 or 11 bytes); `(_, true)` for
/// the zero date.
fn binary_datetime(b: &[u8]) -> Result<(NaiveDateTime, bool), Problem> {
    if !matches!(b.len(), 0 | 4 | 7 | 11) {
        return Err(malformed(format_args!(
            "binary date of {} bytes (expected 0, 4, 7 or 11)",
            b.len()
        )));
    }
    if b.is_empty() {
        return Ok((zero_datetime(), true));
    }
    let year = u16::from_le_bytes([b[0], b[1]]);
    let (month, day) = (u32::from(b[2]), u32::from(b[3]));
    let (h, m, s) = match b.len() {
        4 => (0, 0, 0),
        _ => (u32::from(b[4]), u32::from(b[5]), u32::from(b[6])),
    };
    let micros = match b.len() {
        11 => u32::from_le_bytes([b[7], b[8], b[9], b[10]]),
        _ => 0,
    };
    let text = || format!("{year:04}-{month:02}-{day:02} {h:02}:{m:02}:{s:02}.{micros:06}");
    if (year, month, day) == (0, 0, 0) {
        return if (h, m, s, micros) == (0, 0, 0, 0) {
            Ok((zero_datetime(), true))
        } else {
            Err(zero_in_date(&text()))
        };
    }
    if month == 0 || day == 0 {
        return Err(zero_in_date(&text()));
    }
    NaiveDate::from_ymd_opt(year.into(), month, day)
        .and_then(|d| d.and_hms_micro_opt(h, m, s, micros))
        .map(|dt| (dt, false))
        .ok_or_else(|| malformed(format_args!("{} is not a valid date and time", text())))
}

/// A binary TIME after its length byte (0, 8 or 12 bytes) as signed microseconds.
fn binary_time(b: &[u8]) -> Result<i64, Problem> {
    if !matches!(b.len(), 0 | 8 | 12) {
        return Err(malformed(format_args!(
            "binary time of {} bytes (expected 0, 8 or 12)",
            b.len()
        )));
    }
    if b.is_empty() {
        return Ok(0);
    }
    let negative = b[0] == 1;
    let days = i64::from(u32::from_le_bytes([b[1], b[2], b[3], b[4]]));
    let (h, m, s) = (i64::from(b[5]), i64::from(b[6]), i64::from(b[7]));
    let micros = match b.len() {
        12 => i64::from(u32::from_le_bytes([b[8], b[9], b[10], b[11]])),
        _ => 0,
    };
    let total = (((days * 24 + h) * 60 + m) * 60 + s) * 1_000_000 + micros;
    Ok(if negative { -total } else { total })
}
