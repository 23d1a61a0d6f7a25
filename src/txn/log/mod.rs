//! The XA transaction log: where the commit decision of a global transaction is made
//! durable between the two phases, and (for a shared log) which instances are alive.
//!
//! Only commit decisions are written: a prepared branch whose gtrid has no decision is
//! rolled back by recovery (presumed abort), so a transaction that fails before the
//! decision costs no log write. Entries are removed once every branch has committed.
//!
//! Two kinds, chosen by `[transaction] log`: a local file ([`file::FileLog`], for a lone
//! sidecar) and tables in a data source ([`table::TableLog`], shared by several instances,
//! with leases so one can tell whether another is alive).

pub mod file;
pub mod table;

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Duration;

use super::xid::GlobalId;
use super::TxnError;
use crate::config::{Config, TxnLogConfig};

/// One compensating statement of a SAGA transaction: what undoes part of a statement
/// that committed on one data source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UndoStep {
    /// The logical database.
    pub database: String,
    /// The data source (of `database`) it runs on.
    pub data_source: String,
    /// The statement, with actual table names; re-running it is harmless.
    pub sql: String,
}

/// An instance's lease in a shared log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub instance: String,
    /// The boot (start time) of the incarnation that holds it.
    pub boot: u64,
    /// Renewed recently enough, by the log server's clock.
    pub alive: bool,
}

/// The log this instance writes its decisions to.
pub enum TxnLog {
    File(file::FileLog),
    Table(Box<table::TableLog>),
}

impl TxnLog {
    /// The log `config` names, not opened yet (nothing is touched until the first use).
    pub fn new(config: &Config, instance: &str) -> TxnLog {
        match &config.transaction.log {
            TxnLogConfig::File(path) => {
                let path = path.clone().unwrap_or_else(|| {
                    let dir = config.path.parent().map(PathBuf::from).unwrap_or_default();
                    dir.join(format!("dbmesh-xa-{instance}.log"))
                });
                TxnLog::File(file::FileLog::new(path))
            }
            TxnLogConfig::Table {
                database,
                data_source,
            } => {
                let url = config.databases[database].data_sources[data_source]
                    .url
                    .clone();
                TxnLog::Table(Box::new(table::TableLog::new(
                    format!("{database}.{data_source}"),
                    url,
                    config.server.connect_timeout,
                )))
            }
        }
    }

    /// Whether the log may hold something recovery must finish, when nothing in the
    /// configuration asks for XA or SAGA (a session chose one with
    /// `SET dbmesh_transaction_type`, then the process died): a file log that is not
    /// empty. A table log is configured in `[transaction]`, which starts recovery anyway.
    pub fn may_hold_work(&self) -> bool {
        match self {
            TxnLog::File(f) => std::fs::metadata(f.path()).is_ok_and(|m| m.len() > 0),
            TxnLog::Table(_) => true,
        }
    }

    /// What the log is, for messages.
    pub fn describe(&self) -> String {
        match self {
            TxnLog::File(f) => format!("file {}", f.path().display()),
            TxnLog::Table(t) => format!("table log in data source {}", t.name()),
        }
    }

    /// Makes the commit decision of `gtrid` (over the data sources `participants`)
    /// durable; only after this returns may any branch commit.
    pub async fn record_commit(
        &self,
        gtrid: &GlobalId,
        participants: &[String],
    ) -> Result<(), TxnError> {
        match self {
            TxnLog::File(f) => f.record_commit(gtrid, participants).await,
            TxnLog::Table(t) => t.record_commit(gtrid, participants).await,
        }
    }

    /// Removes the decisions of transactions whose branches have all committed, and the
    /// sagas that committed or were compensated.
    pub async fn forget(&self, gtrids: &[String]) -> Result<(), TxnError> {
        if gtrids.is_empty() {
            return Ok(());
        }
        match self {
            TxnLog::File(f) => f.forget(gtrids).await,
            TxnLog::Table(t) => t.forget(gtrids).await,
        }
    }

    /// The gtrids with a commit decision.
    pub async fn decisions(&self) -> Result<HashSet<String>, TxnError> {
        match self {
            TxnLog::File(f) => f.decisions().await,
            TxnLog::Table(t) => t.decisions().await,
        }
    }

    /// Appends `steps` to what undoes the saga `gtrid`; only after this returns may the
    /// statement they undo commit.
    pub async fn record_saga(&self, gtrid: &GlobalId, steps: &[UndoStep]) -> Result<(), TxnError> {
        if steps.is_empty() {
            return Ok(());
        }
        match self {
            TxnLog::File(f) => f.record_saga(gtrid, steps).await,
            TxnLog::Table(t) => t.record_saga(gtrid, steps).await,
        }
    }

    /// The outstanding sagas (neither committed nor compensated yet), with their
    /// compensating statements in recorded order. [`forget`](Self::forget) removes one.
    pub async fn sagas(&self) -> Result<Vec<(String, Vec<UndoStep>)>, TxnError> {
        match self {
            TxnLog::File(f) => f.sagas().await,
            TxnLog::Table(t) => t.sagas().await,
        }
    }

    /// Renews this incarnation's lease (a shared log only).
    pub async fn renew_lease(
        &self,
        instance: &str,
        boot: u64,
        lease: Duration,
    ) -> Result<(), TxnError> {
        match self {
            TxnLog::File(_) => Ok(()),
            TxnLog::Table(t) => t.renew_lease(instance, boot, lease).await,
        }
    }

    /// Every lease in the log (none for a file log: it knows only this instance).
    pub async fn leases(&self) -> Result<Vec<Lease>, TxnError> {
        match self {
            TxnLog::File(_) => Ok(Vec::new()),
            TxnLog::Table(t) => t.leases().await,
        }
    }
}
