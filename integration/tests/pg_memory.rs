//! A result larger than any buffer streams through dbmesh: reading 1M rows (~110 MB) row by
//! row, with pauses, keeps the proxy process's resident memory bounded.

use std::time::Duration;

use dbmesh_integration::{
    free_port, pg_config, pg_connect, pg_listen_on, rss_kib, ChildProxy, PgDatabase, APP_PASSWORD,
    APP_USER,
};
use futures_util::TryStreamExt;

const ROWS: i64 = 1_000_000;
/// Peak RSS the proxy may reach while streaming. Measured: 12.5 MiB at rest and 12.9 MiB at
/// peak (debug build); buffering even a tenth of the result would exceed this.
const MAX_RSS_KIB: u64 = 48 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_million_rows_stream_through_in_bounded_memory() {
    let db = PgDatabase::create("pgmem");
    let port = free_port();
    let proxy =
        ChildProxy::start(&pg_listen_on(&pg_config("shop", &db.url(), ""), port), port).await;
    let pid = proxy.pid();
    let dsn =
        format!("host=127.0.0.1 port={port} user={APP_USER} password={APP_PASSWORD} dbname=shop");
    let c = pg_connect(&dsn).await.unwrap();
    let at_rest = rss_kib(pid);

    let rows = c
        .query_raw(
            "SELECT g, repeat('x', 100) FROM generate_series(1, 1000000) g",
            std::iter::empty::<i64>(),
        )
        .await
        .unwrap();
    futures_util::pin_mut!(rows);
    let (mut n, mut peak, mut last) = (0i64, 0u64, 0i64);
    while let Some(row) = rows.try_next().await.unwrap() {
        n += 1;
        last = row.get::<_, i32>(0) as i64;
        if n % 10_000 == 0 {
            peak = peak.max(rss_kib(pid));
        }
        // A slow reader: the backend is far ahead unless dbmesh holds it back.
        if n % 100_000 == 0 {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    assert_eq!((n, last), (ROWS, ROWS));
    eprintln!("dbmesh RSS: {at_rest} KiB at rest, {peak} KiB peak while streaming");
    assert!(
        peak < MAX_RSS_KIB,
        "dbmesh RSS peaked at {peak} KiB (at rest {at_rest} KiB) > {MAX_RSS_KIB} KiB:\n{}",
        proxy.log()
    );
}
