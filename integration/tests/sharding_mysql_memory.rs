//! A result concatenated from several data nodes streams through dbmesh: the proxy's
//! resident memory stays flat while a client reads ~200 MB of rows from four nodes, and
//! stalls halfway (the nodes not being read wait on TCP, they are not buffered).
//!
//! dbmesh runs as a child process so its RSS is its own.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use dbmesh_integration::{rss_kib, ShardedDb, APP_PASSWORD, APP_USER, ORDERS_DDL, ORDERS_RULES};
use mysql_async::prelude::*;
use mysql_async::{Conn, OptsBuilder};

/// Rows per actual table; four tables, about 1 KB per row on the wire.
const ROWS_PER_NODE: u64 = 50_000;
/// Bound on the proxy's peak RSS during the stream, as for the single-node stream
/// (mysql_large_results.rs): buffering even one node's share would need ~50 MiB more.
const PEAK_RSS_BOUND_KIB: u64 = 64 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_shard_result_streams_through_a_bounded_amount_of_memory() {
    let db = ShardedDb::mysql(ORDERS_RULES, 2).await;
    let mut setup = Conn::new(db.mysql_opts()).await.unwrap();
    for ddl in ORDERS_DDL {
        setup.query_drop(ddl).await.unwrap();
    }
    drop(setup.disconnect().await);
    for i in 0..2 {
        for (t, parity) in [("t_order_0", 0), ("t_order_1", 1)] {
            db.mysql_direct_query::<i64>(
                i,
                &format!(
                    "INSERT INTO {t} SELECT seq * 2 + {parity}, {i}, seq FROM seq_1_to_{ROWS_PER_NODE}"
                ),
            )
            .await;
        }
    }

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
    let mut result = conn
        .query_iter("SELECT order_id, amount, REPEAT('x', 1000) AS pad FROM t_order")
        .await
        .unwrap();
    let mut count = 0u64;
    let mut sum = 0u64;
    while let Some(row) = result.next().await.unwrap() {
        let (_, amount, pad): (i64, u64, String) = mysql_async::from_row(row);
        assert_eq!(pad.len(), 1000);
        count += 1;
        sum += amount;
        if count == total / 2 {
            // The reader stalls halfway through: dbmesh must wait, not read ahead.
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            peak.fetch_max(rss_kib(pid), Ordering::Relaxed);
        }
    }
    drop(result);
    done.store(true, Ordering::Relaxed);
    sampler.await.unwrap();
    let peak = peak.load(Ordering::Relaxed);
    eprintln!("dbmesh RSS: {before} KiB before, {peak} KiB peak while streaming {count} rows");
    assert_eq!(count, total);
    assert_eq!(sum, 4 * (ROWS_PER_NODE * (ROWS_PER_NODE + 1) / 2));
    assert!(
        peak < PEAK_RSS_BOUND_KIB,
        "dbmesh peaked at {peak} KiB (bound {PEAK_RSS_BOUND_KIB} KiB)"
    );
}
