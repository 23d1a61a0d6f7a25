//! The health monitor of a replica: every `health_check_interval_ms` it checks that the
//! replica answers and how far it lags behind its primary, and ejects it from reads (or
//! admits it again) accordingly.
//!
//! One task per replica, holding only a weak reference: when a reload drops the data
//! source, the task ends at its next tick. It keeps one connection open between checks
//! (opened with dbmesh's own backend connection code, so it sees the same TLS and login
//! the sessions will) and opens a new one after a failure.
//!
//! MariaDB/MySQL lag is `Seconds_Behind_Master` of `SHOW SLAVE STATUS`. A replica whose
//! SQL thread is stopped is not replicating and is ejected. One whose SQL thread runs but
//! whose I/O thread is not connected has lost its primary: it keeps what it received and
//! stays admitted, so reads go on while the primary is down (writes fail, naming the data
//! source). PostgreSQL replicas are not monitored yet (reads on PostgreSQL are not split
//! yet, see docs/configuration.md).

use std::sync::{Arc, Weak};
use std::time::Duration;

use tracing::{info, warn};

use super::DataSource;
use crate::config::BackendKind;
use crate::wire::mysql::backend::{
    BackendConn, ConnectOptions, Profile, MARIADB_PROFILE_CAPABILITIES, PROFILE_CAPABILITIES,
};

/// Columns of `SHOW SLAVE STATUS` (MySQL and MariaDB alike; MariaDB appends its own
/// columns after the common ones): `Slave_IO_Running`, `Slave_SQL_Running`,
/// `Seconds_Behind_Master`.
const SLAVE_STATUS_COLUMNS: [usize; 3] = [10, 11, 32];

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
                Ok(Ok(status)) => verdict(status, limit),
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

/// What `SHOW SLAVE STATUS` says of a replica's replication.
#[derive(Debug, Clone, PartialEq, Eq)]
struct SlaveStatus {
    io_running: bool,
    sql_running: bool,
    seconds_behind: Option<u64>,
}

/// One check: connect if needed, read the replica's slave status.
async fn check_mysql(
    ds: &DataSource,
    conn: &mut Option<BackendConn>,
    timeout: Duration,
) -> Result<SlaveStatus, String> {
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
        .query_columns("SHOW SLAVE STATUS", &SLAVE_STATUS_COLUMNS)
        .await
        .map_err(|e| format!("connection lost: {e}"))?
        .map_err(|e| format!("SHOW SLAVE STATUS failed: {}", e.message))?;
    let Some(row) = rows.first() else {
        return Err("not a replica: SHOW SLAVE STATUS is empty".to_string());
    };
    let yes = |i: usize| row.get(i).cloned().flatten().as_deref() == Some("Yes");
    let seconds_behind = match row.get(2).cloned().flatten() {
        None => None,
        Some(s) => Some(
            s.parse::<u64>()
                .map_err(|_| format!("unexpected Seconds_Behind_Master `{s}`"))?,
        ),
    };
    Ok(SlaveStatus {
        io_running: yes(0),
        sql_running: yes(1),
        seconds_behind,
    })
}

/// Whether a replica in `status` may take reads under `limit`: its lag in ms (0 when
/// unknown because it lost its primary), or why not (with the lag when known).
fn verdict(status: SlaveStatus, limit: Duration) -> Result<u64, (String, Option<u64>)> {
    if !status.sql_running {
        return Err((
            "not replicating (Slave_SQL_Running is not Yes)".to_string(),
            None,
        ));
    }
    match status.seconds_behind {
        // The SQL thread runs but the I/O thread is not connected: the primary is
        // unreachable (or replication was cut); keep serving what was received.
        None if !status.io_running => Ok(0),
        None => Err(("replication lag unknown".to_string(), None)),
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

    fn running(seconds_behind: Option<u64>) -> SlaveStatus {
        SlaveStatus {
            io_running: true,
            sql_running: true,
            seconds_behind,
        }
    }

    const LIMIT: Duration = Duration::from_secs(5);

    #[test]
    fn a_replica_within_the_lag_limit_is_admitted() {
        assert_eq!(verdict(running(Some(0)), LIMIT), Ok(0));
        assert_eq!(verdict(running(Some(5)), LIMIT), Ok(5000));
    }

    #[test]
    fn a_lagging_or_stopped_replica_is_ejected() {
        let (reason, lag) = verdict(running(Some(6)), LIMIT).unwrap_err();
        assert_eq!(lag, Some(6000));
        assert!(
            reason.contains("exceeds max_replica_lag_ms 5000"),
            "{reason}"
        );
        let stopped = SlaveStatus {
            io_running: false,
            sql_running: false,
            seconds_behind: None,
        };
        let (reason, lag) = verdict(stopped, LIMIT).unwrap_err();
        assert_eq!(lag, None);
        assert!(reason.contains("not replicating"), "{reason}");
    }

    #[test]
    fn a_replica_that_lost_its_primary_keeps_taking_reads() {
        let cut_off = SlaveStatus {
            io_running: false,
            sql_running: true,
            seconds_behind: None,
        };
        assert_eq!(verdict(cut_off, LIMIT), Ok(0));
    }
}
