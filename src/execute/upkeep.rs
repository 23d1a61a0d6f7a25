//! The upkeep task of a data source's pools: closes idle connections past `idle_timeout_ms`
//! and connections past `max_lifetime_ms`, and keeps `min_connections` open (warm) so the
//! first statements after a quiet spell do not pay for a connect. One task per data source;
//! it ends when the data source is dropped (a reload replaced it).
//!
//! Warm connections are opened with the profile of the connection given back last (a pool
//! serves clients of one driver in the common case): for MySQL the profile says how to
//! connect; for PostgreSQL it is a hash of the clients' start-up parameters, which the task
//! learns from an idle connection of that profile (so the first warm one is opened once a
//! connection of the profile was given back and is idle).

use std::sync::{Arc, Weak};
use std::time::Duration;

use tracing::debug;

use super::DataSource;
use crate::config::{BackendKind, ServerConfig};
use crate::wire::mysql::backend::{BackendConn, ConnectOptions};
use crate::wire::postgres::backend::{PgBackendConn, StartupParams};
use crate::wire::postgres::checkout::MAX_BACKEND_MESSAGE;

/// How often the task looks at its pools, at most (less often for long timeouts).
const MAX_TICK: Duration = Duration::from_secs(1);

/// Starts the upkeep task of `ds` (nothing outside a Tokio runtime, as in unit tests).
pub fn spawn(ds: &Arc<DataSource>, kind: BackendKind, server: &ServerConfig) {
    let Ok(handle) = tokio::runtime::Handle::try_current() else {
        return;
    };
    let options = Options {
        kind,
        connect_timeout: server.connect_timeout,
        max_packet: server.max_packet_size,
    };
    handle.spawn(run(Arc::downgrade(ds), options));
}

struct Options {
    kind: BackendKind,
    connect_timeout: Duration,
    max_packet: u32,
}

async fn run(ds: Weak<DataSource>, options: Options) {
    let tick = {
        let Some(ds) = ds.upgrade() else { return };
        let s = ds.mysql.settings();
        (s.idle_timeout.min(s.max_lifetime) / 4).clamp(Duration::from_millis(50), MAX_TICK)
    };
    // The start-up parameters of the PostgreSQL profile warm connections were opened for.
    let mut pg_params = None;
    loop {
        tokio::time::sleep(tick).await;
        let Some(ds) = ds.upgrade() else { return };
        drop(ds.postgres.reap());
        for mut conn in ds.mysql.reap() {
            conn.quit().await;
        }
        match options.kind {
            BackendKind::Mysql => top_up_mysql(&ds, &options).await,
            BackendKind::Postgres => top_up_postgres(&ds, &options, &mut pg_params).await,
        }
    }
}

/// Opens PostgreSQL connections until the pool holds `min_connections`, with the start-up
/// parameters of the profile given back last (`known` caches them).
async fn top_up_postgres(
    ds: &DataSource,
    options: &Options,
    known: &mut Option<(u64, StartupParams)>,
) {
    loop {
        let (missing, profile) = ds.postgres.deficit();
        let (true, Some(profile)) = (missing > 0, profile) else {
            return;
        };
        if known.as_ref().is_none_or(|(p, _)| *p != profile) {
            let Some(params) = ds.postgres.with_idle(profile, |c| c.params.clone()) else {
                return;
            };
            *known = Some((profile, params));
        }
        let params = &known.as_ref().expect("just set").1;
        let conn = PgBackendConn::connect(
            &ds.url,
            params,
            options.connect_timeout,
            MAX_BACKEND_MESSAGE,
        )
        .await;
        match conn {
            Ok(conn) => {
                ds.health.connected();
                if !ds.postgres.add_warm(conn, profile) {
                    return;
                }
            }
            Err(e) => {
                debug!(data_source = %ds.name, "opening a warm connection failed: {e}");
                ds.health.connect_failed(&e.to_string());
                return;
            }
        }
    }
}

/// Opens MySQL connections until the pool holds `min_connections` (once a profile is known).
async fn top_up_mysql(ds: &DataSource, options: &Options) {
    loop {
        let (missing, profile) = ds.mysql.deficit();
        let (true, Some(profile)) = (missing > 0, profile) else {
            return;
        };
        let conn = BackendConn::connect(ConnectOptions {
            url: &ds.url,
            profile,
            connect_timeout: options.connect_timeout,
            max_packet: options.max_packet,
        })
        .await;
        match conn {
            Ok(conn) => {
                ds.health.connected();
                if !ds.mysql.add_warm(conn, profile) {
                    return;
                }
            }
            Err(e) => {
                // The next tick tries again; statements report their own connect errors.
                debug!(data_source = %ds.name, "opening a warm connection failed: {e}");
                ds.health.connect_failed(&e.to_string());
                return;
            }
        }
    }
}
