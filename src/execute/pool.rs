//! A bounded pool of backend connections for one data source.
//!
//! `max_connections` is a hard cap (a semaphore); idle connections are kept with the profile
//! they were opened with, and only handed to a session with the same profile. A checkout that
//! cannot get a slot within the checkout timeout fails instead of hanging.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How long an idle connection may sit before it is closed rather than reused.
const IDLE_TIMEOUT: Duration = Duration::from_secs(300);

struct Idle<C, P> {
    conn: C,
    profile: P,
    since: Instant,
}

/// The pool itself; share it as `Arc<Pool<..>>`.
pub struct Pool<C, P> {
    max: u32,
    slots: Arc<Semaphore>,
    idle: Mutex<Vec<Idle<C, P>>>,
    /// Checkouts waiting for a slot right now (for `SHOW DBMESH DATA SOURCES`, metrics).
    waiting: AtomicUsize,
}

/// A reading of a pool's counters; the numbers are each exact, not taken atomically
/// together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStats {
    pub max: u32,
    pub in_use: usize,
    pub idle: usize,
    pub waiting: usize,
}

/// A checked-out slot: either an idle connection to reuse, or permission to open a new one.
pub struct Lease<C> {
    pub conn: Option<C>,
    permit: OwnedSemaphorePermit,
}

/// The checkout timed out.
#[derive(Debug, Clone, Copy)]
pub struct CheckoutTimeout {
    pub waited: Duration,
    pub max: u32,
}

impl CheckoutTimeout {
    /// The error a client gets, naming the data source whose pool was exhausted.
    pub fn into_error(self, data_source: &str) -> crate::error::Error {
        crate::error::Error::PoolTimeout {
            data_source: data_source.to_string(),
            waited_ms: self.waited.as_millis() as u64,
            max: self.max,
        }
    }
}

impl<C, P: PartialEq + Copy> Pool<C, P> {
    pub fn new(max: u32) -> Self {
        Pool {
            max,
            slots: Arc::new(Semaphore::new(max as usize)),
            idle: Mutex::new(Vec::new()),
            waiting: AtomicUsize::new(0),
        }
    }

    /// Checkouts waiting for a free slot.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }

    /// The pool's counters at once.
    pub fn stats(&self) -> PoolStats {
        PoolStats {
            max: self.max,
            in_use: self.in_use(),
            idle: self.idle_count(),
            waiting: self.waiting(),
        }
    }

    pub fn max(&self) -> u32 {
        self.max
    }

    /// Connections currently checked out.
    pub fn in_use(&self) -> usize {
        self.max as usize - self.slots.available_permits()
    }

    pub fn idle_count(&self) -> usize {
        self.idle.lock().unwrap().len()
    }

    /// Waits up to `timeout` for a slot; reuses an idle connection of the same profile.
    pub async fn checkout(
        &self,
        profile: P,
        timeout: Duration,
    ) -> Result<Lease<C>, CheckoutTimeout> {
        let start = Instant::now();
        let permit = match self.slots.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                let _waiting = WaitingGuard::new(&self.waiting);
                tokio::time::timeout(timeout, self.slots.clone().acquire_owned())
                    .await
                    .map_err(|_| CheckoutTimeout {
                        waited: start.elapsed(),
                        max: self.max,
                    })?
                    .expect("pool semaphore is never closed")
            }
        };
        let conn = {
            let mut idle = self.idle.lock().unwrap();
            idle.retain(|i| i.since.elapsed() < IDLE_TIMEOUT);
            idle.iter()
                .rposition(|i| i.profile == profile)
                .map(|pos| idle.swap_remove(pos).conn)
        };
        Ok(Lease { conn, permit })
    }

    /// Returns a clean connection for reuse, freeing its slot.
    pub fn give_back(&self, lease: Lease<C>, conn: C, profile: P) {
        let mut idle = self.idle.lock().unwrap();
        // Make room: evict the oldest idle connection of another profile if the pool is full.
        if idle.len() >= self.max as usize {
            idle.remove(0);
        }
        idle.push(Idle {
            conn,
            profile,
            since: Instant::now(),
        });
        drop(lease.permit);
    }
}

/// Counts a checkout as waiting for as long as it waits (also when it is cancelled).
struct WaitingGuard<'a>(&'a AtomicUsize);

impl<'a> WaitingGuard<'a> {
    fn new(counter: &'a AtomicUsize) -> Self {
        counter.fetch_add(1, Ordering::Relaxed);
        WaitingGuard(counter)
    }
}

impl Drop for WaitingGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reuses_idle_connection_of_the_same_profile_only() {
        let pool: Pool<&'static str, u8> = Pool::new(2);
        let lease = pool.checkout(1, Duration::from_secs(1)).await.unwrap();
        assert!(lease.conn.is_none());
        pool.give_back(lease, "conn-a", 1);
        let other = pool.checkout(2, Duration::from_secs(1)).await.unwrap();
        assert!(other.conn.is_none());
        let same = pool.checkout(1, Duration::from_secs(1)).await.unwrap();
        assert_eq!(same.conn, Some("conn-a"));
    }

    #[tokio::test]
    async fn checkout_times_out_when_every_slot_is_taken() {
        let pool: Pool<(), u8> = Pool::new(1);
        let _held = pool.checkout(0, Duration::from_secs(1)).await.unwrap();
        assert_eq!(pool.in_use(), 1);
        let err = pool
            .checkout(0, Duration::from_millis(50))
            .await
            .err()
            .unwrap();
        assert_eq!(err.max, 1);
    }

    #[tokio::test]
    async fn a_checkout_waiting_for_a_slot_is_counted_while_it_waits() {
        let pool: Arc<Pool<(), u8>> = Arc::new(Pool::new(1));
        let held = pool.checkout(0, Duration::from_secs(1)).await.unwrap();
        let waiter = {
            let pool = pool.clone();
            tokio::spawn(async move { pool.checkout(0, Duration::from_secs(30)).await.is_ok() })
        };
        while pool.waiting() == 0 {
            tokio::task::yield_now().await;
        }
        assert_eq!(pool.stats().waiting, 1);
        assert_eq!(pool.stats().in_use, 1);
        drop(held);
        assert!(waiter.await.unwrap());
        assert_eq!(pool.waiting(), 0);
    }

    #[tokio::test]
    async fn dropping_a_lease_frees_its_slot() {
        let pool: Pool<(), u8> = Pool::new(1);
        drop(pool.checkout(0, Duration::from_secs(1)).await.unwrap());
        assert!(pool.checkout(0, Duration::from_millis(50)).await.is_ok());
    }
}
