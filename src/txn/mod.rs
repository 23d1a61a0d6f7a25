//! Distributed transactions over the data sources of a logical database.
//!
//! `LOCAL` transactions need nothing here: the wire layers run one transaction per data
//! source. `XA` transactions are coordinated by this instance's [`Coordinator`]: it names
//! each global transaction ([`xid`]), writes the commit decision to the transaction log
//! ([`log`]) between the two phases, and runs [`recovery`] at start-up and periodically
//! to finish what a crash left prepared. The wire layers (`wire/*/sharded_txn.rs`) send
//! the branch statements (XA START / PREPARE TRANSACTION / ...) over the session's own
//! backend connections, in the order the coordinator's protocol needs:
//!
//! 1. one participant: commit in one phase, nothing logged;
//! 2. several: prepare all; any failure rolls back all; else log the decision, then
//!    commit all. A branch whose commit fails stays prepared with its decision logged,
//!    and recovery commits it.
//!
//! `SAGA` transactions ([`saga`]) use the same ids and log: each statement commits at
//! once with its compensations logged first, and recovery compensates the sagas of dead
//! owners.

pub mod control;
pub mod failpoint;
pub mod log;
pub mod recovery;
pub mod saga;
pub mod session_statement;
pub mod xid;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::config::{Config, TransactionConfig};
use log::TxnLog;
use xid::GlobalId;

/// What can go wrong in the coordinator itself (branch statements fail on the wire).
#[derive(Debug, Clone, thiserror::Error)]
pub enum TxnError {
    /// The transaction log could not be written or read.
    #[error("the XA transaction log ({log}) failed: {cause}")]
    Log { log: String, cause: String },
    /// A control-plane connection (log table, recovery) failed.
    #[error("control connection to {target} failed: {cause}")]
    Control { target: String, cause: String },
}

/// This instance's XA coordinator, shared by every session.
pub struct Coordinator {
    /// The instance id in every gtrid.
    pub instance: String,
    /// This process's start time (ms since 1970), in every gtrid.
    pub boot: u64,
    seq: AtomicU64,
    pub log: TxnLog,
    pub config: TransactionConfig,
    /// Sequence numbers of this process's transactions between XA START and the end of
    /// their second phase: recovery leaves their branches alone.
    in_flight: Mutex<HashSet<u64>>,
    /// A session began an XA transaction or a saga in this process (possibly chosen by
    /// `SET dbmesh_transaction_type` alone): recovery runs from then on.
    used: AtomicBool,
}

/// A global transaction a session runs; dropping it tells recovery the session is done
/// with its branches (whatever state they are in).
pub struct XaTxn {
    pub gtrid: GlobalId,
    coordinator: Arc<Coordinator>,
}

impl std::fmt::Debug for XaTxn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "XaTxn({})", self.gtrid)
    }
}

impl Drop for XaTxn {
    fn drop(&mut self) {
        self.coordinator
            .in_flight
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.gtrid.seq);
    }
}

impl XaTxn {
    pub fn coordinator(&self) -> &Arc<Coordinator> {
        &self.coordinator
    }

    /// The branch of data source `data_source`.
    pub fn branch(&self, data_source: &str) -> xid::Branch {
        xid::Branch {
            gtrid: self.gtrid.clone(),
            bqual: data_source.to_string(),
        }
    }
}

impl Coordinator {
    pub fn new(config: &Config) -> Arc<Coordinator> {
        let instance = config
            .transaction
            .instance_id
            .clone()
            .unwrap_or_else(|| default_instance_id(config));
        let boot = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        Arc::new(Coordinator {
            log: TxnLog::new(config, &instance),
            instance,
            boot,
            seq: AtomicU64::new(1),
            config: config.transaction.clone(),
            in_flight: Mutex::new(HashSet::new()),
            used: AtomicBool::new(false),
        })
    }

    /// Starts a global transaction.
    pub fn begin(self: &Arc<Self>) -> XaTxn {
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        self.used.store(true, Ordering::Relaxed);
        self.in_flight
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(seq);
        XaTxn {
            gtrid: GlobalId {
                instance: self.instance.clone(),
                boot: self.boot,
                seq,
            },
            coordinator: self.clone(),
        }
    }

    /// Whether this process is still running the transaction `gtrid`.
    pub fn in_flight(&self, gtrid: &GlobalId) -> bool {
        gtrid.instance == self.instance
            && gtrid.boot == self.boot
            && self
                .in_flight
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .contains(&gtrid.seq)
    }

    /// Whether recovery has work even when the configuration asks for no XA or SAGA:
    /// this process began a global transaction, or the log holds what an earlier one
    /// left.
    pub fn has_work(&self) -> bool {
        self.used.load(Ordering::Relaxed) || self.log.may_hold_work()
    }

    /// The lease period of a shared log.
    pub fn lease(&self) -> Duration {
        self.config.lease
    }
}

/// An instance id when the config names none: the host name and the first fixed listen
/// port (stable across restarts of a sidecar), or a random one when every port is
/// ephemeral (tests).
fn default_instance_id(config: &Config) -> String {
    let host: String = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap_or_default()
        .trim()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .take(16)
        .collect();
    let server = &config.server;
    let port = [server.mysql_listen, server.postgres_listen]
        .into_iter()
        .flatten()
        .map(|a| a.port())
        .find(|&p| p != 0);
    match port {
        Some(p) if !host.is_empty() => format!("{host}_{p}"),
        _ => format!("r{:08x}", rand::random::<u32>()),
    }
}
