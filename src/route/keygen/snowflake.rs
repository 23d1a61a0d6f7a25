//! SNOWFLAKE keys: time-ordered 63-bit integers, ShardingSphere's layout.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::{GeneratedKey, KeyGenError, KeyGenerator};

/// The snowflake epoch: 2016-11-01 00:00:00 UTC in ms since 1970, as in ShardingSphere, so
/// keys are comparable with ShardingSphere-generated ones. 41 bits of milliseconds last
/// until 2086-07-05.
pub const EPOCH_MS: u64 = 1_477_958_400_000;

const SEQUENCE_BITS: u32 = 12;
const WORKER_BITS: u32 = 10;
const TIMESTAMP_BITS: u32 = 41;
const SEQUENCE_MASK: u64 = (1 << SEQUENCE_BITS) - 1;

/// Milliseconds since 1970; injectable for tests.
type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

/// `type = "SNOWFLAKE"`. A key is, from the most significant bit: 0, 41 bits of
/// milliseconds since [`EPOCH_MS`], 10 bits of `worker_id`, 12 bits of sequence within the
/// millisecond. Keys from one generator strictly increase.
///
/// The last (millisecond, sequence) pair lives in one atomic word updated by a CAS loop, so
/// concurrent sessions never take a lock. When the clock steps back by at most
/// `max_tolerate_time_difference_ms`, `next` sleeps that long (blocking the thread: at most
/// a few milliseconds); further back is an error rather than a possibly repeated key.
pub struct Snowflake {
    worker_id: u64,
    max_tolerate_ms: u64,
    max_vibration_offset: u64,
    /// `elapsed_ms << 12 | sequence` of the last key handed out.
    last: AtomicU64,
    clock: Clock,
}

/// A snowflake key taken apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnowflakeId {
    /// Milliseconds since 1970 (UTC) when it was generated.
    pub unix_ms: u64,
    /// The generator's `worker_id`.
    pub worker_id: u16,
    /// Position within its millisecond.
    pub sequence: u16,
}

impl Snowflake {
    /// A generator reading the system clock.
    pub fn new(worker_id: u16, max_tolerate_ms: u64, max_vibration_offset: u16) -> Self {
        let clock: Clock = Arc::new(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64)
        });
        Self::with_clock(worker_id, max_tolerate_ms, max_vibration_offset, clock)
    }

    fn with_clock(
        worker_id: u16,
        max_tolerate_ms: u64,
        max_vibration_offset: u16,
        clock: Clock,
    ) -> Self {
        Snowflake {
            worker_id: u64::from(worker_id) & ((1 << WORKER_BITS) - 1),
            max_tolerate_ms,
            max_vibration_offset: u64::from(max_vibration_offset).min(SEQUENCE_MASK),
            last: AtomicU64::new(0),
            clock,
        }
    }

    /// The next key.
    pub fn next_id(&self) -> Result<i64, KeyGenError> {
        loop {
            let now_ms = (self.clock)();
            let elapsed = now_ms
                .checked_sub(EPOCH_MS)
                .filter(|e| *e < 1 << TIMESTAMP_BITS)
                .ok_or(KeyGenError::ClockOutOfRange { now_ms })?;
            let last = self.last.load(Ordering::Acquire);
            let (last_ms, last_sequence) = (last >> SEQUENCE_BITS, last & SEQUENCE_MASK);
            let next = if elapsed > last_ms {
                (elapsed << SEQUENCE_BITS) | (elapsed % (self.max_vibration_offset + 1))
            } else if elapsed == last_ms {
                if last_sequence == SEQUENCE_MASK {
                    // 4096 keys this millisecond: wait for the next one.
                    std::thread::yield_now();
                    continue;
                }
                last + 1
            } else {
                let behind = last_ms - elapsed;
                if behind > self.max_tolerate_ms {
                    return Err(KeyGenError::ClockMovedBackwards {
                        by_ms: behind,
                        tolerance_ms: self.max_tolerate_ms,
                    });
                }
                std::thread::sleep(Duration::from_millis(behind));
                continue;
            };
            if self
                .last
                .compare_exchange_weak(last, next, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                let (ms, sequence) = (next >> SEQUENCE_BITS, next & SEQUENCE_MASK);
                let id = ms << (WORKER_BITS + SEQUENCE_BITS)
                    | self.worker_id << SEQUENCE_BITS
                    | sequence;
                return Ok(id as i64);
            }
        }
    }

    /// Takes a key apart (for admin output and debugging).
    pub fn decode(id: i64) -> SnowflakeId {
        let id = id as u64;
        SnowflakeId {
            unix_ms: (id >> (WORKER_BITS + SEQUENCE_BITS)) + EPOCH_MS,
            worker_id: ((id >> SEQUENCE_BITS) & ((1 << WORKER_BITS) - 1)) as u16,
            sequence: (id & SEQUENCE_MASK) as u16,
        }
    }
}

impl std::fmt::Debug for Snowflake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snowflake")
            .field("worker_id", &self.worker_id)
            .field("max_tolerate_ms", &self.max_tolerate_ms)
            .field("max_vibration_offset", &self.max_vibration_offset)
            .finish_non_exhaustive()
    }
}

impl KeyGenerator for Snowflake {
    fn kind(&self) -> &'static str {
        "SNOWFLAKE"
    }

    fn next(&self) -> Result<GeneratedKey, KeyGenError> {
        self.next_id().map(GeneratedKey::Int)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{HashSet, VecDeque};
    use std::sync::Mutex;

    use super::*;

    const T: u64 = EPOCH_MS + 1_000_000;

    /// A clock that reads `script` in order, then repeats its last reading.
    fn scripted(script: &[u64]) -> Clock {
        let script = Mutex::new(script.iter().copied().collect::<VecDeque<u64>>());
        Arc::new(move || {
            let mut script = script.lock().unwrap();
            if script.len() > 1 {
                script.pop_front().unwrap()
            } else {
                script[0]
            }
        })
    }

    #[test]
    fn lays_out_time_worker_and_sequence() {
        let generator = Snowflake::with_clock(5, 10, 0, scripted(&[T]));
        let first = generator.next_id().unwrap();
        let second = generator.next_id().unwrap();
        assert_eq!(first, ((1_000_000u64 << 22) | (5 << 12)) as i64);
        assert_eq!(
            Snowflake::decode(second),
            SnowflakeId {
                unix_ms: T,
                worker_id: 5,
                sequence: 1
            }
        );
    }

    #[test]
    fn sequence_of_a_new_millisecond_vibrates() {
        let generator = Snowflake::with_clock(0, 10, 1, scripted(&[T, T + 1, T + 2]));
        let sequences: Vec<u16> = (0..3)
            .map(|_| Snowflake::decode(generator.next_id().unwrap()).sequence)
            .collect();
        assert_eq!(
            sequences,
            [0, 1, 0],
            "starts at ms % 2, so MOD 2 on keys is not always 0"
        );
    }

    #[test]
    fn waits_for_the_next_millisecond_after_4096_keys() {
        let calls = Arc::new(AtomicU64::new(0));
        let counter = calls.clone();
        // The clock ticks once every 5000 readings.
        let clock: Clock = Arc::new(move || T + counter.fetch_add(1, Ordering::Relaxed) / 5000);
        let generator = Snowflake::with_clock(1, 10, 0, clock);
        let ids: Vec<i64> = (0..10_000).map(|_| generator.next_id().unwrap()).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "strictly increasing");
        assert!(ids.iter().all(|id| Snowflake::decode(*id).sequence <= 4095));
    }

    #[test]
    fn waits_out_a_small_clock_step_back_and_refuses_a_large_one() {
        let generator = Snowflake::with_clock(0, 10, 0, scripted(&[T, T - 5, T]));
        let a = generator.next_id().unwrap();
        let b = generator.next_id().unwrap();
        assert!(b > a);
        let generator = Snowflake::with_clock(0, 10, 0, scripted(&[T, T - 50]));
        generator.next_id().unwrap();
        assert_eq!(
            generator.next_id(),
            Err(KeyGenError::ClockMovedBackwards {
                by_ms: 50,
                tolerance_ms: 10
            })
        );
        let generator = Snowflake::with_clock(0, 10, 0, scripted(&[EPOCH_MS - 1]));
        assert!(matches!(
            generator.next_id(),
            Err(KeyGenError::ClockOutOfRange { .. })
        ));
    }

    #[test]
    fn concurrent_sessions_get_unique_increasing_keys() {
        let generator = Arc::new(Snowflake::new(3, 10, 1));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let generator = generator.clone();
                std::thread::spawn(move || {
                    let ids: Vec<i64> = (0..20_000).map(|_| generator.next_id().unwrap()).collect();
                    assert!(ids.windows(2).all(|w| w[0] < w[1]));
                    ids
                })
            })
            .collect();
        let mut all = HashSet::new();
        for thread in threads {
            for id in thread.join().unwrap() {
                assert!(all.insert(id), "duplicate key {id}");
            }
        }
        assert_eq!(all.len(), 80_000);
    }
}
