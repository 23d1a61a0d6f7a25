//! PostgreSQL servers for read/write splitting tests: a primary that allows streaming
//! replication (`wal_level = replica`; initdb's pg_hba.conf already trusts local
//! replication connections) and streaming standbys of it, each a [`TempPostgres`] (own
//! temp dir and port, stopped when dropped). `inet_server_port()` tells on which server
//! a statement ran.

use crate::TempPostgres;

/// Starts a primary ready to stream to standbys.
pub async fn start_pg_primary() -> TempPostgres {
    TempPostgres::init(
        "pg_primary",
        "wal_level = replica\nmax_wal_senders = 8\nwal_keep_size = 64MB",
    )
    .await
}

/// Starts a hot standby of `primary`; `conf` is appended to its configuration (e.g.
/// `recovery_min_apply_delay = '2s'`). Feedback keeps its queries from being cancelled.
pub async fn start_pg_standby(primary: &TempPostgres, conf: &str) -> TempPostgres {
    TempPostgres::standby_of(
        primary,
        "pg_standby",
        &format!("hot_standby = on\nhot_standby_feedback = on\nwal_receiver_status_interval = 1s\n{conf}"),
    )
    .await
}
