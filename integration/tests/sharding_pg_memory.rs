//! A PostgreSQL result concatenated from several data nodes streams through dbmesh: the
//! proxy's resident memory stays flat while a client reads ~200 MB of rows from four
//! nodes, and stalls halfway (the nodes not being read wait on TCP, they are not
//! buffered).
//!
//! dbmesh runs as a child process so its RSS is its own.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use dbmesh_integration::{pg_connect, rss_kib, ShardedDb, APP_PASSWORD, APP_USER};
use futures_util::TryStreamExt;

/// Rows per actual table; four tables, about 1 KB per row on the wire.
const ROWS_PER_NODE: i64 = 50_000;
/// Bound on the proxy's peak RSS during the stream, as for the single-node stream
/// (pg_memory.rs): buffering even one node's share would need ~50 MiB more.
const PEAK_RSS_BOUND_KIB: u64 = 64 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_shard_result_streams_through_a_bounded_amount_of_memory() {
    let db = ShardedDb::pg_orders().await;
    for i in 0..2 {
        let direct = db.pg_direct_client(i).await;
        for (t, parity) in [("t_order_0", 0), ("t_order_1", 1)] {
            direct
                .batch_execute(&format!(
                    "INSERT INTO {t} (order_id, user_id, amount) \
                     SELECT g * 2 + {parity}, {i}, g FROM generate_series(1, {ROWS_PER_NODE}) g"
                ))
                .await
                .unwrap();
        }
    }
    let child = db.pg_child().await;
    let pid = child.pid();
    let client = pg_connect(&format!(
        "host=127.0.0.1 port={} user={APP_USER} password={APP_PASSWORD} dbname={}",
        child.port, db.logical
    ))
    .await
    .unwrap();
    let before = rss_kib(pid);
    assert!(before > 0, "RSS of pid {pid} is readable");
    let peak = Arc::new(AtomicU64::new(before));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (peak, done) = (peak.clone(), done.clone());
        tokio::spawn(async move {
            while !done.load(Ordering::Relaxed) {
                peak.fetch_max(rss_kib(pid), Ordering::Relaxed);
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
        })
    };

    let total = 4 * ROWS_PER_NODE;
    let rows = client
        .query_raw(
            "SELECT order_id, amount, repeat('x', 1000) AS pad FROM t_order",
            std::iter::empty::<i64>(),
        )
        .await
        .unwrap();
    futures_util::pin_mut!(rows);
    let (mut count, mut sum) = (0i64, 0i64);
    while let Some(row) = rows.try_next().await.unwrap() {
        let pad: &str = row.get(2);
        assert_eq!(pad.len(), 1000);
        count += 1;
        sum += i64::from(row.get::<_, i32>(1));
        if count == total / 2 {
            // The reader stalls halfway through: dbmesh must wait, not read ahead.
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            peak.fetch_max(rss_kib(pid), Ordering::Relaxed);
        }
    }
    done.store(true, Ordering::Relaxed);
    sampler.await.unwrap();
    assert_eq!(count, total);
    assert_eq!(sum, 4 * ROWS_PER_NODE * (ROWS_PER_NODE + 1) / 2);
    let peak = peak.load(Ordering::Relaxed);
    eprintln!("dbmesh RSS: {before} KiB before, {peak} KiB peak while streaming");
    assert!(
        peak < PEAK_RSS_BOUND_KIB,
        "dbmesh RSS peaked at {peak} KiB (before {before} KiB) > {PEAK_RSS_BOUND_KIB} KiB:\n{}",
        child.log()
    );
}
