//! `SET dbmesh_transaction_type = 'XA'`: a session choosing its transaction type, which
//! otherwise is its logical database's `transaction` setting. Protocol-neutral; the wire
//! layers intercept it on sharded databases before planning.

use crate::config::TransactionType;
use crate::error::Error;

/// The variable's name (case-insensitive).
pub const VARIABLE: &str = "dbmesh_transaction_type";

/// `Some` when `sql` sets the variable: the type, or why the value is refused.
/// Accepts `SET [SESSION] dbmesh_transaction_type = | TO 'XA' | XA | "XA"`.
pub fn parse(sql: &str) -> Option<Result<TransactionType, Error>> {
    let sql = sql.trim().trim_end_matches(';').trim();
    let rest = strip_word(sql, "set")?;
    let rest = strip_word(rest, "session").unwrap_or(rest);
    let rest = strip_word(rest, VARIABLE)?;
    let rest = rest
        .strip_prefix('=')
        .or_else(|| strip_word(rest, "to"))?
        .trim();
    let value = rest.trim_matches(|c| c == '\'' || c == '"');
    Some(
        match TransactionType::from_name(&value.to_ascii_uppercase()) {
            Some(t) => Ok(t),
            None => Err(Error::Routing(format!(
                "`{value}` is not a transaction type; {VARIABLE} takes 'LOCAL', 'XA' or 'SAGA'"
            ))),
        },
    )
}

/// `text` after a leading `word` (case-insensitive) and the whitespace after it.
fn strip_word<'a>(text: &'a str, word: &str) -> Option<&'a str> {
    let head = text.get(..word.len())?;
    if !head.eq_ignore_ascii_case(word) {
        return None;
    }
    let rest = &text[word.len()..];
    if rest.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_') {
        return None;
    }
    Some(rest.trim_start())
}

/// Whether `sql` is an XA statement of the application's own (`XA START ...`,
/// `PREPARE TRANSACTION ...`, `COMMIT PREPARED ...`, `ROLLBACK PREPARED ...`), which
/// dbmesh passes through only on a database with one data source.
pub fn is_raw_xa(sql: &str) -> bool {
    let sql = sql.trim_start();
    if strip_word(sql, "xa").is_some() {
        return true;
    }
    let second = |first: &str, second: &str| {
        strip_word(sql, first).is_some_and(|rest| strip_word(rest, second).is_some())
    };
    second("prepare", "transaction")
        || second("commit", "prepared")
        || second("rollback", "prepared")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_forms_of_the_set_statement() {
        for sql in [
            "SET dbmesh_transaction_type = 'XA'",
            "set session DBMESH_TRANSACTION_TYPE='xa';",
            "SET dbmesh_transaction_type TO XA",
            "SET dbmesh_transaction_type = \"XA\"",
        ] {
            assert!(matches!(parse(sql), Some(Ok(TransactionType::Xa))), "{sql}");
        }
        assert!(matches!(
            parse("SET dbmesh_transaction_type = LOCAL"),
            Some(Ok(TransactionType::Local))
        ));
        assert!(matches!(
            parse("SET dbmesh_transaction_type = 'SAGA'"),
            Some(Ok(TransactionType::Saga))
        ));
        assert!(matches!(
            parse("SET dbmesh_transaction_type = '2PC'"),
            Some(Err(_))
        ));
        assert!(parse("SET dbmesh_transaction_typex = 'XA'").is_none());
        assert!(parse("SET autocommit = 0").is_none());
    }

    #[test]
    fn recognises_application_xa_statements() {
        for sql in [
            "XA START 'a'",
            "xa recover",
            "PREPARE TRANSACTION 'g'",
            "commit  prepared 'g'",
            "ROLLBACK PREPARED 'g'",
        ] {
            assert!(is_raw_xa(sql), "{sql}");
        }
        for sql in [
            "XAVIER",
            "PREPARE s FROM 'x'",
            "COMMIT",
            "ROLLBACK TO SAVEPOINT a",
        ] {
            assert!(!is_raw_xa(sql), "{sql}");
        }
    }
}
