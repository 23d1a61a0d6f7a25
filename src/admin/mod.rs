//! Administration: the admin SQL statements dbmesh answers itself on its MySQL and
//! PostgreSQL listeners (`SHOW DBMESH ...`, `RELOAD DBMESH CONFIG`), and reloading the
//! configuration. See docs/admin.md.
//!
//! Protocol-neutral: [`statement`] parses the grammar, [`answer`] checks the privilege and
//! produces an [`answer::AdminResult`] (column names and rows of text or NULL, or a plain
//! OK), [`show`] builds the SHOW results, [`reload`] validates and installs a new
//! configuration. The wire layers only encode the result.
//!
//! Operations: the metrics dbmesh records (`metrics.rs`), and the admin HTTP endpoint that
//! serves them with health and readiness (`http.rs`, `ready.rs`).

pub mod answer;
pub mod http;
pub mod metrics;
pub mod ready;
pub mod reload;
pub mod show;
pub mod statement;

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;
use tracing::info;

use crate::server::Runtime;
use crate::shutdown::Shutdown;

/// The process-wide Prometheus recorder, installed the first time an admin endpoint
/// starts (the `metrics` facade has one global recorder; several servers in one process,
/// as in tests, share it).
fn prometheus() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Suffix("_duration_seconds".into()),
                    &metrics::DURATION_BUCKETS,
                )
                .expect("buckets are not empty")
                .install_recorder()
                .inspect(|_| metrics::enable())
                .expect("no other metrics recorder is installed")
        })
        .clone()
}

/// Binds `addr` and serves `/metrics`, `/health` and `/ready` until the shutdown starts.
/// Returns the bound address (port 0 binds an ephemeral one) and the accept task.
pub async fn start(
    addr: SocketAddr,
    runtime: Arc<Runtime>,
    shutdown: Shutdown,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let admin = Arc::new(http::Admin {
        runtime,
        metrics: prometheus(),
        health: Arc::new(ready::ConnectProbe::default()),
        stopping: Default::default(),
    });
    info!(%bound, "admin endpoint ready (/metrics, /health, /ready)");
    Ok((bound, tokio::spawn(http::serve(listener, admin, shutdown))))
}
