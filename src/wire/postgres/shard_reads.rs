//! Read/write splitting in a sharded PostgreSQL session: each data node's data source
//! decides for itself, as on the MySQL listener (`wire/mysql/read_write.rs`).
//!
//! Before a plan's units run (simple or extended protocol, one unit or a fan-out or a
//! merge), [`ShardedSession::route_reads`] asks `route::rw_split` whether the statement is
//! a plain read; if so, every data source of the units that has an admitted standby lends
//! a connection to one (chosen by its load balancer) for this statement
//! (`shard_backends.rs`), and the units run there; a data source without one reads on its
//! primary. Inside a transaction dbmesh runs over the data sources (LOCAL or XA)
//! everything stays on the primaries, which hold it; so does a session that created a
//! temporary table (it exists on the primary only), and the default data source while the
//! client has a passthrough batch open there. Units are always parsed anew on the
//! connection that runs them (`extended_messages::write_unit`), so the client's named
//! statements work wherever a read lands.
//!
//! Read-your-writes (`read_your_writes_timeout_ms`), per shard primary: a statement that
//! may write marks the data sources it ran on; before the next read there leaves that
//! primary, or before transaction pooling gives its connection back, the session takes the
//! primary's `pg_current_wal_insert_lsn()`. A read on a standby of that primary first
//! polls the standby's replay position up to the timeout (`wal_position.rs`) and runs on
//! the primary when the write has not arrived. A standby that confirmed a position is not
//! asked again for it.
//!
//! A standby connection that breaks during a read ends the session with FATAL 08006
//! naming the standby, as a primary's would, and the standby is ejected until its health
//! check passes again.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use tracing::warn;

use super::sharded::{Broken, ShardedSession};
use super::wal_position;
use crate::config::{BackendKind, TransactionalRead};
use crate::execute::DataSource;
use crate::route::rw_split::{self, SessionState, Target};
use crate::route::shard::Unit;
use crate::sql::parse_hint;

/// The session's read/write splitting state.
#[derive(Default)]
pub struct ShardReads {
    /// The session created a temporary table: it exists on the primary only.
    pinned_to_primary: bool,
    /// Data sources a statement that may write ran on since their position was taken.
    wrote: BTreeSet<String>,
    /// By data source: the WAL position of the session's last write on its primary
    /// (empty when it could not be had) and the standbys known to have replayed it.
    last_writes: BTreeMap<String, LastWrite>,
}

struct LastWrite {
    lsn: String,
    seen_by: Vec<Arc<DataSource>>,
}

impl ShardReads {
    /// A statement (simple Query or Parse) was seen: one creating a temporary table keeps
    /// the session's reads on the primaries from now on.
    pub fn saw_statement(&mut self, sql: &[u8]) {
        if !self.pinned_to_primary {
            let sql = String::from_utf8_lossy(sql);
            self.pinned_to_primary = rw_split::creates_temporary_table(&sql);
        }
    }

    /// Something that may have written ran on `data_source`'s primary.
    pub fn wrote_on(&mut self, data_source: &str) {
        self.wrote.insert(data_source.to_string());
    }
}

impl ShardedSession {
    /// Before `units` of `sql` run: lends each of their data sources a standby's connection
    /// when `sql` is a read that may run there; notes the data sources a statement that
    /// may write runs on.
    pub(super) async fn route_reads(&mut self, units: &[Unit], sql: &str) {
        let mut data_sources: Vec<&str> = Vec::new();
        for u in units {
            if !data_sources.contains(&u.data_source.as_str()) {
                data_sources.push(&u.data_source);
            }
        }
        if !rw_split::is_plain_read(sql) {
            for ds in data_sources {
                self.reads.wrote_on(ds);
            }
            return;
        }
        if self.txn.is_some() || self.backends.status() != b'I' {
            return;
        }
        let state = SessionState {
            in_transaction: false,
            autocommit: true,
            pinned_to_primary: self.reads.pinned_to_primary,
            transactional_read: TransactionalRead::Primary,
        };
        let hinted_primary = parse_hint(sql).is_some_and(|h| h.primary);
        if rw_split::decide(sql, hinted_primary, state) != Target::Replica {
            return;
        }
        for ds in data_sources {
            // A passthrough batch open on the default data source's primary: a unit of
            // ours there ends it (`fanout.rs`), so it must run there.
            if self.pass.unsynced && ds == self.backends.default_name() {
                continue;
            }
            let Some(primary) = self.backends.primary(ds).cloned() else {
                continue;
            };
            let Some(replica) = primary.pick_replica(BackendKind::Postgres).cloned() else {
                continue;
            };
            self.take_write_position(ds).await;
            let mut held = match self
                .backends
                .replica_connection(ds, &replica, &self.session)
                .await
            {
                Ok(held) => held,
                Err(e) => {
                    eject(&replica, format!("connect failed: {e}"));
                    continue;
                }
            };
            if !self
                .write_visible_on(ds, &primary, &replica, &mut held)
                .await
            {
                if held.conn.healthy {
                    self.backends.park_replica(ds, replica, held);
                }
                continue;
            }
            self.backends.lend(ds, replica, held);
        }
    }

    /// After the units ran: the primaries' connections are back in place; a lost standby
    /// connection is reported under the standby's name, and the standby ejected.
    pub(super) fn after_reads(&mut self, broken: Option<&mut Broken>) {
        if let Some(Broken::Backend { data_source, cause }) = broken {
            if let Some(replica) = self.backends.lent_replica(data_source).cloned() {
                eject(&replica, format!("connection lost during a read: {cause}"));
                *data_source = replica.name.clone();
            }
        }
        self.backends.restore_primaries();
    }

    /// Before transaction pooling gives the connections back: the WAL position of every
    /// primary written to is taken while the connection that wrote is held.
    pub(super) async fn before_release_reads(&mut self) {
        let wrote: Vec<String> = self.reads.wrote.iter().cloned().collect();
        for ds in wrote {
            self.take_write_position(&ds).await;
        }
    }

    /// Leaving `ds`'s primary after a statement that may have written there: remembers its
    /// WAL position (read-your-writes; nothing to do when that is off).
    async fn take_write_position(&mut self, ds: &str) {
        let enabled = self
            .backends
            .primary(ds)
            .is_some_and(|p| p.read_write.read_your_writes_timeout.is_some());
        if !enabled || !self.reads.wrote.remove(ds) {
            return;
        }
        // Unknown (empty) when the connection that wrote is gone or the query failed: no
        // standby can be shown to have it, so reads there go to the primary until the
        // next write's position is known.
        let lsn = match self.backends.get(ds) {
            Some(conn) if conn.healthy && conn.tx_status == b'I' => {
                wal_position::write_position(conn).await.unwrap_or_default()
            }
            _ => String::new(),
        };
        self.reads.last_writes.insert(
            ds.to_string(),
            LastWrite {
                lsn,
                seen_by: Vec::new(),
            },
        );
    }

    /// Whether the session's last write on `primary` (data source `ds`) has been replayed
    /// by `replica`, waiting up to `read_your_writes_timeout_ms` for it.
    async fn write_visible_on(
        &mut self,
        ds: &str,
        primary: &DataSource,
        replica: &Arc<DataSource>,
        held: &mut super::checkout::HeldBackend,
    ) -> bool {
        let Some(timeout) = primary.read_write.read_your_writes_timeout else {
            return true;
        };
        let Some(last) = self.reads.last_writes.get_mut(ds) else {
            return true;
        };
        if last.seen_by.iter().any(|r| Arc::ptr_eq(r, replica)) {
            return true;
        }
        if !wal_position::wait_replayed(&mut held.conn, &last.lsn, timeout).await {
            return false;
        }
        last.seen_by.push(replica.clone());
        true
    }
}

/// Stops sending reads to `replica` after its connection failed; the health monitor
/// admits it again once a check passes.
fn eject(replica: &DataSource, reason: String) {
    if let Some(state) = &replica.replica {
        if state.eject(reason.clone(), None) {
            warn!(data_source = %replica.name, "replica ejected: {reason}");
        }
    }
}
