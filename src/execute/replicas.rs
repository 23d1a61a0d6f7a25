//! The replicas of a data source: whether each is admitted to take reads, and which one
//! takes the next read under the data source's load balancer.
//!
//! A replica is itself a [`DataSource`] (own URL, pool and connect health) whose
//! [`ReplicaState`] the health monitor (`health_monitor.rs`) and failed connects update.
//! Reads only ever consult atomics here; the ejection reason sits under a mutex that only
//! state changes and admin readers take.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use rand::Rng;

use super::DataSource;
use crate::config::{BackendKind, LoadBalancer};

/// Lag value meaning "not measured yet".
const LAG_UNKNOWN: u64 = u64::MAX;

/// What dbmesh knows of one replica.
#[derive(Debug)]
pub struct ReplicaState {
    /// Share of reads under `WEIGHT`.
    pub weight: u32,
    /// Takes reads now; a new replica is admitted until a check or a connect says otherwise.
    admitted: AtomicBool,
    /// Replication lag of the last check, in ms; [`LAG_UNKNOWN`] before one.
    lag_ms: AtomicU64,
    /// Why it was ejected, while it is.
    reason: Mutex<Option<String>>,
}

/// A reading of [`ReplicaState`] for `SHOW DBMESH DATA SOURCES`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaSnapshot {
    pub admitted: bool,
    pub lag_ms: Option<u64>,
    pub reason: Option<String>,
}

impl ReplicaState {
    pub fn new(weight: u32) -> Self {
        ReplicaState {
            weight,
            admitted: AtomicBool::new(true),
            lag_ms: AtomicU64::new(LAG_UNKNOWN),
            reason: Mutex::new(None),
        }
    }

    pub fn is_admitted(&self) -> bool {
        self.admitted.load(Ordering::Relaxed)
    }

    /// A check passed with `lag_ms` of replication lag: (re-)admit it. Returns whether that
    /// changed its state.
    pub fn admit(&self, lag_ms: u64) -> bool {
        self.lag_ms.store(lag_ms, Ordering::Relaxed);
        let was = self.admitted.swap(true, Ordering::Relaxed);
        if !was {
            *self.reason.lock().unwrap() = None;
        }
        !was
    }

    /// A check or connect failed, or lag passed the limit: stop sending it reads. Returns
    /// whether that changed its state.
    pub fn eject(&self, reason: String, lag_ms: Option<u64>) -> bool {
        self.lag_ms
            .store(lag_ms.unwrap_or(LAG_UNKNOWN), Ordering::Relaxed);
        *self.reason.lock().unwrap() = Some(reason);
        self.admitted.swap(false, Ordering::Relaxed)
    }

    pub fn snapshot(&self) -> ReplicaSnapshot {
        let lag = self.lag_ms.load(Ordering::Relaxed);
        ReplicaSnapshot {
            admitted: self.is_admitted(),
            lag_ms: (lag != LAG_UNKNOWN).then_some(lag),
            reason: self.reason.lock().unwrap().clone(),
        }
    }
}

/// Round-robin position of a primary's replicas.
#[derive(Debug, Default)]
pub struct Balancer {
    next: AtomicUsize,
}

impl Balancer {
    /// The admitted replica of `replicas` that takes the next read; `None` when none is
    /// admitted (the read goes to the primary). `in_use` counts a replica's connections in
    /// use, for `LEAST_ACTIVE`.
    pub fn pick<'a>(
        &self,
        policy: LoadBalancer,
        replicas: &'a [Arc<DataSource>],
        kind: BackendKind,
    ) -> Option<&'a Arc<DataSource>> {
        let admitted = |r: &&Arc<DataSource>| r.replica.as_ref().is_some_and(|s| s.is_admitted());
        let count = replicas.iter().filter(admitted).count();
        if count == 0 {
            return None;
        }
        match policy {
            LoadBalancer::RoundRobin => {
                let n = self.next.fetch_add(1, Ordering::Relaxed) % count;
                replicas.iter().filter(admitted).nth(n)
            }
            LoadBalancer::Random => {
                let n = rand::thread_rng().gen_range(0..count);
                replicas.iter().filter(admitted).nth(n)
            }
            LoadBalancer::Weight => {
                let weight =
                    |r: &Arc<DataSource>| r.replica.as_ref().map_or(0, |s| s.weight) as u64;
                let total: u64 = replicas.iter().filter(admitted).map(weight).sum();
                let mut at = rand::thread_rng().gen_range(0..total.max(1));
                for r in replicas.iter().filter(admitted) {
                    if at < weight(r) {
                        return Some(r);
                    }
                    at -= weight(r);
                }
                replicas.iter().find(admitted)
            }
            LoadBalancer::LeastActive => replicas
                .iter()
                .filter(admitted)
                .min_by_key(|r| r.pool_stats(kind).in_use),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{DataSourceConfig, DataSourceUrl, ReadWriteConfig};

    fn replicas(weights: &[u32]) -> Vec<Arc<DataSource>> {
        let config = DataSourceConfig {
            name: "ds_0".into(),
            url: DataSourceUrl {
                kind: BackendKind::Mysql,
                host: "127.0.0.1".into(),
                port: 3306,
                user: "root".into(),
                password: String::new(),
                database: "db".into(),
                params: Vec::new(),
                tls: None,
            },
            max_connections: 4,
            pool: Default::default(),
            replicas: Vec::new(),
            read_write: ReadWriteConfig::default(),
        };
        weights
            .iter()
            .enumerate()
            .map(|(i, w)| {
                Arc::new(DataSource {
                    replica: Some(ReplicaState::new(*w)),
                    ..DataSource::bare("shop", format!("r{i}"), config.url.clone(), &config)
                })
            })
            .collect()
    }

    fn picks(policy: LoadBalancer, replicas: &[Arc<DataSource>], n: usize) -> Vec<String> {
        let balancer = Balancer::default();
        (0..n)
            .map(|_| {
                balancer
                    .pick(policy, replicas, BackendKind::Mysql)
                    .map_or("primary".to_string(), |r| r.name.clone())
            })
            .collect()
    }

    #[test]
    fn round_robin_takes_admitted_replicas_in_turn() {
        let rs = replicas(&[1, 1, 1]);
        assert_eq!(
            picks(LoadBalancer::RoundRobin, &rs, 4),
            ["r0", "r1", "r2", "r0"]
        );
        rs[1].replica.as_ref().unwrap().eject("down".into(), None);
        assert_eq!(picks(LoadBalancer::RoundRobin, &rs, 3), ["r0", "r2", "r0"]);
    }

    #[test]
    fn no_admitted_replica_means_the_primary() {
        let rs = replicas(&[1, 1]);
        for r in &rs {
            r.replica
                .as_ref()
                .unwrap()
                .eject("lagging".into(), Some(60_000));
        }
        for policy in LoadBalancer::ALL {
            assert_eq!(picks(policy, &rs, 2), ["primary", "primary"], "{policy:?}");
        }
        assert_eq!(picks(LoadBalancer::Random, &[], 1), ["primary"]);
    }

    #[test]
    fn weight_never_picks_an_ejected_replica_and_random_stays_among_admitted() {
        let rs = replicas(&[1, 5, 2]);
        rs[2].replica.as_ref().unwrap().eject("down".into(), None);
        for policy in [
            LoadBalancer::Weight,
            LoadBalancer::Random,
            LoadBalancer::LeastActive,
        ] {
            let got = picks(policy, &rs, 50);
            assert!(
                got.iter().all(|n| n == "r0" || n == "r1"),
                "{policy:?}: {got:?}"
            );
        }
    }

    #[test]
    fn the_read_write_splitting_example_is_valid() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("docs/examples/read-write-splitting.toml");
        let config = crate::config::load(&path).unwrap_or_else(|e| panic!("{e}"));
        let pg = &config.databases["shop_pg"].data_sources["ds_0"];
        assert_eq!(pg.replicas.len(), 2);
        assert_eq!(pg.replicas[0].weight, 2);
        assert_eq!(pg.read_write.load_balancer, LoadBalancer::Weight);
        assert_eq!(
            pg.read_write.read_your_writes_timeout,
            Some(std::time::Duration::from_millis(200))
        );
        assert_eq!(
            config.databases["shop"].data_sources["ds_0"].replicas.len(),
            1
        );
    }

    #[test]
    fn ejection_and_admission_report_changes_once() {
        let s = ReplicaState::new(1);
        assert!(s.is_admitted());
        assert!(s.eject("lag 12000 ms > 5000 ms".into(), Some(12_000)));
        assert!(
            !s.eject("still lagging".into(), Some(13_000)),
            "already ejected"
        );
        let snap = s.snapshot();
        assert!(!snap.admitted);
        assert_eq!(snap.lag_ms, Some(13_000));
        assert_eq!(snap.reason.as_deref(), Some("still lagging"));
        assert!(s.admit(10));
        assert!(!s.admit(5));
        assert_eq!(
            s.snapshot(),
            ReplicaSnapshot {
                admitted: true,
                lag_ms: Some(5),
                reason: None
            }
        );
    }
}
