//! The health monitor of a replica: every `health_check_interval_ms` it checks that the
//! replica answers and how far it lags behind its primary, and ejects it from reads (or
//! admits it again) accordingly.
//!
//! One task per replica, holding only a weak reference: when a reload drops the data
//! source, the task ends at its next tick. It keeps one control connection open between
//! checks and opens a new one after a failure. Control connections use the client
//! libraries (mysql_async, tokio-postgres), not the data path's codecs: nothing here is
//! relayed to a client. For a replica whose URL asks for TLS the checks use the data
//! path's TLS settings for that URL, never clear text: a PostgreSQL standby is checked by
//! tokio-postgres over our rustls client (`control_tls`), a MySQL replica over dbmesh's
//! own backend connection (same TLS and login as the sessions; see `txn/control.rs` for
//! why not mysql_async's TLS).
//!
//! MariaDB/MySQL lag is `Seconds_Behind_Master` of `SHOW SLAVE STATUS`. A replica whose
//! SQL thread is stopped is not replicating and is ejected. One whose SQL thread runs but
//! whose I/O thread is not connected has lost its primary: it keeps what it received and
//! stays admitted, so reads go on while the primary is down (writes fail, naming the data
//! source).
//!
//! PostgreSQL: a standby must be in recovery (`pg_is_in_recovery()`; a promoted one is
//! ejected). Its lag is `now() - pg_last_xact_replay_timestamp()`, except that a standby
//! that has replayed everything it received (`pg_last_wal_receive_lsn() =
//! pg_last_wal_replay_lsn()`) lags 0: the replay timestamp of an idle primary's last
//! transaction grows old without the standby falling behind. Likewise a standby that lost
//! its primary keeps serving what it replayed.

use std::sync::{Arc, Weak};
use std::time::Duration;

use mysql_async::prelude::Queryable;
use tracing::{info, warn};

use super::DataSource;
use crate::config::BackendKind;
use crate::txn::control::connect_mysql_backend;
use crate::wire::mysql::backend::BackendConn;

/// Columns of `SHOW SLAVE STATUS` (MySQL and MariaDB alike; MariaDB appends its own
/// columns after the common ones): `Slave_IO_Running`, `Slave_SQL_Running`,
/// `Seconds_Behind_Master`.
const SLAVE_STATUS_COLUMNS: [usize; 3] = [10, 11, 32];

/// Longest a single check may take before it counts as failed.
const MAX_CHECK_TIME: Duration = Duration::from_secs(5);

/// A standby's state as one query reads it (see the module comment).
const STANDBY_STATUS_SQL: &str = "SELECT pg_is_in_recovery()::text, \
     (pg_last_wal_receive_lsn() IS NOT NULL AND pg_last_wal_receive_lsn() <= pg_last_wal_replay_lsn())::text, \
     (EXTRACT(EPOCH FROM (now() - pg_last_xact_replay_timestamp())) * 1000)::bigint::text";

/// Starts the monitor of `replica` when called inside a Tokio runtime (not in unit tests
/// that build a cluster without one).
pub fn spawn(replica: &Arc<DataSource>, kind: BackendKind) {
    let Ok(handle) = tokio::runtime::Handle::try_current() else {
        return;
    };
    handle.spawn(monitor(Arc::downgrade(replica), kind));
}

/// The control connection kept between checks.
enum Control {
    Mysql(mysql_async::Conn),
    /// dbmesh's own MySQL backend connection, for a URL that asks for TLS.
    MysqlTls(BackendConn),
    Postgres(tokio_postgres::Client),
}

async fn monitor(replica: Weak<DataSource>, kind: BackendKind) {
    let mut conn: Option<Control> = None;
    loop {
        let Some(ds) = replica.upgrade() else {
            match conn.take() {
                Some(Control::Mysql(c)) => {
                    let _ = c.disconnect().await;
                }
                Some(Control::MysqlTls(mut c)) => c.quit().await,
                _ => {}
            }
            return;
        };
        let interval = ds.read_write.health_check_interval;
        let limit = ds.read_write.max_replica_lag;
        let timeout = interval.clamp(Duration::from_secs(1), MAX_CHECK_TIME);
        let check = async {
            match kind {
                BackendKind::Mysql => check_mysql(&ds, &mut conn, timeout)
                    .await
                    .map(|status| verdict(status, limit)),
                BackendKind::Postgres => check_postgres(&ds, &mut conn)
                    .await
                    .map(|status| standby_verdict(status, limit)),
            }
        };
        let outcome = match tokio::time::timeout(timeout, check).await {
            Ok(Ok(verdict)) => verdict,
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
    conn: &mut Option<Control>,
    timeout: Duration,
) -> Result<SlaveStatus, String> {
    if conn.is_none() {
        let opened = if ds.url.tls.is_some() {
            connect_mysql_backend(&ds.url, timeout)
                .await
                .map(Control::MysqlTls)
        } else {
            let opts = mysql_async::OptsBuilder::default()
                .ip_or_hostname(ds.url.host.clone())
                .tcp_port(ds.url.port)
                .user(Some(ds.url.user.clone()))
                .pass(Some(ds.url.password.clone()))
                .prefer_socket(false);
            mysql_async::Conn::new(opts)
                .await
                .map(Control::Mysql)
                .map_err(|e| e.to_string())
        };
        match opened {
            Ok(c) => {
                ds.health.connected();
                *conn = Some(c);
            }
            Err(e) => {
                ds.health.connect_failed(&e);
                return Err(format!("cannot connect: {e}"));
            }
        }
    }
    let row: Vec<Option<String>> = match conn.as_mut().expect("opened above") {
        Control::Mysql(c) => {
            let rows: Vec<mysql_async::Row> = c
                .query("SHOW SLAVE STATUS")
                .await
                .map_err(|e| format!("SHOW SLAVE STATUS failed: {e}"))?;
            let Some(row) = rows.into_iter().next() else {
                return Err("not a replica: SHOW SLAVE STATUS is empty".to_string());
            };
            [
                "Slave_IO_Running",
                "Slave_SQL_Running",
                "Seconds_Behind_Master",
            ]
            .iter()
            .map(|name| {
                row.get_opt::<Option<String>, _>(*name)
                    .and_then(Result::ok)
                    .flatten()
            })
            .collect()
        }
        Control::MysqlTls(c) => {
            let rows = c
                .query_columns("SHOW SLAVE STATUS", &SLAVE_STATUS_COLUMNS)
                .await
                .map_err(|e| format!("connection lost: {e}"))?
                .map_err(|e| format!("SHOW SLAVE STATUS failed: {}", e.message))?;
            let Some(row) = rows.into_iter().next() else {
                return Err("not a replica: SHOW SLAVE STATUS is empty".to_string());
            };
            row
        }
        Control::Postgres(_) => unreachable!("a MySQL replica has a MySQL control connection"),
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

/// What a PostgreSQL standby says of its recovery.
#[derive(Debug, Clone, PartialEq, Eq)]
struct StandbyStatus {
    in_recovery: bool,
    /// It has replayed all the WAL it received.
    caught_up: bool,
    /// `now() - pg_last_xact_replay_timestamp()` in ms; `None` before any replay.
    replay_lag_ms: Option<i64>,
}

/// One check of a PostgreSQL standby: connect if needed, read its recovery state.
async fn check_postgres(
    ds: &DataSource,
    conn: &mut Option<Control>,
) -> Result<StandbyStatus, String> {
    if conn.is_none() {
        match crate::control_tls::connect_postgres(&ds.url, "dbmesh-health").await {
            Ok(client) => {
                ds.health.connected();
                *conn = Some(Control::Postgres(client));
            }
            Err(e) => {
                let e = crate::txn::control::postgres_error(&e);
                ds.health.connect_failed(&e);
                return Err(format!("cannot connect: {e}"));
            }
        }
    }
    let Some(Control::Postgres(client)) = conn.as_ref() else {
        unreachable!("a PostgreSQL replica has a PostgreSQL control connection");
    };
    let messages = client
        .simple_query(STANDBY_STATUS_SQL)
        .await
        .map_err(|e| format!("connection lost or check failed: {e}"))?;
    let row = messages
        .into_iter()
        .find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => Some(r),
            _ => None,
        })
        .ok_or("the status query returned no row")?;
    let lag = match row.get(2) {
        None => None,
        Some(v) => Some(
            v.parse::<i64>()
                .map_err(|_| format!("unexpected replay lag `{v}`"))?,
        ),
    };
    Ok(StandbyStatus {
        in_recovery: row.get(0) == Some("true"),
        caught_up: row.get(1) == Some("true"),
        replay_lag_ms: lag,
    })
}

/// Whether a standby in `status` may take reads under `limit`: its lag in ms, or why not.
fn standby_verdict(status: StandbyStatus, limit: Duration) -> Result<u64, (String, Option<u64>)> {
    if !status.in_recovery {
        return Err((
            "not a standby (pg_is_in_recovery() is false)".to_string(),
            None,
        ));
    }
    if status.caught_up {
        return Ok(0);
    }
    match status.replay_lag_ms {
        None => Err((
            "replication lag unknown (nothing replayed yet)".to_string(),
            None,
        )),
        Some(ms) => within_limit(ms.max(0) as u64, limit),
    }
}

/// `Ok(lag_ms)` within `limit`, else why not.
fn within_limit(lag_ms: u64, limit: Duration) -> Result<u64, (String, Option<u64>)> {
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
        Some(s) => within_limit(s.saturating_mul(1000), limit),
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

    fn standby(caught_up: bool, replay_lag_ms: Option<i64>) -> StandbyStatus {
        StandbyStatus {
            in_recovery: true,
            caught_up,
            replay_lag_ms,
        }
    }

    #[test]
    fn a_caught_up_standby_lags_zero_however_old_its_last_replay() {
        assert_eq!(
            standby_verdict(standby(true, Some(3_600_000)), LIMIT),
            Ok(0)
        );
        assert_eq!(standby_verdict(standby(true, None), LIMIT), Ok(0));
    }

    #[test]
    fn a_standby_behind_is_judged_by_its_replay_delay() {
        assert_eq!(standby_verdict(standby(false, Some(1200)), LIMIT), Ok(1200));
        assert_eq!(
            standby_verdict(standby(false, Some(-3)), LIMIT),
            Ok(0),
            "clock skew"
        );
        let (reason, lag) = standby_verdict(standby(false, Some(7000)), LIMIT).unwrap_err();
        assert_eq!(lag, Some(7000));
        assert!(
            reason.contains("exceeds max_replica_lag_ms 5000"),
            "{reason}"
        );
        let (reason, _) = standby_verdict(standby(false, None), LIMIT).unwrap_err();
        assert!(reason.contains("unknown"), "{reason}");
    }

    #[test]
    fn a_promoted_standby_is_ejected() {
        let promoted = StandbyStatus {
            in_recovery: false,
            caught_up: false,
            replay_lag_ms: None,
        };
        let (reason, _) = standby_verdict(promoted, LIMIT).unwrap_err();
        assert!(reason.contains("pg_is_in_recovery"), "{reason}");
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
