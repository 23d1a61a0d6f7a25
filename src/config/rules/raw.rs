//! A rule file's tables as serde sees them, spans kept for messages. Algorithms and key
//! generators are read as free-form properties (see `document.rs`), since their keys
//! depend on their `type`.

use serde::Deserialize;
use toml::Spanned;

/// One `[tables.<name>]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTable {
    pub nodes: Option<Spanned<String>>,
    pub database_strategy: Option<Spanned<RawStrategy>>,
    pub table_strategy: Option<Spanned<RawStrategy>>,
    pub key_generator: Option<Spanned<RawKeyGen>>,
}

/// `{ column = "...", algorithm = "..." }`, `{ columns = [...], algorithm = "..." }` or
/// `{ algorithm = "..." }` (hint).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStrategy {
    pub column: Option<Spanned<String>>,
    pub columns: Option<Spanned<Vec<Spanned<String>>>>,
    pub algorithm: Spanned<String>,
}

/// `{ column = "...", generator = "..." }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawKeyGen {
    pub column: Spanned<String>,
    pub generator: Spanned<String>,
}
