//! Column definitions as the merge needs them: type, flags, collation, decimals.

use bytes::Bytes;
use mysql_common::collations::{Collation as ServerCollation, CollationId};
use mysql_common::constants::{ColumnFlags, ColumnType};
use mysql_common::io::ParseBuf;

use super::*;
use crate::error::Error;
use crate::merge::{AvgScale, Collation, ColumnInfo};
use crate::wire::mysql::ok::put_lenenc_int;

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

    pub(super) fn unsigned(&self) -> bool {
        self.flags.contains(ColumnFlags::UNSIGNED_FLAG)
    }

    /// How string values of this column are encoded.
    pub(super) fn encoding(&self) -> Encoding {
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
pub(super) enum Encoding {
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
            accent_insensitive(name),
        ) {
            (true, _) => Collation::BinaryPadSpace,
            (false, true) => Collation::AccentInsensitive,
            (false, false) => Collation::CaseInsensitive,
        };
        let compare = if no_pad || name == "binary" {
            compare.without_padding()
        } else {
            compare
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
            compare: c.compare.without_padding(),
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

/// Whether `_ci` collation `name` ignores accents as well as case: the generic ones
/// (`utf8mb4_general_ci`, `utf8mb4_unicode_ci`, `utf8mb4_unicode_520_ci`,
/// `utf8mb4_0900_ai_ci`, their NO PAD twins) of the Unicode character sets. A language's
/// collation (`utf8mb4_swedish_ci`, `latin1_swedish_ci`, `utf8mb4_de_pb_0900_ai_ci`) has
/// letters of its own (`'ä'` after `'z'`), accent-sensitive ones end in `_as_ci`, and
/// the 8-bit character sets' `_general_ci` weigh accents their own way: those fold case
/// only.
fn accent_insensitive(name: &str) -> bool {
    const GENERIC: &[&str] = &[
        "general_ci",
        "general_nopad_ci",
        "unicode_ci",
        "unicode_nopad_ci",
        "unicode_520_ci",
        "unicode_520_nopad_ci",
        "0900_ai_ci",
    ];
    let Some((charset, rest)) = name.split_once('_') else {
        return false;
    };
    matches!(
        charset,
        "utf8" | "utf8mb3" | "utf8mb4" | "ucs2" | "utf16" | "utf16le" | "utf32"
    ) && GENERIC.contains(&rest)
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
