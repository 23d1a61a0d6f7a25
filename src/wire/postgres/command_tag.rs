//! Combining the CommandComplete tags of a statement that ran on several data sources into
//! the one tag the client gets: `SELECT 3` and `SELECT 4` make `SELECT 7`, `INSERT 0 2`
//! and `INSERT 0 1` make `INSERT 0 3`; a tag without a count (`CREATE TABLE`) is the
//! first one's.

/// The running combination of the tags seen so far.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct TagSum {
    /// The first tag's words before its count (`SELECT`, `INSERT 0`, `CREATE TABLE`).
    prefix: Option<String>,
    /// Whether the first tag ended in a count.
    counted: bool,
    total: u64,
}

impl TagSum {
    /// Adds one unit's tag.
    pub fn add(&mut self, tag: &str) {
        let (prefix, count) = split_count(tag);
        if self.prefix.is_none() {
            self.counted = count.is_some();
            self.prefix = Some(match prefix {
                // The OID field of INSERT is always 0 since PostgreSQL 12.
                "INSERT" | "INSERT 0" if count.is_some() => "INSERT 0".to_string(),
                p => p.to_string(),
            });
        }
        self.total += count.unwrap_or(0);
    }

    /// The combined tag; `fallback` when no unit sent one.
    pub fn tag(&self, fallback: &str) -> String {
        match &self.prefix {
            None => fallback.to_string(),
            Some(p) if self.counted => format!("{p} {}", self.total),
            Some(p) => p.clone(),
        }
    }
}

/// `INSERT 0 5` → (`INSERT 0`, 5); `CREATE TABLE` → (`CREATE TABLE`, None).
fn split_count(tag: &str) -> (&str, Option<u64>) {
    match tag.rsplit_once(' ') {
        Some((prefix, last)) => match last.parse() {
            Ok(n) => (prefix, Some(n)),
            Err(_) => (tag, None),
        },
        None => (tag, None),
    }
}

/// The tag dbmesh answers a transaction statement with, as PostgreSQL would: `BEGIN` or
/// `START TRANSACTION`, `COMMIT`, `ROLLBACK`, `SAVEPOINT`, `RELEASE`.
pub fn leading_keyword_tag(sql: &str) -> &'static str {
    let word = first_word(sql);
    if word.eq_ignore_ascii_case("start") {
        "START TRANSACTION"
    } else if word.eq_ignore_ascii_case("commit") || word.eq_ignore_ascii_case("end") {
        "COMMIT"
    } else if word.eq_ignore_ascii_case("rollback") || word.eq_ignore_ascii_case("abort") {
        "ROLLBACK"
    } else if word.eq_ignore_ascii_case("savepoint") {
        "SAVEPOINT"
    } else if word.eq_ignore_ascii_case("release") {
        "RELEASE"
    } else {
        "BEGIN"
    }
}

/// The first word of `sql`, after whitespace and comments.
pub fn first_word(sql: &str) -> &str {
    let mut s = sql.trim_start();
    loop {
        if let Some(rest) = s.strip_prefix("--") {
            s = rest.split_once('\n').map_or("", |(_, r)| r).trim_start();
        } else if let Some(rest) = s.strip_prefix("/*") {
            s = rest.split_once("*/").map_or("", |(_, r)| r).trim_start();
        } else {
            break;
        }
    }
    let end = s
        .find(|c: char| !c.is_ascii_alphanumeric() && c != '_')
        .unwrap_or(s.len());
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sum(tags: &[&str]) -> String {
        let mut t = TagSum::default();
        for tag in tags {
            t.add(tag);
        }
        t.tag("SELECT 0")
    }

    #[test]
    fn sums_row_counts_of_the_same_command() {
        assert_eq!(sum(&["SELECT 3", "SELECT 4"]), "SELECT 7");
        assert_eq!(sum(&["INSERT 0 2", "INSERT 0 1"]), "INSERT 0 3");
        assert_eq!(sum(&["UPDATE 1", "UPDATE 0", "UPDATE 5"]), "UPDATE 6");
        assert_eq!(sum(&["DELETE 2", "DELETE 2"]), "DELETE 4");
    }

    #[test]
    fn keeps_the_first_tag_without_a_count() {
        assert_eq!(sum(&["CREATE TABLE", "CREATE TABLE"]), "CREATE TABLE");
        assert_eq!(sum(&["SET", "SET"]), "SET");
        assert_eq!(sum(&[]), "SELECT 0");
    }

    #[test]
    fn names_transaction_statements_as_postgres_does() {
        assert_eq!(
            leading_keyword_tag("begin isolation level serializable"),
            "BEGIN"
        );
        assert_eq!(
            leading_keyword_tag("START TRANSACTION"),
            "START TRANSACTION"
        );
        assert_eq!(leading_keyword_tag("/* x */ END"), "COMMIT");
        assert_eq!(leading_keyword_tag("abort"), "ROLLBACK");
        assert_eq!(leading_keyword_tag("RELEASE SAVEPOINT a"), "RELEASE");
        assert_eq!(first_word("-- c\n  rollback to a"), "rollback");
    }
}
