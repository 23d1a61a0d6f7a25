//! Read/write splitting on the MySQL listener: a statement on an unsharded data source
//! with replicas runs on a replica when `route::rw_split` says it is a read, on the
//! primary otherwise. The session holds one backend connection per target (primary and
//! each replica it read from), each brought to the session's state by the usual SET
//! replay (`backends.rs`).
//!
//! A replica's OK / EOF status flags are relayed to the client untouched but never
//! update the session's transaction state: that lives on the primary.
//!
//! Read-your-writes (MariaDB): after a write outside a transaction (or a COMMIT) on the
//! primary, the session asks the primary for `@@last_gtid`; its next read on a replica
//! first runs `MASTER_GTID_WAIT(gtid, timeout)` there, and runs on the primary when the
//! write has not arrived in time. A replica that confirmed the write is not asked again.

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
    /// The GTID of the session's last write, and the replicas known to have applied it.
    last_write: Option<(String, Vec<Arc<DataSource>>)>,
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
                Err(e) => {
                    if let Some(state) = &replica.replica {
                        if state.eject(format!("connect failed: {e}"), None) {
                            warn!(data_source = %replica.name, "replica ejected: {e}");
                        }
                    }
                }
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
        let Some((gtid, seen_by)) = &self.read_write.last_write else {
            return true;
        };
        let replica = self.backends[index].ds.clone();
        if seen_by.iter().any(|r| Arc::ptr_eq(r, &replica)) {
            return true;
        }
        let sql = format!(
            "SELECT MASTER_GTID_WAIT('{gtid}', {:.3})",
            timeout.as_secs_f64()
        );
        match self.backends[index].conn.query_first_column(&sql).await {
            Ok(Ok(values)) if values.first().map(String::as_str) == Some("0") => {
                if let Some((_, seen_by)) = &mut self.read_write.last_write {
                    seen_by.push(replica);
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
    /// session is outside a transaction now, remembers the GTID of that write.
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
                    self.read_write.last_write = Some((gtid, Vec::new()));
                }
                _ => {}
            }
        }
    }

    /// The replica that should run `sql`, if any.
    fn read_replica(&mut self, primary: &Arc<DataSource>, sql: &[u8]) -> Option<Arc<DataSource>> {
        if !self.in_transaction() {
            self.read_write.txn_replica = None;
        }
        if primary.replicas.is_empty() {
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
                    .filter(|r| r.replica.as_ref().is_some_and(|s| s.is_admitted()));
                let replica = kept.or_else(|| primary.pick_replica(BackendKind::Mysql).cloned());
                self.read_write.txn_replica = replica.clone();
                replica
            }
        }
    }
}
