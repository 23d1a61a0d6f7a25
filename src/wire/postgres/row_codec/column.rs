//! Type OIDs, formats and the RowDescription fields as the merge needs them.

use pgwire::messages::data::FieldDescription;

use crate::error::Error;
use crate::merge::{AvgScale, Collation, ColumnInfo};

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
