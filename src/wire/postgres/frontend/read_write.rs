//! Read/write splitting on the PostgreSQL listener, for a logical database without
//! sharding rules whose data source has replicas.
//!
//! The pump (`frontend.rs`) holds one backend connection at a time and forwards bytes;
//! before it forwards a client message, [`PgClient::route_read_write`] makes the held
//! connection the one the message must run on: a replica's for a read
//! (`route::rw_split`), the primary's otherwise. Connections not in use stay *parked* on
//! the session (the primary's, while a replica runs a read, and each replica's it read
//! from), so a switch costs no connect; a parked one is checked (did the server close
//! it?) and brought to the session's SETs before it runs anything again.
//!
//! Decisions are made where a request starts: a simple Query, or the first Parse or Bind
//! of an extended-protocol batch (the messages up to Sync). The rest of a batch stays on
//! the connection its start chose, so Bind / Describe / Execute of a statement run where
//! it was parsed; a named statement used later on another connection is parsed there
//! first by the pump's existing replay (`statements.rs`). A switch waits until the held
//! connection has answered everything sent to it, so answers reach the client in order.
//!
//! A replica never sees the session's transaction: BEGIN / COMMIT run on the primary, and
//! a replica's ReadyForQuery is relayed with the primary's transaction status.
//!
//! Read-your-writes (`read_your_writes_timeout_ms`): when the session leaves the primary
//! for a replica after a statement that may have written (outside a transaction, or once
//! it committed), it first asks the primary for `pg_current_wal_insert_lsn()`; the read
//! then runs on a replica only once that replica's `pg_last_wal_replay_lsn()` has reached
//! it (polled up to the timeout), else on the primary. A replica that confirmed a
//! position is not asked again for it.

use std::sync::Arc;
use tracing::{debug, warn};

use super::{Close, PgClient};
use crate::config::BackendKind;
use crate::execute::DataSource;
use crate::route::rw_split::{self, SessionState, Target};
use crate::sql::parse_hint;
use crate::wire::postgres::cancel::CancelTarget;
use crate::wire::postgres::checkout::{apply_session_state, checkout_for_resend, HeldBackend};
use crate::wire::postgres::statements::{bind_statement, parse_query};
use crate::wire::postgres::wal_position;

/// The session's read/write splitting state.
#[derive(Default)]
pub(super) struct PgReadWrite {
    /// The replica the held backend connection belongs to; `None` while it is the
    /// primary's (or none is held).
    current: Option<Arc<DataSource>>,
    /// Connections held but not in use: `None` = the primary's.
    parked: Vec<(Option<Arc<DataSource>>, HeldBackend)>,
    /// The session created a temporary table: it exists on the primary only.
    pinned_to_primary: bool,
    /// Under `transactional_read = "FIXED"`, the replica this transaction reads from.
    txn_replica: Option<Arc<DataSource>>,
    /// A statement that may write ran on the primary since the last position was taken.
    wrote: bool,
    /// The WAL position of the session's last write, and the replicas that replayed it.
    last_write: Option<(String, Vec<Arc<DataSource>>)>,
}

impl PgReadWrite {
    /// The session created state that exists on the primary only (a temporary table):
    /// under transaction pooling its connections stay with it.
    pub(super) fn holds_primary_only_state(&self) -> bool {
        self.pinned_to_primary
    }

    /// Whether the held connection is a replica's.
    fn on_replica(&self) -> bool {
        self.current.is_some()
    }

    /// A ReadyForQuery from the held connection: a replica's tells the primary's
    /// transaction status (`primary_status`), the session's, not its own.
    pub(super) fn relay_status(&self, status: &mut u8, primary_status: u8) {
        if self.on_replica() {
            *status = primary_status;
        }
    }
}

/// Where a request should run: a replica, or the primary.
enum Want {
    /// Stay on the held connection (mid-batch, or nothing to decide).
    Stay,
    Primary,
    /// A read: the SQL, to decide again after waiting for earlier answers.
    Decide(String),
}

impl PgClient {
    /// Before the client message `tag` (the first `len` bytes of the client buffer) is
    /// forwarded: makes the held backend connection the one it must run on.
    pub(super) async fn route_read_write(&mut self, tag: u8, len: usize) -> Result<(), Close> {
        if self.data_source.replicas.is_empty() {
            return Ok(());
        }
        if self.backend.is_none() {
            // Lost (closed by the server while idle): the next connect is the primary's.
            self.read_write.current = None;
        }
        let msg = &self.reader.buf[..len];
        let sql = match tag {
            b'Q' => msg
                .get(5..msg.len().saturating_sub(1))
                .map(|q| String::from_utf8_lossy(q).into_owned()),
            b'P' => parse_query(msg).map(|q| String::from_utf8_lossy(q).into_owned()),
            b'B' => bind_statement(msg)
                .filter(|n| !n.is_empty())
                .and_then(|n| self.statements.query_of(&String::from_utf8_lossy(n)))
                .map(|q| String::from_utf8_lossy(q).into_owned()),
            // A client's Close never reaches a backend's statement: backend statements are
            // named by their SQL and shared (`statements.rs`), parked connections keep theirs.
            b'C' => return Ok(()),
            _ => None,
        };
        let may_write = matches!(tag, b'Q' | b'P' | b'B' | b'F')
            && !sql.as_deref().is_some_and(rw_split::is_plain_read);
        self.choose_connection(tag, sql).await?;
        if may_write && !self.read_write.on_replica() {
            // It runs on the primary and may write: a later read must wait for it.
            self.read_write.wrote = true;
        }
        Ok(())
    }

    /// Makes the held connection the one a request starting with message `tag` (of SQL
    /// `sql`, when known) must run on.
    async fn choose_connection(&mut self, tag: u8, sql: Option<String>) -> Result<(), Close> {
        let mid_batch = self.unsynced;
        let want = match (tag, sql) {
            (b'Q' | b'P' | b'B', _) if mid_batch => Want::Stay,
            (b'F', _) => Want::Primary,
            (b'Q' | b'P' | b'B', Some(sql)) => Want::Decide(sql),
            (b'Q' | b'P', None) => Want::Primary,
            _ => Want::Stay,
        };
        let sql = match want {
            Want::Stay => return Ok(()),
            Want::Primary => None,
            Want::Decide(sql) => Some(sql),
        };
        if self.read_write.on_replica() && self.pending_syncs == 0 {
            // A replica that went away while the session was idle: not an error, the
            // request is routed afresh (and the replica ejected if it cannot be reached).
            if let Some(cause) = self.backend.as_mut().and_then(|b| b.closed_by_server()) {
                debug!(data_source = %self.data_source.name, "replica connection closed: {cause}");
                self.backend = None;
                self.read_write.current = None;
            }
        }
        let mut replica = sql.as_deref().and_then(|s| self.read_replica(s));
        if self.same_target(replica.as_ref()) {
            return Ok(());
        }
        // Answers come in order: the held connection answers everything sent to it first.
        self.drain().await?;
        if let Some(sql) = &sql {
            // Draining may have changed the transaction status (a pipelined BEGIN).
            replica = self.read_replica(sql);
            if self.same_target(replica.as_ref()) {
                return Ok(());
            }
        }
        match replica {
            Some(replica) => self.move_to_replica(replica).await,
            None => self.move_to_primary().await,
        }
        Ok(())
    }

    /// The session's first backend connection: the primary's, or, when the primary
    /// cannot be reached and the database has no sharding rules, an admitted replica's,
    /// so reads go on while the primary is down (writes fail, naming it). Returns the
    /// primary's error when neither works.
    pub(super) async fn connect_at_start(&mut self) -> Result<(), crate::error::Error> {
        let Err(e) = self.connect_first_backend().await else {
            return Ok(());
        };
        let sharded = self
            .session
            .database
            .as_ref()
            .and_then(|name| self.rt.cluster().databases.get(name).cloned())
            .is_none_or(|db| db.router.is_some());
        if sharded {
            return Err(e);
        }
        let Some(replica) = self
            .data_source
            .pick_replica(BackendKind::Postgres)
            .cloned()
        else {
            return Err(e);
        };
        match self.replica_connection(&replica).await {
            Some(held) => {
                self.tx_status = held.conn.tx_status;
                self.hold(Some(replica), Some(held));
                Ok(())
            }
            None => Err(e),
        }
    }

    /// Whether the held connection already is `replica`'s (or the primary's for `None`).
    fn same_target(&self, replica: Option<&Arc<DataSource>>) -> bool {
        match (&self.read_write.current, replica) {
            (None, None) => true,
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }

    /// The replica that should run `sql`, if any.
    fn read_replica(&mut self, sql: &str) -> Option<Arc<DataSource>> {
        let in_transaction = self.tx_status != b'I';
        if !in_transaction {
            self.read_write.txn_replica = None;
        }
        if rw_split::creates_temporary_table(sql) {
            self.read_write.pinned_to_primary = true;
        }
        let state = SessionState {
            in_transaction,
            // PostgreSQL has no server-side autocommit switch: outside BEGIN each
            // statement commits.
            autocommit: true,
            pinned_to_primary: self.read_write.pinned_to_primary,
            transactional_read: self.data_source.read_write.transactional_read,
        };
        let hinted_primary = parse_hint(sql).is_some_and(|h| h.primary);
        let primary = &self.data_source;
        match rw_split::decide(sql, hinted_primary, state) {
            Target::Primary => None,
            Target::Replica => primary.pick_replica(BackendKind::Postgres).cloned(),
            Target::TransactionReplica => {
                let kept = self
                    .read_write
                    .txn_replica
                    .clone()
                    .filter(|r| r.replica.as_ref().is_some_and(|s| s.is_admitted()));
                let replica = kept.or_else(|| primary.pick_replica(BackendKind::Postgres).cloned());
                self.read_write.txn_replica = replica.clone();
                replica
            }
        }
    }

    /// Relays the held connection's answers until it owes none.
    async fn drain(&mut self) -> Result<(), Close> {
        loop {
            if self.pending_syncs == 0 {
                return Ok(());
            }
            let Some(held) = &mut self.backend else {
                return Ok(());
            };
            if held.conn.writer.pending() > 0 && held.conn.writer.flush().await.is_err() {
                held.conn.healthy = false;
            }
            if let Err(e) = held.conn.reader.fill().await {
                return self.on_backend_lost(e.to_string()).await;
            }
            self.on_backend_data().await?;
        }
    }

    /// Takes a connection to `replica` (parked, or checked out) and makes it the held one,
    /// unless read-your-writes says the read must run on the primary. A replica that
    /// cannot be connected to is ejected.
    async fn move_to_replica(&mut self, replica: Arc<DataSource>) {
        if !self.read_write.on_replica() {
            self.take_write_position().await;
        }
        let Some(mut held) = self.replica_connection(&replica).await else {
            return self.move_to_primary().await;
        };
        if !self.write_visible_on(&replica, &mut held).await {
            self.read_write.parked.push((Some(replica), held));
            return self.move_to_primary().await;
        }
        self.hold(Some(replica), Some(held));
    }

    /// Makes the primary's connection the held one (see [`Self::primary_back`]).
    async fn move_to_primary(&mut self) {
        if !self.read_write.on_replica() {
            return;
        }
        self.primary_back();
    }

    /// Whether the held connection is a replica's.
    pub(super) fn on_replica(&self) -> bool {
        self.read_write.on_replica()
    }

    /// The held connection, a standby's, broke: the standby it was (the connection is no
    /// longer held as one).
    pub(super) fn leave_lost_replica(&mut self) -> Option<Arc<DataSource>> {
        self.read_write.current.take()
    }

    /// After a standby failed a read before answering: holds another admitted standby's
    /// connection where the read may run (read-your-writes), else the primary's parked one
    /// (or none: the caller checks one out).
    pub(super) async fn read_elsewhere(&mut self) {
        if let Some(replica) = self
            .data_source
            .pick_replica(BackendKind::Postgres)
            .cloned()
        {
            if let Some(mut held) = self.replica_connection(&replica).await {
                if self.write_visible_on(&replica, &mut held).await {
                    if self.read_write.txn_replica.is_some() {
                        self.read_write.txn_replica = Some(replica.clone());
                    }
                    self.hold(Some(replica), Some(held));
                    return;
                }
                self.read_write.parked.push((Some(replica), held));
            }
        }
        self.primary_back();
    }

    /// Holds the primary's parked connection again if it is still open, else none (the
    /// pump checks one out for the next message, failing it with the primary's error when
    /// the primary is down).
    pub(super) fn primary_back(&mut self) {
        let held = match self.unpark(None) {
            Some(mut held) => match held.closed_by_server() {
                None => Some(held),
                Some(cause) => {
                    debug!(data_source = %self.data_source.name, "parked connection closed: {cause}");
                    None
                }
            },
            None => None,
        };
        self.hold(None, held);
    }

    /// Parks the held connection and holds `held` (of `replica`, or the primary's).
    fn hold(&mut self, replica: Option<Arc<DataSource>>, held: Option<HeldBackend>) {
        if let Some(previous) = self.backend.take() {
            let ds = self.read_write.current.take();
            self.read_write.parked.push((ds, previous));
        }
        if let Some(h) = &held {
            self.rt
                .pg_cancel
                .register(self.key.0, CancelTarget::of(self.key.1, &h.conn));
        }
        self.statements.connection_changed();
        self.backend = held;
        self.read_write.current = replica;
    }

    fn unpark(&mut self, replica: Option<&Arc<DataSource>>) -> Option<HeldBackend> {
        let at = self
            .read_write
            .parked
            .iter()
            .position(|(ds, _)| match (ds, replica) {
                (None, None) => true,
                (Some(a), Some(b)) => Arc::ptr_eq(a, b),
                _ => false,
            })?;
        Some(self.read_write.parked.swap_remove(at).1)
    }

    /// A connection to `replica` brought to the session's SETs: the parked one if it is
    /// still open, else a new one from its pool; `None` (and the replica ejected when it
    /// cannot be reached) if neither works.
    async fn replica_connection(&mut self, replica: &Arc<DataSource>) -> Option<HeldBackend> {
        if let Some(mut held) = self.unpark(Some(replica)) {
            if held.closed_by_server().is_none()
                && apply_session_state(&mut held.conn, replica, &self.session)
                    .await
                    .is_ok()
            {
                return Some(held);
            }
        }
        let server = self.rt.config().server.clone();
        // A read on a standby is sent again elsewhere if the connection turns out dead
        // (`resend.rs`): no round trip to check a recently used one.
        match checkout_for_resend(&server, replica, &self.params, &self.session).await {
            Ok(held) => Some(held),
            Err(e) => {
                if let Some(state) = &replica.replica {
                    if state.eject(format!("connect failed: {e}"), None) {
                        warn!(data_source = %replica.name, "replica ejected: {e}");
                    }
                }
                None
            }
        }
    }

    /// Leaving the primary after a statement that may have written, outside a
    /// transaction: remembers the primary's WAL position (read-your-writes).
    async fn take_write_position(&mut self) {
        if self
            .data_source
            .read_write
            .read_your_writes_timeout
            .is_none()
            || !self.read_write.wrote
            || self.tx_status != b'I'
        {
            return;
        }
        self.read_write.wrote = false;
        let Some(held) = &mut self.backend else {
            // The connection that wrote is gone: the position is unknown, so reads wait
            // or go to the primary.
            self.read_write.last_write = Some((String::new(), Vec::new()));
            return;
        };
        // Unknown (empty) when it cannot be had: no replica can be shown to have it; reads
        // wait or go to the primary.
        let lsn = wal_position::write_position(&mut held.conn)
            .await
            .unwrap_or_default();
        self.read_write.last_write = Some((lsn, Vec::new()));
    }

    /// Whether the session's last write has been replayed by `replica`, waiting up to
    /// `read_your_writes_timeout_ms` for it.
    async fn write_visible_on(
        &mut self,
        replica: &Arc<DataSource>,
        held: &mut HeldBackend,
    ) -> bool {
        let Some(timeout) = self.data_source.read_write.read_your_writes_timeout else {
            return true;
        };
        let Some((lsn, seen_by)) = &self.read_write.last_write else {
            return true;
        };
        if seen_by.iter().any(|r| Arc::ptr_eq(r, replica)) {
            return true;
        }
        if lsn.is_empty() {
            return false;
        }
        if !wal_position::wait_replayed(&mut held.conn, lsn, timeout).await {
            return false;
        }
        if let Some((_, seen_by)) = &mut self.read_write.last_write {
            seen_by.push(replica.clone());
        }
        true
    }

    /// Before transaction pooling gives the held connection back: after a write on the
    /// primary, its WAL position is taken now, while the connection that wrote is held
    /// (read-your-writes; nothing to do when that is off or nothing was written).
    pub(super) async fn before_release_read_write(&mut self) {
        if !self.read_write.on_replica() {
            self.take_write_position().await;
        }
    }

    /// Transaction pooling gives the held connection `held` back between transactions: to
    /// the pool of the replica it belongs to, or the primary's. Parked connections go back
    /// too: they are idle (a switch drains the connection it parks).
    pub(super) fn give_back_read_write(&mut self, held: HeldBackend) {
        match self.read_write.current.take() {
            Some(replica) => held.give_back(&replica),
            None => held.give_back(&self.data_source),
        }
        for (ds, parked) in std::mem::take(&mut self.read_write.parked) {
            parked.give_back(ds.as_deref().unwrap_or(&self.data_source));
        }
    }

    /// Gives the connections this module holds back to their pools: the parked ones, and
    /// the held one when it is a replica's (the pump releases the primary's). At the end
    /// of the session, and when a reload changes the data source.
    pub(super) async fn release_read_write(&mut self) {
        if let Some(replica) = self.read_write.current.take() {
            if let Some(held) = self.backend.take() {
                let idle = self.pending_syncs == 0 && !self.unsynced;
                if idle {
                    held.release(&replica).await;
                }
            }
        }
        for (ds, held) in std::mem::take(&mut self.read_write.parked) {
            let ds = ds.unwrap_or_else(|| self.data_source.clone());
            held.release(&ds).await;
        }
        self.read_write.txn_replica = None;
    }
}
