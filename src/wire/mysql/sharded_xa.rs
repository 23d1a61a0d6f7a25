//! XA transactions of a sharded MySQL session: the branch statements, sent over the
//! session's own backend connections, driven by the [`crate::txn`] coordinator's protocol.
//!
//! Each data source joins with `XA START 'gtrid','ds'` (see `join_transaction`). COMMIT
//! with one participant is `XA END` + `XA COMMIT ... ONE PHASE`; with several it is
//! `XA END` and `XA PREPARE` on all, the decision written to the transaction log, then
//! `XA COMMIT` on all. Any failure before the decision rolls back every branch and the
//! client gets the error naming the data source (with the backend's errno), or 1402
//! `XA100` when the log failed. After the decision the transaction is committed: a branch
//! whose commit fails (its connection broke) stays prepared, and recovery commits it.

use tracing::warn;

use super::err::{code, MysqlError};
use super::frontend::{ClientConn, COM_QUERY};
use super::response::ResponseKind;
use super::sharded_txn::ShardedTxn;
use crate::config::TransactionType;
use crate::error::Error;
use crate::execute::LogicalDatabase;
use crate::route::shard::PlanKind;
use crate::txn::{failpoint, session_statement, XaTxn};

impl ClientConn {
    /// Whether a BEGIN now starts an XA transaction: the session's
    /// `dbmesh_transaction_type`, else its database's `transaction` setting.
    pub(crate) fn xa_wanted(&self) -> bool {
        let configured = self.session.database.as_ref().and_then(|d| {
            self.rt
                .cluster()
                .databases
                .get(d)
                .map(|db| db.config.transaction)
        });
        self.session.transaction_type.or(configured) == Some(TransactionType::Xa)
    }

    /// Before a statement of kind `kind` in a session with `autocommit = 0` and no
    /// transaction open yet: MySQL opens one implicitly, so under XA dbmesh starts its
    /// global transaction now (each data source joins with `XA START`), and the next
    /// COMMIT / ROLLBACK ends it as after a BEGIN. Under LOCAL nothing is needed: the
    /// backend connections open their own transactions.
    pub(crate) fn begin_implicit_xa(&mut self, kind: PlanKind) {
        let statement = matches!(kind, PlanKind::Query | PlanKind::Write);
        if !statement || self.txn.is_some() || self.session.autocommit || !self.xa_wanted() {
            return;
        }
        if self.session.in_transaction {
            // A backend connection already runs a local transaction (it began before
            // dbmesh knew of autocommit = 0): XA START would be refused there.
            return;
        }
        let xa = self.rt.xa.begin();
        self.txn = Some(ShardedTxn::new("BEGIN", Some(xa)));
        self.session.in_transaction = true;
    }

    /// `SET dbmesh_transaction_type = ...`, `parsed`: recorded for the session, outside a
    /// transaction only; answered OK or with the error.
    pub(crate) fn set_transaction_type(&mut self, parsed: Result<TransactionType, Error>) {
        let outcome = match parsed {
            Err(e) => Err(e),
            Ok(_) if self.txn.is_some() || self.session.in_transaction => {
                Err(Error::InTransaction(format!(
                    "{} can only be changed outside a transaction",
                    session_statement::VARIABLE
                )))
            }
            Ok(t) => {
                self.session.transaction_type = Some(t);
                Ok(())
            }
        };
        match outcome {
            Ok(()) => self.send_ok(),
            Err(e) => self.send_error(&e),
        }
    }

    /// The application's own `XA ...` statement on a database with several data sources:
    /// refused (dbmesh's transaction types say how to get atomic commits there).
    pub(crate) fn refuse_raw_xa(&self, database: &LogicalDatabase, sql: &str) -> Option<Error> {
        if database.data_sources.len() < 2 || !session_statement::is_raw_xa(sql) {
            return None;
        }
        Some(Error::RawXa(format!(
            "XA statements from the application are not supported on database `{}`, which has {} data sources: \
             dbmesh coordinates the data sources itself; run BEGIN ... COMMIT with transaction type XA \
             (`transaction = \"XA\"` in the database's config, or SET {} = 'XA'), see docs/transactions.md",
            database.config.name,
            database.data_sources.len(),
            session_statement::VARIABLE
        )))
    }

    /// COMMIT (or ROLLBACK) of the XA transaction `xa` over every joined connection.
    /// `lost` names a data source whose connection broke inside it: then every branch is
    /// rolled back and a COMMIT fails naming it.
    pub(crate) async fn finish_xa(
        &mut self,
        xa: XaTxn,
        lost: Option<String>,
        commit: bool,
    ) -> Option<MysqlError> {
        let joined: Vec<usize> = (0..self.backends.len())
            .filter(|&i| self.backends[i].joined)
            .collect();
        let names: Vec<String> = joined
            .iter()
            .map(|&i| self.backends[i].ds.name.clone())
            .collect();
        let outcome = self.finish_xa_on(&xa, &names, lost, commit).await;
        for held in &mut self.backends {
            held.joined = false;
        }
        self.drop_unhealthy_backends();
        outcome
    }

    async fn finish_xa_on(
        &mut self,
        xa: &XaTxn,
        names: &[String],
        lost: Option<String>,
        commit: bool,
    ) -> Option<MysqlError> {
        let each = |verb: &str, suffix: &str| -> Vec<(String, String)> {
            names
                .iter()
                .map(|n| {
                    (
                        n.clone(),
                        format!("XA {verb} {}{suffix}", xa.branch(n).mysql_xid()),
                    )
                })
                .collect()
        };
        if let Some(ds) = lost {
            self.xa_rollback(xa, names).await;
            return commit.then(|| {
                MysqlError::from(&Error::BackendLost {
                    data_source: ds,
                    cause: "the connection broke inside the XA transaction, so it was rolled back on every data source".into(),
                })
            });
        }
        if !commit {
            return self.xa_rollback(xa, names).await;
        }
        if names.is_empty() {
            return None;
        }
        if let Some(e) = first_error(self.run_each(&each("END", ""), None).await) {
            self.xa_rollback(xa, names).await;
            return Some(rolled_back(e));
        }
        if names.len() == 1 {
            return first_error(self.run_each(&each("COMMIT", " ONE PHASE"), None).await);
        }
        let prepared = self
            .run_each(&each("PREPARE", ""), Some("xa_after_first_prepare"))
            .await;
        if let Some(e) = first_error(prepared) {
            self.xa_rollback(xa, names).await;
            return Some(rolled_back(e));
        }
        failpoint::hit("xa_after_prepare");
        let log = &xa.coordinator().log;
        if let Err(e) = log.record_commit(&xa.gtrid, names).await {
            self.xa_rollback(xa, names).await;
            return Some(MysqlError::from(&Error::XaRolledBack(format!(
                "{e}; the XA transaction {} was rolled back on every data source",
                xa.gtrid
            ))));
        }
        failpoint::hit("xa_after_decision");
        let committed = self
            .run_each(&each("COMMIT", ""), Some("xa_after_first_commit"))
            .await;
        match first_error(committed) {
            None => {
                if let Err(e) = log.forget(&[xa.gtrid.to_string()]).await {
                    warn!(gtrid = %xa.gtrid, "trimming the XA log failed (recovery trims it later): {e}");
                }
            }
            Some(e) => warn!(
                gtrid = %xa.gtrid,
                "XA commit decided but a branch did not commit ({}); recovery will commit it",
                e.message
            ),
        }
        None
    }

    /// Rolls back every branch of `xa` on the data sources `names` (ending it first where
    /// it is still active). Returns the first failure other than "already gone".
    async fn xa_rollback(&mut self, xa: &XaTxn, names: &[String]) -> Option<MysqlError> {
        let end: Vec<(String, String)> = names
            .iter()
            .map(|n| (n.clone(), format!("XA END {}", xa.branch(n).mysql_xid())))
            .collect();
        // A branch that is already ended, prepared or rolled back refuses XA END: fine.
        let _ = self.run_each(&end, None).await;
        let rollback: Vec<(String, String)> = names
            .iter()
            .map(|n| {
                (
                    n.clone(),
                    format!("XA ROLLBACK {}", xa.branch(n).mysql_xid()),
                )
            })
            .collect();
        self.run_each(&rollback, None)
            .await
            .into_iter()
            .filter_map(Result::err)
            .find(|e| e.code != code::ER_XAER_NOTA && !is_rolled_back_already(e))
    }

    /// Runs one statement per data source (each on the session's connection to it),
    /// concurrently: all sent, then answers read in order. Results in the same order;
    /// a data source without a connection (it broke) fails. When `failpoint` is armed
    /// (crash tests) only the first statement runs, then the process aborts.
    async fn run_each(
        &mut self,
        work: &[(String, String)],
        failpoint: Option<&str>,
    ) -> Vec<Result<(), MysqlError>> {
        if let Some(name) = failpoint.filter(|n| failpoint::armed(n)) {
            let first = self.exchange(&work[..1]).await;
            failpoint::hit(name);
            return first;
        }
        self.exchange(work).await
    }

    /// [`ClientConn::run_each`] without failpoints.
    async fn exchange(&mut self, work: &[(String, String)]) -> Vec<Result<(), MysqlError>> {
        let mut results: Vec<Result<(), MysqlError>> = Vec::with_capacity(work.len());
        let mut sent = Vec::with_capacity(work.len());
        for (ds, sql) in work {
            let Some(i) = self.backends.iter().position(|h| &h.ds.name == ds) else {
                results.push(Err(lost_error(ds, "the connection is gone")));
                continue;
            };
            let mut payload = Vec::with_capacity(sql.len() + 1);
            payload.push(COM_QUERY);
            payload.extend_from_slice(sql.as_bytes());
            let held = &mut self.backends[i];
            match held.conn.send_command(&payload).await {
                Ok(()) => {
                    sent.push((results.len(), i));
                    results.push(Ok(()));
                }
                Err(e) => {
                    held.conn.healthy = false;
                    results.push(Err(lost_error(ds, &e.to_string())));
                }
            }
        }
        for (slot, i) in sent {
            let held = &mut self.backends[i];
            results[slot] = match held.conn.read_internal(ResponseKind::Query).await {
                Ok(Ok(_)) => Ok(()),
                Ok(Err(e)) => Err(MysqlError {
                    message: format!("data source '{}': {}", held.ds.name, e.message),
                    ..e
                }),
                Err(e) => {
                    held.conn.healthy = false;
                    Err(lost_error(&held.ds.name, &e.to_string()))
                }
            };
        }
        results
    }
}

fn first_error(results: Vec<Result<(), MysqlError>>) -> Option<MysqlError> {
    results.into_iter().find_map(Result::err)
}

/// XA_RB* (1613 timeout, 1614 deadlock, 1402 rollback): the server already rolled back.
fn is_rolled_back_already(e: &MysqlError) -> bool {
    matches!(e.code, 1402 | 1613 | 1614)
}

/// A failure before the decision, worded to say every branch was rolled back.
fn rolled_back(e: MysqlError) -> MysqlError {
    MysqlError {
        message: format!(
            "{}; the XA transaction was rolled back on every data source",
            e.message
        ),
        ..e
    }
}

fn lost_error(data_source: &str, cause: &str) -> MysqlError {
    MysqlError::from(&Error::BackendLost {
        data_source: data_source.to_string(),
        cause: cause.to_string(),
    })
}
