//! Read/write splitting: whether a statement may run on a replica of its data source or
//! must run on the primary. Protocol-neutral: the MySQL and PostgreSQL frontends ask
//! [`decide`] with the statement text and the session's transaction state, then pick a
//! replica themselves (see `execute::replicas`).
//!
//! The check is lexical (words outside string literals, quoted identifiers and comments),
//! and errs towards the primary: only a statement that is certainly a plain read goes to
//! a replica, since a write that lands on a replica fails (or worse, on a writable one,
//! diverges) while a read on the primary only costs the primary some load.

use crate::config::TransactionalRead;

/// Where a statement on a data source with replicas runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The primary: writes, locking reads, session-bound functions, transactions.
    Primary,
    /// Any admitted replica, chosen by the data source's load balancer.
    Replica,
    /// The replica this transaction already read from (`transactional_read = "FIXED"`),
    /// or one chosen now and kept until the transaction ends.
    TransactionReplica,
}

/// What the session's state says about where reads may go.
#[derive(Debug, Clone, Copy)]
pub struct SessionState {
    /// Inside an explicit transaction (BEGIN / START TRANSACTION).
    pub in_transaction: bool,
    /// `autocommit` is on; with it off every statement opens a transaction, so reads stay
    /// with the writes on the primary.
    pub autocommit: bool,
    /// The session created a temporary table, which exists on the primary only.
    pub pinned_to_primary: bool,
    pub transactional_read: TransactionalRead,
}

/// Where `sql` runs, given the session state and whether it carries `/* dbmesh: primary */`.
pub fn decide(sql: &str, hinted_primary: bool, session: SessionState) -> Target {
    if hinted_primary || session.pinned_to_primary || !session.autocommit || !is_plain_read(sql) {
        return Target::Primary;
    }
    if !session.in_transaction {
        return Target::Replica;
    }
    match session.transactional_read {
        TransactionalRead::Primary => Target::Primary,
        TransactionalRead::Fixed => Target::TransactionReplica,
        TransactionalRead::Dynamic => Target::Replica,
    }
}

/// Functions whose result depends on the session or that change state: a SELECT calling
/// one must run where the session's writes and locks are.
const PRIMARY_FUNCTIONS: &[&str] = &[
    "LAST_INSERT_ID",
    "ROW_COUNT",
    "FOUND_ROWS",
    "GET_LOCK",
    "RELEASE_LOCK",
    "RELEASE_ALL_LOCKS",
    "IS_USED_LOCK",
    "IS_FREE_LOCK",
    "NEXTVAL",
    "SETVAL",
    "LASTVAL",
    "CURRVAL",
    "SET_CONFIG",
    "TXID_CURRENT",
    "TXID_CURRENT_IF_ASSIGNED",
    "PG_CURRENT_XACT_ID",
    "PG_CURRENT_XACT_ID_IF_ASSIGNED",
    "PG_NOTIFY",
    "PG_BACKEND_PID",
    // Write-ahead log positions and the primary's own functions (they fail on a standby).
    "PG_CURRENT_WAL_LSN",
    "PG_CURRENT_WAL_INSERT_LSN",
    "PG_CURRENT_WAL_FLUSH_LSN",
    "PG_SWITCH_WAL",
    "PG_CREATE_RESTORE_POINT",
    "PG_EXPORT_SNAPSHOT",
    "PG_LOGICAL_EMIT_MESSAGE",
    "PG_TERMINATE_BACKEND",
    "PG_CANCEL_BACKEND",
    "PG_RELOAD_CONF",
    "DBLINK_EXEC",
];

/// Name prefixes of such functions: advisory locks, large objects (`lo_create`,
/// `lo_unlink`, `lowrite`), replication slots, statistics resets.
const PRIMARY_FUNCTION_PREFIXES: &[&str] = &[
    "PG_ADVISORY",
    "PG_TRY_ADVISORY",
    "LO_",
    "LOWRITE",
    "PG_CREATE_",
    "PG_DROP_REPLICATION",
    "PG_STAT_RESET",
    "PG_REPLICATION_ORIGIN",
];

/// Whether `sql` is a read without side effects: a SELECT (possibly in parentheses or
/// after a WITH whose parts do not write), or PostgreSQL's `TABLE t` / `VALUES (...)`,
/// that neither locks rows, stores its result (`INTO`), assigns user variables (`:=`)
/// nor calls a session-bound function.
pub fn is_plain_read(sql: &str) -> bool {
    let mut words = Words::new(sql);
    let Some(first) = words.first_word() else {
        return false;
    };
    let with = if first.eq_ignore_ascii_case("WITH") {
        true
    } else if ["SELECT", "TABLE", "VALUES"]
        .iter()
        .any(|w| first.eq_ignore_ascii_case(w))
    {
        false
    } else {
        return false;
    };
    let mut previous: Option<&str> = None;
    let mut ended = false;
    for token in words {
        // Anything after a `;` is another statement (a PostgreSQL simple Query may carry
        // several): it may write, and they all run on one connection.
        if ended {
            return false;
        }
        let word = match token {
            Token::Word(w) => w,
            Token::Assign => return false,
            Token::Symbol(b';') => {
                ended = true;
                previous = None;
                continue;
            }
            Token::Symbol(_) => {
                previous = None;
                continue;
            }
        };
        let is = |name: &str| word.eq_ignore_ascii_case(name);
        if is("INTO") || (with && (is("INSERT") || is("UPDATE") || is("DELETE") || is("MERGE"))) {
            return false;
        }
        if let Some(p) = previous {
            let after = |name: &str| p.eq_ignore_ascii_case(name);
            // FOR UPDATE / FOR SHARE / FOR NO KEY UPDATE / FOR KEY SHARE, LOCK IN SHARE MODE,
            // MariaDB's NEXT VALUE FOR.
            if (after("FOR") && (is("UPDATE") || is("SHARE") || is("NO") || is("KEY")))
                || (after("LOCK") && is("IN"))
                || (after("NEXT") && is("VALUE"))
            {
                return false;
            }
        }
        let upper = word.to_ascii_uppercase();
        if PRIMARY_FUNCTIONS.contains(&upper.as_str())
            || PRIMARY_FUNCTION_PREFIXES
                .iter()
                .any(|p| upper.starts_with(p))
        {
            return false;
        }
        previous = Some(word);
    }
    true
}

/// Whether `sql` is a query whose WITH clause writes: PostgreSQL's data-modifying CTEs
/// (`WITH gone AS (DELETE FROM t ... RETURNING *) SELECT ...`), which the router takes for
/// a read. `FOR UPDATE` / `FOR NO KEY UPDATE` inside it lock, they do not write.
pub fn writes_in_with(sql: &str) -> bool {
    let mut words = Words::new(sql);
    let Some(first) = words.first_word() else {
        return false;
    };
    if !first.eq_ignore_ascii_case("WITH") {
        return false;
    }
    let mut previous: Option<&str> = None;
    for token in words {
        let Token::Word(word) = token else {
            previous = None;
            continue;
        };
        let is = |name: &str| word.eq_ignore_ascii_case(name);
        let locks = previous
            .is_some_and(|p| p.eq_ignore_ascii_case("FOR") || p.eq_ignore_ascii_case("KEY"));
        if is("INSERT") || is("DELETE") || is("MERGE") || (is("UPDATE") && !locks) {
            return true;
        }
        previous = Some(word);
    }
    false
}

/// Whether `sql` creates a temporary table (after which the session reads from the
/// primary only: the table exists nowhere else).
pub fn creates_temporary_table(sql: &str) -> bool {
    let mut words = Words::new(sql).filter_map(|t| match t {
        Token::Word(w) => Some(w),
        _ => None,
    });
    words
        .next()
        .is_some_and(|w| w.eq_ignore_ascii_case("CREATE"))
        && words
            .take(2)
            .any(|w| w.eq_ignore_ascii_case("TEMPORARY") || w.eq_ignore_ascii_case("TEMP"))
}

#[derive(Debug, PartialEq, Eq)]
enum Token<'a> {
    /// A bare word or keyword (quoted identifiers and literals are skipped).
    Word(&'a str),
    /// `:=`, MySQL's assignment to a user variable.
    Assign,
    /// Any other character outside literals.
    Symbol(u8),
}

/// The tokens of a statement outside literals, quoted identifiers and comments.
struct Words<'a> {
    sql: &'a str,
    at: usize,
}

impl<'a> Words<'a> {
    fn new(sql: &'a str) -> Self {
        Words { sql, at: 0 }
    }

    /// Skips past the closing `quote` (a doubled quote or a backslash escape stays inside).
    fn skip_quoted(&mut self, quote: u8) {
        let bytes = self.sql.as_bytes();
        while self.at < bytes.len() {
            let b = bytes[self.at];
            self.at += 1;
            if b == b'\\' && quote != b'`' {
                self.at += 1;
            } else if b == quote {
                if bytes.get(self.at) == Some(&quote) {
                    self.at += 1;
                } else {
                    return;
                }
            }
        }
    }
}

impl<'a> Iterator for Words<'a> {
    type Item = Token<'a>;

    fn next(&mut self) -> Option<Token<'a>> {
        let bytes = self.sql.as_bytes();
        loop {
            let b = *bytes.get(self.at)?;
            let next = bytes.get(self.at + 1).copied();
            match b {
                b if b.is_ascii_whitespace() => self.at += 1,
                b'\'' | b'"' | b'`' => {
                    self.at += 1;
                    self.skip_quoted(b);
                }
                b'-' if next == Some(b'-') => self.skip_line(),
                b'#' => self.skip_line(),
                b'/' if next == Some(b'*') => {
                    self.at = match self.sql[self.at + 2..].find("*/") {
                        Some(end) => self.at + 2 + end + 2,
                        None => bytes.len(),
                    };
                }
                b'$' if next.is_some_and(|n| n == b'$' || n.is_ascii_alphabetic()) => {
                    // A PostgreSQL dollar-quoted string: $$...$$ or $tag$...$tag$.
                    let rest = &self.sql[self.at + 1..];
                    match rest.find('$') {
                        Some(len)
                            if rest[..len]
                                .bytes()
                                .all(|c| c.is_ascii_alphanumeric() || c == b'_') =>
                        {
                            let tag = &self.sql[self.at..self.at + len + 2];
                            let body = self.at + len + 2;
                            self.at = match self.sql[body..].find(tag) {
                                Some(end) => body + end + tag.len(),
                                None => bytes.len(),
                            };
                        }
                        _ => {
                            self.at += 1;
                            return Some(Token::Symbol(b'$'));
                        }
                    }
                }
                b':' if next == Some(b'=') => {
                    self.at += 2;
                    return Some(Token::Assign);
                }
                b if b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80 => {
                    let start = self.at;
                    while bytes.get(self.at).is_some_and(|&c| {
                        c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80
                    }) {
                        self.at += 1;
                    }
                    return Some(Token::Word(&self.sql[start..self.at]));
                }
                other => {
                    self.at += 1;
                    return Some(Token::Symbol(other));
                }
            }
        }
    }
}

impl<'a> Words<'a> {
    /// The statement's first word, past opening parentheses (`(SELECT ...)`); `None` when
    /// something else comes first.
    fn first_word(&mut self) -> Option<&'a str> {
        loop {
            match self.next()? {
                Token::Word(w) => return Some(w),
                Token::Symbol(b'(') => continue,
                _ => return None,
            }
        }
    }
}

impl Words<'_> {
    fn skip_line(&mut self) {
        self.at = match self.sql[self.at..].find('\n') {
            Some(end) => self.at + end + 1,
            None => self.sql.len(),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_with_clause_that_writes_is_told_from_one_that_locks() {
        assert!(writes_in_with(
            "WITH gone AS (DELETE FROM t_order WHERE user_id = 1 RETURNING *) SELECT count(*) FROM gone"
        ));
        assert!(writes_in_with(
            "with n as (insert into t values (1) returning id) select * from n"
        ));
        assert!(writes_in_with(
            "WITH u AS (UPDATE t SET a = 1 RETURNING a) SELECT 1"
        ));
        assert!(!writes_in_with(
            "WITH c AS (SELECT * FROM t FOR UPDATE) SELECT * FROM c"
        ));
        assert!(!writes_in_with(
            "WITH c AS (SELECT * FROM t FOR NO KEY UPDATE) SELECT 1"
        ));
        assert!(!writes_in_with(
            "WITH c AS (SELECT 'DELETE' AS w) SELECT * FROM c"
        ));
        assert!(!writes_in_with("DELETE FROM t"));
        assert!(!writes_in_with("SELECT 1"));
    }

    fn state(in_transaction: bool, transactional_read: TransactionalRead) -> SessionState {
        SessionState {
            in_transaction,
            autocommit: true,
            pinned_to_primary: false,
            transactional_read,
        }
    }

    const OUTSIDE: SessionState = SessionState {
        in_transaction: false,
        autocommit: true,
        pinned_to_primary: false,
        transactional_read: TransactionalRead::Primary,
    };

    #[test]
    fn plain_selects_go_to_a_replica() {
        for sql in [
            "SELECT * FROM t_order WHERE id = 1",
            "select @@server_id",
            "  (SELECT 1) UNION (SELECT 2)",
            "/* app */ SELECT name FROM t_user",
            "WITH recent AS (SELECT * FROM t_order) SELECT count(*) FROM recent",
            "SELECT 'FOR UPDATE', \"INTO\", `lock` FROM t -- FOR UPDATE",
            "SELECT SUBSTRING(name FROM 1 FOR 3) FROM t_user",
            "SELECT $$ INSERT INTO x $$, inet_server_port()",
            "TABLE t_order",
            "VALUES (1, 'a'), (2, 'b')",
            "SELECT \"nextval\" FROM t -- a column named like a function",
            "SELECT local_count FROM t_lo",
            "SELECT 1;",
            "SELECT 1 ; -- done",
        ] {
            assert_eq!(decide(sql, false, OUTSIDE), Target::Replica, "{sql}");
        }
    }

    #[test]
    fn writes_and_other_statements_go_to_the_primary() {
        for sql in [
            "INSERT INTO t VALUES (1)",
            "UPDATE t SET a = 1",
            "DELETE FROM t",
            "CREATE TABLE t (id INT)",
            "SET @a = 1",
            "BEGIN",
            "CALL proc()",
            "WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d",
            "",
            "SHOW TABLES",
            "EXPLAIN ANALYZE SELECT 1",
            "COPY t TO STDOUT",
            "DECLARE c CURSOR FOR SELECT 1",
            "FETCH 10 FROM c",
            "EXECUTE stmt(1)",
            "LISTEN ch",
            "SELECT 1; DELETE FROM t",
            "SELECT 1;INSERT INTO t VALUES (1)",
        ] {
            assert_eq!(decide(sql, false, OUTSIDE), Target::Primary, "{sql}");
        }
    }

    #[test]
    fn locking_reads_go_to_the_primary() {
        for sql in [
            "SELECT * FROM t WHERE id = 1 FOR UPDATE",
            "SELECT * FROM t FOR SHARE",
            "select * from t for no key update",
            "SELECT * FROM t FOR KEY SHARE",
            "SELECT * FROM t LOCK IN SHARE MODE",
            "SELECT * FROM t FOR UPDATE SKIP LOCKED",
        ] {
            assert_eq!(decide(sql, false, OUTSIDE), Target::Primary, "{sql}");
        }
    }

    #[test]
    fn session_bound_selects_go_to_the_primary() {
        for sql in [
            "SELECT LAST_INSERT_ID()",
            "SELECT last_insert_id()",
            "SELECT GET_LOCK('x', 1)",
            "SELECT nextval('seq')",
            "SELECT NEXT VALUE FOR seq",
            "SELECT pg_advisory_lock(1)",
            "SELECT id INTO @id FROM t",
            "SELECT * INTO new_table FROM t",
            "SELECT @n := @n + 1 FROM t",
            "SELECT FOUND_ROWS()",
            "SELECT currval('seq'), lastval()",
            "SELECT setval('seq', 10)",
            "SELECT pg_try_advisory_xact_lock(7)",
            "SELECT txid_current()",
            "SELECT txid_current_if_assigned()",
            "SELECT pg_current_xact_id()",
            "SELECT pg_current_wal_lsn()",
            "SELECT pg_notify('ch', 'x')",
            "SELECT set_config('search_path', 'a', false)",
            "SELECT lo_create(0)",
            "SELECT pg_create_physical_replication_slot('s')",
            "VALUES (nextval('seq'))",
        ] {
            assert_eq!(decide(sql, false, OUTSIDE), Target::Primary, "{sql}");
        }
    }

    #[test]
    fn the_primary_hint_forces_the_primary() {
        assert_eq!(
            decide("/* dbmesh: primary */ SELECT 1", true, OUTSIDE),
            Target::Primary
        );
    }

    #[test]
    fn reads_in_a_transaction_follow_the_transactional_read_strategy() {
        let sql = "SELECT * FROM t";
        assert_eq!(
            decide(sql, false, state(true, TransactionalRead::Primary)),
            Target::Primary
        );
        assert_eq!(
            decide(sql, false, state(true, TransactionalRead::Fixed)),
            Target::TransactionReplica
        );
        assert_eq!(
            decide(sql, false, state(true, TransactionalRead::Dynamic)),
            Target::Replica
        );
        // Writes stay on the primary whatever the strategy.
        assert_eq!(
            decide(
                "UPDATE t SET a = 1",
                false,
                state(true, TransactionalRead::Dynamic)
            ),
            Target::Primary
        );
    }

    #[test]
    fn autocommit_off_or_a_temporary_table_keeps_reads_on_the_primary() {
        let mut s = OUTSIDE;
        s.autocommit = false;
        assert_eq!(decide("SELECT 1", false, s), Target::Primary);
        let mut s = OUTSIDE;
        s.pinned_to_primary = true;
        assert_eq!(decide("SELECT 1", false, s), Target::Primary);
    }

    #[test]
    fn recognises_temporary_table_creation() {
        assert!(creates_temporary_table("CREATE TEMPORARY TABLE t (id INT)"));
        assert!(creates_temporary_table("create temp table t (id int)"));
        assert!(creates_temporary_table(
            "CREATE GLOBAL TEMPORARY TABLE t (id int)"
        ));
        assert!(!creates_temporary_table(
            "CREATE TABLE temporary_t (id INT)"
        ));
        assert!(!creates_temporary_table("SELECT 'CREATE TEMPORARY'"));
    }
}
