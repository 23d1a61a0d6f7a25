//! Recovery: finds the prepared branches crashes left on the data sources and resolves
//! them, at start-up and every `recovery_interval_ms`.
//!
//! One pass, in this order (the order matters, see [`recover_once`]):
//!
//! 1. renew this instance's lease (shared log);
//! 2. list prepared branches with dbmesh's id format on every data source (`XA RECOVER`
//!    on MySQL, `pg_prepared_xacts` of the data source's database on PostgreSQL);
//! 3. judge each branch's owner ([`verdict`]): this process while the transaction runs,
//!    or another instance holding a live lease, is left alone;
//! 4. read the commit decisions; a branch of a dead owner is committed when its gtrid has
//!    one and rolled back otherwise (presumed abort);
//! 5. forget decisions whose branches are all gone.
//!
//! Then the sagas (see [`super::saga`]): a saga in the log whose owner is judged dead the
//! same way (this process when it no longer runs it, or a dead lease) is compensated: its
//! compensating statements run again, last first, each on its data source, then it is
//! forgotten. They are idempotent, so a saga a crash left half compensated ends right.
//!
//! Branches of an instance this one cannot judge (not in its log: another deployment, or
//! a file log elsewhere) are left alone unless `orphan_timeout_ms` is set and they have
//! been seen prepared for that long.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tracing::{info, warn};

use super::control::ControlConn;
use super::log::Lease;
use super::xid::{Branch, GlobalId};
use super::Coordinator;
use crate::config::{BackendKind, DataSourceUrl};

/// What to do with a prepared branch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Its owner is alive (or unknown and not old enough): leave it.
    Leave,
    /// Its owner is gone: commit if decided, else roll back.
    Resolve,
}

/// Who owns `gtrid`, and may recovery resolve its branches now.
pub fn verdict(
    gtrid: &GlobalId,
    coordinator: &Coordinator,
    leases: &[Lease],
    seen_for: Duration,
) -> Verdict {
    if gtrid.instance == coordinator.instance {
        // An earlier incarnation of this instance is dead; this one knows what it runs.
        if gtrid.boot != coordinator.boot || !coordinator.in_flight(gtrid) {
            return Verdict::Resolve;
        }
        return Verdict::Leave;
    }
    match leases.iter().find(|l| l.instance == gtrid.instance) {
        Some(l) if l.boot == gtrid.boot && l.alive => Verdict::Leave,
        Some(_) => Verdict::Resolve,
        None => match coordinator.config.orphan_timeout {
            Some(t) if seen_for >= t => Verdict::Resolve,
            _ => Verdict::Leave,
        },
    }
}

/// State kept between passes: when each branch of an unknown owner was first seen.
#[derive(Default)]
pub struct Recovery {
    first_seen: Mutex<HashMap<String, Instant>>,
}

/// A data source to scan, once per server (MySQL: XIDs are server-wide) or database
/// (PostgreSQL: prepared transactions are committed from their own database).
fn scan_targets<'a>(urls: impl Iterator<Item = &'a DataSourceUrl>) -> Vec<DataSourceUrl> {
    let mut seen = HashSet::new();
    let mut targets = Vec::new();
    for url in urls {
        let key = match url.kind {
            BackendKind::Mysql => format!("mysql {}:{}", url.host, url.port),
            BackendKind::Postgres => format!("pg {}:{}/{}", url.host, url.port, url.database),
        };
        if seen.insert(key) {
            targets.push(url.clone());
        }
    }
    targets
}

/// The prepared dbmesh branches on the server `conn` talks to.
async fn prepared(conn: &mut ControlConn) -> Result<Vec<Branch>, String> {
    match conn.kind() {
        BackendKind::Mysql => {
            let rows = conn.rows("XA RECOVER").await?;
            Ok(rows
                .into_iter()
                .filter_map(|r| {
                    let num = |v: &Option<Vec<u8>>| -> Option<usize> {
                        std::str::from_utf8(v.as_deref()?).ok()?.parse().ok()
                    };
                    let (g, b) = (num(r.get(1)?)?, num(r.get(2)?)?);
                    let data = r.get(3)?.as_deref()?;
                    if data.len() < g + b {
                        return None;
                    }
                    Branch::from_mysql(&data[..g], &data[g..g + b])
                })
                .collect())
        }
        BackendKind::Postgres => {
            let rows = conn
                .rows("SELECT gid FROM pg_prepared_xacts WHERE database = current_database()")
                .await?;
            Ok(rows
                .into_iter()
                .filter_map(|r| {
                    let gid = String::from_utf8(r.into_iter().next()??).ok()?;
                    Branch::from_pg_gid(&gid)
                })
                .collect())
        }
    }
}

/// Commits or rolls back one prepared branch; a branch already gone is no error.
async fn resolve(conn: &mut ControlConn, branch: &Branch, commit: bool) -> Result<(), String> {
    let sql = match (conn.kind(), commit) {
        (BackendKind::Mysql, true) => format!("XA COMMIT {}", branch.mysql_xid()),
        (BackendKind::Mysql, false) => format!("XA ROLLBACK {}", branch.mysql_xid()),
        (BackendKind::Postgres, true) => format!("COMMIT PREPARED {}", branch.pg_gid_literal()),
        (BackendKind::Postgres, false) => format!("ROLLBACK PREPARED {}", branch.pg_gid_literal()),
    };
    match conn.execute(&sql).await {
        Ok(()) => Ok(()),
        // XAER_NOTA / undefined_object: someone else resolved it meanwhile.
        Err(e) if e.contains("1397") || e.contains("does not exist") => Ok(()),
        Err(e) => Err(e),
    }
}

impl Recovery {
    /// One recovery pass over `urls` (every data source this instance knows).
    pub async fn recover_once(
        &self,
        coordinator: &Coordinator,
        sources: &[(String, DataSourceUrl)],
        connect_timeout: Duration,
    ) {
        self.recover_branches(coordinator, sources.iter().map(|(_, u)| u), connect_timeout)
            .await;
        recover_sagas(coordinator, sources, connect_timeout).await;
    }

    async fn recover_branches<'a>(
        &self,
        coordinator: &Coordinator,
        urls: impl Iterator<Item = &'a DataSourceUrl>,
        connect_timeout: Duration,
    ) {
        let log = &coordinator.log;
        if let Err(e) = log
            .renew_lease(&coordinator.instance, coordinator.boot, coordinator.lease())
            .await
        {
            warn!("XA recovery: renewing the lease failed: {e}");
        }
        let mut complete = true;
        let mut found: Vec<(ControlConn, Vec<Branch>)> = Vec::new();
        for url in scan_targets(urls) {
            let mut conn = match ControlConn::connect(&url, connect_timeout).await {
                Ok(c) => c,
                Err(e) => {
                    warn!("XA recovery cannot scan a data source: {e}");
                    complete = false;
                    continue;
                }
            };
            match prepared(&mut conn).await {
                Ok(branches) => found.push((conn, branches)),
                Err(e) => {
                    warn!(server = %format!("{}:{}", url.host, url.port), "XA recovery: listing prepared branches failed: {e}");
                    complete = false;
                    conn.close().await;
                }
            }
        }
        // Owners are judged after listing and before the decisions are read: a
        // transaction of this process that is not in flight now finished before, so its
        // decision (if any) is in what is read next.
        let leases = match log.leases().await {
            Ok(l) => l,
            Err(e) => {
                warn!("XA recovery: reading leases failed: {e}");
                return;
            }
        };
        let now = Instant::now();
        let mut seen_now = HashSet::new();
        let mut judged: Vec<Vec<(Branch, Verdict)>> = Vec::new();
        {
            let mut first_seen = self.first_seen.lock().unwrap_or_else(|p| p.into_inner());
            for (_, branches) in &found {
                judged.push(
                    branches
                        .iter()
                        .map(|b| {
                            let key = b.pg_gid();
                            let since = *first_seen.entry(key.clone()).or_insert(now);
                            seen_now.insert(key);
                            let v = verdict(&b.gtrid, coordinator, &leases, now - since);
                            (b.clone(), v)
                        })
                        .collect(),
                );
            }
            first_seen.retain(|k, _| seen_now.contains(k));
        }
        let decisions = match log.decisions().await {
            Ok(d) => d,
            Err(e) => {
                warn!("XA recovery: reading the transaction log failed: {e}");
                return;
            }
        };
        let mut left: HashSet<String> = HashSet::new();
        for ((mut conn, _), branches) in found.into_iter().zip(judged) {
            for (branch, v) in branches {
                let gtrid = branch.gtrid.to_string();
                if v == Verdict::Leave {
                    left.insert(gtrid);
                    continue;
                }
                let commit = decisions.contains(&gtrid);
                match resolve(&mut conn, &branch, commit).await {
                    Ok(()) => {
                        crate::admin::metrics::xa_branch_recovered(commit);
                        info!(
                        gtrid = %gtrid, data_source = %branch.bqual,
                        "XA recovery: {} prepared branch",
                        if commit { "committed" } else { "rolled back" }
                        )
                    }
                    Err(e) => {
                        warn!(gtrid = %gtrid, data_source = %branch.bqual, "XA recovery: resolving failed: {e}");
                        left.insert(gtrid);
                    }
                }
            }
            conn.close().await;
        }
        if !complete {
            return;
        }
        // Decisions of finished transactions: this instance's when no longer in flight,
        // dead owners' otherwise; a live owner forgets its own.
        let done: Vec<String> = decisions
            .into_iter()
            .filter(|g| !left.contains(g))
            .filter(|g| match GlobalId::parse(g) {
                Some(id) => {
                    verdict(&id, coordinator, &leases, Duration::ZERO) == Verdict::Resolve
                        && (id.instance == coordinator.instance
                            || leases.iter().any(|l| l.instance == id.instance))
                }
                None => false,
            })
            .collect();
        if let Err(e) = log.forget(&done).await {
            warn!("XA recovery: trimming the transaction log failed: {e}");
        }
    }
}

/// Compensates the sagas of dead owners in the log (`sources`: every data source by
/// `database.data_source`). A saga whose compensation fails stays for the next pass.
async fn recover_sagas(
    coordinator: &Coordinator,
    sources: &[(String, DataSourceUrl)],
    connect_timeout: Duration,
) {
    let log = &coordinator.log;
    let sagas = match log.sagas().await {
        Ok(s) => s,
        Err(e) => {
            warn!("SAGA recovery: reading the transaction log failed: {e}");
            return;
        }
    };
    if sagas.is_empty() {
        return;
    }
    let leases = match log.leases().await {
        Ok(l) => l,
        Err(e) => {
            warn!("SAGA recovery: reading leases failed: {e}");
            return;
        }
    };
    let mut done = Vec::new();
    for (gtrid, steps) in sagas {
        let Some(id) = GlobalId::parse(&gtrid) else {
            continue;
        };
        if verdict(&id, coordinator, &leases, Duration::ZERO) != Verdict::Resolve {
            continue;
        }
        match compensate(&steps, sources, connect_timeout).await {
            Ok(()) => {
                info!(gtrid = %gtrid, steps = steps.len(), "SAGA recovery: compensated");
                done.push(gtrid);
            }
            Err(e) => {
                warn!(gtrid = %gtrid, "SAGA recovery: compensating failed (retried next pass): {e}")
            }
        }
    }
    if let Err(e) = log.forget(&done).await {
        warn!("SAGA recovery: trimming the transaction log failed: {e}");
    }
}

/// Runs `steps` last first, each in its own transaction on a control connection.
async fn compensate(
    steps: &[super::log::UndoStep],
    sources: &[(String, DataSourceUrl)],
    connect_timeout: Duration,
) -> Result<(), String> {
    let mut conns: HashMap<String, ControlConn> = HashMap::new();
    let mut outcome = Ok(());
    for step in steps.iter().rev() {
        let key = format!("{}.{}", step.database, step.data_source);
        if !conns.contains_key(&key) {
            let Some((_, url)) = sources.iter().find(|(k, _)| *k == key) else {
                outcome = Err(format!("data source `{key}` is not in the configuration"));
                break;
            };
            match ControlConn::connect(url, connect_timeout).await {
                Ok(c) => {
                    conns.insert(key.clone(), c);
                }
                Err(e) => {
                    outcome = Err(e.to_string());
                    break;
                }
            }
        }
        let conn = conns.get_mut(&key).expect("connected");
        let sql = format!("START TRANSACTION; {}; COMMIT", step.sql);
        let ran = match conn.kind() {
            // mysql_async runs one statement per query_drop without multi-statements.
            BackendKind::Mysql => {
                async {
                    conn.execute("START TRANSACTION").await?;
                    conn.execute(&step.sql).await?;
                    conn.execute("COMMIT").await
                }
                .await
            }
            BackendKind::Postgres => conn.execute(&sql).await,
        };
        if let Err(e) = ran {
            outcome = Err(format!("data source `{key}`: {e}"));
            break;
        }
    }
    for (_, c) in conns {
        c.close().await;
    }
    outcome
}

/// Runs recovery now and then every `recovery_interval_ms`, renewing the lease of a shared
/// log more often (a third of `lease_ms`), until the process ends. `targets` gives, at each
/// pass, the data sources to scan and the connect timeout, or `None` when no database runs
/// XA transactions now (the pass is skipped).
pub fn spawn<F>(coordinator: Arc<Coordinator>, targets: F) -> tokio::task::JoinHandle<()>
where
    F: Fn() -> Option<(Vec<(String, DataSourceUrl)>, Duration)> + Send + 'static,
{
    tokio::spawn(async move {
        let recovery = Recovery::default();
        let interval = coordinator.config.recovery_interval;
        let tick = interval
            .min(coordinator.lease() / 3)
            .max(Duration::from_millis(50));
        let mut announced = false;
        let mut last: Option<Instant> = None;
        loop {
            if let Some((urls, connect_timeout)) = targets() {
                if !announced {
                    info!(
                        instance = %coordinator.instance, log = %coordinator.log.describe(),
                        "XA coordinator ready"
                    );
                    announced = true;
                }
                if last.is_none_or(|t| t.elapsed() >= interval) {
                    recovery
                        .recover_once(&coordinator, &urls, connect_timeout)
                        .await;
                    last = Some(Instant::now());
                } else if let Err(e) = coordinator
                    .log
                    .renew_lease(&coordinator.instance, coordinator.boot, coordinator.lease())
                    .await
                {
                    warn!("XA: renewing the lease failed: {e}");
                }
            }
            tokio::time::sleep(tick).await;
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse;

    fn coordinator(extra: &str) -> Arc<Coordinator> {
        let toml = format!(
            r#"
[server]
mysql_listen = "127.0.0.1:0"
[transaction]
instance_id = "me"
{extra}
[[users]]
name = "a"
password = "b"
databases = ["*"]
[databases.d]
backend = "mysql"
[databases.d.data_sources.ds_0]
url = "mysql://root@127.0.0.1:3306/x"
"#
        );
        Coordinator::new(&parse(&toml, std::path::Path::new("/tmp/dbmesh.toml")).unwrap())
    }

    fn id(instance: &str, boot: u64) -> GlobalId {
        GlobalId {
            instance: instance.into(),
            boot,
            seq: 1,
        }
    }

    #[test]
    fn own_transactions_are_left_while_in_flight() {
        let c = coordinator("");
        let txn = c.begin();
        assert_eq!(verdict(&txn.gtrid, &c, &[], Duration::ZERO), Verdict::Leave);
        let gtrid = txn.gtrid.clone();
        drop(txn);
        assert_eq!(verdict(&gtrid, &c, &[], Duration::ZERO), Verdict::Resolve);
        let earlier_boot = id("me", c.boot - 1);
        assert_eq!(
            verdict(&earlier_boot, &c, &[], Duration::ZERO),
            Verdict::Resolve
        );
    }

    #[test]
    fn other_instances_are_judged_by_their_lease() {
        let c = coordinator("");
        let lease = |boot, alive| Lease {
            instance: "other".into(),
            boot,
            alive,
        };
        let other = id("other", 7);
        assert_eq!(
            verdict(&other, &c, &[lease(7, true)], Duration::ZERO),
            Verdict::Leave
        );
        assert_eq!(
            verdict(&other, &c, &[lease(7, false)], Duration::ZERO),
            Verdict::Resolve
        );
        assert_eq!(
            verdict(&other, &c, &[lease(8, true)], Duration::ZERO),
            Verdict::Resolve,
            "it restarted, so the incarnation that prepared is dead"
        );
    }

    #[test]
    fn unknown_owners_wait_for_the_orphan_timeout() {
        let c = coordinator("");
        let stranger = id("stranger", 1);
        assert_eq!(
            verdict(&stranger, &c, &[], Duration::from_secs(86_400)),
            Verdict::Leave
        );
        let c = coordinator("orphan_timeout_ms = 1000");
        assert_eq!(
            verdict(&stranger, &c, &[], Duration::from_millis(999)),
            Verdict::Leave
        );
        assert_eq!(
            verdict(&stranger, &c, &[], Duration::from_secs(1)),
            Verdict::Resolve
        );
    }
}
