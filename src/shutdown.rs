//! Graceful shutdown: one explicit signal from the server to every client connection, and a
//! way for the server to wait until they have all gone.
//!
//! On SIGTERM / SIGINT the server stops accepting and calls [`ShutdownSignal::trigger`].
//! Every connection holds a [`Shutdown`]: a session idle outside a transaction closes at
//! once, one inside a transaction keeps serving until the transaction ends and then closes.
//! The server waits for the last `Shutdown` to be dropped ([`ShutdownSignal::drained`]) up
//! to `server.shutdown_timeout_ms`; what is still open after that is closed with the
//! runtime (the backends roll those transactions back when their connections drop).

use std::time::Duration;

use tokio::sync::{mpsc, watch};

/// A connection's view of the shutdown: has it started, and wait until it does. Dropping it
/// tells the server this connection is done.
#[derive(Clone, Debug)]
pub struct Shutdown {
    started: watch::Receiver<bool>,
    /// Never sent on: the server counts live connections by the senders still alive.
    _alive: mpsc::Sender<()>,
}

impl Shutdown {
    /// Whether the proxy is shutting down.
    pub fn is_shutdown(&self) -> bool {
        *self.started.borrow()
    }

    /// Resolves once the shutdown has started (immediately if it already has). Safe to use
    /// in `select!`: it keeps no state between polls.
    pub async fn started(&mut self) {
        // An error means the signal itself is gone, which only happens as the server ends.
        let _ = self.started.wait_for(|s| *s).await;
    }
}

/// The server's side: hands out [`Shutdown`]s, starts the shutdown, waits for connections.
pub struct ShutdownSignal {
    start: watch::Sender<bool>,
    alive: Option<mpsc::Sender<()>>,
    gone: mpsc::Receiver<()>,
}

impl Default for ShutdownSignal {
    fn default() -> Self {
        Self::new()
    }
}

impl ShutdownSignal {
    pub fn new() -> ShutdownSignal {
        let (start, _) = watch::channel(false);
        let (alive, gone) = mpsc::channel(1);
        ShutdownSignal {
            start,
            alive: Some(alive),
            gone,
        }
    }

    /// A handle for one connection (or listener task). After [`Self::drained`] started
    /// waiting, new handles are not counted.
    pub fn subscribe(&self) -> Shutdown {
        let alive = self.alive.clone().unwrap_or_else(|| mpsc::channel(1).0);
        Shutdown {
            started: self.start.subscribe(),
            _alive: alive,
        }
    }

    /// Starts the shutdown: every [`Shutdown`] sees it.
    pub fn trigger(&self) {
        self.start.send_replace(true);
    }

    /// Whether [`Self::trigger`] was called.
    pub fn is_triggered(&self) -> bool {
        *self.start.borrow()
    }

    /// Waits until every handed-out [`Shutdown`] has been dropped, at most `deadline`.
    /// Returns `false` when some were still alive at the deadline.
    pub async fn drained(&mut self, deadline: Duration) -> bool {
        self.alive = None;
        tokio::time::timeout(deadline, self.gone.recv())
            .await
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn drained_waits_for_every_connection_handle() {
        let mut signal = ShutdownSignal::new();
        let mut conn = signal.subscribe();
        assert!(!conn.is_shutdown());
        signal.trigger();
        conn.started().await;
        assert!(conn.is_shutdown());
        let task = tokio::spawn(async move {
            // A connection finishing its transaction, then closing.
            tokio::task::yield_now().await;
            drop(conn);
        });
        assert!(signal.drained(Duration::from_secs(30)).await);
        task.await.unwrap();
    }

    #[tokio::test]
    async fn drained_gives_up_at_the_deadline() {
        let mut signal = ShutdownSignal::new();
        let _stuck = signal.subscribe();
        signal.trigger();
        assert!(!signal.drained(Duration::from_millis(20)).await);
    }

    #[tokio::test]
    async fn drained_returns_at_once_without_connections() {
        let mut signal = ShutdownSignal::new();
        assert!(!signal.is_triggered());
        signal.trigger();
        assert!(signal.is_triggered());
        assert!(signal.drained(Duration::from_secs(30)).await);
    }
}
