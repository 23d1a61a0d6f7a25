//! A result far larger than memory bounds is streamed through dbmesh, not buffered: the
//! proxy's resident memory stays flat while a client reads a million rows one by one.
//!
//! dbmesh runs as a child process so its RSS is its own.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use dbmesh_integration::{
    free_port, listen_on, mysql_config, rss_kib, ChildProxy, MysqlDatabase, APP_PASSWORD, APP_USER,
};
use mysql_async::prelude::*;
use mysql_async::{Conn, OptsBuilder};

/// 1M rows of about 100 bytes: ~100 MB on the wire.
const ROWS: u64 = 1_000_000;
/// Bound on the proxy's peak RSS during the stream. Measured with the debug build: ~13.6 MiB
/// before the query, ~14 MiB peak while streaming. Buffering the result (or the half of it
/// that arrives while the reader pauses) would need 50-100 MiB more.
const PEAK_RSS_BOUND_KIB: u64 = 64 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn million_row_result_streams_through_a_bounded_amount_of_memory() {
    let db = MysqlDatabase::create("large");
    let port = free_port();
    let proxy =
        ChildProxy::start(&listen_on(&mysql_config("shop", &db.url(), ""), port), port).await;
    let pid = proxy.pid();
    let opts = OptsBuilder::default()
        .ip_or_hostname("127.0.0.1")
        .tcp_port(port)
        .user(Some(APP_USER))
        .pass(Some(APP_PASSWORD))
        .db_name(Some("shop"))
        .prefer_socket(false);
    let mut conn = Conn::new(opts).await.unwrap();
    let before = rss_kib(pid);
    assert!(before > 0, "RSS of pid {pid} is readable");

    // Sample the proxy's RSS in the background for the whole stream.
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

    let mut result = conn
        .query_iter(format!(
            "SELECT seq, REPEAT('x', 90) AS pad FROM seq_1_to_{ROWS}"
        ))
        .await
        .unwrap();
    let mut count = 0u64;
    let mut sum = 0u64;
    while let Some(row) = result.next().await.unwrap() {
        let (seq, pad): (u64, String) = mysql_async::from_row(row);
        assert_eq!(pad.len(), 90);
        count += 1;
        sum += seq;
        if count.is_multiple_of(10_000) {
            peak.fetch_max(rss_kib(pid), Ordering::Relaxed);
        }
        if count == ROWS / 2 {
            // The reader stalls halfway: the proxy must wait for it (backpressure), not read
            // the rest of the result from MariaDB into memory meanwhile.
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            peak.fetch_max(rss_kib(pid), Ordering::Relaxed);
        }
    }
    drop(result);
    done.store(true, Ordering::Relaxed);
    sampler.await.unwrap();
    let peak = peak.load(Ordering::Relaxed);
    eprintln!("dbmesh RSS: {before} KiB before, {peak} KiB peak while streaming {count} rows");

    assert_eq!(count, ROWS);
    assert_eq!(sum, ROWS * (ROWS + 1) / 2);
    assert!(
        peak < PEAK_RSS_BOUND_KIB,
        "dbmesh peaked at {peak} KiB (bound {PEAK_RSS_BOUND_KIB} KiB, {before} KiB before)"
    );
    // The connection still works after the stream.
    let one: Option<i64> = conn.query_first("SELECT 1").await.unwrap();
    assert_eq!(one, Some(1));
    drop(proxy);
}
