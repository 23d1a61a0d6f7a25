//! A bounded pool of backend connections for one data source.
//!
//! `max_connections` is a hard cap (a semaphore); idle connections are kept with the profile
//! they were opened with, and only handed to a session with the same profile. A checkout that
//! cannot get a slot within the checkout timeout fails instead of hanging.
//!
//! Upkeep (docs/pooling.md): an idle connection unused for `idle_timeout` is closed (but the
//! pool keeps `min_connections` open), a connection older than `max_lifetime` is closed when
//! it comes back instead of being lent again, and [`Pool::reap`] / [`Pool::deficit`] let a
//! background task close expired connections and open warm ones. The pool holds connections
//! of any protocol; opening, pinging and resetting them is the wire layer's business.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::PoolSettings;

struct Idle<C, P> {
    conn: C,
    profile: P,
    /// When it was last given back.
    since: Instant,
    /// When it was opened (for `max_lifetime`).
    created: Instant,
}

/// The pool itself; share it as `Arc<Pool<..>>`.
pub struct Pool<C, P> {
    max: u32,
    settings: PoolSettings,
    slots: Arc<Semaphore>,
    idle: Mutex<IdleList<C, P>>,
    /// Checkouts waiting for a slot right now (for `SHOW DBMESH DATA SOURCES`, metrics).
    waiting: AtomicUsize,
}

struct IdleList<C, P> {
    conns: Vec<Idle<C, P>>,
    /// The profile of the connection given back last: warm connections are opened with it.
    last_profile: Option<P>,
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
    /// How long `conn` sat idle in the pool (zero for a new slot): the caller pings a
    /// connection only when this passes `[server] pool_check_idle_ms`.
    pub idle_for: Duration,
    /// When the connection was opened (now, for a new slot).
    created: Instant,
    permit: OwnedSemaphorePermit,
}

impl<C> Lease<C> {
    /// The lent connection was dead and is replaced by one opened now.
    pub fn renew(&mut self) {
        self.conn = None;
        self.idle_for = Duration::ZERO;
        self.created = Instant::now();
    }
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
    /// A pool of `max` connections with the default upkeep settings.
    pub fn new(max: u32) -> Self {
        Self::with_settings(max, PoolSettings::default())
    }

    pub fn with_settings(max: u32, settings: PoolSettings) -> Self {
        Pool {
            max,
            settings,
            slots: Arc::new(Semaphore::new(max as usize)),
            idle: Mutex::new(IdleList {
                conns: Vec::new(),
                last_profile: None,
            }),
            waiting: AtomicUsize::new(0),
        }
    }

    pub fn settings(&self) -> PoolSettings {
        self.settings
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
        self.idle.lock().unwrap().conns.len()
    }

    /// Waits up to `timeout` for a slot; reuses an idle connection of the same profile.
    pub async fn checkout(
        &self,
        profile: P,
        timeout: Duration,
    ) -> Result<Lease<C>, CheckoutTimeout> {
        self.checkout_best(profile, timeout, |_| 0).await
    }

    /// Like [`checkout`](Self::checkout), preferring among the idle connections of the
    /// profile the one `score` rates highest (most recently returned on a tie): a session
    /// takes a connection already in its state, saving the round trips that would bring
    /// another one there.
    pub async fn checkout_best(
        &self,
        profile: P,
        timeout: Duration,
        score: impl Fn(&C) -> u8,
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
        let expired = {
            let mut idle = self.idle.lock().unwrap();
            let expired = self.take_expired(&mut idle.conns, 0);
            let mut best: Option<(usize, u8)> = None;
            for (i, c) in idle.conns.iter().enumerate() {
                if c.profile != profile {
                    continue;
                }
                let s = score(&c.conn);
                if best.is_none_or(|(_, b)| s >= b) {
                    best = Some((i, s));
                }
            }
            let taken = best.map(|(pos, _)| idle.conns.remove(pos));
            (expired, taken)
        };
        let (expired, taken) = expired;
        drop(expired);
        Ok(match taken {
            Some(i) => Lease {
                conn: Some(i.conn),
                idle_for: i.since.elapsed(),
                created: i.created,
                permit,
            },
            None => Lease {
                conn: None,
                idle_for: Duration::ZERO,
                created: Instant::now(),
                permit,
            },
        })
    }

    /// Returns a connection for reuse, freeing its slot. A connection past `max_lifetime`
    /// is closed (dropped) instead; the answer says whether it was kept.
    pub fn give_back(&self, lease: Lease<C>, conn: C, profile: P) -> bool {
        let Lease {
            created, permit, ..
        } = lease;
        if created.elapsed() >= self.settings.max_lifetime {
            drop(permit);
            return false;
        }
        let mut idle = self.idle.lock().unwrap();
        // Make room: evict the oldest idle connection if the pool is full of them.
        let evicted = (idle.conns.len() >= self.max as usize).then(|| idle.conns.remove(0));
        idle.conns.push(Idle {
            conn,
            profile,
            since: Instant::now(),
            created,
        });
        idle.last_profile = Some(profile);
        drop(idle);
        drop(evicted);
        drop(permit);
        true
    }

    /// Takes the idle connections that expired (past `max_lifetime`, or idle past
    /// `idle_timeout` beyond the `min_connections` the pool keeps); the caller closes them.
    pub fn reap(&self) -> Vec<C> {
        let mut idle = self.idle.lock().unwrap();
        let in_use = self.in_use();
        self.take_expired(&mut idle.conns, in_use)
            .into_iter()
            .map(|i| i.conn)
            .collect()
    }

    fn take_expired(&self, conns: &mut Vec<Idle<C, P>>, in_use: usize) -> Vec<Idle<C, P>> {
        let mut open = conns.len() + in_use;
        let min = self.settings.min_connections as usize;
        let mut expired = Vec::new();
        let mut i = 0;
        while i < conns.len() {
            let c = &conns[i];
            let old = c.created.elapsed() >= self.settings.max_lifetime;
            let unused = c.since.elapsed() >= self.settings.idle_timeout && open > min;
            if old || unused {
                expired.push(conns.remove(i));
                open -= 1;
            } else {
                i += 1;
            }
        }
        expired
    }

    /// How many connections are missing to reach `min_connections`, and the profile to
    /// open them with (the last one given back; `None` before any was).
    pub fn deficit(&self) -> (usize, Option<P>) {
        let idle = self.idle.lock().unwrap();
        let open = idle.conns.len() + self.in_use();
        let missing = (self.settings.min_connections as usize).saturating_sub(open);
        (missing, idle.last_profile)
    }

    /// `f` of the most recently returned idle connection of `profile`, if there is one: the
    /// upkeep task learns from it how to open warm connections of that profile.
    pub fn with_idle<R>(&self, profile: P, f: impl FnOnce(&C) -> R) -> Option<R> {
        let idle = self.idle.lock().unwrap();
        idle.conns
            .iter()
            .rev()
            .find(|i| i.profile == profile)
            .map(|i| f(&i.conn))
    }

    /// Adds a warm connection opened by the upkeep task (see [`deficit`](Self::deficit));
    /// false (and the connection dropped) when the pool has no room for it.
    pub fn add_warm(&self, conn: C, profile: P) -> bool {
        let mut idle = self.idle.lock().unwrap();
        if idle.conns.len() + self.in_use() >= self.max as usize {
            return false;
        }
        let now = Instant::now();
        idle.conns.push(Idle {
            conn,
            profile,
            since: now,
            created: now,
        });
        true
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

    fn settings(min: u32, idle_ms: u64, lifetime_ms: u64) -> PoolSettings {
        PoolSettings {
            min_connections: min,
            idle_timeout: Duration::from_millis(idle_ms),
            max_lifetime: Duration::from_millis(lifetime_ms),
        }
    }

    #[tokio::test]
    async fn checkout_prefers_the_idle_connection_scored_highest() {
        let pool: Pool<&'static str, u8> = Pool::new(3);
        let mut leases = Vec::new();
        for _ in 0..3 {
            leases.push(pool.checkout(1, Duration::from_secs(1)).await.unwrap());
        }
        for (lease, conn) in leases.into_iter().zip(["a", "b", "c"]) {
            pool.give_back(lease, conn, 1);
        }
        let score = |c: &&str| u8::from(*c == "b");
        let best = pool
            .checkout_best(1, Duration::from_secs(1), score)
            .await
            .unwrap();
        assert_eq!(best.conn, Some("b"));
        // On a tie the most recently returned one wins.
        let next = pool.checkout(1, Duration::from_secs(1)).await.unwrap();
        assert_eq!(next.conn, Some("c"));
    }

    #[tokio::test]
    async fn a_connection_past_its_lifetime_is_not_kept() {
        let pool: Pool<&'static str, u8> = Pool::with_settings(1, settings(0, 60_000, 1));
        let lease = pool.checkout(1, Duration::from_secs(1)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert!(!pool.give_back(lease, "old", 1));
        assert_eq!(pool.stats().idle, 0);
        assert_eq!(pool.in_use(), 0);
    }

    #[tokio::test]
    async fn reaping_closes_idle_connections_beyond_the_minimum() {
        let pool: Pool<&'static str, u8> = Pool::with_settings(3, settings(1, 1, 60_000));
        let leases = [
            pool.checkout(1, Duration::from_secs(1)).await.unwrap(),
            pool.checkout(1, Duration::from_secs(1)).await.unwrap(),
        ];
        for (lease, conn) in leases.into_iter().zip(["a", "b"]) {
            pool.give_back(lease, conn, 1);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert_eq!(pool.reap().len(), 1);
        assert_eq!(pool.idle_count(), 1);
        assert_eq!(pool.deficit(), (0, Some(1)));
    }

    #[tokio::test]
    async fn the_deficit_counts_connections_missing_to_the_minimum() {
        let pool: Pool<&'static str, u8> = Pool::with_settings(4, settings(2, 60_000, 60_000));
        assert_eq!(pool.deficit(), (2, None));
        let lease = pool.checkout(7, Duration::from_secs(1)).await.unwrap();
        pool.give_back(lease, "a", 7);
        assert_eq!(pool.deficit(), (1, Some(7)));
        assert!(pool.add_warm("b", 7));
        assert_eq!(pool.deficit(), (0, Some(7)));
    }

    #[tokio::test]
    async fn with_idle_looks_at_the_last_idle_connection_of_the_profile() {
        let pool: Pool<&'static str, u8> = Pool::new(3);
        assert_eq!(pool.with_idle(1, |c| *c), None);
        let leases = [
            pool.checkout(1, Duration::from_secs(1)).await.unwrap(),
            pool.checkout(1, Duration::from_secs(1)).await.unwrap(),
            pool.checkout(2, Duration::from_secs(1)).await.unwrap(),
        ];
        for ((lease, conn), profile) in leases.into_iter().zip(["a", "b", "c"]).zip([1, 1, 2]) {
            pool.give_back(lease, conn, profile);
        }
        assert_eq!(pool.with_idle(1, |c| *c), Some("b"));
        assert_eq!(pool.with_idle(2, |c| *c), Some("c"));
        assert_eq!(pool.idle_count(), 3, "nothing is taken");
    }

    #[tokio::test]
    async fn dropping_a_lease_frees_its_slot() {
        let pool: Pool<(), u8> = Pool::new(1);
        drop(pool.checkout(0, Duration::from_secs(1)).await.unwrap());
        assert!(pool.checkout(0, Duration::from_millis(50)).await.is_ok());
    }
}
