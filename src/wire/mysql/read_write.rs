//! Read/write splitting on the MySQL listener: a statement (COM_QUERY or the execute of a
//! prepared statement) on a data source with replicas runs on a replica when
//! `route::rw_split` says it is a read, on the primary otherwise. On a sharded database
//! each data node's data source decides for itself (`backends_for_units` in `sharded.rs`):
//! a read over two shards reads each from a replica of that shard; everything inside a
//! transaction over sharded data sources stays on the primaries, which hold it. The
//! session holds one backend connection per target (primary and each replica it read
//! from), each brought to the session's state by the usual SET replay (`backends.rs`).
//!
//! A replica's OK / EOF status flags are relayed to the client untouched but never
//! update the session's transaction state: that lives on the primary.
//!
//! Read-your-writes (MariaDB): after a write outside a transaction (or a COMMIT) on a
//! primary, the session asks that primary for `@@last_gtid`; its next read on a replica
//! *of that primary* first runs `MASTER_GTID_WAIT(gtid, timeout)` there, and runs on the
//! primary when the write has not arrived in time. The GTIDs are kept per primary, as each
//! shard replicates on its own. A replica that confirmed the write is not asked again.

use std::sync::Arc;

use tracing::warn;

use super::frontend::ClientConn;
use crate::config::BackendKind;
use crate::execute::DataSource;
use crate::route::rw_split::{self, SessionState, Target};
use crate::sql::parse_hint;

/// The session's read/write splitting state.
#[derive(Default)]
pub(crate) struct ReadWriteSession {
    /// The session created a temporary table: it exists on the primary only.
    pinned_to_primary: bool,
    /// Under `transactional_read = "FIXED"`, the replica this transaction reads from.
    txn_replica: Option<Arc<DataSource>>,
    /// Per primary written to: the GTID of the session's last write there.
    last_writes: Vec<LastWrite>,
    /// Prepared statements (unsharded) that were sent COM_STMT_SEND_LONG_DATA since their
    /// last execute or reset: the data sits with the statement on the primary, so the
    /// execute must run there.
    long_data: Vec<u32>,
}

/// The session's last write on one primary, and the replicas known to have applied it.
struct LastWrite {
    primary: Arc<DataSource>,
    gtid: String,
    seen_by: Vec<Arc<DataSource>>,
}

impl ReadWriteSession {
    /// COM_STMT_SEND_LONG_DATA went to statement `id` on the primary.
    pub(crate) fn long_data_sent(&mut self, id: u32) {
        if !self.long_data.contains(&id) {
            self.long_data.push(id);
        }
    }

    /// Statement `id` was executed, reset or closed: its long data is gone. Returns
    /// whether it had some.
    pub(crate) fn forget_long_data(&mut self, id: u32) -> bool {
        let had = self.long_data.contains(&id);
        self.long_data.retain(|&s| s != id);
        had
    }

    fn last_write(&mut self, primary: &Arc<DataSource>) -> Option<&mut LastWrite> {
        self.last_writes
            .iter_mut()
            .find(|w| Arc::ptr_eq(&w.primary, primary))
    }
}

/// Stops sending reads to `replica` after its connection failed; the health monitor
/// admits it again once a check passes.
pub(crate) fn eject_replica(replica: &DataSource, reason: String) {
    if let Some(state) = &replica.replica {
        if state.eject(reason.clone(), None) {
            warn!(data_source = %replica.name, "replica ejected: {reason}");
        }
    }
}

impl ClientConn {
    /// The index of the backend connection that runs `sql` on `primary`: a replica's when
    /// the statement is a read and one is admitted, else the primary's. A replica that
    /// cannot be connected to is ejected and the statement runs on the primary.
    pub(crate) async fn backend_for_statement(
        &mut self,
        primary: &Arc<DataSource>,
        sql: &[u8],
    ) -> Result<(usize, bool), crate::error::Error> {
        if let Some(replica) = self.read_replica(primary, sql) {
            match self.backend_for(&replica).await {
                Ok(index) => {
                    if self.write_visible_on(index, primary).await {
                        return Ok((index, true));
                    }
                }
                Err(e) => eject_replica(&replica, format!("connect failed: {e}")),
            }
        }
        self.backend_for(primary).await.map(|i| (i, false))
    }

    /// Whether the session's last write has reached the replica held at `index`, waiting
    /// up to `read_your_writes_timeout_ms` for it.
    async fn write_visible_on(&mut self, index: usize, primary: &Arc<DataSource>) -> bool {
        let Some(timeout) = primary.read_write.read_your_writes_timeout else {
            return true;
        };
        let replica = self.backends[index].ds.clone();
        let Some(write) = self.read_write.last_write(primary) else {
            return true;
        };
        if write.seen_by.iter().any(|r| Arc::ptr_eq(r, &replica)) {
            return true;
        }
        let sql = format!(
            "SELECT MASTER_GTID_WAIT('{}', {:.3})",
            write.gtid,
            timeout.as_secs_f64()
        );
        match self.backends[index].conn.query_first_column(&sql).await {
            Ok(Ok(values)) if values.first().map(String::as_str) == Some("0") => {
                if let Some(write) = self.read_write.last_write(primary) {
                    write.seen_by.push(replica);
                }
                true
            }
            Ok(_) => false,
            Err(_) => {
                self.drop_backend(index);
                false
            }
        }
    }

    /// After `sql` ran on the primary held at `index`: when it may have written and the
    /// session is outside a transaction now, remembers the GTID of that write (for reads
    /// on that primary's replicas).
    pub(crate) async fn note_write(&mut self, index: usize, primary: &Arc<DataSource>, sql: &[u8]) {
        if primary.replicas.is_empty()
            || primary.read_write.read_your_writes_timeout.is_none()
            || self.in_transaction()
            || std::str::from_utf8(sql).is_ok_and(rw_split::is_plain_read)
        {
            return;
        }
        let Some(held) = self.backends.get_mut(index) else {
            return;
        };
        if let Ok(Ok(values)) = held.conn.query_first_column("SELECT @@last_gtid").await {
            // Digits, dashes and commas only: it is spliced into MASTER_GTID_WAIT('...').
            match values.into_iter().next() {
                Some(gtid)
                    if !gtid.is_empty()
                        && gtid
                            .bytes()
                            .all(|b| b.is_ascii_digit() || b == b'-' || b == b',') =>
                {
                    match self.read_write.last_write(primary) {
                        Some(write) => {
                            write.gtid = gtid;
                            write.seen_by.clear();
                        }
                        None => self.read_write.last_writes.push(LastWrite {
                            primary: primary.clone(),
                            gtid,
                            seen_by: Vec::new(),
                        }),
                    }
                }
                _ => {}
            }
        }
    }

    /// After a statement that ran on the primaries `sources` (a sharded plan's data
    /// sources; replicas among them are skipped): [`ClientConn::note_write`] on each.
    pub(crate) async fn note_writes(&mut self, sources: &[Arc<DataSource>], sql: &[u8]) {
        for ds in sources.iter().filter(|ds| ds.replica.is_none()) {
            if let Some(index) = self.backends.iter().position(|h| Arc::ptr_eq(&h.ds, ds)) {
                self.note_write(index, ds, sql).await;
            }
        }
    }

    /// The text that routes COM_STMT_EXECUTE `payload` of statement `id` (SQL `sql`):
    /// the statement's SQL, or an empty text (never a read: the primary) when the execute
    /// opens a cursor, whose COM_STMT_FETCHes follow the statement to the primary, or uses
    /// long data the client sent to the primary's statement.
    pub(crate) fn execute_routing_sql<'a>(
        &mut self,
        id: u32,
        payload: &[u8],
        sql: &'a [u8],
    ) -> &'a [u8] {
        let long_data = self.read_write.forget_long_data(id);
        if long_data || opens_cursor(payload) {
            &[]
        } else {
            sql
        }
    }

    /// The data sources of the held connections at `indices`, each once.
    pub(crate) fn held_sources(
        &self,
        indices: impl IntoIterator<Item = usize>,
    ) -> Vec<Arc<DataSource>> {
        let mut sources: Vec<Arc<DataSource>> = Vec::new();
        for i in indices {
            let ds = &self.backends[i].ds;
            if !sources.iter().any(|s| Arc::ptr_eq(s, ds)) {
                sources.push(ds.clone());
            }
        }
        sources
    }

    /// The replica that should run `sql`, if any.
    fn read_replica(&mut self, primary: &Arc<DataSource>, sql: &[u8]) -> Option<Arc<DataSource>> {
        if !self.in_transaction() {
            self.read_write.txn_replica = None;
        }
        // A transaction over sharded data sources lives on their primaries: every
        // statement of it runs there, whatever `transactional_read` says.
        if primary.replicas.is_empty() || self.txn.is_some() {
            return None;
        }
        let sql = std::str::from_utf8(sql).ok()?;
        if rw_split::creates_temporary_table(sql) {
            self.read_write.pinned_to_primary = true;
        }
        let hinted_primary = parse_hint(sql).is_some_and(|h| h.primary);
        let state = SessionState {
            in_transaction: self.in_transaction(),
            autocommit: self.session.autocommit,
            pinned_to_primary: self.read_write.pinned_to_primary,
            transactional_read: primary.read_write.transactional_read,
        };
        match rw_split::decide(sql, hinted_primary, state) {
            Target::Primary => None,
            Target::Replica => primary.pick_replica(BackendKind::Mysql).cloned(),
            Target::TransactionReplica => {
                let kept = self
                    .read_write
                    .txn_replica
                    .clone()
                    .filter(|r| r.replica.as_ref().is_some_and(|s| s.is_admitted()))
                    .filter(|r| primary.replicas.iter().any(|p| Arc::ptr_eq(p, r)));
                let replica = kept.or_else(|| primary.pick_replica(BackendKind::Mysql).cloned());
                self.read_write.txn_replica = replica.clone();
                replica
            }
        }
    }
}

/// Whether COM_STMT_EXECUTE `payload` asks for a cursor (its flags byte, after the
/// statement id: `CURSOR_TYPE_READ_ONLY`, `FOR_UPDATE` or `SCROLLABLE`; MariaDB's
/// `PARAMETER_COUNT_AVAILABLE` bit is not one).
fn opens_cursor(payload: &[u8]) -> bool {
    payload.get(5).is_some_and(|flags| flags & 0x07 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_execute_with_a_cursor_is_told_apart() {
        let execute = |flags: u8| [0x17, 1, 0, 0, 0, flags, 1, 0, 0, 0];
        assert!(!opens_cursor(&execute(0)));
        assert!(!opens_cursor(&execute(0x08)));
        assert!(opens_cursor(&execute(0x01)));
        assert!(opens_cursor(&execute(0x02)));
        assert!(opens_cursor(&execute(0x04)));
        assert!(!opens_cursor(&[0x17, 1, 0]));
    }

    #[test]
    fn long_data_is_remembered_until_the_execute_reset_or_close() {
        let mut s = ReadWriteSession::default();
        assert!(!s.forget_long_data(7));
        s.long_data_sent(7);
        s.long_data_sent(7);
        s.long_data_sent(8);
        assert!(s.forget_long_data(7));
        assert!(!s.forget_long_data(7), "one execute uses it up");
        assert!(s.forget_long_data(8));
    }
}
