//! Transactions over the data sources of a sharded database, with local semantics (as
//! ShardingSphere's default `LOCAL` transaction type): each data source commits or rolls
//! back on its own, and a COMMIT that fails on one data source still commits the others.
//!
//! BEGIN sends nothing: it is remembered, and each data source the transaction reaches runs
//! it (then the savepoints set so far) just before its first statement, so a transaction
//! that touches one shard costs one backend BEGIN. COMMIT, ROLLBACK and savepoints go to
//! every connection the session holds, concurrently. Sessions with `autocommit = 0` need no
//! BEGIN: every backend connection is implicitly in a transaction, and COMMIT / ROLLBACK
//! reach them all just the same.

use tracing::debug;

use super::err::MysqlError;
use super::frontend::{ClientConn, Fatal, COM_QUERY};
use super::ok::STATUS_IN_TRANS;
use super::response::ResponseKind;
use crate::error::Error;
use crate::route::shard::PlanKind;
use crate::txn::XaTxn;

/// Savepoint statements kept for data sources that join later; beyond this a transaction's
/// oldest savepoints are forgotten (a data source joining then cannot roll back to them).
const MAX_SAVEPOINTS: usize = 256;

/// A transaction dbmesh runs over several data sources.
#[derive(Debug)]
pub(crate) struct ShardedTxn {
    /// What a data source runs when it joins: the BEGIN statement as the client wrote it
    /// (`START TRANSACTION READ ONLY`), then the savepoint statements so far, in order.
    prelude: Vec<String>,
    /// A data source whose connection broke after joining: the transaction is gone there,
    /// so COMMIT rolls back everywhere and says so.
    pub(crate) lost: Option<String>,
    /// The global transaction when the session runs XA (`sharded_xa.rs`): each data source
    /// joins with `XA START` of its branch instead of the client's BEGIN.
    pub(crate) xa: Option<XaTxn>,
}

impl ShardedTxn {
    /// A transaction whose data sources join with `begin` (or their XA branch's
    /// `XA START`, when `xa` is set).
    pub(crate) fn new(begin: &str, xa: Option<XaTxn>) -> ShardedTxn {
        ShardedTxn {
            prelude: vec![begin.to_string()],
            lost: None,
            xa,
        }
    }

    /// Notes that the connection to `data_source`, which had joined, is gone.
    pub(crate) fn lost(&mut self, data_source: &str) {
        self.lost.get_or_insert_with(|| data_source.to_string());
    }
}

impl ClientConn {
    /// Runs a transaction-control plan (BEGIN, COMMIT, ROLLBACK, savepoints); `sql` is the
    /// statement the plan's template unit names. False for any other plan.
    pub(crate) async fn transaction_control(
        &mut self,
        kind: PlanKind,
        sql: &str,
    ) -> Result<bool, Fatal> {
        match kind {
            PlanKind::Begin => self.begin_sharded(sql).await,
            PlanKind::Commit => self.end_sharded(true, sql).await,
            PlanKind::Rollback => self.end_sharded(false, sql).await,
            PlanKind::Savepoint => self.savepoint_sharded(sql).await?,
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// After a statement of a sharded session: in a transaction while dbmesh runs one or
    /// any backend connection reports one (`autocommit = 0`).
    pub(crate) fn refresh_transaction_status(&mut self) {
        self.session.in_transaction = self.txn.is_some()
            || self
                .backends
                .iter()
                .any(|h| h.conn.status & STATUS_IN_TRANS != 0);
    }

    /// Before a statement of kind `kind`: DDL commits the open transaction implicitly on
    /// MySQL, so dbmesh commits it on every data source that joined (not only those the
    /// DDL runs on) and ends it; later statements autocommit, as on one server. The error
    /// of that commit, if any, is the statement's. Under `autocommit = 0` an XA session
    /// starts its global transaction here (see `begin_implicit_xa`).
    pub(crate) async fn before_statement(&mut self, kind: PlanKind) -> Option<MysqlError> {
        if kind != PlanKind::Ddl || self.txn.is_none() {
            self.begin_implicit_xa(kind);
            return None;
        }
        let failed = self.finish_transaction(true, "COMMIT").await;
        self.refresh_transaction_status();
        failed
    }

    /// Runs the transaction's prelude on held connection `index`, which is about to run its
    /// first statement in the transaction.
    pub(crate) async fn join_transaction(&mut self, index: usize) -> Result<(), Error> {
        let Some(txn) = &self.txn else {
            return Ok(());
        };
        let mut prelude = txn.prelude.clone();
        let held = &mut self.backends[index];
        if let Some(xa) = &txn.xa {
            prelude[0] = format!("XA START {}", xa.branch(&held.ds.name).mysql_xid());
        }
        for (i, sql) in prelude.iter().enumerate() {
            match held.conn.query_internal(sql).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) if i == 0 => {
                    return Err(Error::DataSourceUnavailable {
                        database: held.ds.database.clone(),
                        data_source: held.ds.name.clone(),
                        cause: format!("`{sql}` failed there: {}", e.message),
                    })
                }
                Ok(Err(e)) => {
                    debug!(data_source = %held.ds.name, "replaying `{sql}` failed: {}", e.message)
                }
                Err(e) => {
                    let err = Error::BackendLost {
                        data_source: held.ds.name.clone(),
                        cause: e.to_string(),
                    };
                    self.drop_backend(index);
                    return Err(err);
                }
            }
        }
        self.backends[index].joined = true;
        Ok(())
    }

    /// BEGIN / START TRANSACTION: commits whatever is open (as MySQL's BEGIN does), then
    /// remembers the statement for the data sources the transaction will reach.
    async fn begin_sharded(&mut self, sql: &str) {
        let open = self.txn.is_some() || !self.session.autocommit || self.session.in_transaction;
        if open {
            if let Some(e) = self.finish_transaction(true, "COMMIT").await {
                self.refresh_transaction_status();
                self.send_mysql_error(&e);
                return;
            }
        }
        let xa = self.xa_wanted().then(|| self.rt.xa.begin());
        self.txn = Some(ShardedTxn::new(sql, xa));
        self.session.in_transaction = true;
        self.send_ok();
    }

    /// COMMIT / ROLLBACK (`sql`, as the client wrote it) on every held connection.
    async fn end_sharded(&mut self, commit: bool, sql: &str) {
        let outcome = self.finish_transaction(commit, sql).await;
        self.refresh_transaction_status();
        match outcome {
            Some(e) => self.send_mysql_error(&e),
            None => self.send_ok(),
        }
    }

    /// Ends the transaction on every held connection and forgets it. A transaction that lost
    /// a connection is rolled back everywhere instead of committed. Returns the error to
    /// report: the lost connection, or the first data source that failed, named.
    pub(crate) async fn finish_transaction(
        &mut self,
        commit: bool,
        sql: &str,
    ) -> Option<MysqlError> {
        let mut txn = self.txn.take();
        if let Some(xa) = txn.as_mut().and_then(|t| t.xa.take()) {
            let lost = txn.and_then(|t| t.lost);
            return self.finish_xa(xa, lost, commit).await;
        }
        let lost = txn.and_then(|t| t.lost);
        let sql = if lost.is_some() { "ROLLBACK" } else { sql };
        let all: Vec<usize> = (0..self.backends.len()).collect();
        let failed = self.run_on_backends(&all, sql).await;
        for held in &mut self.backends {
            held.joined = false;
        }
        match lost {
            Some(ds) if commit => Some(MysqlError::from(&Error::BackendLost {
                data_source: ds,
                cause: "the connection broke inside the transaction, so it was rolled back on every data source".into(),
            })),
            _ => failed,
        }
    }

    /// SAVEPOINT / RELEASE SAVEPOINT / ROLLBACK TO SAVEPOINT on every connection in the
    /// transaction (every held one under `autocommit = 0`); remembered for data sources
    /// that join later.
    async fn savepoint_sharded(&mut self, sql: &str) -> Result<(), Fatal> {
        let targets: Vec<usize> = match &self.txn {
            Some(_) => (0..self.backends.len())
                .filter(|&i| self.backends[i].joined)
                .collect(),
            None => (0..self.backends.len()).collect(),
        };
        if targets.is_empty() && self.txn.is_none() {
            // Nothing open anywhere: the default data source answers as MySQL would.
            let mut payload = vec![COM_QUERY];
            payload.extend_from_slice(sql.as_bytes());
            self.forward_routed(&payload, ResponseKind::Query).await?;
            self.refresh_transaction_status();
            return Ok(());
        }
        let failed = self.run_on_backends(&targets, sql).await;
        if let (None, Some(txn)) = (&failed, &mut self.txn) {
            if txn.prelude.len() > MAX_SAVEPOINTS {
                txn.prelude.remove(1);
            }
            txn.prelude.push(sql.to_string());
        }
        self.refresh_transaction_status();
        match failed {
            Some(e) => self.send_mysql_error(&e),
            None => self.send_ok(),
        }
        Ok(())
    }

    /// Runs `sql` on the held connections `indices`, concurrently (all sent before any
    /// answer is read). Returns the first failure, its message naming the data source;
    /// connections that broke are dropped.
    pub(crate) async fn run_on_backends(
        &mut self,
        indices: &[usize],
        sql: &str,
    ) -> Option<MysqlError> {
        let mut payload = Vec::with_capacity(sql.len() + 1);
        payload.push(COM_QUERY);
        payload.extend_from_slice(sql.as_bytes());
        let mut first: Option<MysqlError> = None;
        let mut sent = Vec::with_capacity(indices.len());
        for &i in indices {
            let held = &mut self.backends[i];
            match held.conn.send_command(&payload).await {
                Ok(()) => sent.push(i),
                Err(e) => {
                    held.conn.healthy = false;
                    first.get_or_insert_with(|| lost_error(&held.ds.name, &e.to_string()));
                }
            }
        }
        for i in sent {
            let held = &mut self.backends[i];
            match held.conn.read_internal(ResponseKind::Query).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    first.get_or_insert_with(|| MysqlError {
                        message: format!("data source '{}': {}", held.ds.name, e.message),
                        ..e
                    });
                }
                Err(e) => {
                    held.conn.healthy = false;
                    first.get_or_insert_with(|| lost_error(&held.ds.name, &e.to_string()));
                }
            }
        }
        self.drop_unhealthy_backends();
        first
    }
}

fn lost_error(data_source: &str, cause: &str) -> MysqlError {
    MysqlError::from(&Error::BackendLost {
        data_source: data_source.to_string(),
        cause: cause.to_string(),
    })
}
