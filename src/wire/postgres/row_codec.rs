//! PostgreSQL result rows on the cross-shard merge path: the RowDescription fields as the
//! merge needs them ([`ColumnMeta`]), DataRow messages decoded into [`Row`]s, and rows
//! encoded back in the format the client asked for per column.
//!
//! Only the results of statements that ran on several shards come here; single-route
//! results are pumped as bytes (`frontend.rs`). A decoded row keeps every column's bytes as
//! the backend sent them (`raw`) and decodes into [`Value`]s only the columns the merge
//! compares or aggregates; encoding copies `raw` where it is still there and writes
//! `values` (the aggregates the merge computed) by the column's type OID and format
//! otherwise. Shard queries run with the client's result formats and startup parameters, so
//! the backend's bytes are already what the client expects.
//!
//! Text values are read as PostgreSQL writes them with `DateStyle` ISO (its default) and a
//! UTF-8 `client_encoding`; other date styles are reported as malformed values. Infinite
//! dates and timestamps decode to [`NaiveDate::MAX`] / [`NaiveDate::MIN`] (and
//! [`NaiveDateTime::MAX`] / [`NaiveDateTime::MIN`]), which sort where PostgreSQL sorts them,
//! and encode back as `infinity` / `-infinity`.

use std::fmt::Display;

use bigdecimal::num_bigint::{BigInt, Sign};
use bigdecimal::BigDecimal;
use bytes::{BufMut, Bytes, BytesMut};
use chrono::{Datelike, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta, Timelike};
use pgwire::messages::data::FieldDescription;
use postgres_protocol::types as pg;

use crate::error::Error;
use crate::merge::{AvgScale, Collation, ColumnInfo, Row, Value};

pub const BOOL: u32 = 16;
pub const BYTEA: u32 = 17;
/// `"char"`, the one-byte type of the catalogs.
pub const CHAR: u32 = 18;
pub const NAME: u32 = 19;
pub const INT8: u32 = 20;
pub const INT2: u32 = 21;
pub const INT4: u32 = 23;
pub const TEXT: u32 = 25;
pub const OID: u32 = 26;
pub const JSON: u32 = 114;
pub const FLOAT4: u32 = 700;
pub const FLOAT8: u32 = 701;
pub const UNKNOWN: u32 = 705;
pub const BPCHAR: u32 = 1042;
pub const VARCHAR: u32 = 1043;
pub const DATE: u32 = 1082;
pub const TIME: u32 = 1083;
pub const TIMESTAMP: u32 = 1114;
pub const TIMESTAMPTZ: u32 = 1184;
pub const INTERVAL: u32 = 1186;
pub const NUMERIC: u32 = 1700;
pub const UUID: u32 = 2950;
pub const JSONB: u32 = 3802;

/// The format of a result column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Binary,
}

impl Format {
    /// Format code 0 or 1; `None` for any other.
    pub fn from_code(code: i16) -> Option<Format> {
        match code {
            0 => Some(Format::Text),
            1 => Some(Format::Binary),
            _ => None,
        }
    }

    /// The format of result column `column` under a Bind's result format codes: none
    /// means text for all, one applies to all, otherwise one per column.
    pub fn of_column(result_formats: &[i16], column: usize) -> Option<Format> {
        match result_formats {
            [] => Some(Format::Text),
            [one] => Format::from_code(*one),
            many => Format::from_code(*many.get(column)?),
        }
    }
}

/// One column of a result, from its RowDescription field and the format the rows come in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnMeta {
    /// The column's name, for error messages.
    pub name: String,
    pub type_oid: u32,
    pub type_modifier: i32,
    pub format: Format,
    /// The database's default collation as the caller mapped it (see
    /// [`collation_from_datcollate`]). RowDescription does not say which collation a
    /// column has, so text columns compare by the database's: the session queries
    /// `SELECT datcollate FROM pg_database WHERE datname = current_database()` once per
    /// data source and passes it here.
    pub database_collation: Collation,
}

impl ColumnMeta {
    /// A column of type `type_oid` whose values come in format code `format_code`. A
    /// RowDescription answering Describe (statement) has format 0 for every column: pass
    /// the format of the Bind instead ([`Format::of_column`]).
    pub fn new(
        name: &str,
        type_oid: u32,
        type_modifier: i32,
        format_code: i16,
        database_collation: Collation,
    ) -> Result<ColumnMeta, Error> {
        let format = Format::from_code(format_code).ok_or_else(|| {
            Error::Malformed(format!("column `{name}`: format code {format_code}"))
        })?;
        Ok(ColumnMeta {
            name: name.to_string(),
            type_oid,
            type_modifier,
            format,
            database_collation,
        })
    }

    /// From a RowDescription field (its format code included).
    pub fn from_field(
        field: &FieldDescription,
        database_collation: Collation,
    ) -> Result<ColumnMeta, Error> {
        ColumnMeta::new(
            &field.name,
            field.type_id,
            field.type_modifier,
            field.format_code,
            database_collation,
        )
    }

    /// How the merge compares this column: bytes for `bytea`, and for `name` and
    /// `"char"` (which always use the "C" collation) and `uuid`; the database's collation
    /// for `text`, `varchar`, `bpchar` and types dbmesh does not know (domains, enums,
    /// extension types, compared as their text); bytes for everything else (numbers and
    /// dates do not use it).
    pub fn collation(&self) -> Collation {
        match self.type_oid {
            TEXT | VARCHAR | BPCHAR | UNKNOWN => self.database_collation,
            BOOL | BYTEA | CHAR | NAME | INT8 | INT2 | INT4 | OID | JSON | FLOAT4 | FLOAT8
            | DATE | TIME | TIMESTAMP | TIMESTAMPTZ | INTERVAL | NUMERIC | UUID | JSONB => {
                Collation::Binary
            }
            _ => self.database_collation,
        }
    }

    /// What merging needs to know of this column: its collation; that an AVG is divided
    /// at numeric's scale; and whether PostgreSQL sums this type as numeric (int8 and
    /// numeric; int2 and int4 sum to bigint).
    pub fn column_info(&self) -> ColumnInfo {
        ColumnInfo {
            collation: self.collation(),
            avg_scale: AvgScale::PostgresNumeric,
            sum_is_decimal: matches!(self.type_oid, INT8 | NUMERIC),
        }
    }
}

/// The merge [`Collation`] that reproduces a database collation (`datcollate`), if any.
///
/// "C", "POSIX" and "C.UTF-8" order by bytes: [`Collation::Binary`], exactly. Other
/// collations (`en_US.UTF-8`, ICU locales) give `None`: they are deterministic — strings
/// are equal only when their bytes are, so [`Collation::Binary`] groups and de-duplicates
/// right — but order linguistically ('a' < 'B' < 'b'), which no merge collation does yet:
/// the caller must not merge an ORDER BY on text under them as if it were bytes.
pub fn collation_from_datcollate(datcollate: &str) -> Option<Collation> {
    matches!(
        datcollate.to_ascii_lowercase().as_str(),
        "c" | "posix" | "c.utf-8" | "c.utf8"
    )
    .then_some(Collation::Binary)
}

// ---------------------------------------------------------------------------------------
// Decoding

/// Why one column could not be decoded or encoded.
#[derive(Debug)]
enum Problem {
    /// The backend's bytes are not a value of the column's type.
    Malformed(String),
    /// A value dbmesh cannot merge or write, named.
    Unsupported(String),
}

impl Problem {
    fn at(self, index: usize, column: &ColumnMeta) -> Error {
        match self {
            Problem::Malformed(what) => Error::Malformed(format!(
                "column {} (`{}`, type OID {}) of a DataRow: {what}",
                index + 1,
                column.name,
                column.type_oid
            )),
            Problem::Unsupported(what) => Error::NotSupported(format!(
                "{what} in column {} (`{}`) of a cross-shard result",
                index + 1,
                column.name
            )),
        }
    }
}

fn malformed(what: impl Display) -> Problem {
    Problem::Malformed(what.to_string())
}

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

const NUMERIC_POS: u16 = 0x0000;
const NUMERIC_NEG: u16 = 0x4000;
const NUMERIC_NAN: u16 = 0xC000;
const NUMERIC_PINF: u16 = 0xD000;
const NUMERIC_NINF: u16 = 0xF000;

/// numeric's binary format (digit count, weight of the first base-10000 digit, sign,
/// display scale, the digits), exactly.
fn numeric_binary(b: &[u8]) -> Result<BigDecimal, Problem> {
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

fn epoch() -> NaiveDateTime {
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

// ---------------------------------------------------------------------------------------
// Encoding

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
fn put_numeric(d: &BigDecimal, out: &mut BytesMut) -> Option<()> {
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
fn fraction(micros: u32) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn meta(type_oid: u32, format: Format) -> ColumnMeta {
        ColumnMeta {
            name: "c".into(),
            type_oid,
            type_modifier: -1,
            format,
            database_collation: Collation::Binary,
        }
    }

    fn body(fields: &[Option<&[u8]>]) -> Bytes {
        let mut b = BytesMut::new();
        b.put_i16(fields.len() as i16);
        for f in fields {
            match f {
                Some(v) => {
                    b.put_i32(v.len() as i32);
                    b.put_slice(v);
                }
                None => b.put_i32(-1),
            }
        }
        b.freeze()
    }

    fn dec(s: &str) -> Value {
        Value::Decimal(BigDecimal::from_str(s).unwrap())
    }

    fn ts(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f").unwrap()
    }

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    const BIG: &str = "-12345678901234567890123456789012345.123456789012345678901234567890";

    /// (type, text as PostgreSQL 15 writes it, binary as it sends it, decoded value):
    /// captured from a server with `TimeZone` 'Asia/Kolkata' (the timestamptz texts carry
    /// +05:30; those are checked one way, see below).
    fn samples() -> Vec<(u32, &'static str, Vec<u8>, Value)> {
        let hex = |s: &str| -> Vec<u8> {
            (0..s.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
                .collect()
        };
        vec![
            (INT2, "-32768", hex("8000"), Value::Int(-32768)),
            (INT4, "2147483647", hex("7fffffff"), Value::Int(2147483647)),
            (INT8, "-9223372036854775808", hex("8000000000000000"), Value::Int(i64::MIN)),
            (OID, "4294967295", hex("ffffffff"), Value::Int(4294967295)),
            (
                NUMERIC,
                BIG,
                hex("001100084000001e007b11d722c509291a85007b11d722c5092904d2162e23340d801ed204d2162e2328"),
                dec(BIG),
            ),
            (NUMERIC, "0", hex("0000000000000000"), dec("0")),
            (NUMERIC, "0.00", hex("0000000000000002"), dec("0.00")),
            (NUMERIC, "-0.5000", hex("0001ffff400000041388"), dec("-0.5000")),
            (NUMERIC, "0.00000000000000000001", hex("0001fffb000000140001"), dec("1e-20")),
            (NUMERIC, "123456789", hex("0003000200000000000109291a85"), dec("123456789")),
            (NUMERIC, "10000", hex("00010001000000000001"), dec("10000")),
            (NUMERIC, "100.0010", hex("00020000000000040064000a"), dec("100.0010")),
            (FLOAT4, "1.1", hex("3f8ccccd"), Value::Float(f64::from(1.1f32))),
            (FLOAT4, "1.2345679e+08", hex("4ceb79a3"), Value::Float(123456792.0)),
            (FLOAT4, "1e+20", hex("60ad78ec"), Value::Float(f64::from(1e20f32))),
            (FLOAT4, "1e-07", hex("33d6bf95"), Value::Float(f64::from(1e-7f32))),
            (FLOAT8, "0.1", hex("3fb999999999999a"), Value::Float(0.1)),
            (FLOAT8, "1e+15", hex("430c6bf526340000"), Value::Float(1e15)),
            (FLOAT8, "1e-05", hex("3ee4f8b588e368f1"), Value::Float(1e-5)),
            (FLOAT8, "0.0001", hex("3f1a36e2eb1c432d"), Value::Float(0.0001)),
            (FLOAT8, "-1.5e-16", hex("bca59e05f1e2674d"), Value::Float(-1.5e-16)),
            (FLOAT8, "-Infinity", hex("fff0000000000000"), Value::Float(f64::NEG_INFINITY)),
            (FLOAT8, "1.2345678901234568e+17", hex("437b69b4ba630f35"), Value::Float(123456789012345678.0)),
            (BOOL, "t", hex("01"), Value::Int(1)),
            (BOOL, "f", hex("00"), Value::Int(0)),
            (TEXT, "abc", b"abc".to_vec(), Value::Text("abc".into())),
            (VARCHAR, "Ünïcode ✓", "Ünïcode ✓".as_bytes().to_vec(), Value::Text("Ünïcode ✓".into())),
            (BPCHAR, "ab  ", b"ab  ".to_vec(), Value::Text("ab  ".into())),
            (NAME, "nm", b"nm".to_vec(), Value::Text("nm".into())),
            (BYTEA, "\\x00ff61", hex("00ff61"), Value::Bytes(vec![0, 0xff, 0x61])),
            (BYTEA, "\\x", vec![], Value::Bytes(vec![])),
            (DATE, "2024-02-29", hex("00002279"), Value::Date(date(2024, 2, 29))),
            (DATE, "0044-03-15 BC", hex("fff49d7b"), Value::Date(date(-43, 3, 15))),
            (DATE, "infinity", hex("7fffffff"), Value::Date(NaiveDate::MAX)),
            (DATE, "-infinity", hex("80000000"), Value::Date(NaiveDate::MIN)),
            (TIME, "23:59:59.1", hex("000000141dc9a460"), Value::Time(86_399_100_000)),
            (TIME, "00:00:00", hex("0000000000000000"), Value::Time(0)),
            (TIME, "12:34:56.000001", hex("0000000a8bda1c01"), Value::Time(45_296_000_001)),
            (TIMESTAMP, "1999-12-31 23:59:59.12", hex("fffffffffff29280"), Value::DateTime(ts("1999-12-31 23:59:59.12"))),
            (
                TIMESTAMP,
                "0044-03-15 10:00:00 BC",
                hex("ff1af9e74e1f8800"),
                Value::DateTime(date(-43, 3, 15).and_hms_opt(10, 0, 0).unwrap()),
            ),
            (TIMESTAMP, "infinity", hex("7fffffffffffffff"), Value::DateTime(NaiveDateTime::MAX)),
            (TIMESTAMPTZ, "-infinity", hex("8000000000000000"), Value::DateTime(NaiveDateTime::MIN)),
            (
                UUID,
                "12345678-9abc-def0-0001-020304050607",
                hex("123456789abcdef00001020304050607"),
                Value::Text("12345678-9abc-def0-0001-020304050607".into()),
            ),
            (JSON, r#"{"a": [1, 2]}"#, br#"{"a": [1, 2]}"#.to_vec(), Value::Text(r#"{"a": [1, 2]}"#.into())),
            (
                JSONB,
                r#"{"a": [1, 2]}"#,
                [&[1u8][..], br#"{"a": [1, 2]}"#].concat(),
                Value::Text(r#"{"a": [1, 2]}"#.into()),
            ),
            (CHAR, "x", b"x".to_vec(), Value::Text("x".into())),
            (CHAR, "\\351", hex("e9"), Value::Text("é".into())),
        ]
    }

    #[test]
    fn decodes_every_type_in_both_formats() {
        for (oid, text, binary, value) in samples() {
            for (format, bytes) in [
                (Format::Text, text.as_bytes()),
                (Format::Binary, &binary[..]),
            ] {
                let columns = [meta(oid, format)];
                let b = body(&[Some(bytes), None]);
                let columns = [columns[0].clone(), meta(oid, format)];
                let row = decode_data_row(&b, &columns, &[0, 1])
                    .unwrap_or_else(|e| panic!("{oid} {text} {format:?}: {e}"));
                assert_eq!(row.values[0], value, "{oid} {text:?} {format:?}");
                assert_eq!(row.values[1], Value::Null);
                assert_eq!(row.raw[0].as_deref(), Some(bytes));
                assert_eq!(row.raw[1], None);
            }
        }
    }

    #[test]
    fn round_trips_every_type_in_both_formats_from_decoded_values() {
        for (oid, text, binary, _) in samples() {
            for (format, bytes) in [
                (Format::Text, text.as_bytes()),
                (Format::Binary, &binary[..]),
            ] {
                let columns = [meta(oid, format)];
                let b = body(&[Some(bytes)]);
                let row = decode_data_row(&b, &columns, &[0]).unwrap();
                let computed = Row {
                    raw: vec![None],
                    values: row.values.clone(),
                };
                let mut out = BytesMut::new();
                encode_data_row(&computed, &columns, &mut out).unwrap();
                assert_eq!(out.freeze(), b, "{oid} {text:?} {format:?}");
            }
        }
    }

    #[test]
    fn timestamptz_text_is_normalised_to_utc() {
        let column = [meta(TIMESTAMPTZ, Format::Text)];
        for (text, utc) in [
            ("2024-01-02 08:34:05.5+05:30", ts("2024-01-02 03:04:05.5")),
            ("2024-01-02 08:34:05+05:30", ts("2024-01-02 03:04:05")),
            ("2024-01-01 19:04:05-08", ts("2024-01-02 03:04:05")),
            (
                "0044-03-15 15:53:28+05:53:28 BC",
                date(-43, 3, 15).and_hms_opt(10, 0, 0).unwrap(),
            ),
        ] {
            let row = decode_data_row(&body(&[Some(text.as_bytes())]), &column, &[0]).unwrap();
            assert_eq!(row.values[0], Value::DateTime(utc), "{text}");
        }
        // Computed values are written in UTC; the binary form is the instant itself.
        let row = Row {
            raw: vec![None],
            values: vec![Value::DateTime(ts("2024-01-02 03:04:05.5"))],
        };
        let mut out = BytesMut::new();
        encode_data_row(&row, &column, &mut out).unwrap();
        assert_eq!(out.freeze(), body(&[Some(b"2024-01-02 03:04:05.5+00")]));
        let binary = [meta(TIMESTAMPTZ, Format::Binary)];
        let instant = decode_data_row(
            &body(&[Some(&[0x00, 0x02, 0xb0, 0xec, 0x85, 0x1d, 0x94, 0x60])]),
            &binary,
            &[0],
        )
        .unwrap();
        let mut out = BytesMut::new();
        encode_data_row(
            &Row {
                raw: vec![None],
                values: instant.values,
            },
            &binary,
            &mut out,
        )
        .unwrap();
        assert_eq!(
            out.freeze(),
            body(&[Some(&[0x00, 0x02, 0xb0, 0xec, 0x85, 0x1d, 0x94, 0x60])])
        );
    }

    #[test]
    fn intervals_are_text_in_both_formats() {
        // (binary: micros, days, months) → PostgreSQL's text, captured from a server.
        for (micros, days, months, text) in [
            (14_706_789_000, 3, 14, "1 year 2 mons 3 days 04:05:06.789"),
            (7_380_000_000, -1, 0, "-1 days +02:03:00"),
            (0, 0, 0, "00:00:00"),
            (0, 0, -14, "-1 years -2 mons"),
            (360_000_000_000, 0, 0, "100:00:00"),
            (-1_500_000, 0, 0, "-00:00:01.5"),
            (-1_000_000, 1, 0, "1 day -00:00:01"),
        ] {
            let mut b = BytesMut::new();
            b.put_i64(micros);
            b.put_i32(days);
            b.put_i32(months);
            let row = decode_data_row(&body(&[Some(&b)]), &[meta(INTERVAL, Format::Binary)], &[0])
                .unwrap();
            assert_eq!(row.values[0], Value::Text(text.into()));
            let row = decode_data_row(
                &body(&[Some(text.as_bytes())]),
                &[meta(INTERVAL, Format::Text)],
                &[0],
            )
            .unwrap();
            let mut out = BytesMut::new();
            encode_data_row(
                &Row {
                    raw: vec![None],
                    values: row.values,
                },
                &[meta(INTERVAL, Format::Text)],
                &mut out,
            )
            .unwrap();
            assert_eq!(out.freeze(), body(&[Some(text.as_bytes())]));
        }
        let e = encode_data_row(
            &Row {
                raw: vec![None],
                values: vec![Value::Text("1 day".into())],
            },
            &[meta(INTERVAL, Format::Binary)],
            &mut BytesMut::new(),
        )
        .unwrap_err();
        assert!(matches!(e, Error::NotSupported(_)), "{e}");
    }

    #[test]
    fn aggregates_are_written_in_the_column_type_and_format() {
        let columns = [
            meta(INT8, Format::Text),
            meta(NUMERIC, Format::Text),
            meta(FLOAT8, Format::Text),
            meta(INT8, Format::Binary),
            meta(NUMERIC, Format::Binary),
            meta(FLOAT8, Format::Binary),
            meta(INT4, Format::Text),
        ];
        let row = Row {
            raw: vec![None; 7],
            values: vec![
                Value::Int(-3),
                dec("12.3450"),
                Value::Float(2.5),
                dec("7"),
                Value::Int(-10000),
                Value::Float(-0.25),
                Value::Null,
            ],
        };
        let mut out = BytesMut::new();
        encode_data_row(&row, &columns, &mut out).unwrap();
        assert_eq!(
            out.freeze(),
            body(&[
                Some(b"-3"),
                Some(b"12.3450"),
                Some(b"2.5"),
                Some(&7i64.to_be_bytes()),
                Some(&[0, 1, 0, 1, 0x40, 0, 0, 0, 0, 1]),
                Some(&(-0.25f64).to_be_bytes()),
                None,
            ])
        );
        let too_big = Row {
            raw: vec![None],
            values: vec![Value::Int(1 << 40)],
        };
        let e = encode_data_row(&too_big, &columns[6..], &mut BytesMut::new()).unwrap_err();
        assert!(e.to_string().contains("out of range"), "{e}");
    }

    #[test]
    fn big_numerics_round_trip_exactly_through_the_binary_format() {
        let digits65 = "98765432109876543210987654321098765432109876543210987654321098765";
        for s in [
            digits65,
            &format!("-{}.{}", &digits65[..35], &digits65[35..]),
            "0.0001",
            "-1000000000000000000000000000.000000000000000000000000000001",
            "99999999",
            "1.10",
        ] {
            let d = BigDecimal::from_str(s).unwrap();
            let mut out = BytesMut::new();
            put_numeric(&d, &mut out).unwrap();
            let back = numeric_binary(&out).unwrap();
            assert_eq!(back.to_plain_string(), d.to_plain_string(), "{s}");
        }
    }

    #[test]
    fn numeric_nan_and_infinity_are_refused_by_name() {
        let column = [meta(NUMERIC, Format::Text)];
        let e = decode_data_row(&body(&[Some(b"NaN")]), &column, &[0]).unwrap_err();
        assert!(
            matches!(e, Error::NotSupported(_)) && e.to_string().contains("NaN"),
            "{e}"
        );
        let binary = [meta(NUMERIC, Format::Binary)];
        let e = decode_data_row(&body(&[Some(&[0, 0, 0, 0, 0xd0, 0, 0, 0])]), &binary, &[0])
            .unwrap_err();
        assert!(e.to_string().contains("Infinity"), "{e}");
        // Not decoded, it passes through.
        let row = decode_data_row(&body(&[Some(b"NaN")]), &column, &[]).unwrap();
        assert_eq!(row.raw[0].as_deref(), Some(&b"NaN"[..]));
    }

    #[test]
    fn floats_are_written_as_postgres_writes_them() {
        assert_eq!(float_text(1e15, false), "1e+15");
        assert_eq!(float_text(1e14, false), "100000000000000");
        assert_eq!(float_text(1e-5, false), "1e-05");
        assert_eq!(float_text(0.0001, false), "0.0001");
        assert_eq!(float_text(1e100, false), "1e+100");
        assert_eq!(float_text(-2.5, false), "-2.5");
        assert_eq!(float_text(0.0, false), "0");
        assert_eq!(float_text(f64::NAN, false), "NaN");
        assert_eq!(float_text(123456789.0, true), "1.2345679e+08");
        assert_eq!(float_text(123456.0, true), "123456");
        assert_eq!(float_text(f64::from(1.1f32), true), "1.1");
    }

    #[test]
    fn bytea_escape_format_is_read_too() {
        let column = [meta(BYTEA, Format::Text)];
        let row = decode_data_row(&body(&[Some(br"a\\b\000\377")]), &column, &[0]).unwrap();
        assert_eq!(
            row.values[0],
            Value::Bytes(vec![b'a', b'\\', b'b', 0, 0xff])
        );
    }

    #[test]
    fn only_requested_columns_are_decoded_and_raw_passes_through() {
        let columns = [
            meta(INT4, Format::Text),
            meta(TEXT, Format::Text),
            meta(DATE, Format::Text),
        ];
        let b = body(&[Some(b"7"), Some(b"x"), Some(b"not a date")]);
        let row = decode_data_row(&b, &columns, &[0]).unwrap();
        assert_eq!(row.values, vec![Value::Int(7), Value::Null, Value::Null]);
        let mut out = BytesMut::new();
        encode_data_row(&row, &columns, &mut out).unwrap();
        assert_eq!(out.freeze(), b);
        // Derived columns are dropped by passing the visible columns only.
        let mut out = BytesMut::new();
        encode_data_row(&row, &columns[..2], &mut out).unwrap();
        assert_eq!(out.freeze(), body(&[Some(b"7"), Some(b"x")]));
        let e = decode_data_row(&b, &columns, &[2]).unwrap_err();
        assert!(e.to_string().contains("DateStyle ISO"), "{e}");
    }

    #[test]
    fn malformed_data_rows_are_errors() {
        let columns = [meta(INT4, Format::Binary)];
        for bad in [
            &[][..],
            &[0, 2, 0, 0, 0, 4, 0, 0, 0, 1][..],
            &[0, 1, 0, 0, 0, 4, 0, 0][..],
            &[0, 1, 0, 0, 0, 2, 0, 0, 9][..],
            &[0, 1, 0xff, 0xff, 0xff, 0xfe][..],
        ] {
            assert!(
                decode_data_row(&Bytes::copy_from_slice(bad), &columns, &[]).is_err(),
                "{bad:?}"
            );
        }
        let e = decode_data_row(&body(&[Some(&[0, 0, 1])]), &columns, &[0]).unwrap_err();
        assert!(e.to_string().contains("column 1 (`c`, type OID 23)"), "{e}");
        let unknown = [meta(600, Format::Binary)];
        let e = decode_data_row(&body(&[Some(&[0; 16])]), &unknown, &[0]).unwrap_err();
        assert!(e.to_string().contains("OID 600"), "{e}");
    }

    #[test]
    fn collations_come_from_the_database_for_text_only() {
        let ci = |oid| ColumnMeta {
            database_collation: Collation::CaseInsensitive,
            ..meta(oid, Format::Text)
        };
        assert_eq!(ci(TEXT).collation(), Collation::CaseInsensitive);
        assert_eq!(
            ci(VARCHAR).column_info().collation,
            Collation::CaseInsensitive
        );
        assert_eq!(ci(BYTEA).collation(), Collation::Binary);
        assert_eq!(ci(NAME).collation(), Collation::Binary);
        assert_eq!(ci(INT4).collation(), Collation::Binary);
        assert_eq!(collation_from_datcollate("C"), Some(Collation::Binary));
        assert_eq!(
            collation_from_datcollate("C.UTF-8"),
            Some(Collation::Binary)
        );
        assert_eq!(collation_from_datcollate("en_US.UTF-8"), None);
        assert_eq!(ci(INT8).column_info().avg_scale, AvgScale::PostgresNumeric);
        assert!(ci(INT8).column_info().sum_is_decimal);
        assert!(!ci(INT4).column_info().sum_is_decimal);
        let field = FieldDescription::new("total".into(), 0, 0, NUMERIC, -1, 655_366, 1);
        let c = ColumnMeta::from_field(&field, Collation::Binary).unwrap();
        assert_eq!(
            (c.type_oid, c.type_modifier, c.format),
            (NUMERIC, 655_366, Format::Binary)
        );
        assert!(ColumnMeta::new("x", TEXT, -1, 2, Collation::Binary).is_err());
        assert_eq!(Format::of_column(&[], 3), Some(Format::Text));
        assert_eq!(Format::of_column(&[1], 3), Some(Format::Binary));
        assert_eq!(Format::of_column(&[0, 1], 1), Some(Format::Binary));
        assert_eq!(Format::of_column(&[0, 1], 2), None);
    }
}
