//! The backend connections a MySQL client session holds: one per data source it is using,
//! taken from the data source's pool (or opened) on first use, brought to the session's
//! state by replaying its recorded SET statements (and its last insert id), and replaced
//! transparently when the server closed one while it sat idle outside a transaction. When
//! a session gives them back between transactions is `multiplex.rs`'s business.

use std::sync::Arc;

use tracing::debug;

use super::backend::{BackendConn, ConnectOptions, Profile, PROFILE_CAPABILITIES};
use super::frontend::{ClientConn, Held, COM_PING};
use super::ok::STATUS_IN_TRANS;
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
        if self.backends.is_empty() {
            // Whatever pinned the session lived on the connections it lost.
            self.pins.clear();
            self.keep_for_next = false;
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
        let sets = self.session.set_statements_since(0);
        // A connection already in the session's state needs no round trip; one whose SETs
        // are a prefix of the session's needs only the rest; any other needs a reset first.
        let score = |c: &BackendConn| {
            if c.applied_sets.as_slice() == sets {
                2 + u8::from(c.last_insert_id == self.last_insert_id)
            } else {
                u8::from(sets.starts_with(&c.applied_sets))
            }
        };
        let mut lease = ds
            .mysql
            .checkout_best(profile, server.checkout_timeout, score)
            .await
            .map_err(|t| t.into_error(&ds.name))?;
        if let Some(mut conn) = lease.conn.take() {
            // Health check on checkout, for connections idle long enough that the server may
            // have closed them; one used a moment ago is trusted (a dead one surfaces as a
            // lost backend, as it would have without the pool).
            let fresh = lease.idle_for < server.pool_check_idle;
            if (fresh && !conn.reader.peer_gone())
                || conn
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
            debug!(data_source = %ds.name, "pooled connection is dead; opening another");
            lease.renew();
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

    /// Brings connection `index` to the session's state: its recorded SET statements and
    /// its last insert id. A connection that broke doing so is dropped.
    pub(crate) async fn replay_session_state(&mut self, index: usize) -> Result<(), Error> {
        let state = SessionState {
            sets: self.session.set_statements_since(0),
            last_insert_id: self.last_insert_id,
            in_transaction: self.in_transaction(),
        };
        if let Err(e) = bring_to_state(&mut self.backends[index], state).await {
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
        let state = SessionState {
            sets: self.session.set_statements_since(0),
            last_insert_id: self.last_insert_id,
            in_transaction: false,
        };
        bring_to_state(&mut held, state).await?;
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

/// What a connection must reflect of the session it serves.
#[derive(Clone, Copy)]
struct SessionState<'a> {
    sets: &'a [String],
    last_insert_id: u64,
    /// Inside a transaction a connection is never reset (that would roll it back).
    in_transaction: bool,
}

/// Runs the session's SET statements `held` has not run: none when its list equals the
/// session's, the rest when it is a prefix, all of them after COM_RESET_CONNECTION
/// otherwise (it ran another session's). A statement the server refuses is skipped (it
/// failed for the client too); a broken connection is an error. Then `LAST_INSERT_ID()`
/// is set to the session's with `DO LAST_INSERT_ID(n)` when it differs.
async fn bring_to_state(held: &mut Held, state: SessionState<'_>) -> Result<(), Error> {
    let lost = |held: &Held, cause: String| Error::BackendLost {
        data_source: held.ds.name.clone(),
        cause,
    };
    let sets = state.sets;
    let applied = &held.conn.applied_sets;
    if applied.as_slice() != sets {
        // Only a connection whose server has a transaction open must not be reset (that
        // would roll it back); one just taken from the pool has none, whatever the
        // session's own state, and must lose the other session's SETs.
        let open = state.in_transaction && held.conn.status & STATUS_IN_TRANS != 0;
        let from = if sets.starts_with(applied) || open {
            applied.len().min(sets.len())
        } else {
            debug!(data_source = %held.ds.name, "resetting a pooled connection to another session's state");
            held.conn
                .reset()
                .await
                .map_err(|e| lost(held, e.to_string()))?;
            0
        };
        for sql in &sets[from..] {
            match held.conn.query_internal(sql).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    debug!(data_source = %held.ds.name, "replaying `{sql}` failed: {}", e.message)
                }
                Err(e) => return Err(lost(held, e.to_string())),
            }
        }
        held.conn.applied_sets = sets.to_vec();
    }
    if held.conn.last_insert_id != state.last_insert_id {
        let sql = format!("DO LAST_INSERT_ID({})", state.last_insert_id);
        match held.conn.query_internal(&sql).await {
            Ok(_) => held.conn.last_insert_id = state.last_insert_id,
            Err(e) => return Err(lost(held, e.to_string())),
        }
    }
    Ok(())
}
