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

use crate::error::Error;

mod column;
mod decode;
mod encode;
#[cfg(test)]
mod tests;

pub use column::*;
pub use decode::*;
pub use encode::*;

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
