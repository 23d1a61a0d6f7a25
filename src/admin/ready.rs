//! `/ready`: is this dbmesh worth sending traffic to? The configuration is loaded (it is,
//! once the server runs) and every data source has a reachable backend.
//!
//! Reachability comes from a [`BackendHealth`]. Until a health monitor exists (it will
//! watch replicas too), [`ConnectProbe`] answers: a TCP connect to the data source's
//! server, remembered for a few seconds so that a load balancer polling `/ready` never
//! turns into a connection storm on the databases.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::execute::{Cluster, DataSource};

/// A data source's reachability, as some source of health knows it.
pub trait BackendHealth: Send + Sync {
    /// Whether a backend of `data_source` is reachable; may wait up to `timeout`.
    fn reachable<'a>(
        &'a self,
        data_source: &'a DataSource,
        timeout: Duration,
    ) -> Pin<Box<dyn Future<Output = bool> + Send + 'a>>;
}

/// How long a probe's answer is reused.
const PROBE_TTL: Duration = Duration::from_secs(5);

/// Reachability by TCP connect, cached per data source for [`PROBE_TTL`].
#[derive(Default)]
pub struct ConnectProbe {
    last: Mutex<HashMap<(String, String), (Instant, bool)>>,
}

impl BackendHealth for ConnectProbe {
    fn reachable<'a>(
        &'a self,
        ds: &'a DataSource,
        timeout: Duration,
    ) -> Pin<Box<dyn Future<Output = bool> + Send + 'a>> {
        Box::pin(async move {
            let key = (ds.database.clone(), ds.name.clone());
            if let Some((at, up)) = self.last.lock().unwrap().get(&key) {
                if at.elapsed() < PROBE_TTL {
                    return *up;
                }
            }
            let connect = tokio::net::TcpStream::connect((ds.url.host.as_str(), ds.url.port));
            let up = matches!(tokio::time::timeout(timeout, connect).await, Ok(Ok(_)));
            self.last.lock().unwrap().insert(key, (Instant::now(), up));
            up
        })
    }
}

/// The answer to `/ready`: data sources no backend of which is reachable, as
/// `database.data_source`; empty means ready.
pub async fn unreachable(
    cluster: &Cluster,
    health: &Arc<dyn BackendHealth>,
    timeout: Duration,
) -> Vec<String> {
    let mut checks = Vec::new();
    for db in cluster.databases.values() {
        for ds in db.data_sources.values() {
            let health = health.clone();
            let ds = ds.clone();
            // Every data source at once: /ready answers within one timeout.
            checks.push(tokio::spawn(async move {
                let up = health.reachable(&ds, timeout).await;
                (format!("{}.{}", ds.database, ds.name), up)
            }));
        }
    }
    let mut down = Vec::new();
    for check in checks {
        match check.await {
            Ok((_, true)) => {}
            Ok((name, false)) => down.push(name),
            Err(_) => down.push("(probe failed)".into()),
        }
    }
    down.sort();
    down
}
