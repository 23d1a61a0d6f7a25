//! Why a target's plan cannot be applied to a statement.

/// A rewrite failure. Each names the construct that did not fit the plan; all of them mean
/// the router and the statement disagree, so the statement must fail rather than run on a
/// backend in a form nobody planned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RewriteError {
    /// An IN-list pruning that keeps nothing: such a target should not have been planned.
    #[error("the plan keeps no value of `{column} IN (...)` on table `{table}`; a target owning none of its values should not be routed to")]
    EmptyInListKeep { table: String, column: String },
    /// An IN-list pruning whose condition is not in the statement.
    #[error("no `{column} IN (...)` condition on table `{table}` in the statement")]
    InListNotFound { table: String, column: String },
    /// An IN-list index past the end of the list.
    #[error("`{column} IN (...)` on table `{table}` has {len} values; value index {index} does not exist")]
    InListIndexOutOfRange {
        table: String,
        column: String,
        len: usize,
        index: usize,
    },
    /// Row splitting or a generated key on a statement that is not `INSERT ... VALUES`.
    #[error("INSERT row splitting and generated keys need INSERT ... VALUES (or INSERT ... SET), not {construct}")]
    NotInsertValues { construct: &'static str },
    /// Row splitting that keeps no row.
    #[error("the plan keeps no row of the INSERT; a target with no rows should not be routed to")]
    NoInsertRows,
    /// A kept row past the last row.
    #[error("the INSERT has {rows} rows; row index {index} does not exist")]
    InsertRowOutOfRange { rows: usize, index: usize },
    /// A generated key for an INSERT without a column list: where the value goes is unknown.
    #[error("cannot add generated key column `{column}` to an INSERT without a column list")]
    GeneratedKeyWithoutColumnList { column: String },
    /// A generated key for a column the INSERT already sets.
    #[error("the INSERT already sets generated key column `{column}`")]
    GeneratedKeyColumnPresent { column: String },
    /// Not exactly one generated key per kept row.
    #[error("{keys} generated keys for column `{column}` but {rows} INSERT rows")]
    GeneratedKeyCount {
        column: String,
        keys: usize,
        rows: usize,
    },
    /// `DROP INDEX idx` without a table, and the plan maps several logical tables.
    #[error("DROP INDEX `{index}` names no table and the plan maps {tables} logical tables; cannot tell whose index it is")]
    AmbiguousIndexTable { index: String, tables: usize },
}
