//! SQL analysis. Passthrough statements are not parsed at all: a cheap look at the leading
//! keywords decides whether dbmesh must act on a statement itself (`USE`, `SHOW DATABASES`)
//! or record it as session state (`SET`). Statements on sharded or broadcast tables are
//! parsed in full by [`analyze`](analyze::analyze), with hints read from comments first
//! ([`hint`]).

pub mod analyze;
pub mod hint;
pub mod kind;
pub mod split;

pub use analyze::{
    analyze, Analysis, AnalyzeError, ColumnCondition, ConditionGroup, DdlKind, Dialect, InsertInfo,
    SqlKind, TableRef, TableRole, UpdateSet, Upsert, ValueRef,
};
pub use hint::{parse_hint, Hint};
pub use kind::{classify, StatementKind};
