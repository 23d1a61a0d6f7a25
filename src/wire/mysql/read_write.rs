//! Read/write splitting on the MySQL listener: a statement on an unsharded data source
//! with replicas runs on a replica when `route::rw_split` says it is a read, on the
//! primary otherwise. The session holds one backend connection per target (primary and
//! each replica it read from), each brought to the session's state by the usual SET
//! replay (`backends.rs`).
//!
//! A replica's OK / EOF status flags are relayed to the client untouched but never
//! update the session's transaction state: that lives on the primary.

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
}

impl ClientConn {
    /// The index of the backend connection that runs `sql` on `primary`: a replica's when
    /// the statement is a read and one is admitted, else the primary's. A replica that
    /// cannot be connected to is ejected and the statement runs on the primary.
    pub(crate) async fn backend_for_statement(
        &mut self,
        primary: &Arc<DataSource>,
        sql: &[u8],
    ) -> Result<usize, crate::error::Error> {
        if let Some(replica) = self.read_replica(primary, sql) {
            match self.backend_for(&replica).await {
                Ok(index) => return Ok(index),
                Err(e) => {
                    if let Some(state) = &replica.replica {
                        if state.eject(format!("connect failed: {e}"), None) {
                            warn!(data_source = %replica.name, "replica ejected: {e}");
                        }
                    }
                }
            }
        }
        self.backend_for(primary).await
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
