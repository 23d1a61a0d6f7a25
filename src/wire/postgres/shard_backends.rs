//! The backend connections of one sharded session: at most one per data source, opened the
//! first time a statement runs there (from that data source's pool, with the client's
//! start-up parameters and the session's SETs replayed), held until the client leaves (or,
//! under transaction pooling, until the transaction ends: `release_all`), then returned to
//! their pools.
//!
//! A read may run on a replica of a data source (`shard_reads.rs`): for that statement
//! the replica's connection is *lent* in the data source's place (so the code running
//! units finds it under the data source's name) and the primary's is parked; afterwards
//! [`Backends::restore_primaries`] puts the primary's back and parks the replica's, which
//! the next read there reuses. Parked replica connections go back to their replica's pool
//! with the others (`release_all`, `release`).
//!
//! A connection's `healthy` flag doubles as "no response outstanding": it is cleared when
//! dbmesh sends a request and set again when the ReadyForQuery that ends it is read, so a
//! connection abandoned mid-response (the client left, a relay failed) is closed rather
//! than pooled.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::backend::{PgBackendConn, StartupParams};
use super::cancel::CancelTarget;
use super::checkout::{apply_session_state, checkout, HeldBackend};
use crate::error::Error;
use crate::execute::{DataSource, LogicalDatabase};
use crate::server::Runtime;
use crate::session::Session;

/// The session's connections, by data source name.
pub struct Backends {
    rt: Arc<Runtime>,
    db: Arc<LogicalDatabase>,
    params: StartupParams,
    /// The client's cancel key: pid and secret.
    key: (i32, i32),
    held: BTreeMap<String, HeldBackend>,
    /// Data sources whose entry in `held` is, for the statement running now, a connection
    /// to this replica of theirs.
    lent: BTreeMap<String, Arc<DataSource>>,
    /// Connections not in use: by data source name, of a replica of it (or of the primary
    /// itself, `None`, while a replica's is lent in its place).
    parked: Vec<(String, Option<Arc<DataSource>>, HeldBackend)>,
}

impl Backends {
    /// Starts with the connection start-up opened to the default data source.
    pub fn new(
        rt: Arc<Runtime>,
        db: Arc<LogicalDatabase>,
        params: StartupParams,
        key: (i32, i32),
        default: HeldBackend,
    ) -> Backends {
        let mut held = BTreeMap::new();
        held.insert(db.config.default_data_source.clone(), default);
        let b = Backends {
            rt,
            db,
            params,
            key,
            held,
            lent: BTreeMap::new(),
            parked: Vec::new(),
        };
        b.register_cancel();
        b
    }

    /// The runtime the session runs in.
    pub fn runtime(&self) -> &Runtime {
        &self.rt
    }

    /// The logical database the session uses.
    pub fn database(&self) -> &LogicalDatabase {
        &self.db
    }

    /// The default data source's name.
    pub fn default_name(&self) -> &str {
        &self.db.config.default_data_source
    }

    /// The connection to `ds`, opening it if the session has none yet.
    pub async fn open(&mut self, ds: &str, session: &Session) -> Result<&mut PgBackendConn, Error> {
        if !self.held.contains_key(ds) {
            let source = self.db.data_sources.get(ds).ok_or_else(|| {
                Error::Routing(format!(
                    "data source `{ds}` is not defined in database `{}`",
                    self.db.config.name
                ))
            })?;
            let held = checkout(&self.rt.config().server, source, &self.params, session).await?;
            self.held.insert(ds.to_string(), held);
            self.register_cancel();
        }
        Ok(&mut self.held.get_mut(ds).expect("just opened").conn)
    }

    /// The connection to `ds`, if the session holds one.
    pub fn get(&mut self, ds: &str) -> Option<&mut PgBackendConn> {
        self.held.get_mut(ds).map(|h| &mut h.conn)
    }

    /// The data sources the session holds connections to, in name order.
    pub fn names(&self) -> Vec<String> {
        self.held.keys().cloned().collect()
    }

    /// The held connections whose backend is inside a transaction block (status `T` or `E`).
    pub fn in_transaction(&self) -> Vec<String> {
        self.held
            .iter()
            .filter(|(_, h)| h.conn.tx_status != b'I')
            .map(|(n, _)| n.clone())
            .collect()
    }

    /// The status the backends report together: `E` if any is in a failed transaction,
    /// else `T` if any is in one, else `I`.
    pub fn status(&self) -> u8 {
        let statuses = || self.held.values().map(|h| h.conn.tx_status);
        if statuses().any(|s| s == b'E') {
            b'E'
        } else if statuses().any(|s| s == b'T') {
            b'T'
        } else {
            b'I'
        }
    }

    /// The held connections, with nothing outstanding, that the server closed (a restart,
    /// an idle timeout, `pg_terminate_backend`), with the cause.
    pub fn closed_by_server(&mut self) -> Vec<(String, String)> {
        self.held
            .iter_mut()
            .filter(|(_, h)| h.conn.healthy)
            .filter_map(|(name, h)| h.closed_by_server().map(|cause| (name.clone(), cause)))
            .collect()
    }

    /// Forgets the connection to `ds` (closed by the server): the next statement there
    /// opens a new one.
    pub fn drop_connection(&mut self, ds: &str) {
        if self.held.remove(ds).is_some() {
            self.register_cancel();
        }
    }

    /// Moves the session to `db` as a reload rebuilt it: connections to data sources that
    /// kept their `DataSource` (same URL and pool size) stay; the others go back to their
    /// old pools (or are closed) and are opened anew on next use.
    pub async fn switch_database(&mut self, db: Arc<LogicalDatabase>) {
        // Parked connections go back to the pools they came from (the old database's).
        self.release_parked(true).await;
        let old = std::mem::replace(&mut self.db, db);
        let names: Vec<String> = self.held.keys().cloned().collect();
        for name in names {
            let kept = matches!(
                (old.data_sources.get(&name), self.db.data_sources.get(&name)),
                (Some(a), Some(b)) if Arc::ptr_eq(a, b)
            );
            if !kept {
                let held = self.held.remove(&name).expect("listed above");
                if let Some(ds) = old.data_sources.get(&name) {
                    held.release(ds).await;
                }
            }
        }
        self.register_cancel();
    }

    /// The primary data source named `ds`.
    pub fn primary(&self, ds: &str) -> Option<&Arc<DataSource>> {
        self.db.data_sources.get(ds)
    }

    /// The replica whose connection stands in for `ds` in the statement running now.
    pub fn lent_replica(&self, ds: &str) -> Option<&Arc<DataSource>> {
        self.lent.get(ds)
    }

    /// A connection to `replica` (of data source `ds`) brought to the session's SETs: the
    /// parked one if the server has not closed it, else one from the replica's pool.
    pub async fn replica_connection(
        &mut self,
        ds: &str,
        replica: &Arc<DataSource>,
        session: &Session,
    ) -> Result<HeldBackend, Error> {
        let at = self.parked.iter().position(|(name, r, _)| {
            name == ds && r.as_ref().is_some_and(|r| Arc::ptr_eq(r, replica))
        });
        if let Some(at) = at {
            let (_, _, mut held) = self.parked.swap_remove(at);
            if held.closed_by_server().is_none()
                && apply_session_state(&mut held.conn, replica, session)
                    .await
                    .is_ok()
            {
                return Ok(held);
            }
        }
        checkout(&self.rt.config().server, replica, &self.params, session).await
    }

    /// Keeps a connection to `replica` of `ds` for later reads.
    pub fn park_replica(&mut self, ds: &str, replica: Arc<DataSource>, held: HeldBackend) {
        self.parked.push((ds.to_string(), Some(replica), held));
    }

    /// For the statement running now, `ds`'s units run on `held`, a connection to
    /// `replica`; the primary's connection (if the session holds one) is parked.
    pub fn lend(&mut self, ds: &str, replica: Arc<DataSource>, held: HeldBackend) {
        if let Some(primary) = self.held.insert(ds.to_string(), held) {
            self.parked.push((ds.to_string(), None, primary));
        }
        self.lent.insert(ds.to_string(), replica);
        self.register_cancel();
    }

    /// After a statement: every lent replica connection is parked again (or dropped, when a
    /// response is outstanding on it) and the primaries' connections are back in place.
    pub fn restore_primaries(&mut self) {
        if self.lent.is_empty() {
            return;
        }
        for (ds, replica) in std::mem::take(&mut self.lent) {
            if let Some(held) = self.held.remove(&ds) {
                if held.conn.healthy {
                    self.parked.push((ds.clone(), Some(replica), held));
                }
            }
            let primary = self
                .parked
                .iter()
                .position(|(name, r, _)| *name == ds && r.is_none());
            if let Some(at) = primary {
                let (_, _, held) = self.parked.swap_remove(at);
                self.held.insert(ds, held);
            }
        }
        self.register_cancel();
    }

    /// Gives every parked connection back to the pool of the server it belongs to.
    async fn release_parked(&mut self, reset: bool) {
        for (ds, replica, held) in std::mem::take(&mut self.parked) {
            let source = match &replica {
                Some(r) => r.clone(),
                None => match self.db.data_sources.get(&ds) {
                    Some(p) => p.clone(),
                    None => continue,
                },
            };
            if !reset && held.conn.healthy && held.conn.tx_status == b'I' {
                held.give_back(&source);
            } else {
                held.release(&source).await;
            }
        }
    }

    /// Points the client's cancel key at every held connection.
    fn register_cancel(&self) {
        let targets = self
            .held
            .values()
            .map(|h| CancelTarget::of(self.key.1, &h.conn))
            .collect();
        self.rt.pg_cancel.register_all(self.key.0, targets);
    }

    /// Between transactions: every connection goes back to its pool as it is (the next
    /// session's checkout brings it to its own SETs), except one with passthrough
    /// statements prepared on it: those carry the client's names, which another session
    /// may use for other SQL, so the session keeps that connection while it has them. One
    /// with a response outstanding is closed. Parked replica connections go back to their
    /// replica's pool.
    pub async fn release_all(&mut self) {
        self.release_parked(false).await;
        let releasable: Vec<String> = self
            .held
            .iter()
            .filter(|(_, h)| h.conn.prepared.is_empty())
            .map(|(n, _)| n.clone())
            .collect();
        if releasable.is_empty() {
            return;
        }
        for name in releasable {
            let held = self.held.remove(&name).expect("listed above");
            let Some(ds) = self.db.data_sources.get(&name) else {
                continue;
            };
            if held.conn.healthy && held.conn.tx_status == b'I' {
                held.give_back(ds);
            } else {
                held.release(ds).await;
            }
        }
        self.register_cancel();
    }

    /// Returns every clean connection to its pool (the rest are closed) and forgets the
    /// cancel key.
    pub async fn release(mut self) {
        self.rt.pg_cancel.unregister(self.key.0);
        self.release_parked(true).await;
        for (name, held) in std::mem::take(&mut self.held) {
            if let Some(ds) = self.db.data_sources.get(&name) {
                held.release(ds).await;
            }
        }
    }
}
