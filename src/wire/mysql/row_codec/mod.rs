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

use crate::error::Error;

mod column;
mod decode;
mod encode;
#[cfg(test)]
mod tests;

pub use column::*;
pub use decode::*;
pub use encode::*;

/// The `binary` character set / collation id.
pub const BINARY_COLLATION_ID: u16 = 63;

/// `decimals` of a column whose number of decimals is not fixed (DOUBLE without a scale,
/// strings): MySQL's `NOT_FIXED_DEC`.
pub const NOT_FIXED_DECIMALS: u8 = 31;

/// NULL in a text-protocol row.
const TEXT_NULL: u8 = 0xFB;

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
