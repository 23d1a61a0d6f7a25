//! What binds a PostgreSQL session to its backend connection between transactions, and the
//! statements that reset a session.
//!
//! Under transaction pooling a session gives its connection back whenever the backend is
//! idle outside a transaction, unless the session holds state that lives in that backend
//! process and cannot be carried to another one: temporary tables, session-level advisory
//! locks, `LISTEN`, cursors `WITH HOLD`, SQL-level `PREPARE`. Recognising each statement
//! that creates or drops such state exactly would need a full parser (and state made inside
//! functions would still escape it), so dbmesh does two things instead:
//!
//! - a statement whose words hint at such state ([`may_pin`]: `TEMP`, `TEMPORARY`,
//!   `pg_temp`, `LISTEN`, `HOLD`, `PREPARE`, the session advisory lock functions) marks the
//!   session as possibly pinned;
//! - a possibly pinned session asks its backend, each time it could release it, whether any
//!   such state exists ([`PROBE`]), and keeps the connection while it does. When it is gone
//!   (`DROP TABLE`, `pg_advisory_unlock_all()`, `UNLISTEN *`, `CLOSE`, `DEALLOCATE`,
//!   `DISCARD ALL`) the next release goes ahead.

/// One query, one boolean: does this backend process hold state bound to it?
pub const PROBE: &str = "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_locks \
     WHERE locktype = 'advisory' AND pid = pg_catalog.pg_backend_pid()) \
     OR EXISTS (SELECT 1 FROM pg_catalog.pg_listening_channels()) \
     OR EXISTS (SELECT 1 FROM pg_catalog.pg_class WHERE relnamespace = pg_catalog.pg_my_temp_schema()) \
     OR EXISTS (SELECT 1 FROM pg_catalog.pg_cursors WHERE is_holdable) \
     OR EXISTS (SELECT 1 FROM pg_catalog.pg_prepared_statements WHERE from_sql)";

/// Whether `sql` may create state that binds the session to its connection (see the
/// module documentation). False positives cost one probe; a miss is state created where
/// no word shows it (inside a function).
pub fn may_pin(sql: &[u8]) -> bool {
    sql.split(|b| !(b.is_ascii_alphanumeric() || *b == b'_'))
        .any(|word| {
            let w = |s: &str| word.eq_ignore_ascii_case(s.as_bytes());
            let starts = |s: &str| {
                word.len() >= s.len() && word[..s.len()].eq_ignore_ascii_case(s.as_bytes())
            };
            w("temp")
                || w("temporary")
                || starts("pg_temp")
                || w("listen")
                || w("hold")
                || w("prepare")
                || w("pg_advisory_lock")
                || w("pg_advisory_lock_shared")
                || w("pg_try_advisory_lock")
                || w("pg_try_advisory_lock_shared")
        })
}

/// A statement that resets part of the session, which dbmesh must follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionReset {
    /// `DISCARD ALL`: settings, prepared statements, temporary tables, locks, listeners.
    DiscardAll,
    /// `DEALLOCATE ALL` / `DEALLOCATE PREPARE ALL`: every prepared statement.
    DeallocateAll,
    /// `RESET name` / `RESET ALL`: settings; recorded like a `SET`, to be replayed.
    Reset,
}

/// Whether `sql` (one statement of a simple Query or a Parse) is one of [`SessionReset`].
pub fn session_reset(sql: &[u8]) -> Option<SessionReset> {
    let text = std::str::from_utf8(sql).ok()?;
    let words: Vec<&str> = text
        .trim()
        .trim_end_matches(';')
        .split_ascii_whitespace()
        .collect();
    let is = |i: usize, w: &str| words.get(i).is_some_and(|x| x.eq_ignore_ascii_case(w));
    if is(0, "discard") && is(1, "all") && words.len() == 2 {
        Some(SessionReset::DiscardAll)
    } else if is(0, "deallocate")
        && ((is(1, "all") && words.len() == 2)
            || (is(1, "prepare") && is(2, "all") && words.len() == 3))
    {
        Some(SessionReset::DeallocateAll)
    } else if is(0, "reset") && words.len() >= 2 && !text.contains(';') {
        Some(SessionReset::Reset)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_that_hint_at_connection_bound_state_pin() {
        for sql in [
            "CREATE TEMP TABLE t (id int)",
            "create temporary table t as select 1",
            "CREATE TABLE pg_temp.t (id int)",
            "LISTEN jobs",
            "DECLARE c CURSOR WITH HOLD FOR SELECT 1",
            "PREPARE p AS SELECT 1",
            "SELECT pg_advisory_lock(42)",
            "select pg_try_advisory_lock_shared(1, 2)",
        ] {
            assert!(may_pin(sql.as_bytes()), "{sql}");
        }
    }

    #[test]
    fn ordinary_statements_and_transaction_scoped_locks_do_not_pin() {
        for sql in [
            "SELECT 1",
            "INSERT INTO temperature VALUES (1)",
            "SELECT pg_advisory_xact_lock(42)",
            "SELECT threshold FROM t",
            "SET search_path = a",
        ] {
            assert!(!may_pin(sql.as_bytes()), "{sql}");
        }
    }

    #[test]
    fn recognises_session_resets() {
        assert_eq!(
            session_reset(b"DISCARD ALL"),
            Some(SessionReset::DiscardAll)
        );
        assert_eq!(
            session_reset(b" discard all; "),
            Some(SessionReset::DiscardAll)
        );
        assert_eq!(
            session_reset(b"DEALLOCATE ALL"),
            Some(SessionReset::DeallocateAll)
        );
        assert_eq!(
            session_reset(b"deallocate prepare all"),
            Some(SessionReset::DeallocateAll)
        );
        assert_eq!(
            session_reset(b"RESET search_path"),
            Some(SessionReset::Reset)
        );
        assert_eq!(session_reset(b"RESET ALL"), Some(SessionReset::Reset));
        assert_eq!(session_reset(b"DEALLOCATE p"), None);
        assert_eq!(session_reset(b"DISCARD TEMP"), None);
        assert_eq!(session_reset(b"SELECT 1"), None);
    }
}
