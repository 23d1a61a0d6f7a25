//! The backend connections a MySQL client session holds: one per data source it has used,
//! taken from the data source's pool (or opened) on first use, brought to the session's
//! state by replaying its recorded SET statements, and replaced transparently when the server
//! closed one while it sat idle outside a transaction.

use std::sync::Arc;

use tracing::debug;

use super::backend::{BackendConn, ConnectOptions, Profile, PROFILE_CAPABILITIES};
use super::frontend::{ClientConn, Held, COM_PING};
use super::response::ResponseKind;
use crate::error::Error;
use crate::execute::DataSource;

impl ClientConn {
    /// Forgets a broken backend connection (its pool slot is freed). Indices of other held
    /// connections may change (the last one takes its place).
    pub(crate) fn drop_backend(&mut self, index: usize) {
        let held = self.backends.swap_remove(index);
        if held.joined {
            if let Some(txn) = &mut self.txn {
                txn.lost(&held.ds.name);
            }
        }
    }

    /// Forgets every connection an operation over several backends left broken.
    pub(crate) fn drop_unhealthy_backends(&mut self) {
        for i in (0..self.backends.len()).rev() {
            if !self.backends[i].conn.healthy {
                self.drop_backend(i);
            }
        }
    }

    /// Brings every held connection up to the session's recorded state now.
    pub(crate) async fn replay_on_held_backends(&mut self) {
        let mut i = 0;
        while i < self.backends.len() {
            let before = self.backends.len();
            // On failure the connection is dropped and another takes index `i`.
            if self.replay_session_state(i).await.is_ok() || self.backends.len() == before {
                i += 1;
            }
        }
    }

    /// The index of this session's connection to `ds`, opening one (or taking one from the
    /// pool) and replaying the session state on it when needed.
    pub(crate) async fn backend_for(&mut self, ds: &Arc<DataSource>) -> Result<usize, Error> {
        let mut found = self.backends.iter().position(|h| Arc::ptr_eq(&h.ds, ds));
        if let Some(i) = found {
            // Outside a transaction nothing is lost if the server closed an idle connection:
            // take a new one (session state is replayed, statements re-prepared on use).
            // Inside a transaction a connection that took part in it is pinned: losing it loses
            // the transaction, which the client must hear about.
            let pinned =
                self.session.in_transaction && (self.txn.is_none() || self.backends[i].joined);
            if !pinned && self.backends[i].conn.closed_while_idle() {
                debug!(data_source = %ds.name, "idle backend connection was closed by the server; reconnecting");
                self.drop_backend(i);
                found = None;
            }
        }
        let index = match found {
            Some(i) => i,
            None => {
                let held = self.open_backend(ds).await?;
                self.backends.push(held);
                self.backends.len() - 1
            }
        };
        self.replay_session_state(index).await?;
        if self.txn.is_some() && !self.backends[index].joined {
            self.join_transaction(index).await?;
        }
        Ok(index)
    }

    pub(crate) fn profile(&self) -> Profile {
        Profile {
            capabilities: (self.capabilities & PROFILE_CAPABILITIES).bits(),
            mariadb_capabilities: self.mariadb_capabilities.bits(),
            collation: self.collation,
        }
    }

    pub(crate) async fn open_backend(&self, ds: &Arc<DataSource>) -> Result<Held, Error> {
        let config = self.rt.config();
        let server = &config.server;
        let profile = self.profile();
        let mut lease = ds
            .mysql
            .checkout(profile, server.checkout_timeout)
            .await
            .map_err(|t| t.into_error(&ds.name))?;
        if let Some(mut conn) = lease.conn.take() {
            // Health check on checkout: an idle connection may have been closed by the server.
            if conn
                .run_internal(&[COM_PING], ResponseKind::Single)
                .await
                .is_ok_and(|r| r.is_ok())
            {
                return Ok(Held {
                    ds: ds.clone(),
                    conn,
                    lease,
                    joined: false,
                });
            }
        }
        let conn = BackendConn::connect(ConnectOptions {
            url: &ds.url,
            profile,
            connect_timeout: server.connect_timeout,
            max_packet: server.max_packet_size,
        })
        .await;
        match &conn {
            Ok(_) => ds.health.connected(),
            Err(e) => ds.health.connect_failed(&e.to_string()),
        }
        let conn = conn.map_err(|e| Error::DataSourceUnavailable {
            database: ds.database.clone(),
            data_source: ds.name.clone(),
            cause: e.to_string(),
        })?;
        Ok(Held {
            ds: ds.clone(),
            conn,
            lease,
            joined: false,
        })
    }

    /// Replays the session's recorded SET statements that this connection has not run yet.
    pub(crate) async fn replay_session_state(&mut self, index: usize) -> Result<(), Error> {
        let held = &mut self.backends[index];
        if let Err(e) = replay_set_statements(held, self.session.set_statements_since(0)).await {
            self.drop_backend(index);
            return Err(e);
        }
        Ok(())
    }

    /// A connection to `ds` besides the session's own, for one statement only (a merged
    /// SELECT that reads two actual tables of one data source at the same time): taken from
    /// the pool (waiting up to the checkout timeout) and brought to the session's state.
    /// [`ClientConn::give_back_extra`] returns it.
    pub(crate) async fn open_extra(&self, ds: &Arc<DataSource>) -> Result<Held, Error> {
        let mut held = self.open_backend(ds).await?;
        replay_set_statements(&mut held, self.session.set_statements_since(0)).await?;
        Ok(held)
    }

    /// Returns a connection of [`ClientConn::open_extra`] to its pool, reset to a clean
    /// session; one that broke or could not be reset is closed instead.
    pub(crate) async fn give_back_extra(mut held: Held) {
        if held.conn.healthy && held.conn.reset().await.is_ok() {
            let profile = held.conn.profile;
            held.ds.mysql.give_back(held.lease, held.conn, profile);
        }
    }
}

/// Runs the recorded SET statements `held` has not run yet. A statement the server refuses
/// is skipped (it failed for the client too); a broken connection is an error.
async fn replay_set_statements(held: &mut Held, statements: &[String]) -> Result<(), Error> {
    let applied = held.conn.applied_session_state;
    for sql in &statements[applied.min(statements.len())..] {
        match held.conn.query_internal(sql).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                debug!(data_source = %held.ds.name, "replaying `{sql}` failed: {}", e.message)
            }
            Err(e) => {
                return Err(Error::BackendLost {
                    data_source: held.ds.name.clone(),
                    cause: e.to_string(),
                })
            }
        }
    }
    held.conn.applied_session_state = statements.len();
    Ok(())
}
