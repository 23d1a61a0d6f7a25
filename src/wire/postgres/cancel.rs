//! Query cancellation. Clients get BackendKeyData of dbmesh's own; a CancelRequest carrying
//! it is matched here to the backend connections currently serving that client (one for a
//! plain logical database, one per data source in use for a sharded one), and a cancel
//! request with each backend's own key is sent to its server.

use std::collections::HashMap;
use std::sync::Mutex;

use bytes::BytesMut;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use super::backend::PgBackendConn;

/// Where a client's running query can be cancelled.
#[derive(Debug, Clone)]
pub struct CancelTarget {
    pub secret: i32,
    pub host: String,
    pub port: u16,
    pub backend_pid: i32,
    pub backend_secret: i32,
}

impl CancelTarget {
    /// The target for `conn`, serving the client whose key has `secret`.
    pub fn of(secret: i32, conn: &PgBackendConn) -> CancelTarget {
        CancelTarget {
            secret,
            host: conn.host.clone(),
            port: conn.port,
            backend_pid: conn.process_id,
            backend_secret: conn.secret_key,
        }
    }
}

/// Client key → current backends, for every connected PostgreSQL client.
#[derive(Default)]
pub struct CancelRegistry(Mutex<HashMap<i32, Vec<CancelTarget>>>);

impl CancelRegistry {
    /// The client's one backend connection (replacing any earlier one).
    pub fn register(&self, pid: i32, target: CancelTarget) {
        self.0.lock().unwrap().insert(pid, vec![target]);
    }

    /// All the backend connections the client holds (replacing the earlier set).
    pub fn register_all(&self, pid: i32, targets: Vec<CancelTarget>) {
        self.0.lock().unwrap().insert(pid, targets);
    }

    pub fn unregister(&self, pid: i32) {
        self.0.lock().unwrap().remove(&pid);
    }

    /// Forwards a client's cancel request to each of its backends when its key matches;
    /// unknown keys are ignored, as PostgreSQL does. A backend that is idle ignores it.
    pub async fn cancel(&self, pid: i32, secret: i32) {
        let targets = self
            .0
            .lock()
            .unwrap()
            .get(&pid)
            .cloned()
            .unwrap_or_default();
        let targets: Vec<CancelTarget> =
            targets.into_iter().filter(|t| t.secret == secret).collect();
        if targets.is_empty() {
            tracing::debug!(pid, "cancel request with an unknown key ignored");
            return;
        }
        for t in targets {
            send_cancel(t).await;
        }
    }
}

/// Sends one backend's cancel request to its server.
async fn send_cancel(t: CancelTarget) {
    let mut buf = BytesMut::new();
    postgres_protocol::message::frontend::cancel_request(t.backend_pid, t.backend_secret, &mut buf);
    match TcpStream::connect((t.host.as_str(), t.port)).await {
        Ok(mut s) => {
            let _ = s.write_all(&buf).await;
            let _ = s.shutdown().await;
        }
        Err(e) => tracing::warn!(
            "could not reach {}:{} to cancel a query: {e}",
            t.host,
            t.port
        ),
    }
}
