//! Statements sqlparser cannot parse (vendor syntax, `XA ...`, several statements in one
//! query string). They can still run where no sharding decision is needed: if the text
//! names no sharded or broadcast table, the default data source takes it unchanged;
//! otherwise routing it anywhere could be wrong, so the client gets an error naming the
//! table and the parser's complaint.

use sqlparser::dialect::{MySqlDialect, PostgreSqlDialect};
use sqlparser::tokenizer::{Token, Tokenizer};

use crate::config::rules::ShardingRules;
use crate::sql::analyze::Dialect;

/// The first sharded (or, with `broadcast`, broadcast) table `sql` appears to name (any
/// identifier token equal to one), if any.
pub(crate) fn names_sharded_table(
    sql: &str,
    dialect: Dialect,
    rules: &ShardingRules,
    broadcast: bool,
) -> Option<String> {
    let is_ruled =
        |word: &str| rules.table(word).is_some() || (broadcast && rules.is_broadcast(word));
    let parser_dialect: &dyn sqlparser::dialect::Dialect = match dialect {
        Dialect::MySql => &MySqlDialect {},
        Dialect::Postgres => &PostgreSqlDialect {},
    };
    match Tokenizer::new(parser_dialect, sql).tokenize() {
        Ok(tokens) => tokens.iter().find_map(|token| match token {
            Token::Word(word) if is_ruled(&word.value) => Some(word.value.to_lowercase()),
            _ => None,
        }),
        // Not even tokenizable: look at every run of identifier characters.
        Err(_) => sql
            .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '$'))
            .find(|word| !word.is_empty() && is_ruled(word))
            .map(str::to_lowercase),
    }
}
