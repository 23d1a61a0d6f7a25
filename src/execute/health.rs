//! What dbmesh knows of a data source's health: the outcome of the last connection attempt
//! to it, and when. There is no active monitor (yet); every session's connect (a new
//! backend connection, or a pooled one that failed its health check and was replaced)
//! records here, so `SHOW DBMESH DATA SOURCES` and the metrics can tell an operator which
//! backend refuses connections.
//!
//! Lock-free on success (two atomics); a failure also stores its message under a mutex,
//! which only failing connects and readers take.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

/// Connect outcomes of one data source.
#[derive(Debug, Default)]
pub struct Health {
    /// Unix time in ms of the last successful connect; 0 = never.
    last_success_ms: AtomicU64,
    /// Unix time in ms of the last failed connect; 0 = never.
    last_failure_ms: AtomicU64,
    connects: AtomicU64,
    failures: AtomicU64,
    last_error: Mutex<Option<String>>,
}

/// A reading of [`Health`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthSnapshot {
    pub state: HealthState,
    /// Unix time in ms of the connect that decided `state`; `None` when unknown.
    pub since_ms: Option<u64>,
    /// The last failure's message, if any connect ever failed.
    pub last_error: Option<String>,
    /// Connection attempts so far, and how many failed.
    pub connects: u64,
    pub failures: u64,
}

/// Whether the last connect worked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealthState {
    /// No connection attempted yet.
    Unknown,
    /// The last connect succeeded.
    Up,
    /// The last connect failed.
    Down,
}

impl HealthState {
    pub fn name(self) -> &'static str {
        match self {
            HealthState::Unknown => "unknown",
            HealthState::Up => "up",
            HealthState::Down => "down",
        }
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
        .max(1)
}

impl Health {
    /// A backend connection was opened.
    pub fn connected(&self) {
        self.connects.fetch_add(1, Ordering::Relaxed);
        self.last_success_ms.store(now_ms(), Ordering::Relaxed);
    }

    /// Opening a backend connection failed with `error`.
    pub fn connect_failed(&self, error: &str) {
        self.connects.fetch_add(1, Ordering::Relaxed);
        self.failures.fetch_add(1, Ordering::Relaxed);
        *self.last_error.lock().unwrap() = Some(error.to_string());
        self.last_failure_ms.store(now_ms(), Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> HealthSnapshot {
        let ok = self.last_success_ms.load(Ordering::Relaxed);
        let failed = self.last_failure_ms.load(Ordering::Relaxed);
        let (state, since_ms) = match (ok, failed) {
            (0, 0) => (HealthState::Unknown, None),
            (ok, failed) if ok >= failed => (HealthState::Up, Some(ok)),
            (_, failed) => (HealthState::Down, Some(failed)),
        };
        HealthSnapshot {
            state,
            since_ms,
            last_error: self.last_error.lock().unwrap().clone(),
            connects: self.connects.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_latest_connect_decides_the_state() {
        let h = Health::default();
        assert_eq!(h.snapshot().state, HealthState::Unknown);
        h.connect_failed("connection refused");
        let s = h.snapshot();
        assert_eq!(s.state, HealthState::Down);
        assert_eq!(s.last_error.as_deref(), Some("connection refused"));
        assert_eq!((s.connects, s.failures), (1, 1));
        std::thread::sleep(std::time::Duration::from_millis(2));
        h.connected();
        let s = h.snapshot();
        assert_eq!(s.state, HealthState::Up);
        assert_eq!((s.connects, s.failures), (2, 1));
    }
}
