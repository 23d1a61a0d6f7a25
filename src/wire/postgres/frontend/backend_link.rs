//! The session's backend connection over its life: checkout when a message needs one,
//! release between transactions (`pool_mode = "transaction"`), loss, data source changes
//! after a reload, and its return to the pool when the client leaves.
//!
//! Under transaction pooling the connection goes back to the pool when the backend is idle
//! outside a transaction (ReadyForQuery `I`) with nothing in flight (every Query and Sync
//! answered, no extended-protocol message since the last Sync, so unnamed statements and
//! portals are never carried over) and no state bound to it (`pinning.rs`). It goes back as
//! it is, with the session's SETs and the statements prepared on it: `checkout.rs` brings it
//! to the next session's state, `statements.rs` keeps statement names from clashing.

use super::*;

impl PgClient {
    /// Between statements, outside a transaction, follows a reload that gave the session's
    /// database another default data source (a changed URL or pool size): the connection
    /// to the old one goes back to its pool, and the next message opens one to the new one
    /// (named statements are prepared there again on use, as after a lost connection).
    pub(super) async fn refresh_data_source(&mut self) {
        let generation = self.rt.generation();
        let idle = self.pending_syncs == 0 && !self.unsynced && self.tx_status == b'I';
        if generation == self.generation || !idle {
            return;
        }
        self.generation = generation;
        let cluster = self.rt.cluster();
        let Some(db) = self
            .session
            .database
            .as_ref()
            .and_then(|name| cluster.databases.get(name))
        else {
            return;
        };
        let ds = db.default_data_source();
        if Arc::ptr_eq(ds, &self.data_source) {
            return;
        }
        self.release_read_write().await;
        let old = std::mem::replace(&mut self.data_source, ds.clone());
        if let Some(held) = self.backend.take() {
            debug!(data_source = %old.name, "configuration reloaded: leaving a data source that changed");
            held.release(&old).await;
        }
    }

    /// The backend connection ended. Between statements and outside a transaction nothing is
    /// lost: the next statement gets a new connection. Otherwise the client must know.
    ///
    /// A request that may go again elsewhere does, and a standby's connection lost mid-answer
    /// fails only its requests (`resend.rs`); the primary's lost mid-request ends the session
    /// with FATAL 08006 naming it.
    pub(super) async fn on_backend_lost(&mut self, cause: String) -> Result<(), Close> {
        let idle = self.pending_syncs == 0 && !self.unsynced && self.tx_status == b'I';
        if idle {
            self.backend = None;
            debug!(data_source = %self.data_source.name, "idle backend connection closed: {cause}");
            return Ok(());
        }
        if self.recover_lost_request(&cause).await {
            if self.writer.pending() > 0 {
                self.writer.flush().await.map_err(|_| Close)?;
            }
            return Ok(());
        }
        self.backend = None;
        warn!(data_source = %self.data_source.name, "backend connection lost: {cause}");
        let e = Error::BackendLost {
            data_source: self.data_source.name.clone(),
            cause,
        };
        send_fatal(&mut self.writer, &e).await;
        Err(Close)
    }

    /// Between transactions under transaction pooling: gives the backend connection back
    /// to the pool unless something is in flight or the session is pinned to it. Cancel
    /// requests then reach nothing until the next checkout.
    pub(super) async fn release_if_idle(&mut self) -> Result<(), Close> {
        if self.rt.config().server.pool_mode != PoolMode::Transaction
            || !self.idle_outside_transaction()
            || self.skip_until_sync
            || self.batch.is_open()
            || self.unnamed_statement_waiting
        {
            return Ok(());
        }
        let Some(held) = &mut self.backend else {
            return Ok(());
        };
        if !held.conn.healthy
            || !held.conn.reader.buf.is_empty()
            || self.read_write.holds_primary_only_state()
        {
            return Ok(());
        }
        if self.maybe_pinned {
            let writer = &mut self.writer;
            let pinned = held.conn.query_bool(PROBE, |m| writer.write_raw(m)).await;
            if self.writer.pending() > 0 {
                self.writer.flush().await.map_err(|_| Close)?;
            }
            match pinned {
                Ok(true) => return Ok(()),
                Ok(false) => self.maybe_pinned = false,
                Err(e) => {
                    debug!(data_source = %self.data_source.name, "pinning probe failed: {e}");
                    return Ok(());
                }
            }
        }
        self.before_release_read_write().await;
        let Some(held) = self.backend.take() else {
            return Ok(());
        };
        self.rt.pg_cancel.register_all(self.key.0, Vec::new());
        // Under read/write splitting the held connection may be a replica's, and others
        // may be parked: each goes back to its own pool.
        self.give_back_read_write(held);
        Ok(())
    }

    /// Where the session's next backend connection comes from. The one place that decides,
    /// so read/write splitting can choose per transaction here.
    fn choose_data_source(&self) -> Arc<DataSource> {
        self.data_source.clone()
    }

    /// Takes a connection for the session's data source (pooled, or new), replays the
    /// session's SETs on it, and points cancel requests at it. A pooled one used recently
    /// is not pinged: the pump sends its first request again should it be dead
    /// (`resend.rs`).
    pub(super) async fn connect_backend(&mut self) -> Result<(), Error> {
        let ds = self.choose_data_source();
        let config = self.rt.config();
        let held = checkout_for_resend(&config.server, &ds, &self.params, &self.session).await?;
        self.hold_backend(held);
        Ok(())
    }

    /// The session's first connection, at start-up: checked with a round trip when pooled,
    /// as a sharded session may take it over (`into_sharded`) and cannot send a request
    /// again.
    pub(super) async fn connect_first_backend(&mut self) -> Result<(), Error> {
        let ds = self.choose_data_source();
        let held = checkout(&self.rt.config().server, &ds, &self.params, &self.session).await?;
        self.hold_backend(held);
        Ok(())
    }

    fn hold_backend(&mut self, held: HeldBackend) {
        self.rt
            .pg_cancel
            .register(self.key.0, CancelTarget::of(self.key.1, &held.conn));
        self.statements.connection_changed();
        self.backend = Some(held);
    }

    /// The client left: returns a clean backend connection to its pool.
    pub(super) async fn close(mut self) {
        self.rt.pg_cancel.unregister(self.key.0);
        self.writer.shutdown().await;
        self.release_read_write().await;
        if let Some(held) = self.backend.take() {
            let idle = self.pending_syncs == 0 && !self.unsynced;
            // Under transaction pooling a connection goes back as it is (the next session
            // resets what differs), unless it may hold state bound to this session.
            let pooling = self.rt.config().server.pool_mode == PoolMode::Transaction;
            if idle && held.conn.healthy {
                if pooling && !self.maybe_pinned && held.conn.tx_status == b'I' {
                    held.give_back(&self.data_source);
                } else {
                    held.release(&self.data_source).await;
                }
            }
        }
    }
}
