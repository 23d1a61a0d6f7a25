//! A merged ORDER BY streams through dbmesh on PostgreSQL: four actual tables (two data
//! sources x two tables) of a million rows each, read by a client that stalls, keep the
//! proxy's resident memory flat. The rows of the four tables interleave in the order, so
//! the merge reads all four at once; the two tables of one data source run as two portals
//! on one connection, each asked for a batch of rows at a time, so a proxy that read one
//! portal to its end before the other would buffer a million rows (~250 MB).
//!
//! dbmesh runs as a child process so its RSS is its own.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use dbmesh_integration::{pg_connect, rss_kib, ShardedDb, APP_PASSWORD, APP_USER};
use futures_util::TryStreamExt;

/// Rows per actual table.
const ROWS_PER_TABLE: i64 = 1_000_000;
/// Every row carries this many bytes of padding (computed by the shards).
const PAD: usize = 200;
/// Bound on the proxy's peak RSS while merging, as for the concatenated stream
/// (sharding_pg_memory.rs). Measured: 20 MiB before, 27 MiB peak (debug build);
/// reading each portal to its end (Execute without a row limit) peaked at 1.1 GiB.
const PEAK_RSS_BOUND_KIB: u64 = 64 * 1024;

/// `order_id` of the `k`-th row in order (from 0): table `t_order_{p}` of `ds_{d}` holds
/// `g * 4 + d * 2 + p`, so consecutive rows come from the four tables in turn.
fn order_id_at(k: i64) -> i64 {
    4 + k
}

/// The states of dbmesh's sessions on data source `ds_<i>` (other than this one) that
/// last ran a shard query of `t_order`.
async fn shard_sessions(db: &ShardedDb, i: usize) -> Vec<String> {
    db.pg_direct_query(
        i,
        "SELECT coalesce(state, '') FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid() \
         AND query LIKE '%FROM t_order_%'",
    )
    .await
    .iter()
    .map(|r| r.get(0))
    .collect()
}

/// Reads `sql` (rows `offset..offset+count` of the merged order) slowly: after the first
/// row the client checks that each data source's shard queries are still open, and it
/// stalls every quarter.
async fn read_merged_slowly(
    client: &tokio_postgres::Client,
    db: &ShardedDb,
    sql: &str,
    offset: i64,
    count: i64,
    pid: u32,
    peak: &AtomicU64,
) {
    let rows = client
        .query_raw(sql, std::iter::empty::<i64>())
        .await
        .unwrap();
    futures_util::pin_mut!(rows);
    let mut read = 0i64;
    while let Some(row) = rows.try_next().await.unwrap() {
        let order_id: i64 = row.get(0);
        let pad: &str = row.get(1);
        assert_eq!(order_id, order_id_at(offset + read), "row {read} of {sql}");
        assert_eq!(pad.len(), PAD);
        read += 1;
        if read == 1 {
            // The first row is here: each data source's transaction with the two portals
            // is still open, waiting for dbmesh to ask for more rows.
            for i in 0..2 {
                let states = shard_sessions(db, i).await;
                assert!(
                    states
                        .iter()
                        .any(|s| s.starts_with("idle in transaction") || s == "active"),
                    "ds_{i} has an open shard query when the first row arrives: {states:?}"
                );
            }
        }
        if read % (count / 4) == 0 {
            // The reader stalls: dbmesh must wait, not read ahead.
            tokio::time::sleep(Duration::from_millis(300)).await;
            peak.fetch_max(rss_kib(pid), Ordering::Relaxed);
        }
    }
    assert_eq!(read, count, "rows of {sql}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merged_order_by_over_four_million_rows_streams_in_bounded_memory() {
    let db = ShardedDb::pg_orders().await;
    let loads = (0..2)
        .flat_map(|d| (0..2).map(move |p| (d, p)))
        .map(|(d, p)| {
            let db = &db;
            async move {
                db.pg_direct_client(d)
                    .await
                    .batch_execute(&format!(
                        "INSERT INTO t_order_{p} (order_id, user_id, amount) \
                     SELECT g * 4 + {}, {d}, g FROM generate_series(1, {ROWS_PER_TABLE}) g",
                        d * 2 + p
                    ))
                    .await
                    .unwrap()
            }
        });
    futures_util::future::join_all(loads).await;

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
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };

    let total = 4 * ROWS_PER_TABLE;
    let select =
        format!("SELECT order_id, repeat('x', {PAD}) AS pad FROM t_order ORDER BY order_id");
    read_merged_slowly(&client, &db, &select, 0, total, pid, &peak).await;
    // With a LIMIT the shards get `LIMIT 2000000`: each still has all its rows, and the
    // portals are closed once the client has its rows.
    let half = total / 4;
    let limited = format!("{select} LIMIT {half} OFFSET {half}");
    read_merged_slowly(&client, &db, &limited, half, half, pid, &peak).await;

    done.store(true, Ordering::Relaxed);
    sampler.await.unwrap();
    let peak = peak.load(Ordering::Relaxed);
    eprintln!("dbmesh RSS: {before} KiB before, {peak} KiB peak while merging");
    assert!(
        peak < PEAK_RSS_BOUND_KIB,
        "dbmesh peaked at {peak} KiB (bound {PEAK_RSS_BOUND_KIB} KiB):\n{}",
        child.log()
    );
    // The connections are clean: no shard query is left open, the session goes on.
    for i in 0..2 {
        let states = shard_sessions(&db, i).await;
        assert!(
            states.iter().all(|s| s == "idle"),
            "ds_{i} sessions: {states:?}"
        );
    }
    let rows = client
        .query_one("SELECT count(*) FROM t_order", &[])
        .await
        .unwrap();
    assert_eq!(rows.get::<_, i64>(0), total);
}
