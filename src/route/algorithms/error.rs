//! Why a sharding algorithm could not place a value. Every message names the algorithm (as
//! configured, e.g. `order_mod`) and, where there is one, the column and the value.

/// A routing failure raised by a sharding algorithm.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    /// The statement gave no value for a column the algorithm reads.
    #[error("sharding algorithm `{algorithm}` needs a value for column `{column}`")]
    MissingValue { algorithm: String, column: String },
    /// A single-column algorithm was given several columns (or none).
    #[error("sharding algorithm `{algorithm}` ({kind}) reads exactly one column, got {got}")]
    ColumnCount {
        algorithm: String,
        kind: &'static str,
        got: usize,
    },
    /// The sharding column is NULL.
    #[error("sharding column `{column}` is NULL; algorithm `{algorithm}` cannot place a row without a value")]
    NullValue { algorithm: String, column: String },
    /// MOD, the range algorithms and inline arithmetic need integers.
    #[error("sharding algorithm `{algorithm}` ({kind}) needs an integer for column `{column}`, got {value}")]
    NotAnInteger {
        algorithm: String,
        kind: &'static str,
        column: String,
        value: String,
    },
    /// INTERVAL and AUTO_INTERVAL need dates or date-times.
    #[error("sharding algorithm `{algorithm}` ({kind}) needs a date or date-time for column `{column}`, got {value} (write e.g. '2024-01-31' or '2024-01-31 10:00:00')")]
    NotADateTime {
        algorithm: String,
        kind: &'static str,
        column: String,
        value: String,
    },
    /// An INTERVAL value before `datetime_lower` or after `datetime_upper`.
    #[error("{column} = {value} is outside the range of sharding algorithm `{algorithm}` ({lower} .. {upper})")]
    OutOfRange {
        algorithm: String,
        column: String,
        value: String,
        lower: String,
        upper: String,
    },
    /// The algorithm computed a target that is not among the available ones.
    #[error("sharding algorithm `{}` ({}) computed `{}` for {} = {}, but no target matches; targets: {}", .0.algorithm, .0.kind, .0.computed, .0.column, .0.value, .0.targets)]
    NoTarget(Box<NoTarget>),
    /// A range condition on an INLINE / COMPLEX_INLINE column with `allow_range_query = false`.
    #[error("range conditions on column `{column}` are not allowed by sharding algorithm `{algorithm}` ({kind}, allow_range_query = false); use = or IN, or set allow_range_query = true to route them to every target")]
    RangeNotAllowed {
        algorithm: String,
        kind: &'static str,
        column: String,
    },
    /// An inline expression failed at run time (division by zero, overflow, text in arithmetic).
    #[error("expression of sharding algorithm `{algorithm}` failed: {message}")]
    Expression { algorithm: String, message: String },
    /// A hint names no available target.
    #[error(
        "hint `{hint}` names no target of sharding algorithm `{algorithm}`; targets: {targets}"
    )]
    UnknownHintTarget {
        algorithm: String,
        hint: String,
        targets: String,
    },
    /// A hint was given to an algorithm that is not a HINT algorithm.
    #[error("sharding algorithm `{algorithm}` ({kind}) does not take hints; hint strategies need type = \"HINT\"")]
    NotHint {
        algorithm: String,
        kind: &'static str,
    },
}

/// The details of [`RouteError::NoTarget`] (boxed: they are the largest error).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoTarget {
    /// The algorithm's configured name.
    pub algorithm: String,
    /// Its type.
    pub kind: &'static str,
    /// The sharding column(s), comma-separated.
    pub column: String,
    /// The value(s), as SQL would write them.
    pub value: String,
    /// What the algorithm computed: a name (`ds_2`) or a suffix (`suffix 3`).
    pub computed: String,
    /// The available targets (the first ten).
    pub targets: String,
}

/// Target names for messages: `t_0, t_1, …` (the first 10), or `(none)`.
pub(crate) fn list_targets(targets: &[String]) -> String {
    if targets.is_empty() {
        return "(none)".to_string();
    }
    let mut listed = targets
        .iter()
        .take(10)
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    if targets.len() > 10 {
        listed.push_str(&format!(", … ({} in all)", targets.len()));
    }
    listed
}
