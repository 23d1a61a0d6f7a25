//! MySQL result rows on the cross-shard merge path: the column definitions as the merge
//! needs them ([`ColumnMeta`]), text- and binary-protocol row packets decoded into
//! [`Row`]s, and rows encoded back for the client.
//!
//! Only the results of statements that ran on several shards come here; single-route
//! results are relayed as bytes (`relay.rs`). A decoded row keeps every column's bytes as
//! the backend sent them (`raw`) and decodes into [`Value`]s only the columns the merge
//! compares or aggregates. Encoding copies `raw` where it is still there and writes
//! `values` (the aggregates the merge computed) by the column's type otherwise. Backend
//! connections are opened with the client's capabilities and collation, so the backend's
//! bytes are already what the client expects and the first shard's column definitions
//! describe the merged result too (SUM is DECIMAL on every shard already).
//!
//! Values are decoded by hand (with `mysql_common`'s [`ParseBuf`] for the primitives)
//! rather than with `mysql_common`'s `Value` deserializer: that one panics on column types
//! it does not expect in a row, and a backend must not be able to do that to a connection
//! task; its text-protocol values are undecoded bytes anyway.
//!
//! Zero dates (`0000-00-00`, which MySQL sorts before every date) decode to
//! [`NaiveDate::MIN`] (with midnight for DATETIME) and encode back as zero dates.

use std::fmt::Display;

use bigdecimal::{BigDecimal, RoundingMode};
use bytes::Bytes;
use chrono::{Datelike, NaiveDate, NaiveDateTime, NaiveTime, Timelike};
use mysql_common::collations::{Collation as ServerCollation, CollationId};
use mysql_common::constants::{ColumnFlags, ColumnType};
use mysql_common::io::ParseBuf;

use super::ok::{put_lenenc_int, put_lenenc_str};
use crate::error::Error;
use crate::merge::{AvgScale, Collation, ColumnInfo, Row, Value};

/// The `binary` character set / collation id.
pub const BINARY_COLLATION_ID: u16 = 63;

/// `decimals` of a column whose number of decimals is not fixed (DOUBLE without a scale,
/// strings): MySQL's `NOT_FIXED_DEC`.
pub const NOT_FIXED_DECIMALS: u8 = 31;

/// NULL in a text-protocol row.
const TEXT_NULL: u8 = 0xFB;

/// One column of a result, from its column-definition packet.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnMeta {
    /// The column-definition payload as the backend sent it: what the client gets.
    pub definition: Bytes,
    /// The column's name (its alias), for error messages.
    pub name: String,
    pub column_type: ColumnType,
    pub flags: ColumnFlags,
    /// Character set / collation id of the values *as sent*. For text columns MySQL and
    /// MariaDB report the connection's `character_set_results` here (the column's own
    /// collation shows only as the BINARY flag of `_bin` collations); `63` (binary) for
    /// binary strings, numbers and temporal types.
    pub collation_id: u16,
    pub column_length: u32,
    /// Digits after the decimal point (DECIMAL scale, fractional seconds precision), or
    /// [`NOT_FIXED_DECIMALS`].
    pub decimals: u8,
    /// MariaDB extended metadata (when the connection negotiated
    /// `MARIADB_CLIENT_EXTENDED_METADATA`): the data type name (`json`, `uuid`, `inet6`,
    /// a geometry type) ...
    pub mariadb_type_name: Option<String>,
    /// ... and the format name (`json` for JSON columns).
    pub mariadb_format: Option<String>,
    /// Where the fixed-length fields (character set onwards) start in `definition`.
    fixed_at: usize,
}

impl ColumnMeta {
    /// Reads a protocol-41 column-definition payload. `mariadb_extended_metadata`: whether
    /// the connection negotiated MariaDB's extended metadata, which adds a field after
    /// `org_name` (`mysql_common`'s `Column` does not know it, hence the parser here).
    pub fn parse(definition: Bytes, mariadb_extended_metadata: bool) -> Result<ColumnMeta, Error> {
        let short = || Error::Malformed("column definition packet too short".into());
        let mut buf = ParseBuf(&definition);
        // catalog, schema, table, org_table
        for _ in 0..4 {
            buf.checked_eat_lenenc_str().ok_or_else(short)?;
        }
        let name =
            String::from_utf8_lossy(buf.checked_eat_lenenc_str().ok_or_else(short)?).into_owned();
        buf.checked_eat_lenenc_str().ok_or_else(short)?; // org_name
        let (mut mariadb_type_name, mut mariadb_format) = (None, None);
        if mariadb_extended_metadata {
            let mut ext = ParseBuf(buf.checked_eat_lenenc_str().ok_or_else(short)?);
            while !ext.is_empty() {
                let key = ext.checked_eat_u8().ok_or_else(short)?;
                let value = ext.checked_eat_lenenc_str().ok_or_else(short)?;
                let value = Some(String::from_utf8_lossy(value).into_owned());
                match key {
                    0 => mariadb_type_name = value,
                    1 => mariadb_format = value,
                    _ => {}
                }
            }
        }
        let fixed = buf.checked_eat_lenenc_int().ok_or_else(short)?;
        let fixed_at = definition.len() - buf.len();
        if fixed != 0x0C || buf.len() < 12 {
            return Err(Error::Malformed(format!(
                "column definition of `{name}`: fixed-length fields of {fixed} bytes, expected 12"
            )));
        }
        let collation_id = buf.eat_u16_le();
        let column_length = buf.eat_u32_le();
        let type_byte = buf.eat_u8();
        let column_type = ColumnType::try_from(type_byte).map_err(|_| {
            Error::Malformed(format!(
                "column definition of `{name}`: unknown column type 0x{type_byte:02x}"
            ))
        })?;
        let flags = ColumnFlags::from_bits_truncate(buf.eat_u16_le());
        let decimals = buf.eat_u8();
        Ok(ColumnMeta {
            name,
            column_type,
            flags,
            collation_id,
            column_length,
            decimals,
            mariadb_type_name,
            mariadb_format,
            fixed_at,
            definition,
        })
    }

    /// This column with another scale and display length, its definition rewritten to
    /// match. For an AVG whose shards sent the SUM: a single database reports AVG with
    /// the SUM's decimals plus `div_precision_increment` (see [`AvgScale::mysql`]), and
    /// computed values are written with the column's decimals.
    pub fn with_decimals(&self, decimals: u8, column_length: u32) -> ColumnMeta {
        let mut definition = self.definition.to_vec();
        let at = self.fixed_at;
        definition[at + 2..at + 6].copy_from_slice(&column_length.to_le_bytes());
        definition[at + 9] = decimals;
        ColumnMeta {
            definition: Bytes::from(definition),
            decimals,
            column_length,
            ..self.clone()
        }
    }

    /// This column as another type, its definition rewritten to match (name and table
    /// kept). For a COUNT(DISTINCT x) / SUM(DISTINCT x) whose shards sent the values of x:
    /// the merged column is what a single database reports for the aggregate.
    pub fn retyped(
        &self,
        column_type: ColumnType,
        flags: ColumnFlags,
        collation_id: u16,
        column_length: u32,
        decimals: u8,
    ) -> ColumnMeta {
        let mut definition = self.definition.to_vec();
        let at = self.fixed_at;
        definition[at..at + 2].copy_from_slice(&collation_id.to_le_bytes());
        definition[at + 2..at + 6].copy_from_slice(&column_length.to_le_bytes());
        definition[at + 6] = column_type as u8;
        definition[at + 7..at + 9].copy_from_slice(&flags.bits().to_le_bytes());
        definition[at + 9] = decimals;
        ColumnMeta {
            definition: Bytes::from(definition),
            column_type,
            flags,
            collation_id,
            column_length,
            decimals,
            ..self.clone()
        }
    }

    /// How the merge compares this column's text: byte order for binary strings, byte
    /// order with PAD SPACE for `_bin` collations (which the server flags BINARY), by the
    /// reported collation otherwise (see [`collation_of_id`]); a collation id dbmesh does not know is taken as
    /// case-insensitive, MySQL's default.
    pub fn collation(&self) -> Collation {
        if self.collation_id == BINARY_COLLATION_ID {
            return Collation::Binary;
        }
        let known = collation_of_id(self.collation_id).map(|c| c.compare);
        if self.flags.contains(ColumnFlags::BINARY_FLAG) {
            // A `_bin` column arrives as the connection's collation plus the flag; those
            // collations pad, but for the NO PAD ones reported by their own id.
            return match known {
                Some(c @ (Collation::Binary | Collation::BinaryPadSpace)) => c,
                _ => Collation::BinaryPadSpace,
            };
        }
        known.unwrap_or(Collation::CaseInsensitive)
    }

    /// What merging needs to know of this column: its collation; the scale of an AVG
    /// whose SUM half this column holds (the SUM's decimals plus 4); and that MySQL sums
    /// integers as DECIMAL.
    pub fn column_info(&self) -> ColumnInfo {
        let sum_decimals = if self.decimals < NOT_FIXED_DECIMALS {
            self.decimals
        } else {
            0
        };
        ColumnInfo {
            collation: self.collation(),
            avg_scale: AvgScale::mysql(sum_decimals.into()),
            sum_is_decimal: true,
        }
    }

    fn unsigned(&self) -> bool {
        self.flags.contains(ColumnFlags::UNSIGNED_FLAG)
    }

    /// How string values of this column are encoded.
    fn encoding(&self) -> Encoding {
        if self.collation_id == BINARY_COLLATION_ID {
            return Encoding::Binary;
        }
        match collation_of_id(self.collation_id).map(|c| c.charset) {
            None | Some("utf8mb4" | "utf8mb3" | "utf8" | "ascii") => Encoding::Utf8,
            Some("latin1") => Encoding::Latin1,
            Some("binary") => Encoding::Binary,
            Some(_) => Encoding::Other,
        }
    }
}

/// How a character set's bytes become [`Value::Text`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    /// UTF-8 (utf8mb4, utf8mb3, ascii).
    Utf8,
    /// One byte per character, U+0000..U+00FF (MySQL's latin1 is cp1252, which differs in
    /// 0x80..0x9F: those compare by code point, and round-trip unchanged).
    Latin1,
    /// Binary strings: [`Value::Bytes`].
    Binary,
    /// Other character sets (gbk, sjis, ...): kept as [`Value::Bytes`], compared bytewise.
    Other,
}

/// What dbmesh knows of a collation id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CollationClass {
    /// The character set's name (`utf8mb4`, `latin1`, `binary`, ...).
    pub charset: &'static str,
    /// How the merge compares its text.
    pub compare: Collation,
}

/// The character set and comparison of a collation id, `None` when unknown.
///
/// MySQL's ids (1..=323) come from `mysql_common`'s table of MySQL 8's collations, which
/// MariaDB shares below 248 (the common ones: 8 `latin1_swedish_ci`, 33
/// `utf8mb3_general_ci`, 45 `utf8mb4_general_ci`, 46 `utf8mb4_bin`, 47 `latin1_bin`, 63
/// `binary`, 83 `utf8mb3_bin`, 192 `utf8mb3_unicode_ci`, 224 `utf8mb4_unicode_ci`, 246
/// `utf8mb4_unicode_520_ci`; MySQL 8's default 255 `utf8mb4_0900_ai_ci`). MariaDB's own
/// ids follow rules of its own: 576..=578 and 608..=610 (utf8mb3 / utf8mb4 croatian,
/// myanmar, thai_520_w2), the NO PAD variants at `1024 + id` (1069
/// `utf8mb4_general_nopad_ci`, 1070 `utf8mb4_nopad_bin`), and the UCA 14.0 collations
/// from 2048 (utf8mb3), 2304 (utf8mb4; 2304 is MariaDB 11's default
/// `utf8mb4_uca1400_ai_ci`), 2560 (ucs2), 2816 (utf16) and 3072 (utf32), where an odd id
/// is case-sensitive.
///
/// `_bin` and `binary` compare bytes; `_ci` collations compare case-insensitively; the
/// case-sensitive `_cs` collations have no exact merge equivalent and compare bytes (right
/// for equality, approximate for the order of mixed-case text). All but `binary`, MySQL
/// 8's `_0900_` and MariaDB's NO PAD collations ignore trailing spaces (PAD SPACE).
pub fn collation_of_id(id: u16) -> Option<CollationClass> {
    let by_name = |charset: &'static str, name: &str| {
        // MySQL 8's `_0900_` collations and MariaDB's `_nopad_` ones do not pad.
        let no_pad = name.contains("nopad") || name.contains("0900");
        let compare = match (
            name == "binary" || name.ends_with("_bin") || name.ends_with("_cs"),
            no_pad || name == "binary",
        ) {
            (true, true) => Collation::Binary,
            (true, false) => Collation::BinaryPadSpace,
            (false, true) => Collation::CaseInsensitiveNoPad,
            (false, false) => Collation::CaseInsensitive,
        };
        CollationClass { charset, compare }
    };
    let known = ServerCollation::from(CollationId::from(id));
    if known.id != CollationId::UNKNOWN_COLLATION_ID {
        return Some(by_name(known.charset, known.collation));
    }
    match id {
        576..=578 => Some(by_name("utf8mb3", "_ci")),
        608..=610 => Some(by_name("utf8mb4", "_ci")),
        1025..=2047 => collation_of_id(id - 1024).map(|c| CollationClass {
            compare: match c.compare {
                Collation::BinaryPadSpace => Collation::Binary,
                Collation::CaseInsensitive => Collation::CaseInsensitiveNoPad,
                other => other,
            },
            ..c
        }),
        2048..=3327 => {
            let charset = match (id - 2048) / 256 {
                0 => "utf8mb3",
                1 => "utf8mb4",
                2 => "ucs2",
                3 => "utf16",
                _ => "utf32",
            };
            let case = if id % 2 == 1 { "_cs" } else { "_ci" };
            Some(by_name(charset, case))
        }
        _ => None,
    }
}

/// The payloads that start a merged result the client sees the first `visible` columns of:
/// the column count, then those columns' definitions (the first shard's, as sent). The
/// derived columns the rewrite appended are dropped; the terminating EOF (without
/// `CLIENT_DEPRECATE_EOF`) is the caller's.
pub fn truncate_columns(columns: &[ColumnMeta], visible: usize) -> Vec<Bytes> {
    let visible = visible.min(columns.len());
    let mut count = Vec::with_capacity(9);
    put_lenenc_int(&mut count, visible as u64);
    std::iter::once(Bytes::from(count))
        .chain(columns[..visible].iter().map(|c| c.definition.clone()))
        .collect()
}

// ---------------------------------------------------------------------------------------
// Decoding

/// Why one column could not be decoded or encoded.
#[derive(Debug)]
enum Problem {
    /// The backend's bytes do not follow the protocol.
    Malformed(String),
    /// A value dbmesh cannot merge or write, named.
    Unsupported(String),
}

impl Problem {
    fn at(self, index: usize, column: &ColumnMeta) -> Error {
        match self {
            Problem::Malformed(what) => Error::Malformed(format!(
                "column {} (`{}`) of a row: {what}",
                index + 1,
                column.name
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

fn zero_datetime() -> NaiveDateTime {
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

// ---------------------------------------------------------------------------------------
// Encoding

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
fn decimal_text(d: &BigDecimal, decimals: u8) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;
    use mysql_common::packets::Column;
    use mysql_common::proto::Binary;
    use mysql_common::row::RowDeserializer;
    use mysql_common::value::ServerSide;
    use std::str::FromStr;
    use std::sync::Arc;

    const UTF8MB4_GENERAL_CI: u16 = 45;
    const LATIN1_SWEDISH_CI: u16 = 8;

    /// A column-definition payload, optionally with MariaDB extended metadata.
    fn definition(
        name: &str,
        column_type: ColumnType,
        flags: u16,
        charset: u16,
        length: u32,
        decimals: u8,
        extended: Option<&[(u8, &str)]>,
    ) -> Bytes {
        let mut p = Vec::new();
        for s in ["def", "db", "t", "t"] {
            put_lenenc_str(&mut p, s.as_bytes());
        }
        put_lenenc_str(&mut p, name.as_bytes());
        put_lenenc_str(&mut p, name.as_bytes());
        if let Some(pairs) = extended {
            let mut ext = Vec::new();
            for (k, v) in pairs {
                ext.push(*k);
                put_lenenc_str(&mut ext, v.as_bytes());
            }
            put_lenenc_str(&mut p, &ext);
        }
        p.push(0x0C);
        p.extend_from_slice(&charset.to_le_bytes());
        p.extend_from_slice(&length.to_le_bytes());
        p.push(column_type as u8);
        p.extend_from_slice(&flags.to_le_bytes());
        p.push(decimals);
        p.extend_from_slice(&[0, 0]);
        Bytes::from(p)
    }

    fn col(
        column_type: ColumnType,
        flags: u16,
        charset: u16,
        length: u32,
        decimals: u8,
    ) -> ColumnMeta {
        ColumnMeta::parse(
            definition("c", column_type, flags, charset, length, decimals, None),
            false,
        )
        .unwrap()
    }

    const UNSIGNED: u16 = ColumnFlags::UNSIGNED_FLAG.bits();
    const BINARY: u16 = ColumnFlags::BINARY_FLAG.bits();
    const ZEROFILL: u16 = ColumnFlags::ZEROFILL_FLAG.bits();

    /// One column of each kind the merge meets, as MariaDB describes them.
    fn all_columns() -> Vec<ColumnMeta> {
        use ColumnType::*;
        vec![
            col(MYSQL_TYPE_TINY, 0, 63, 4, 0),                        // 0
            col(MYSQL_TYPE_TINY, UNSIGNED, 63, 3, 0),                 // 1
            col(MYSQL_TYPE_SHORT, 0, 63, 6, 0),                       // 2
            col(MYSQL_TYPE_INT24, UNSIGNED, 63, 8, 0),                // 3
            col(MYSQL_TYPE_LONG, UNSIGNED | ZEROFILL, 63, 10, 0),     // 4
            col(MYSQL_TYPE_LONGLONG, 0, 63, 20, 0),                   // 5
            col(MYSQL_TYPE_LONGLONG, UNSIGNED, 63, 20, 0),            // 6
            col(MYSQL_TYPE_NEWDECIMAL, 0, 63, 67, 30),                // 7
            col(MYSQL_TYPE_NEWDECIMAL, 0, 63, 67, 0),                 // 8
            col(MYSQL_TYPE_FLOAT, 0, 63, 12, NOT_FIXED_DECIMALS),     // 9
            col(MYSQL_TYPE_DOUBLE, 0, 63, 22, NOT_FIXED_DECIMALS),    // 10
            col(MYSQL_TYPE_VAR_STRING, 0, UTF8MB4_GENERAL_CI, 40, 0), // 11
            col(MYSQL_TYPE_VAR_STRING, BINARY, 63, 10, 0),            // 12
            col(MYSQL_TYPE_BLOB, BINARY | 0x10, 63, 65535, 0),        // 13
            col(MYSQL_TYPE_DATE, BINARY, 63, 10, 0),                  // 14
            col(MYSQL_TYPE_DATETIME, BINARY, 63, 23, 3),              // 15
            col(MYSQL_TYPE_TIMESTAMP, BINARY, 63, 26, 6),             // 16
            col(MYSQL_TYPE_TIME, BINARY, 63, 17, 6),                  // 17
            col(MYSQL_TYPE_TIME, BINARY, 63, 10, 0),                  // 18
            col(MYSQL_TYPE_YEAR, UNSIGNED | ZEROFILL, 63, 4, 0),      // 19
            col(MYSQL_TYPE_BIT, UNSIGNED, 63, 10, 0),                 // 20
            col(MYSQL_TYPE_JSON, BINARY | 0x10, 63, 4294967295, 0),   // 21
            col(MYSQL_TYPE_STRING, 0, LATIN1_SWEDISH_CI, 3, 0),       // 22
            col(MYSQL_TYPE_DOUBLE, 0, 63, 12, 2),                     // 23
        ]
    }

    fn dec(s: &str) -> Value {
        Value::Decimal(BigDecimal::from_str(s).unwrap())
    }

    fn datetime(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f").unwrap()
    }

    const BIG: &str = "-12345678901234567890123456789012345.123456789012345678901234567890";

    /// The values of one row over [`all_columns`], and their text-protocol strings.
    fn sample() -> Vec<(Value, &'static [u8])> {
        vec![
            (Value::Int(-128), b"-128"),
            (Value::UInt(255), b"255"),
            (Value::Int(-32768), b"-32768"),
            (Value::UInt(16777215), b"16777215"),
            (Value::UInt(42), b"0000000042"),
            (Value::Int(i64::MIN), b"-9223372036854775808"),
            (Value::UInt(u64::MAX), b"18446744073709551615"),
            (dec(BIG), BIG.as_bytes()),
            (dec("-5"), b"-5"),
            (Value::Float(1.23457), b"1.23457"),
            (Value::Float(-1.5e-16), b"-1.5e-16"),
            (Value::Text("Ünïcode ✓".into()), "Ünïcode ✓".as_bytes()),
            (Value::Bytes(vec![0, 0xff, b'a']), b"\x00\xffa"),
            (Value::Bytes(b"blob".to_vec()), b"blob"),
            (
                Value::Date(NaiveDate::from_ymd_opt(2024, 2, 29).unwrap()),
                b"2024-02-29",
            ),
            (
                Value::DateTime(datetime("1999-12-31 23:59:59.120")),
                b"1999-12-31 23:59:59.120",
            ),
            (
                Value::DateTime(datetime("2038-01-19 03:14:07.000001")),
                b"2038-01-19 03:14:07.000001",
            ),
            (
                Value::Time(-(838 * 3600 + 59 * 60 + 59) * 1_000_000 - 1),
                b"-838:59:59.000001",
            ),
            (Value::Time(3_723_000_000), b"01:02:03"),
            (Value::Int(2024), b"2024"),
            (Value::Bytes(vec![0x02, 0x0A]), b"\x02\x0A"),
            (Value::Text(r#"{"a": [1, 2]}"#.into()), br#"{"a": [1, 2]}"#),
            (Value::Text("åé".into()), b"\xe5\xe9"),
            (Value::Float(1.5), b"1.50"),
        ]
    }

    fn text_payload(fields: &[Option<&[u8]>]) -> Bytes {
        let mut p = Vec::new();
        for f in fields {
            match f {
                Some(s) => put_lenenc_str(&mut p, s),
                None => p.push(TEXT_NULL),
            }
        }
        Bytes::from(p)
    }

    fn everything(n: usize) -> Vec<usize> {
        (0..n).collect()
    }

    fn computed(row: &Row) -> Row {
        Row {
            raw: vec![None; row.raw.len()],
            values: row.values.clone(),
        }
    }

    #[test]
    fn parses_column_definitions_of_mysql_and_mariadb() {
        let plain = definition(
            "total",
            ColumnType::MYSQL_TYPE_NEWDECIMAL,
            0x80,
            63,
            33,
            2,
            None,
        );
        let c = ColumnMeta::parse(plain.clone(), false).unwrap();
        assert_eq!(c.name, "total");
        assert_eq!(c.column_type, ColumnType::MYSQL_TYPE_NEWDECIMAL);
        assert_eq!((c.collation_id, c.column_length, c.decimals), (63, 33, 2));
        assert!(c.flags.contains(ColumnFlags::BINARY_FLAG));
        assert_eq!(c.definition, plain);
        // mysql_common reads the same fields from it.
        let theirs: Column = ParseBuf(&plain).parse(()).unwrap();
        assert_eq!(theirs.decimals(), 2);
        assert_eq!(theirs.column_length(), 33);

        let extended = definition(
            "doc",
            ColumnType::MYSQL_TYPE_BLOB,
            0x90,
            UTF8MB4_GENERAL_CI,
            u32::MAX,
            0,
            Some(&[(1, "json"), (7, "ignored")]),
        );
        let c = ColumnMeta::parse(extended.clone(), true).unwrap();
        assert_eq!(c.mariadb_format.as_deref(), Some("json"));
        assert_eq!(c.mariadb_type_name, None);
        assert_eq!(c.column_type, ColumnType::MYSQL_TYPE_BLOB);
        assert_eq!(c.collation_id, UTF8MB4_GENERAL_CI);
        // Without the capability the extended field is read as the fixed fields' length.
        assert!(ColumnMeta::parse(extended, false).is_err());
        assert!(ColumnMeta::parse(plain.slice(..plain.len() - 3), false).is_err());
    }

    #[test]
    fn collations_follow_the_binary_flag_and_the_collation_name() {
        let text = |flags, charset| col(ColumnType::MYSQL_TYPE_VAR_STRING, flags, charset, 40, 0);
        assert_eq!(text(0, 45).collation(), Collation::CaseInsensitive);
        // utf8mb4_bin columns arrive as the connection's collation plus the BINARY flag.
        assert_eq!(text(BINARY, 45).collation(), Collation::BinaryPadSpace);
        assert_eq!(text(0, 46).collation(), Collation::BinaryPadSpace); // utf8mb4_bin
        assert_eq!(text(0, 63).collation(), Collation::Binary); // binary
        assert_eq!(text(0, 255).collation(), Collation::CaseInsensitiveNoPad); // utf8mb4_0900_ai_ci
        assert_eq!(text(0, 278).collation(), Collation::Binary); // utf8mb4_0900_as_cs
        assert_eq!(text(0, 8).collation(), Collation::CaseInsensitive); // latin1_swedish_ci
        assert_eq!(text(0, 47).collation(), Collation::BinaryPadSpace); // latin1_bin
        assert_eq!(text(0, 1069).collation(), Collation::CaseInsensitiveNoPad); // utf8mb4_general_nopad_ci
        assert_eq!(text(0, 1070).collation(), Collation::Binary); // utf8mb4_nopad_bin
        assert_eq!(text(0, 2304).collation(), Collation::CaseInsensitive); // utf8mb4_uca1400_ai_ci
        assert_eq!(text(0, 2307).collation(), Collation::BinaryPadSpace); // utf8mb4_uca1400_as_cs
        assert_eq!(text(BINARY, 1070).collation(), Collation::Binary); // utf8mb4_nopad_bin
        assert_eq!(text(0, 609).collation(), Collation::CaseInsensitive); // utf8mb4_myanmar_ci
        assert_eq!(text(0, 40000).collation(), Collation::CaseInsensitive); // unknown
        assert_eq!(collation_of_id(2304).unwrap().charset, "utf8mb4");
        assert_eq!(collation_of_id(1032).unwrap().charset, "latin1");
        assert_eq!(
            text(BINARY, 45).column_info().collation,
            Collation::BinaryPadSpace
        );
        let sum = col(ColumnType::MYSQL_TYPE_NEWDECIMAL, BINARY, 63, 33, 2).column_info();
        assert_eq!(sum.avg_scale, AvgScale::Fixed(6));
        assert!(sum.sum_is_decimal);
        let double = col(ColumnType::MYSQL_TYPE_DOUBLE, 0, 63, 23, NOT_FIXED_DECIMALS);
        assert_eq!(double.column_info().avg_scale, AvgScale::Fixed(4));
    }

    #[test]
    fn decodes_every_type_of_a_text_row() {
        let columns = all_columns();
        let sample = sample();
        let payload = text_payload(&sample.iter().map(|(_, t)| Some(*t)).collect::<Vec<_>>());
        let row = decode_text_row(&payload, &columns, &everything(columns.len())).unwrap();
        for (i, (value, text)) in sample.iter().enumerate() {
            assert_eq!(&row.values[i], value, "column {i}");
            assert_eq!(row.raw[i].as_deref(), Some(*text), "column {i}");
        }
    }

    #[test]
    fn decodes_only_the_columns_asked_for_and_keeps_nulls() {
        let columns = all_columns();
        let mut fields: Vec<Option<&[u8]>> = sample().iter().map(|(_, t)| Some(*t)).collect();
        fields[5] = None;
        let payload = text_payload(&fields);
        let row = decode_text_row(&payload, &columns, &[5, 7]).unwrap();
        assert_eq!(row.raw[5], None);
        assert_eq!(row.values[5], Value::Null);
        assert_eq!(row.values[7], dec(BIG));
        assert_eq!(row.values[0], Value::Null);
        assert_eq!(row.raw[0].as_deref(), Some(&b"-128"[..]));
        // Passthrough columns come out as they went in.
        let mut out = Vec::new();
        encode_text_row(&row, &columns, &mut out).unwrap();
        assert_eq!(out, payload);
    }

    #[test]
    fn text_rows_round_trip_from_decoded_values() {
        let columns = all_columns();
        let mut fields: Vec<Option<&[u8]>> = sample().iter().map(|(_, t)| Some(*t)).collect();
        fields[3] = None;
        let payload = text_payload(&fields);
        let row = decode_text_row(&payload, &columns, &everything(columns.len())).unwrap();
        let mut out = Vec::new();
        encode_text_row(&computed(&row), &columns, &mut out).unwrap();
        assert_eq!(out, payload);
    }

    #[test]
    fn text_rows_drop_columns_past_the_visible_ones() {
        let columns = all_columns();
        let payload = text_payload(&[Some(b"1"), Some(b"2"), Some(b"3")]);
        let row = decode_text_row(&payload, &columns[..3], &[]).unwrap();
        let mut out = Vec::new();
        encode_text_row(&row, &columns[..2], &mut out).unwrap();
        assert_eq!(out, text_payload(&[Some(b"1"), Some(b"2")]));
    }

    fn lenenc(b: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        put_lenenc_str(&mut v, b);
        v
    }

    /// A binary-protocol row of the sample values, written by hand from the protocol
    /// description (not by the encoder under test).
    fn binary_sample_payload(null: Option<usize>) -> Bytes {
        let mut v: Vec<Vec<u8>> = vec![
            vec![0x80],
            vec![0xff],
            (-32768i16).to_le_bytes().to_vec(),
            16777215u32.to_le_bytes().to_vec(),
            42u32.to_le_bytes().to_vec(),
            i64::MIN.to_le_bytes().to_vec(),
            u64::MAX.to_le_bytes().to_vec(),
            lenenc(BIG.as_bytes()),
            vec![2, b'-', b'5'],
            1.23457_f32.to_le_bytes().to_vec(),
            (-1.5e-16f64).to_le_bytes().to_vec(),
            lenenc("Ünïcode ✓".as_bytes()),
            vec![3, 0, 0xff, b'a'],
            lenenc(b"blob"),
            vec![4, 0xe8, 0x07, 2, 29],
            [
                &[11u8, 0xcf, 0x07, 12, 31, 23, 59, 59][..],
                &120_000u32.to_le_bytes(),
            ]
            .concat(),
            [
                &[11u8, 0xf6, 0x07, 1, 19, 3, 14, 7][..],
                &1u32.to_le_bytes(),
            ]
            .concat(),
            [
                &[12u8, 1][..],
                &34u32.to_le_bytes(),
                &[22, 59, 59],
                &1u32.to_le_bytes(),
            ]
            .concat(),
            [&[8u8, 0][..], &0u32.to_le_bytes(), &[1, 2, 3]].concat(),
            2024u16.to_le_bytes().to_vec(),
            vec![2, 0x02, 0x0A],
            lenenc(br#"{"a": [1, 2]}"#),
            vec![2, 0xe5, 0xe9],
            1.5f64.to_le_bytes().to_vec(),
        ];
        let n = v.len();
        let mut p = vec![0u8; 1 + (n + 9) / 8];
        if let Some(i) = null {
            p[1 + (i + 2) / 8] |= 1 << ((i + 2) % 8);
            v[i].clear();
        }
        for value in v {
            p.extend_from_slice(&value);
        }
        Bytes::from(p)
    }

    #[test]
    fn decodes_every_type_of_a_binary_row() {
        let columns = all_columns();
        let payload = binary_sample_payload(None);
        let row = decode_binary_row(&payload, &columns, &everything(columns.len())).unwrap();
        for (i, (value, _)) in sample().iter().enumerate() {
            match (i, value) {
                // The binary protocol sends the float itself, not its 6-digit text.
                (9, _) => assert_eq!(row.values[i], Value::Float(f64::from(1.23457_f32))),
                (_, v) => assert_eq!(&row.values[i], v, "column {i}"),
            }
        }
        assert_eq!(row.raw[0].as_deref(), Some(&[0x80][..]));
        assert_eq!(row.raw[8].as_deref(), Some(&b"\x02-5"[..]));
    }

    #[test]
    fn binary_rows_round_trip_from_decoded_values() {
        let columns = all_columns();
        for null in [None, Some(0), Some(7), Some(23)] {
            let payload = binary_sample_payload(null);
            let row = decode_binary_row(&payload, &columns, &everything(columns.len())).unwrap();
            let mut out = Vec::new();
            encode_binary_row(&computed(&row), &columns, &mut out).unwrap();
            assert_eq!(out, payload, "NULL at {null:?}");
            out.clear();
            encode_binary_row(&row, &columns, &mut out).unwrap();
            assert_eq!(out, payload, "raw, NULL at {null:?}");
        }
    }

    #[test]
    fn computed_binary_rows_read_back_with_mysql_common() {
        use mysql_common::Value as My;
        let columns = all_columns();
        let row = Row {
            raw: vec![None; 6],
            values: vec![
                Value::Int(-7),
                Value::Null,
                dec("300"),
                Value::UInt(70000),
                Value::Int(12),
                Value::Int(-1),
            ],
        };
        let mut out = Vec::new();
        encode_binary_row(&row, &columns[..6], &mut out).unwrap();
        let theirs: Vec<Column> = columns[..6]
            .iter()
            .map(|c| ParseBuf(&c.definition).parse(()).unwrap())
            .collect();
        let parsed: mysql_common::Row = ParseBuf(&out)
            .parse::<RowDeserializer<ServerSide, Binary>>(Arc::from(theirs))
            .unwrap()
            .into();
        assert_eq!(
            parsed.unwrap(),
            vec![
                My::Int(-7),
                My::NULL,
                My::Int(300),
                // mysql_common widens unsigned values below 64 bits to Int.
                My::Int(70000),
                My::Int(12),
                My::Int(-1),
            ]
        );
    }

    #[test]
    fn aggregates_are_written_in_the_column_type() {
        use ColumnType::*;
        let sum = col(MYSQL_TYPE_NEWDECIMAL, BINARY, 63, 33, 2);
        let count = col(MYSQL_TYPE_LONGLONG, 0x81, 63, 21, 0);
        let avg = col(MYSQL_TYPE_NEWDECIMAL, BINARY, 63, 16, 4);
        let double = col(MYSQL_TYPE_DOUBLE, BINARY, 63, 23, NOT_FIXED_DECIMALS);
        let columns = [sum, count, avg, double];
        let row = Row {
            raw: vec![None; 4],
            values: vec![
                dec("-1234.5"),
                Value::Int(3),
                dec("2.333333333"),
                Value::Float(0.1 + 0.2),
            ],
        };
        let mut out = Vec::new();
        encode_text_row(&row, &columns, &mut out).unwrap();
        assert_eq!(
            out,
            text_payload(&[
                Some(b"-1234.50"),
                Some(b"3"),
                Some(b"2.3333"),
                Some(b"0.30000000000000004"),
            ])
        );
        // Half away from zero, as MySQL rounds decimals.
        assert_eq!(
            decimal_text(&BigDecimal::from_str("-0.00005").unwrap(), 4),
            "-0.0001"
        );
        assert_eq!(
            decimal_text(&BigDecimal::from_str("0.00005").unwrap(), 4),
            "0.0001"
        );
        assert_eq!(
            decimal_text(&BigDecimal::from_str("1e3").unwrap(), NOT_FIXED_DECIMALS),
            "1000"
        );
    }

    #[test]
    fn integers_out_of_the_column_range_are_refused() {
        let tiny = col(ColumnType::MYSQL_TYPE_TINY, 0, 63, 4, 0);
        let row = Row {
            raw: vec![None],
            values: vec![Value::Int(128)],
        };
        let e = encode_binary_row(&row, std::slice::from_ref(&tiny), &mut Vec::new()).unwrap_err();
        assert!(e.to_string().contains("out of range"), "{e}");
        let row = Row {
            raw: vec![None],
            values: vec![Value::Text("x".into())],
        };
        assert!(encode_text_row(&row, &[tiny], &mut Vec::new()).is_err());
    }

    #[test]
    fn floats_are_written_as_mysql_writes_them() {
        // Outputs of MariaDB 10.11 for the same doubles / floats.
        let double = |f| float_text(f, false, NOT_FIXED_DECIMALS);
        let single = |f: f32| float_text(f64::from(f), true, NOT_FIXED_DECIMALS);
        assert_eq!(double(1e15), "1e15");
        assert_eq!(double(1e14), "100000000000000");
        assert_eq!(double(0.00001), "0.00001");
        assert_eq!(double(1e-15), "0.000000000000001");
        assert_eq!(double(1.5e-15), "0.0000000000000015");
        assert_eq!(double(1e-16), "1e-16");
        assert_eq!(double(123456789012345678.0), "1.2345678901234568e17");
        assert_eq!(double(-1.2345678901234567e-5), "-0.000012345678901234568");
        assert_eq!(double(1234567890123456.0), "1.234567890123456e15");
        assert_eq!(double(1e100), "1e100");
        assert_eq!(double(0.0), "0");
        assert_eq!(double(-2.5), "-2.5");
        assert_eq!(single(1.1), "1.1");
        assert_eq!(single(123456789.0), "123457000");
        assert_eq!(single(1e20), "1e20");
        assert_eq!(single(1e-7), "0.0000001");
        assert_eq!(single(0.000123456), "0.000123456");
        assert_eq!(float_text(2.0 / 3.0, false, 3), "0.667");
    }

    #[test]
    fn zero_dates_sort_first_and_round_trip() {
        let columns = [
            col(ColumnType::MYSQL_TYPE_DATE, BINARY, 63, 10, 0),
            col(ColumnType::MYSQL_TYPE_DATETIME, BINARY, 63, 19, 0),
        ];
        let payload = text_payload(&[Some(b"0000-00-00"), Some(b"0000-00-00 00:00:00")]);
        let row = decode_text_row(&payload, &columns, &[0, 1]).unwrap();
        assert_eq!(row.values[0], Value::Date(NaiveDate::MIN));
        assert_eq!(row.values[1], Value::DateTime(zero_datetime()));
        let mut out = Vec::new();
        encode_text_row(&computed(&row), &columns, &mut out).unwrap();
        assert_eq!(out, payload);
        out.clear();
        encode_binary_row(&computed(&row), &columns, &mut out).unwrap();
        assert_eq!(out, [0, 0, 0, 0]);
        let back = decode_binary_row(&Bytes::from(out), &columns, &[0, 1]).unwrap();
        assert_eq!(back.values, row.values);

        let partial = text_payload(&[Some(b"2020-00-15"), Some(b"2020-01-01 00:00:00")]);
        let e = decode_text_row(&partial, &columns, &[0]).unwrap_err();
        assert!(matches!(e, Error::NotSupported(_)), "{e}");
    }

    #[test]
    fn malformed_rows_are_errors_naming_the_column() {
        let columns = all_columns();
        let e = decode_text_row(&text_payload(&[Some(b"12x")]), &columns[..1], &[0]).unwrap_err();
        assert!(e.to_string().contains("column 1 (`c`)"), "{e}");
        // Truncated, too long, bad header.
        assert!(decode_text_row(&Bytes::from_static(&[5, b'a']), &columns[..1], &[]).is_err());
        assert!(
            decode_text_row(&text_payload(&[Some(b"1"), Some(b"2")]), &columns[..1], &[]).is_err()
        );
        assert!(decode_binary_row(&Bytes::from_static(&[0, 0, 1, 2]), &columns[..1], &[]).is_err());
        assert!(decode_binary_row(&Bytes::from_static(&[1, 0, 1]), &columns[..1], &[]).is_err());
        assert!(decode_binary_row(&Bytes::from_static(&[0, 0]), &columns[..1], &[]).is_err());
        let bad_date = col(ColumnType::MYSQL_TYPE_DATE, BINARY, 63, 10, 0);
        assert!(
            decode_binary_row(&Bytes::from_static(&[0, 0, 2, 1, 2]), &[bad_date], &[0]).is_err()
        );
        assert!(decode_text_row(&text_payload(&[Some(b"1")]), &columns[..1], &[3]).is_err());
        let decimal = col(ColumnType::MYSQL_TYPE_NEWDECIMAL, 0, 63, 10, 0);
        assert!(decode_text_row(&text_payload(&[Some(b"1e999999999")]), &[decimal], &[0]).is_err());
    }

    #[test]
    fn merged_results_keep_the_first_shards_visible_definitions() {
        let columns = all_columns();
        let header = truncate_columns(&columns, 2);
        assert_eq!(header.len(), 3);
        assert_eq!(&header[0][..], &[2]);
        assert_eq!(header[1], columns[0].definition);
        assert_eq!(header[2], columns[1].definition);
        assert_eq!(truncate_columns(&columns[..1], 5).len(), 2);
    }

    #[test]
    fn an_avg_column_takes_the_scale_a_single_database_reports() {
        let sum = col(ColumnType::MYSQL_TYPE_NEWDECIMAL, BINARY, 63, 33, 0);
        let avg = sum.with_decimals(4, 16);
        assert_eq!((avg.decimals, avg.column_length), (4, 16));
        assert_eq!(
            ColumnMeta::parse(avg.definition.clone(), false).unwrap(),
            avg
        );
        let row = Row {
            raw: vec![None],
            values: vec![dec("2.33333")],
        };
        let mut out = Vec::new();
        encode_text_row(&row, &[avg], &mut out).unwrap();
        assert_eq!(out, text_payload(&[Some(b"2.3333")]));
    }
}
