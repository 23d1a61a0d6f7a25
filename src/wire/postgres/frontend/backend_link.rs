//! The session's backend connection over its life: checkout, loss, data source changes
//! after a reload, and its return to the pool.

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
        let old = std::mem::replace(&mut self.data_source, ds.clone());
        if let Some(held) = self.backend.take() {
            debug!(data_source = %old.name, "configuration reloaded: leaving a data source that changed");
            held.release(&old).await;
        }
    }

    /// The backend connection ended. Between statements and outside a transaction nothing is
    /// lost: the next statement gets a new connection. Otherwise the client must know.
    pub(super) async fn on_backend_lost(&mut self, cause: String) -> Result<(), Close> {
        let idle = self.pending_syncs == 0 && !self.unsynced && self.tx_status == b'I';
        self.backend = None;
        if idle {
            debug!(data_source = %self.data_source.name, "idle backend connection closed: {cause}");
            return Ok(());
        }
        warn!(data_source = %self.data_source.name, "backend connection lost: {cause}");
        let e = Error::BackendLost {
            data_source: self.data_source.name.clone(),
            cause,
        };
        send_fatal(&mut self.writer, &e).await;
        Err(Close)
    }

    /// Takes a connection for the session's data source (pooled, or new), replays the
    /// session's SETs on it, and points cancel requests at it.
    pub(super) async fn connect_backend(&mut self) -> Result<(), Error> {
        let held = checkout(
            &self.rt.config().server,
            &self.data_source,
            &self.params,
            &self.session,
        )
        .await?;
        self.rt
            .pg_cancel
            .register(self.key.0, CancelTarget::of(self.key.1, &held.conn));
        self.backend = Some(held);
        Ok(())
    }

    /// Returns a clean backend connection to its pool.
    pub(super) async fn close(mut self) {
        self.rt.pg_cancel.unregister(self.key.0);
        self.writer.shutdown().await;
        if let Some(mut held) = self.backend.take() {
            let idle = self.pending_syncs == 0 && !self.unsynced;
            if idle && held.conn.healthy && held.conn.reset().await.is_ok() {
                let profile = held.conn.profile;
                self.data_source
                    .postgres
                    .give_back(held.lease, held.conn, profile);
            }
        }
    }
}
