//! Multiplexing under `[server] pool_mode = "transaction"` (docs/pooling.md): after each
//! command that leaves the session outside a transaction, a session that is not pinned
//! (`pinning.rs`) gives its backend connections back to their pools *without* resetting
//! them. Its next statement checks one out again (preferring one already in its state,
//! see `backends.rs`), so many clients share few backend connections.
//!
//! Nothing the session can observe changes: its SET statements and last insert id follow
//! it to the next connection, prepared statements are prepared there on first use (once
//! per backend connection, `statement_cache.rs`), and a statement whose outcome a follow-up
//! may ask the server about (warnings, `ROW_COUNT()`, `FOUND_ROWS()`) keeps its connection
//! until the session's next statement ran.

use super::frontend::{ClientConn, Held, COM_STMT_CLOSE};
use super::ok::{STATUS_AUTOCOMMIT, STATUS_IN_TRANS};
use super::response::ResponseTracker;
use crate::config::PoolMode;

impl ClientConn {
    /// Gives every held backend connection back to its pool when nothing ties the session
    /// to it; called after each command.
    pub(crate) fn release_backends(&mut self) {
        if self.backends.is_empty() || !self.may_release() {
            return;
        }
        for held in self.backends.drain(..) {
            let Held {
                ds,
                mut conn,
                lease,
                ..
            } = held;
            if !conn.healthy {
                continue;
            }
            // Statements of sharded plans are keyed by this session's statement ids: they
            // mean nothing to the next session, so they are closed (queued: they go out with
            // the connection's next command, which has no response to wait for).
            for (_, units) in std::mem::take(&mut conn.unit_statements) {
                for backend_id in units.into_values() {
                    let mut close = vec![COM_STMT_CLOSE];
                    close.extend_from_slice(&backend_id.to_le_bytes());
                    conn.queue_command(&close);
                }
            }
            let profile = conn.profile;
            ds.mysql.give_back(lease, conn, profile);
        }
        // KILL QUERY <our id> must not reach a thread that now serves someone else (a
        // fan-out sets several targets without `kill_thread`).
        self.kill_thread = None;
        self.rt
            .mysql_kill
            .set_targets(self.connection_id, Vec::new());
    }

    /// `pool_mode = "transaction"`: the session may change connections between
    /// transactions.
    pub(crate) fn multiplexing(&self) -> bool {
        self.rt.config().server.pool_mode == PoolMode::Transaction
    }

    fn may_release(&self) -> bool {
        self.multiplexing()
            && !self.in_transaction()
            // With autocommit off the next statement opens a transaction by itself.
            && self.session.autocommit
            && !self.keep_for_next
            && !self.pins.is_pinned()
            // What the servers last said, whatever path ran the statement: a connection in
            // a transaction, or with autocommit off, holds work that is not done.
            && self.backends.iter().all(|h| {
                h.conn.status & STATUS_IN_TRANS == 0 && h.conn.status & STATUS_AUTOCOMMIT != 0
            })
    }

    /// Notes whether the statement that produced `tracker` left something a follow-up may
    /// ask its connection about: warnings (`SHOW WARNINGS`, `@@warning_count`), affected
    /// rows (`ROW_COUNT()`), or a `SQL_CALC_FOUND_ROWS` count (`FOUND_ROWS()`).
    pub(crate) fn note_follow_up_state(&mut self, tracker: &ResponseTracker, sql: &[u8]) {
        self.keep_for_next = tracker.warnings
            || tracker.last_ok.is_some_and(|(affected, _)| affected > 0)
            || calc_found_rows(sql);
    }
}

/// Does the statement ask for `SQL_CALC_FOUND_ROWS`?
fn calc_found_rows(sql: &[u8]) -> bool {
    const WORD: &[u8] = b"sql_calc_found_rows";
    let start = sql
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(0);
    let select = sql
        .get(start..start + 6)
        .is_some_and(|w| w.eq_ignore_ascii_case(b"select"));
    select
        && sql.len() >= WORD.len()
        && sql
            .windows(WORD.len())
            .any(|w| w.eq_ignore_ascii_case(WORD))
}

#[cfg(test)]
mod tests {
    use super::calc_found_rows;

    #[test]
    fn recognises_sql_calc_found_rows_in_any_case() {
        assert!(calc_found_rows(
            b"SELECT SQL_CALC_FOUND_ROWS * FROM t LIMIT 1"
        ));
        assert!(calc_found_rows(b"select sql_calc_found_rows id from t"));
        assert!(!calc_found_rows(b"SELECT FOUND_ROWS()"));
    }
}
