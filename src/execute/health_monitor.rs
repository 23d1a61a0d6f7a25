//! The health monitor of a replica: every `health_check_interval_ms` it checks that the
//! replica answers and how far it lags behind its primary, and ejects it from reads (or
//! admits it again) accordingly.
//!
//! One task per replica, holding only a weak reference: when a reload drops the data
//! source, the task ends at its next tick. It keeps one connection open between checks
//! (opened with dbmesh's own backend connection code, so it sees the same TLS and login
//! the sessions will) and opens a new one after a failure.
//!
//! MariaDB/MySQL lag is `Seconds_Behind_Master` of `SHOW SLAVE STATUS` (NULL when the
//! replication threads are stopped: not replicating, ejected). PostgreSQL replicas are
//! not monitored yet (reads on PostgreSQL are not split yet, see docs/configuration.md).

use std::sync::{Arc, Weak};
use std::time::Duration;

use tracing::{info, warn};

use super::DataSource;
use crate::config::BackendKind;
use crate::wire::mysql::backend::{
    BackendConn, ConnectOptions, Profile, MARIADB_PROFILE_CAPABILITIES, PROFILE_CAPABILITIES,
};

/// Column of `Seconds_Behind_Master` in `SHOW SLAVE STATUS` (MySQL and MariaDB alike;
/// MariaDB appends its own columns after the common ones).
const SECONDS_BEHIND_MASTER: usize = 32;

/// Longest a single check may take before it counts as failed.
const MAX_CHECK_TIME: Duration = Duration::from_secs(5);

/// Starts the monitor of `replica` when called inside a Tokio runtime (not in unit tests
/// that build a cluster without one).
pub fn spawn(replica: &Arc<DataSource>, kind: BackendKind) {
    if kind != BackendKind::Mysql {
        return;
    }
    let Ok(handle) = tokio::runtime::Handle::try_current() else {
        return;
    };
    handle.spawn(monitor_mysql(Arc::downgrade(replica)));
}

async fn monitor_mysql(replica: Weak<DataSource>) {
    let mut conn: Option<BackendConn> = None;
    loop {
        let Some(ds) = replica.upgrade() else {
            if let Some(mut c) = conn.take() {
                c.quit().await;
            }
            return;
        };
        let interval = ds.read_write.health_check_interval;
        let limit = ds.read_write.max_replica_lag;
        let timeout = interval.clamp(Duration::from_secs(1), MAX_CHECK_TIME);
        let outcome =
            match tokio::time::timeout(timeout, check_mysql(&ds, &mut conn, timeout)).await {
                Ok(Ok(lag)) => verdict(lag, limit),
                Ok(Err(e)) => {
                    conn = None;
                    Err((e, None))
                }
                Err(_) => {
                    conn = None;
                    Err((format!("health check timed out after {timeout:?}"), None))
                }
            };
        if let Some(state) = &ds.replica {
            match outcome {
                Ok(lag_ms) => {
                    if state.admit(lag_ms) {
                        info!(data_source = %ds.name, lag_ms, "replica admitted: healthy again");
                    }
                }
                Err((reason, lag_ms)) => {
                    if state.eject(reason.clone(), lag_ms) {
                        warn!(data_source = %ds.name, "replica ejected: {reason}");
                    }
                }
            }
        }
        drop(ds);
        tokio::time::sleep(interval).await;
    }
}

/// One check: the replica's `Seconds_Behind_Master` (`None` = NULL, not replicating;
/// `Some(None)`-like cases are folded into errors).
async fn check_mysql(
    ds: &DataSource,
    conn: &mut Option<BackendConn>,
    timeout: Duration,
) -> Result<Option<u64>, String> {
    if conn.is_none() {
        let opened = BackendConn::connect(ConnectOptions {
            url: &ds.url,
            profile: Profile {
                capabilities: PROFILE_CAPABILITIES.bits(),
                mariadb_capabilities: MARIADB_PROFILE_CAPABILITIES.bits(),
                collation: 45,
            },
            connect_timeout: timeout,
            max_packet: 16 * 1024 * 1024,
        })
        .await;
        match opened {
            Ok(c) => {
                ds.health.connected();
                *conn = Some(c);
            }
            Err(e) => {
                ds.health.connect_failed(&e.to_string());
                return Err(format!("cannot connect: {e}"));
            }
        }
    }
    let c = conn.as_mut().expect("opened above");
    let rows = c
        .query_column("SHOW SLAVE STATUS", SECONDS_BEHIND_MASTER)
        .await
        .map_err(|e| format!("connection lost: {e}"))?
        .map_err(|e| format!("SHOW SLAVE STATUS failed: {}", e.message))?;
    match rows.first() {
        None => Err("not a replica: SHOW SLAVE STATUS is empty".to_string()),
        Some(None) => Ok(None),
        Some(Some(seconds)) => seconds
            .parse::<u64>()
            .map(Some)
            .map_err(|_| format!("unexpected Seconds_Behind_Master `{seconds}`")),
    }
}

/// Whether a replica whose lag reads `lag_seconds` (`None`: replication stopped) may take
/// reads under `limit`: its lag in ms, or why not (with the lag when known).
fn verdict(lag_seconds: Option<u64>, limit: Duration) -> Result<u64, (String, Option<u64>)> {
    match lag_seconds {
        None => Err((
            "not replicating (Seconds_Behind_Master is NULL)".to_string(),
            None,
        )),
        Some(s) => {
            let lag_ms = s.saturating_mul(1000);
            if lag_ms > limit.as_millis() as u64 {
                Err((
                    format!(
                        "lag {lag_ms} ms exceeds max_replica_lag_ms {}",
                        limit.as_millis()
                    ),
                    Some(lag_ms),
                ))
            } else {
                Ok(lag_ms)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replica_within_the_lag_limit_is_admitted() {
        assert_eq!(verdict(Some(0), Duration::from_secs(5)), Ok(0));
        assert_eq!(verdict(Some(5), Duration::from_secs(5)), Ok(5000));
    }

    #[test]
    fn a_lagging_or_stopped_replica_is_ejected() {
        let (reason, lag) = verdict(Some(6), Duration::from_secs(5)).unwrap_err();
        assert_eq!(lag, Some(6000));
        assert!(
            reason.contains("exceeds max_replica_lag_ms 5000"),
            "{reason}"
        );
        let (reason, lag) = verdict(None, Duration::from_secs(5)).unwrap_err();
        assert_eq!(lag, None);
        assert!(reason.contains("not replicating"), "{reason}");
    }
}
