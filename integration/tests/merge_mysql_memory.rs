//! A merged ORDER BY streams through dbmesh: four actual tables (two data sources x two
//! tables) of a million rows each, read by a client that stalls, keep the proxy's resident
//! memory flat, and the first row reaches the client while every shard query is still
//! running on its server. The rows of the four tables interleave in the order, so the
//! merge needs all four at once: a proxy that ran the two tables of one data source one
//! after the other on one connection would buffer a million rows of the first (~250 MB)
//! before sending the first row.
//!
//! Inside a transaction the units of one data source share the transaction's connection:
//! the first table's rest is read ahead into a spill (4 MiB in memory, the rest in an
//! unlinked temporary file) before the second is sent, and memory stays flat as well.
//!
//! dbmesh runs as a child process so its RSS is its own.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use dbmesh_integration::{rss_kib, ShardedDb, APP_PASSWORD, APP_USER, ORDERS_DDL, ORDERS_RULES};
use mysql_async::prelude::*;
use mysql_async::{Conn, OptsBuilder};

/// Rows per actual table.
const ROWS_PER_TABLE: u64 = 1_000_000;
/// Every row carries this many bytes of padding (computed by the shards).
const PAD: usize = 200;
/// Bound on the proxy's peak RSS while merging, as for the concatenated stream
/// (sharding_mysql_memory.rs). Measured: 24 MiB before, 28 MiB peak (debug build);
/// when the two tables of a data source ran one after the other it peaked at 1.2 GiB,
/// and so did the transaction's read-ahead when it buffered decoded rows in memory.
const PEAK_RSS_BOUND_KIB: u64 = 64 * 1024;

/// `order_id` of the `k`-th row in order (from 0): table `t_order_{p}` of `ds_{d}` holds
/// `seq * 4 + d * 2 + p`, so consecutive rows come from the four tables in turn.
fn order_id_at(k: u64) -> i64 {
    4 + k as i64
}

/// Shard queries running (not sleeping) on data source `ds_<i>`, other than this one.
async fn running_shard_queries(db: &ShardedDb, i: usize) -> Vec<String> {
    db.mysql_direct_query::<Option<String>>(
        i,
        "SELECT INFO FROM information_schema.PROCESSLIST \
         WHERE DB = DATABASE() AND ID <> CONNECTION_ID() AND COMMAND = 'Query' \
         AND INFO LIKE '%FROM t\\_order\\_%'",
    )
    .await
    .into_iter()
    .flatten()
    .collect()
}

/// Open files of process `pid` that are dbmesh spill files, unlinked.
fn spill_files(pid: u32) -> Vec<String> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
        .map(|target| target.display().to_string())
        .filter(|target| target.contains("dbmesh-spill-"))
        .inspect(|target| assert!(target.ends_with(" (deleted)"), "{target} is unlinked"))
        .collect()
}

/// Polls the child's RSS into `peak` until `done`.
fn sample_rss(
    pid: u32,
    peak: Arc<AtomicU64>,
    done: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while !done.load(Ordering::Relaxed) {
            peak.fetch_max(rss_kib(pid), Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
}

/// Reads `sql` (rows `offset..offset+count` of the merged order) slowly: after the first
/// row the client checks that every shard query still runs (inside a transaction: the
/// second one of each data source, the first having been read ahead into a spill file),
/// and it stalls every quarter.
#[allow(clippy::too_many_arguments)]
async fn read_merged_slowly(
    in_transaction: bool,
    conn: &mut Conn,
    db: &ShardedDb,
    sql: &str,
    offset: u64,
    count: u64,
    pid: u32,
    peak: &AtomicU64,
) {
    let mut result = conn.query_iter(sql).await.unwrap();
    let mut read = 0u64;
    while let Some(row) = result.next().await.unwrap() {
        let (order_id, pad): (i64, String) = mysql_async::from_row(row);
        assert_eq!(order_id, order_id_at(offset + read), "row {read} of {sql}");
        assert_eq!(pad.len(), PAD);
        read += 1;
        if read == 1 {
            // The first row is here: all four shard queries must still be running (a
            // buffered table would have been read to its end already). In a transaction
            // one per data source runs, the other one is in a spill file.
            let per_data_source = if in_transaction { 1 } else { 2 };
            for i in 0..2 {
                let running = running_shard_queries(db, i).await;
                assert_eq!(
                    running.len(),
                    per_data_source,
                    "ds_{i} runs its shard queries when the first row arrives: {running:?}"
                );
            }
            let spilled = spill_files(pid);
            assert_eq!(
                spilled.len(),
                if in_transaction { 2 } else { 0 },
                "{spilled:?}"
            );
        }
        if read.is_multiple_of(count / 4) {
            // The reader stalls: dbmesh must wait, not read ahead.
            tokio::time::sleep(Duration::from_millis(300)).await;
            peak.fetch_max(rss_kib(pid), Ordering::Relaxed);
        }
    }
    assert_eq!(read, count, "rows of {sql}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merged_order_by_over_four_million_rows_streams_in_bounded_memory() {
    let db = ShardedDb::mysql(ORDERS_RULES, 2).await;
    let mut setup = Conn::new(db.mysql_opts()).await.unwrap();
    setup.query_drop(ORDERS_DDL[0]).await.unwrap();
    drop(setup.disconnect().await);
    let loads = (0..2).flat_map(|d| (0..2).map(move |p| (d, p))).map(|(d, p)| {
        let db = &db;
        async move {
            db.mysql_direct_query::<i64>(
                d,
                &format!(
                    "INSERT INTO t_order_{p} SELECT seq * 4 + {}, {d}, seq FROM seq_1_to_{ROWS_PER_TABLE}",
                    d * 2 + p
                ),
            )
            .await
        }
    });
    futures_util::future::join_all(loads).await;

    let child = db.mysql_child().await;
    let pid = child.pid();
    let opts = OptsBuilder::default()
        .ip_or_hostname("127.0.0.1")
        .tcp_port(child.port)
        .user(Some(APP_USER))
        .pass(Some(APP_PASSWORD))
        .db_name(Some(db.logical.clone()))
        .prefer_socket(false);
    let mut conn = Conn::new(opts).await.unwrap();
    let before = rss_kib(pid);
    assert!(before > 0, "RSS of pid {pid} is readable");
    let peak = Arc::new(AtomicU64::new(before));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = sample_rss(pid, peak.clone(), done.clone());

    let total = 4 * ROWS_PER_TABLE;
    let select =
        format!("SELECT order_id, REPEAT('x', {PAD}) AS pad FROM t_order ORDER BY order_id");
    read_merged_slowly(false, &mut conn, &db, &select, 0, total, pid, &peak).await;
    // With a LIMIT the shards get `LIMIT 2000000`: each still returns all its rows, and
    // what the client does not take is read and dropped at the end.
    let half = total / 4;
    let limited = format!("{select} LIMIT {half} OFFSET {half}");
    read_merged_slowly(false, &mut conn, &db, &limited, half, half, pid, &peak).await;
    // In a transaction (BEGIN here; autocommit=0, the default of PyMySQL, is the same) the
    // rest of t_order_0 is spilled before t_order_1 is sent on the transaction's connection.
    conn.query_drop("BEGIN").await.unwrap();
    read_merged_slowly(true, &mut conn, &db, &select, 0, total, pid, &peak).await;
    conn.query_drop("COMMIT").await.unwrap();
    let spilled = spill_files(pid);
    assert!(spilled.is_empty(), "spill files left open: {spilled:?}");

    done.store(true, Ordering::Relaxed);
    sampler.await.unwrap();
    let peak = peak.load(Ordering::Relaxed);
    eprintln!("dbmesh RSS: {before} KiB before, {peak} KiB peak while merging");
    assert!(
        peak < PEAK_RSS_BOUND_KIB,
        "dbmesh peaked at {peak} KiB (bound {PEAK_RSS_BOUND_KIB} KiB):\n{}",
        child.log()
    );
    // The connections are clean: nothing runs on the shards, the session goes on.
    for i in 0..2 {
        let running = running_shard_queries(&db, i).await;
        assert!(running.is_empty(), "ds_{i} still runs {running:?}");
    }
    let rows: Option<i64> = conn
        .query_first("SELECT count(*) FROM t_order")
        .await
        .unwrap();
    assert_eq!(rows, Some(total as i64));
}

/// A spill that cannot be written (here: the temporary directory does not exist) ends the
/// statement with an ERR naming the cause, and the session and its transaction go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spill_that_cannot_be_written_ends_the_statement_and_the_transaction_goes_on() {
    let db = ShardedDb::mysql(ORDERS_RULES, 2).await;
    let mut setup = Conn::new(db.mysql_opts()).await.unwrap();
    setup.query_drop(ORDERS_DDL[0]).await.unwrap();
    drop(setup.disconnect().await);
    // 40,000 rows of ~210 bytes: t_order_0 of ds_0 is well past the 4 MiB kept in memory.
    let rows = 40_000;
    for p in 0..2 {
        db.mysql_direct_query::<i64>(
            0,
            &format!("INSERT INTO t_order_{p} SELECT seq * 4 + {p}, 0, seq FROM seq_1_to_{rows}"),
        )
        .await;
    }
    let missing = std::env::temp_dir().join(format!("{}_missing", db.logical));
    let missing = missing.display().to_string();
    let child = db.mysql_child_with_env(&[("TMPDIR", &missing)]).await;
    let opts = OptsBuilder::default()
        .ip_or_hostname("127.0.0.1")
        .tcp_port(child.port)
        .user(Some(APP_USER))
        .pass(Some(APP_PASSWORD))
        .db_name(Some(db.logical.clone()))
        .prefer_socket(false);
    let mut conn = Conn::new(opts).await.unwrap();
    conn.query_drop("BEGIN").await.unwrap();
    conn.query_drop("INSERT INTO t_order (order_id, user_id, amount) VALUES (2, 0, 1)")
        .await
        .unwrap();
    let select = format!(
        "SELECT order_id, REPEAT('x', {PAD}) AS pad FROM t_order WHERE user_id = 0 ORDER BY order_id"
    );
    let err = conn.query_drop(&select).await.unwrap_err();
    match err {
        mysql_async::Error::Server(e) => {
            assert_eq!(e.code, 1105, "{e:?}");
            assert!(
                e.message.contains("temporary file") && e.message.contains(&missing),
                "{e:?}"
            );
        }
        other => panic!("a server error expected, got {other:?}"),
    }
    // The transaction is intact: its insert is visible, and it commits.
    let count: Option<i64> = conn
        .query_first("SELECT count(*) FROM t_order WHERE user_id = 0")
        .await
        .unwrap();
    assert_eq!(count, Some(2 * rows + 1));
    conn.query_drop("COMMIT").await.unwrap();
    let committed: Option<i64> = conn
        .query_first("SELECT count(*) FROM t_order WHERE order_id = 2")
        .await
        .unwrap();
    assert_eq!(committed, Some(1));
}
