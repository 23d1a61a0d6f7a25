//! A merge plan: what the merge of one multi-shard SELECT does, decided from the statement
//! before it runs (see `crate::merge::sql_plan` for how), and turned into an operator tree
//! once the shards' column metadata is known ([`MergePlan::build`]).
//!
//! Column indexes are positions in the *shard query's* select list, which is the client's
//! select list followed by derived columns the rewrite appended (ORDER BY / GROUP BY
//! expressions missing from the select list, the COUNT half of an AVG): the client sees
//! the first [`MergePlan::visible_columns`] columns.

use super::{AvgScale, Collation, NullOrder};

/// How one multi-shard SELECT is merged.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MergePlan {
    /// How many leading columns the client sees; the rest are derived and dropped.
    pub visible_columns: usize,
    /// GROUP BY keys (empty: no grouping; with aggregates and no keys, one group over all
    /// rows, as `SELECT count(*) FROM t` has).
    pub group_by: Vec<usize>,
    /// Whether the shards return rows ordered by the group keys (the rewrite added or kept
    /// a matching ORDER BY), so groups merge as streams; otherwise a hash GROUP BY holds
    /// every group.
    pub group_by_streamed: bool,
    /// With `group_by_streamed`: the ORDER BY the shards' rows come in, each group key with
    /// the direction and NULL placement the shard query used (the merge must order its
    /// inputs exactly as the shards did, and the dialects place NULLs differently). Its
    /// leading keys must be the group columns. Empty: [`MergePlan::order_by`] is used when
    /// it starts with the group columns; otherwise the groups are merged by hash, which is
    /// correct but holds every group.
    pub group_by_order: Vec<SortKey>,
    /// The aggregate columns, merged per group.
    pub aggregates: Vec<Aggregate>,
    /// HAVING, evaluated on merged groups.
    pub having: Option<Having>,
    /// SELECT DISTINCT over the visible columns.
    pub distinct: bool,
    /// ORDER BY keys of the final result.
    pub order_by: Vec<SortKey>,
    /// OFFSET of the client's statement (the shards got none and `limit + offset` rows).
    pub offset: u64,
    /// LIMIT of the client's statement.
    pub limit: Option<u64>,
}

/// One ORDER BY key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SortKey {
    pub column: usize,
    pub descending: bool,
    /// Where NULLs go: given by `NULLS FIRST/LAST`, else the dialect's default for the
    /// direction (MySQL: first ascending, last descending; PostgreSQL: the opposite).
    pub nulls: NullOrder,
}

/// One aggregate column: the shards computed it per shard, the merge combines them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Aggregate {
    /// The column holding the shard's partial result (for AVG, the SUM half).
    pub column: usize,
    pub function: AggregateFunction,
}

/// How partial results combine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AggregateFunction {
    /// COUNT(*) / COUNT(x): sum of the shards' counts.
    Count,
    /// SUM(x): sum of the shards' sums (NULL if every shard's is NULL).
    Sum,
    Min,
    Max,
    /// AVG(x): the shards return SUM(x) in `column` and COUNT(x) in `count_column`; the
    /// merge divides with the backend's scale rules.
    Avg {
        count_column: usize,
    },
    /// COUNT(DISTINCT x) / SUM(DISTINCT x): the shards return the distinct values of x
    /// (the rewrite turns the aggregate into a GROUP BY x), the merge counts or sums the
    /// distinct values across shards.
    CountDistinct,
    SumDistinct,
    /// AVG(DISTINCT x): the shards return the distinct values of x, as for SUM(DISTINCT x);
    /// the merge divides the sum of the distinct values by their count.
    AvgDistinct,
}

/// A HAVING condition on merged values: `column op literal`, combined with AND / OR.
#[derive(Debug, Clone, PartialEq)]
pub enum Having {
    Compare {
        column: usize,
        op: CompareOp,
        value: super::Value,
    },
    And(Box<Having>, Box<Having>),
    Or(Box<Having>, Box<Having>),
    Not(Box<Having>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    Eq,
    NotEq,
    Lt,
    LtEq,
    Gt,
    GtEq,
}

/// What merging needs to know of one result column, from the shards' column metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ColumnInfo {
    pub collation: Collation,
    /// When this column holds the SUM half of an AVG: the scale of the exact quotient
    /// ([`AvgScale::mysql`] from the SUM column's `decimals`, or
    /// [`AvgScale::PostgresNumeric`]). Ignored for float sums (the AVG is a float).
    pub avg_scale: AvgScale,
    /// When this column holds the values of a SUM(DISTINCT x): whether the backend types
    /// SUM(x) as DECIMAL / numeric although x is an integer (MySQL for every integer;
    /// PostgreSQL for int8), so the merged sum is a [`super::Value::Decimal`]. Otherwise
    /// an integer sum stays an integer (PostgreSQL's sum(int2/int4) is bigint) unless it
    /// overflows 64 bits. Plain SUMs need no flag: the shards already typed them.
    pub sum_is_decimal: bool,
}
