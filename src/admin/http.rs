//! The admin HTTP endpoint on `[server] admin_listen`: `/metrics` (Prometheus text
//! format), `/health` (the process is up) and `/ready` (see `ready.rs`).
//!
//! HTTP/1 with hyper, one task per connection; the endpoint is for scrapers and probes on
//! a private address, so it has no authentication and no TLS.

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;
use tracing::{debug, warn};

use super::metrics::render_pools;
use super::ready::{self, BackendHealth};
use crate::server::Runtime;
use crate::shutdown::Shutdown;

/// What the endpoint needs to answer.
pub struct Admin {
    pub runtime: Arc<Runtime>,
    pub metrics: PrometheusHandle,
    pub health: Arc<dyn BackendHealth>,
    /// The shutdown has started: `/ready` says so, so load balancers stop sending.
    pub stopping: AtomicBool,
}

/// Accepts admin connections until the shutdown starts.
pub async fn serve(listener: TcpListener, admin: Arc<Admin>, mut shutdown: Shutdown) {
    // Histogram samples collect until upkeep folds them into buckets: keep that bounded
    // even when nobody scrapes.
    let mut upkeep = tokio::time::interval(std::time::Duration::from_secs(5));
    loop {
        let (stream, _) = tokio::select! {
            _ = upkeep.tick() => {
                admin.metrics.run_upkeep();
                continue;
            }
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    warn!("admin accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.started() => {
                admin.stopping.store(true, Ordering::Relaxed);
                return;
            }
        };
        let admin = admin.clone();
        // Admin connections hold no `Shutdown`: a scraper's keep-alive connection must not
        // hold up the shutdown; it ends with the process.
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let admin = admin.clone();
                async move {
                    let stopping = admin.stopping.load(Ordering::Relaxed);
                    Ok::<_, Infallible>(answer(&admin, &req, stopping).await)
                }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service);
            if let Err(e) = conn.await {
                debug!("admin connection: {e}");
            }
        });
    }
}

async fn answer(admin: &Admin, req: &Request<Incoming>, stopping: bool) -> Response<Full<Bytes>> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, "only GET\n".into());
    }
    match req.uri().path() {
        "/metrics" => {
            admin.metrics.run_upkeep();
            let mut body = admin.metrics.render();
            render_pools(&admin.runtime.cluster(), &mut body);
            let mut r = text(StatusCode::OK, body);
            r.headers_mut().insert(
                hyper::header::CONTENT_TYPE,
                hyper::header::HeaderValue::from_static("text/plain; version=0.0.4"),
            );
            r
        }
        "/health" => text(StatusCode::OK, "ok\n".into()),
        "/ready" if stopping => text(StatusCode::SERVICE_UNAVAILABLE, "shutting down\n".into()),
        "/ready" => {
            let timeout = admin.runtime.config().server.connect_timeout;
            let down = ready::unreachable(&admin.runtime.cluster(), &admin.health, timeout).await;
            if down.is_empty() {
                text(StatusCode::OK, "ready\n".into())
            } else {
                let body = format!("unreachable data sources: {}\n", down.join(", "));
                text(StatusCode::SERVICE_UNAVAILABLE, body)
            }
        }
        _ => text(
            StatusCode::NOT_FOUND,
            "not found; try /metrics, /health or /ready\n".into(),
        ),
    }
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r
}
