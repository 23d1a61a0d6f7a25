//! Why a statement could not be analysed.

/// The first characters of a statement, for error messages (statements can be megabytes).
const EXCERPT_CHARS: usize = 80;

/// Why [`analyze`](super::analyze) gave up on a statement. The wire layer reports it to the
/// client as a syntax error (parse) or an unsupported-feature error (the rest).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnalyzeError {
    /// sqlparser could not read the statement; `message` is sqlparser's, `statement` the
    /// statement's first 80 characters.
    #[error("cannot parse statement `{statement}`: {message}")]
    Parse { message: String, statement: String },
    /// The text held no statement, or several (`SELECT 1; SELECT 2`): a routing decision is
    /// made for one statement at a time.
    #[error("expected one statement, found {count}: `{statement}`")]
    StatementCount { count: usize, statement: String },
    /// A construct dbmesh cannot route, named with its table, e.g. "INSERT into sharded
    /// table t_order without a column list".
    #[error("{construct}")]
    Unsupported { construct: String, table: String },
    /// An INSERT into a sharded table without a column list, whose columns the caller did
    /// not know (see [`analyze_with_columns`](super::analyze_with_columns)): which value is
    /// the sharding column's cannot be told.
    #[error("INSERT into sharded table {table} without a column list")]
    NoColumnList { table: String },
    /// An INSERT row whose number of values differs from the number of columns (the backend
    /// would reject it too, but routing must not guess which value is the sharding column's).
    #[error("INSERT into {table}: row {row} has {values} values for {columns} columns")]
    RowWidth {
        table: String,
        row: usize,
        values: usize,
        columns: usize,
    },
}

impl AnalyzeError {
    pub(super) fn parse(message: impl ToString, sql: &str) -> Self {
        AnalyzeError::Parse {
            message: message.to_string(),
            statement: excerpt(sql),
        }
    }

    pub(super) fn statement_count(count: usize, sql: &str) -> Self {
        AnalyzeError::StatementCount {
            count,
            statement: excerpt(sql),
        }
    }

    pub(super) fn unsupported(construct: impl Into<String>, table: &str) -> Self {
        AnalyzeError::Unsupported {
            construct: construct.into(),
            table: table.to_string(),
        }
    }
}

/// `sql` trimmed, cut to 80 characters (with `...` when cut).
fn excerpt(sql: &str) -> String {
    let sql = sql.trim();
    match sql.char_indices().nth(EXCERPT_CHARS) {
        Some((at, _)) => format!("{}...", &sql[..at]),
        None => sql.to_string(),
    }
}
