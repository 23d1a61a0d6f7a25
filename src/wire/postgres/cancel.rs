//! Query cancellation. Clients get BackendKeyData of dbmesh's own; a CancelRequest carrying
//! it is matched here to the backend connection currently serving that client, and a cancel
//! request with the backend's own key is sent to that server.

use std::collections::HashMap;
use std::sync::Mutex;

use bytes::BytesMut;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// Where a client's running query can be cancelled.
#[derive(Debug, Clone)]
pub struct CancelTarget {
    pub secret: i32,
    pub host: String,
    pub port: u16,
    pub backend_pid: i32,
    pub backend_secret: i32,
}

/// Client key → current backend, for every connected PostgreSQL client.
#[derive(Default)]
pub struct CancelRegistry(Mutex<HashMap<i32, CancelTarget>>);

impl CancelRegistry {
    pub fn register(&self, pid: i32, target: CancelTarget) {
        self.0.lock().unwrap().insert(pid, target);
    }

    pub fn unregister(&self, pid: i32) {
        self.0.lock().unwrap().remove(&pid);
    }

    /// Forwards a client's cancel request when its key matches; unknown keys are ignored,
    /// as PostgreSQL does.
    pub async fn cancel(&self, pid: i32, secret: i32) {
        let target = self.0.lock().unwrap().get(&pid).cloned();
        let Some(t) = target.filter(|t| t.secret == secret) else {
            tracing::debug!(pid, "cancel request with an unknown key ignored");
            return;
        };
        let mut buf = BytesMut::new();
        postgres_protocol::message::frontend::cancel_request(
            t.backend_pid,
            t.backend_secret,
            &mut buf,
        );
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
}
