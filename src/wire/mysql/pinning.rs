//! What keeps a MySQL session on its backend connection under `pool_mode = "transaction"`
//! (docs/pooling.md, "Pinning").
//!
//! Between transactions a session gives its connections back to the pool, and its next
//! statement may run on another one brought to the session's recorded state. Some state
//! cannot be carried over that way, because it lives only in the server's session: a
//! temporary table, a user-level lock, LOCK TABLES, an open cursor, a user variable assigned
//! by a query, a SQL-level `PREPARE`, an XA transaction, long data sent for a statement not
//! executed yet. While any of it exists the session is *pinned*: it keeps its connections.
//!
//! Statements are recognised by a cheap case-insensitive scan of their text, not a parse
//! (this runs for every statement). The scan errs towards pinning: a false match (the words
//! inside a string literal) only keeps a connection longer. State whose end dbmesh cannot
//! see exactly (a user variable, a SQL `PREPARE`) pins until COM_RESET_CONNECTION or the
//! client disconnects.

use std::collections::HashSet;

/// The session state that pins it to its backend connections.
#[derive(Debug, Default, Clone)]
pub struct Pins {
    /// Temporary tables created and not (known to be) dropped.
    temporary_tables: u32,
    /// `GET_LOCK` calls not (known to be) released.
    user_locks: u32,
    /// Between LOCK TABLES and UNLOCK TABLES.
    lock_tables: bool,
    /// Between XA START and XA COMMIT / ROLLBACK.
    xa: bool,
    /// Until the session is reset: user variables assigned by a query, SQL-level prepared
    /// statements, HANDLER, a SET dbmesh cannot replay.
    for_good: Option<&'static str>,
    /// Client statements with an open cursor (COM_STMT_EXECUTE with a cursor flag).
    cursors: HashSet<u32>,
    /// Client statements with COM_STMT_SEND_LONG_DATA not yet executed.
    long_data: HashSet<u32>,
}

impl Pins {
    /// Why the session is pinned, if it is (for logs and tests).
    pub fn reason(&self) -> Option<&'static str> {
        if let Some(why) = self.for_good {
            return Some(why);
        }
        if self.temporary_tables > 0 {
            return Some("temporary table");
        }
        if self.user_locks > 0 {
            return Some("user-level lock");
        }
        if self.lock_tables {
            return Some("LOCK TABLES");
        }
        if self.xa {
            return Some("XA transaction");
        }
        if !self.cursors.is_empty() {
            return Some("open cursor");
        }
        if !self.long_data.is_empty() {
            return Some("long data");
        }
        None
    }

    pub fn is_pinned(&self) -> bool {
        self.reason().is_some()
    }

    /// COM_RESET_CONNECTION / COM_CHANGE_USER / a lost connection: the state is gone.
    pub fn clear(&mut self) {
        *self = Pins::default();
    }

    /// Notes what a statement that succeeded did to connection-bound state (a failed one
    /// changed nothing, except GET_LOCK, which is counted anyway: over-counting only pins).
    pub fn note_statement(&mut self, sql: &str, succeeded: bool) {
        let lower = sql.trim_start().to_ascii_lowercase();
        if !succeeded {
            return;
        }
        let starts = |prefix: &str| lower.starts_with(prefix);
        if starts("create temporary table") || starts("create or replace temporary table") {
            self.temporary_tables += 1;
        } else if starts("drop temporary table") {
            let names = lower.matches(',').count() as u32 + 1;
            self.temporary_tables = self.temporary_tables.saturating_sub(names);
        }
        if starts("lock table") {
            self.lock_tables = true;
        } else if starts("unlock table") {
            self.lock_tables = false;
        }
        if starts("xa start") || starts("xa begin") {
            self.xa = true;
        } else if starts("xa commit") || starts("xa rollback") {
            self.xa = false;
        }
        if lower.contains("release_all_locks") {
            self.user_locks = 0;
        } else {
            let released = lower.matches("release_lock").count() as u32;
            self.user_locks = self.user_locks.saturating_sub(released);
        }
        self.user_locks += lower.matches("get_lock").count() as u32;
        if let Some(why) = pins_for_good(&lower) {
            self.for_good.get_or_insert(why);
        }
    }

    /// A COM_STMT_EXECUTE of client statement `id` ran; `cursor` when the server opened a
    /// cursor for it (SERVER_STATUS_CURSOR_EXISTS).
    pub fn note_execute(&mut self, id: u32, cursor: bool) {
        self.long_data.remove(&id);
        if cursor {
            self.cursors.insert(id);
        } else {
            self.cursors.remove(&id);
        }
    }

    /// A COM_STMT_FETCH of `id` ended; `last_row` when the cursor is exhausted
    /// (SERVER_STATUS_LAST_ROW_SENT), which closes it.
    pub fn note_fetch(&mut self, id: u32, last_row: bool) {
        if last_row {
            self.cursors.remove(&id);
        }
    }

    /// COM_STMT_SEND_LONG_DATA for `id`: the data waits on the connection for the EXECUTE.
    pub fn note_long_data(&mut self, id: u32) {
        self.long_data.insert(id);
    }

    /// COM_STMT_RESET / COM_STMT_CLOSE of `id`: its cursor and long data are gone.
    pub fn note_statement_reset(&mut self, id: u32) {
        self.cursors.remove(&id);
        self.long_data.remove(&id);
    }
}

/// State a statement leaves that dbmesh cannot follow to another connection, and whose end
/// it cannot see: it pins until the session is reset.
fn pins_for_good(lower: &str) -> Option<&'static str> {
    if lower.contains(":=") || lower.contains("into @") {
        return Some("user variable assigned by a query");
    }
    if lower.starts_with("prepare ") {
        return Some("SQL-level PREPARE");
    }
    if lower.starts_with("handler ") {
        return Some("HANDLER");
    }
    if lower.starts_with("set ") && !replayable_set(lower) {
        return Some("SET that cannot be replayed");
    }
    None
}

/// Can this SET be replayed on another connection with the same effect? Not when its value
/// reads data or differs per call or per connection.
fn replayable_set(lower: &str) -> bool {
    const UNREPEATABLE: [&str; 8] = [
        "select",
        "rand(",
        "uuid",
        "now(",
        "sysdate",
        "connection_id",
        "last_insert_id",
        "current_timestamp",
    ];
    !UNREPEATABLE.iter().any(|w| lower.contains(w))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn after(statements: &[&str]) -> Pins {
        let mut p = Pins::default();
        for s in statements {
            p.note_statement(s, true);
        }
        p
    }

    #[test]
    fn plain_statements_do_not_pin() {
        for sql in [
            "SELECT 1",
            "INSERT INTO t VALUES (1)",
            "SET NAMES utf8mb4",
            "SET @@session.sql_mode = 'ANSI_QUOTES'",
            "SET @a = 5",
            "SET sql_mode = CONCAT(@@sql_mode, ',STRICT_ALL_TABLES')",
            "BEGIN",
            "DROP TABLE t",
        ] {
            assert!(!after(&[sql]).is_pinned(), "{sql}");
        }
    }

    #[test]
    fn temporary_tables_pin_until_dropped() {
        let p = after(&[
            "CREATE TEMPORARY TABLE a (x int)",
            "create temporary table b (x int)",
        ]);
        assert_eq!(p.reason(), Some("temporary table"));
        let mut q = p.clone();
        q.note_statement("DROP TEMPORARY TABLE a", true);
        assert!(q.is_pinned());
        q.note_statement("DROP TEMPORARY TABLE b", true);
        assert!(!q.is_pinned());
        let mut r = p;
        r.note_statement("DROP TEMPORARY TABLE a, b", true);
        assert!(!r.is_pinned());
    }

    #[test]
    fn a_failed_drop_does_not_unpin() {
        let mut p = after(&["CREATE TEMPORARY TABLE a (x int)"]);
        p.note_statement("DROP TEMPORARY TABLE a", false);
        assert!(p.is_pinned());
    }

    #[test]
    fn user_locks_pin_until_released() {
        let mut p = after(&["SELECT GET_LOCK('a', 1)", "SELECT GET_LOCK('b', 1)"]);
        p.note_statement("SELECT RELEASE_LOCK('a')", true);
        assert_eq!(p.reason(), Some("user-level lock"));
        p.note_statement("SELECT RELEASE_LOCK('b')", true);
        assert!(!p.is_pinned());
        let mut q = after(&["SELECT GET_LOCK('a', 1), GET_LOCK('b', 1)"]);
        q.note_statement("SELECT RELEASE_ALL_LOCKS()", true);
        assert!(!q.is_pinned());
    }

    #[test]
    fn lock_tables_and_xa_pin_until_they_end() {
        let mut p = after(&["LOCK TABLES t WRITE"]);
        assert_eq!(p.reason(), Some("LOCK TABLES"));
        p.note_statement("UNLOCK TABLES", true);
        assert!(!p.is_pinned());
        let mut x = after(&["XA START 'x1'"]);
        assert_eq!(x.reason(), Some("XA transaction"));
        x.note_statement("XA END 'x1'", true);
        assert!(x.is_pinned());
        x.note_statement("XA COMMIT 'x1' ONE PHASE", true);
        assert!(!x.is_pinned());
    }

    #[test]
    fn state_without_a_visible_end_pins_until_reset() {
        for sql in [
            "SELECT @a := 1",
            "SELECT 1 INTO @a",
            "PREPARE s FROM 'SELECT 1'",
            "SET @a = (SELECT COUNT(*) FROM t)",
            "SET @id = UUID()",
        ] {
            let mut p = after(&[sql]);
            assert!(p.is_pinned(), "{sql}");
            p.clear();
            assert!(!p.is_pinned());
        }
    }

    #[test]
    fn cursors_and_long_data_pin_until_done() {
        let mut p = Pins::default();
        p.note_execute(1, true);
        assert_eq!(p.reason(), Some("open cursor"));
        p.note_fetch(1, false);
        assert!(p.is_pinned());
        p.note_fetch(1, true);
        assert!(!p.is_pinned());
        p.note_long_data(2);
        assert_eq!(p.reason(), Some("long data"));
        p.note_execute(2, false);
        assert!(!p.is_pinned());
        p.note_execute(3, true);
        p.note_statement_reset(3);
        assert!(!p.is_pinned());
    }
}
